#!/usr/bin/env bash
# Short-lived connections that fall back cost no system call of usmc's
# own (docs/preload.md, "Sockets usmc does not accelerate"). A python3 client
# in h2, to a plain echo server in h1, runs connect/close rounds as
# redis-benchmark -k 0 does: O_NONBLOCK set (also by F_GETFL and F_SETFL,
# as redis), a nonblocking connect waited for with epoll,
# 16 bytes sent and read back (compared byte for byte), close. After 3
# rounds (the first connect with the SMC TCP option learns that the
# server has none: usmc_peerhist_nosmc), the system calls of its main
# thread in the next 200 rounds are counted by name (strace -ff, between
# two marker calls) and compared with the same client's without usmc:
#  - every system call but futex, counted by name, exactly as many as the
#    plain client's: so no thread is created (clone, clone3: usmc's threads
#    do not end and start again per connection), no bpf call (no SYN
#    option marked or looked up for a peer known to have no SMC; the first
#    rounds' calls show that the option loaded), and none of usmc's own
#    (before: a getsockname before connect, when the socket became the
#    kernel's its byte counts by TCP_INFO, SIOCINQ and poll, a getpid at
#    socket and at close, and an F_GETFL before the app's F_SETFL);
#  - futex in at most 1 connection in 10: no hand-off to usmc's progress
#    thread (6 futex calls a connection before); the stat publisher's
#    table, every 50 ms at most, may still meet the lock, as timing has it.
# Cases, each under usmc-run: 1. the SMC TCP option (peer without it);
# 2. a rule excluding the port. Each usmc run's stats line must say
# smcr=0, failed=0 and 203 fallbacks.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3 strace
t_lab_up
fails=0
ROUNDS=200
cat >"$t_work/client.py" <<'PY'
import fcntl, os, select, socket, sys
host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ep = select.epoll()
def conn(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    # and as redis's anetSetBlock: F_GETFL, then F_SETFL
    fl = fcntl.fcntl(s.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(s.fileno(), fcntl.F_SETFL, fl | os.O_NONBLOCK)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    fd = s.fileno()
    ep.register(fd, select.EPOLLOUT)
    ep.poll()
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    assert err == 0, err
    msg = b"%016d" % i
    assert s.send(msg) == len(msg)
    ep.modify(fd, select.EPOLLIN)
    got = b""
    while len(got) < len(msg):
        ep.poll()
        got += s.recv(len(msg) - len(got))
    assert got == msg, (i, got)
    ep.unregister(fd)
    s.close()
for i in range(3):
    conn(i)
os.access("/usmc-test-mark-begin", os.F_OK)
for i in range(rounds):
    conn(i)
os.access("/usmc-test-mark-end", os.F_OK)
print("ok", rounds, "connections")
PY
# run TAG MODE [ENV...]: the client under strace in h2 (MODE plain or usmc)
run() {
	local tag=$1 mode=$2
	shift 2
	t_strace_client "$tag" 120 "$mode" "$@" -- "$T_H1" 7403 "$ROUNDS" || return 1
	if [ "$mode" = usmc ] && ! t_stats "$t_work/$tag/stats" "smcr=0 fallback=$((ROUNDS + 3)) failed=0"; then
		return 1
	fi
}

total() { awk '{n += $2} END {print n + 0}' "$1"; }
calls() { awk -v c="$2" '$1 == c {n += $2} END {print n + 0}' "$1"; }

check() { # TAG
	local c=$t_work/$1.count p=$t_work/plain.count extra bad=0
	extra=$(($(total "$c") - $(total "$p")))
	if [ "$(calls "$c" futex)" -gt $((ROUNDS / 10)) ]; then
		t_log "$1: futex: $(calls "$c" futex) in $ROUNDS connections"
		bad=1
	fi
	if ! diff <(grep -v '^futex ' "$p") <(grep -v '^futex ' "$c") >/dev/null; then
		t_log "$1: not the plain client's system calls (futex aside): $(diff <(grep -v '^futex ' "$p") <(grep -v '^futex ' "$c") | sed -n 's/^< /plain /p; s/^> /usmc /p' | tr '\n' ' ')"
		bad=1
	fi
	if [ $bad = 0 ]; then
		t_log "ok $1: $ROUNDS connections, $extra system calls more than plain ($(awk -v e=$extra -v r=$ROUNDS 'BEGIN {printf "%.1f", e / r}') each), futex $(calls "$c" futex), every other call as plain's"
	else
		fails=$((fails + 1))
	fi
}

t_exec h1 timeout 300 python3 "$T_ECHO" "$T_H1" 7403 >"$t_work/echo.out" 2>&1 &
epid=$!
busywait 10000 t_listening h1 7403 || t_fail "echo server did not listen"

run plain plain || t_fail "the plain client failed"
t_log "plain: $ROUNDS connections make $(tr '\n' ' ' <"$t_work/plain.count")"

# 1. fallback through the SMC TCP option (USMC_CGROUP=private: it loads
# under ip netns exec)
if run synopt usmc USMC_CGROUP=private; then
	# the first connection marked its SYN for the option (in the thread
	# that made the marker calls, as t_strace_client counts them)
	grep -q '^bpf(BPF_MAP_UPDATE_ELEM' "$(grep -l 'usmc-test-mark-begin' "$t_work"/synopt/t.*)" ||
		t_fail "synopt: the SMC TCP option did not load (no map update in the trace)"
	check synopt
else
	fails=$((fails + 1))
fi

# 2. excluded by a rule
if run rule usmc USMC_CGROUP=private USMC_RULES="tcp port 7403"; then
	check rule
else
	fails=$((fails + 1))
fi
kill $epid 2>/dev/null
wait $epid 2>/dev/null

[ $fails = 0 ] || t_fail "$fails case(s) failed"
t_log "passed"
