#!/usr/bin/env bash
# A client whose SYN offers the SMC option (usmc with the eBPF option, as a
# kernel client with smc_run) against a usmc server in explicit mode
# (USMC_SYNOPT=off, USMC_SMC_PORTS): the server's SYN-ACK cannot echo the
# option, so the client has fallen back (PEERNOSMC) and never sends CLC.
# The server reads the client's SYN (TCP_SAVE_SYN on the listener,
# TCP_SAVED_SYN on the child), sees the option and goes TCP at once
# instead of waiting USMC_CLC_WAIT_MS (2 s) for CLC bytes. Checked with a
# protocol where the server speaks first: the client gets the greeting in
# well under the 2 s wait (T_SAVESYN_MS, default 1000), the server's log
# gives the reason, both ends exchange their bytes intact; all under
# timeout. Both sides preload usmc (python3 sockets).
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
pre=$USMC_BUILD/preload/libusmc-preload.so
[ -f "$pre" ] || t_skip "$pre is not built"
# an ASan build's library needs the ASan runtime loaded first (as
# tests/preload/lib_preload.sh); python's own leaks are not ours
if ldd "$pre" 2>/dev/null | grep -q libasan; then
	pre="$(ldd "$pre" | awk '/libasan/ {print $3; exit}') $pre"
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi
t_lab_up
port=7320
max_ms=${T_SAVESYN_MS:-1000}
cat >"$t_work/srv.py" <<'PY'
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(4)
print("ready", flush=True)
c, _ = l.accept()
c.sendall(b"greeting from the server\n")
got = b""
while not got.endswith(b"\n"):
    b = c.recv(100)
    if not b:
        break
    got += b
print("server got", got, flush=True)
sys.exit(0 if got == b"answer from the client\n" else 1)
PY
cat >"$t_work/cli.py" <<'PY'
import socket, sys, time
s = socket.socket()
t0 = time.monotonic()
s.connect((sys.argv[1], int(sys.argv[2])))
got = b""
while not got.endswith(b"\n"):
    b = s.recv(100)
    if not b:
        break
    got += b
ms = int((time.monotonic() - t0) * 1000)
s.sendall(b"answer from the client\n")
print("client got", got, "ms", ms, flush=True)
sys.exit(0 if got == b"greeting from the server\n" else 1)
PY
t_exec h1 env LD_PRELOAD="$pre" USMC_DEBUG=1 USMC_SYNOPT=off USMC_SMC_PORTS=$port \
	timeout 20 python3 "$t_work/srv.py" $port >"$t_work/srv" 2>"$t_work/srv.err" &
spid=$!
busywait 10000 t_listening h1 $port || t_fail "server did not listen: $(cat "$t_work/srv.err")"
crc=0
t_exec h2 env LD_PRELOAD="$pre" USMC_DEBUG=1 USMC_CGROUP=private \
	timeout 20 python3 "$t_work/cli.py" "$T_H1" $port >"$t_work/cli" 2>"$t_work/cli.err" || crc=$?
src=0
wait $spid || src=$?
if ! grep -q "SMC TCP option negotiation on" "$t_work/cli.err"; then
	kill $spid 2>/dev/null
	t_skip "the client cannot load the SMC option program here: $(grep -m1 'SMC TCP option' "$t_work/cli.err")"
fi
if [ $crc != 0 ] || [ $src != 0 ]; then
	sed 's/^/  client: /' "$t_work/cli" "$t_work/cli.err" | tail -8
	sed 's/^/  server: /' "$t_work/srv" "$t_work/srv.err" | tail -8
	t_fail "client exit $crc, server exit $src (124: killed by timeout)"
fi
grep -q "peer's SYN-ACK had no SMC option" "$t_work/cli.err" ||
	t_fail "client: no PEERNOSMC for the missing SYN-ACK option: $(tail -3 "$t_work/cli.err")"
ms=$(sed -n 's/.* ms \([0-9]*\)$/\1/p' "$t_work/cli")
[ -n "$ms" ] && [ "$ms" -lt "$max_ms" ] ||
	t_fail "the greeting came after '$ms' ms (want < $max_ms: no CLC wait)"
grep -q "peer's SYN had the SMC option" "$t_work/srv.err" ||
	t_fail "server: did not see the client's SYN option: $(tail -3 "$t_work/srv.err")"
t_log "ok explicit-mode server saw the client's SYN option: TCP at once, greeting after $ms ms, both messages intact"
t_log PASS
