#!/usr/bin/env bash
# usmc-run next to programs that do not run usmc, rules that say tcp, one
# host, and sockets that must stay untouched:
#  1. usmc client -> plain server (port not an SMC port): TCP, fallback
#     counted, bytes exact;
#  2. plain client -> usmc server on its SMC port: the server falls back;
#  3. usmc on both ends, a port the rules do not list: TCP on both;
#  4. a nonblocking connect to a closed SMC port: ECONNREFUSED via SO_ERROR;
#  5. one host (127.0.0.2 -> 127.0.0.1, softroce on a private UDP port):
#     rw, calls and epoll-et over SMC-R;
#  6. AF_UNIX socketpair, UDP over loopback, a pipe and a file under
#     usmc-run: byte for byte the kernel's.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3 sha256sum
t_lab_up
fails=0
S1="smcr=1 fallback=0 failed=0"
F1="smcr=0 fallback=1 failed=0"
t_pair lab 7301 rw "" "" plain "$F1" 7070 7070 || fails=$((fails + 1))
t_pair lab 7302 rw "" "" "$F1" plain 7302 7302 || fails=$((fails + 1))
t_pair lab 7303 calls "" "" "$F1" "$F1" 7070 7070 || fails=$((fails + 1))
# the reason is named in the debug log
d=$t_work/reason
mkdir -p "$d"
t_exec h1 timeout 60 "$T_PEER" server 7304 rw >"$d/s.out" 2>&1 &
spid=$!
busywait 10000 t_listening h1 7304 || t_fail "plain server did not listen"
USMC_DEBUG=1 t_usmc h2 "$d/c.stats" 7070 "$T_PEER" client "$T_H1" 7304 rw >"$d/c.out" 2>"$d/c.err" ||
	fails=$((fails + 1))
wait $spid || fails=$((fails + 1))
if grep -q "TCP fallback $T_H2:[0-9]* -> $T_H1:7304: PEERNOSMC 0x03010000 port 7304 is not an SMC port" "$d/c.err"; then
	t_log "ok the client's log names the reason: $(grep 'TCP fallback' "$d/c.err")"
else
	t_log "no PEERNOSMC line in the client's log: $(cat "$d/c.err")"
	fails=$((fails + 1))
fi
# 4. connection refused
if t_usmc h2 "$t_work/refused.stats" 7399 "$T_PEER" client "$T_H1" 7399 connrefused >"$t_work/refused.out" 2>&1 &&
	t_stats "$t_work/refused.stats" "smcr=0"; then
	t_log "ok connrefused: $(cat "$t_work/refused.out" | head -1)"
else
	t_log "connrefused: $(cat "$t_work/refused.out")"
	fails=$((fails + 1))
fi
# 5. one host
T_SRPORT=$((20000 + $$ % 20000))
for c in rw calls epoll-et; do
	t_pair local $((7310 + ${#c})) $c "" "" "$S1" "$S1" || fails=$((fails + 1))
done
# 6. other sockets and files untouched
head -c 3000000 /dev/urandom >"$t_work/blob"
want=$(sha256sum <"$t_work/blob" | cut -d' ' -f1)
got=$(t_usmc - "$t_work/cat.stats" 7070 sh -c "cat '$t_work/blob' | cat | sha256sum" | cut -d' ' -f1)
[ "$got" = "$want" ] && t_log "ok pipe and file: sha256 $got" || {
	t_log "pipe/file sha256 $got, want $want"
	fails=$((fails + 1))
}
if t_usmc - "$t_work/py.stats" 7070 python3 - "$t_work/blob" >"$t_work/py.out" 2>&1 <<'PY'; then
import hashlib, os, socket, sys
data = open(sys.argv[1], "rb").read()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
got = bytearray()
a.setblocking(False)
b.setblocking(False)
off = 0
while len(got) < len(data):
    if off < len(data):
        try:
            off += a.send(data[off:off + 65536])
        except BlockingIOError:
            pass
    try:
        got += b.recv(65536)
    except BlockingIOError:
        pass
assert bytes(got) == data, "unix stream differs"
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u1.bind(("127.0.0.1", 0))
for i in range(100):
    msg = data[i * 1000:(i + 1) * 1000]
    u2.sendto(msg, u1.getsockname())
    m, _ = u1.recvfrom(2000)
    assert m == msg, "udp datagram differs"
r, w = os.pipe()
os.write(w, data[:60000])
assert os.read(r, 60000) == data[:60000], "pipe differs"
print("ok unix stream %d bytes, 100 udp datagrams, pipe" % len(data))
PY
	t_log "$(cat "$t_work/py.out")"
else
	t_log "python sockets under usmc-run: $(cat "$t_work/py.out")"
	fails=$((fails + 1))
fi
[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
