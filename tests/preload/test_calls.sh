#!/usr/bin/env bash
# Every interposed call, over SMC-R between the two lab hosts (softroce over
# the veth): plain libc programs (preload_peer) under usmc-run on both
# sides. Each case checks every byte, and both processes must report one
# SMC-R connection and no fallback (USMC_STATS). Cases:
#   rw        read/write                 calls    every send/recv family call
#   nonblock  nonblocking connect (EINPROGRESS, EALREADY, POLLOUT,
#             SO_ERROR), accept4(SOCK_NONBLOCK|SOCK_CLOEXEC), F_GETFL/F_SETFL,
#             F_SETFD/F_GETFD, FIONBIO, poll/ppoll/select/pselect waits
#   epoll-lt/-et/-oneshot  level, edge and one-shot: a partial read reports
#             again only when level-triggered; one-shot waits for MOD; a
#             pipe in the same set; EEXIST/ENOENT; 4 MiB in 1000-byte reads
#             (the listener: edge-triggered in -et; blocking, level-
#             triggered and polled at once in -lt; in a set never
#             waited on and accepted on a timer in -oneshot)
#   epoll-connect  a nonblocking connect registered (EPOLLOUT|EPOLLET)
#             while its handshake runs: one edge when SMC-R is up
#   epollout  edge-triggered EPOLLOUT on a full send buffer
#   dup       dup, dup2, dup3(O_CLOEXEC), F_DUPFD_CLOEXEC; reads and writes
#             through each, close of the original, EOF after the last
#   fionread  ioctl FIONREAD before and after a partial read
#   shutdown  SHUT_WR half-close (EPIPE after it), then the reply
#   opts      TCP_NODELAY, SO_RCVBUF/SO_SNDBUF, SO_ERROR, getsockname,
#             getpeername; 200 64-byte ping-pongs
#   threads   a writer, a reader and a poller thread on one socket
#   sendfile  a 5 MiB + 3 file with and without an offset; sha256 compared
#   fork      the child's copy is unusable (ENOTCONN), the parent's
#             connection carries on (docs/preload.md)
#   prefork   the parent listens and forks a worker that accepts: the
#             worker, not the parent, runs the connection over SMC-R
#   exitopen  the client writes 8 MiB from a nonblocking socket and exits
#             without closing it: all of it arrives, then EOF
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss sha256sum
t_lab_up
fails=0
port=7100
for c in rw calls nonblock epoll-lt epoll-et epoll-oneshot epoll-connect epollout dup fionread shutdown opts threads fork prefork exitopen; do
	port=$((port + 1))
	t_pair lab $port $c "" "" "smcr=1 fallback=0 failed=0" "smcr=1 fallback=0 failed=0" || fails=$((fails + 1))
done
# sendfile: the server reads a file it sends; the client writes what it got
head -c $((5 * 1024 * 1024 + 3)) /dev/urandom >"$t_work/file"
port=$((port + 1))
if t_pair lab $port sendfile "$t_work/file" "$t_work/received" "smcr=1 fallback=0 failed=0" "smcr=1 fallback=0 failed=0"; then
	a=$(sha256sum <"$t_work/file" | cut -d' ' -f1)
	b=$(sha256sum <"$t_work/received" | cut -d' ' -f1)
	if [ "$a" = "$b" ]; then
		t_log "ok sendfile: sha256 $a on both sides"
	else
		t_log "sendfile: sha256 sent $a, received $b"
		fails=$((fails + 1))
	fi
else
	fails=$((fails + 1))
fi
[ $fails = 0 ] || t_fail "$fails case(s) failed"
t_log PASS
