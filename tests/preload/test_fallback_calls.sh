#!/usr/bin/env bash
# A socket usmc does not accelerate costs no system call of its own
# (docs/preload.md, "Sockets usmc does not accelerate"). A python3 client
# in h2, to a plain echo server in h1, connects nonblocking, waits for it
# with epoll, then runs R rounds as redis-benchmark's event loop does:
# epoll_ctl MOD to EPOLLOUT, epoll_wait, send 64 bytes, MOD to EPOLLIN,
# epoll_wait, recv until the 64 bytes are back (compared byte for byte).
# After 2 rounds (a socket's first use hands it to the kernel: a one-time
# cost), its main thread's system calls in the next 200 rounds are counted
# by name (strace -ff, between two marker calls): they must be exactly
# those of the same client without usmc (run first), none of usmc's (the
# runtime's lock as futex, eventfd reads and writes, epoll_pwait for the
# shadow set, fcntl, getsockopt...). In cases 1 and 2 (no device opened)
# the client then waits to be single-threaded: usmc's progress thread and
# stat publisher end once they have nothing to do (docs/threads.md); in
# case 2 usmc-stat then still shows its last, quiet, table, over 5 s old.
# Cases, each under usmc-run:
#  1. fallback with the SMC TCP option: the SYN offers SMC, the plain
#     server's SYN-ACK does not (where the option cannot load: explicit
#     mode, "not an SMC port"); the handshake state makes it a usmc epoll
#     entry first, handed to the kernel on first use;
#  2. excluded by a rule ("tcp port P"): never tried;
#  3. a fallback after a CLC exchange: explicit mode on an SMC port, a
#     usmc server whose rule says tcp for this client declines the
#     Proposal (the first read then looks for a crossed Decline).
# Every usmc run's stats line must say smcr=0 fallback=1 failed=0.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3 strace
t_lab_up
fails=0
F1="smcr=0 fallback=1 failed=0"

cat >"$t_work/client.py" <<'PY'
import os, select, socket, sys
host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
try:
    s.connect((host, port))
except BlockingIOError:
    pass
ep = select.epoll()
fd = s.fileno()
ep.register(fd, select.EPOLLOUT)
ep.poll()
err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
assert err == 0, err
def round(i):
    msg = (b"%08d" % i) * 8
    ep.modify(fd, select.EPOLLOUT)
    ep.poll()
    assert s.send(msg) == len(msg)
    ep.modify(fd, select.EPOLLIN)
    got = b""
    while len(got) < len(msg):
        ep.poll()
        got += s.recv(len(msg) - len(got))
    assert got == msg, (i, got)
for i in range(2):
    round(i)
os.access("/usmc-test-mark-begin", os.F_OK)
for i in range(rounds):
    round(i)
os.access("/usmc-test-mark-end", os.F_OK)
if len(sys.argv) > 4:
    # usmc's threads end once idle (50 ms each): wait up
    # to 10 s for this process to be single-threaded again
    import time
    end = time.monotonic() + 10
    while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < end:
        time.sleep(0.1)
    n = len(os.listdir("/proc/self/task"))
    assert n == 1, "%d threads left" % n
    print("single-threaded")
if len(sys.argv) > 5:
    # the publisher ended with a quiet table: usmc-stat still shows it
    # once it is older than a live publisher leaves one (5 s)
    import json, subprocess, time
    path = "%s/usmc-stat.%d" % (os.environ["USMC_STAT_DIR"], os.getpid())
    end = time.monotonic() + 10
    while time.time() - os.stat(path).st_mtime < 5.5 and time.monotonic() < end:
        time.sleep(0.2)
    with open(path) as f:
        head = f.readline()
    assert "\tquiet 1" in head, head
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    out = subprocess.run([sys.argv[5], "--json"], env=env, capture_output=True,
                         text=True, check=True).stdout
    me = [c for c in json.loads(out) if c["pid"] == os.getpid()]
    assert len(me) == 1 and me[0]["mode"] == "TCP" and me[0]["bytes_sent"] > 0, me
    print("usmc-stat shows the quiet table, %.1f s old: %s %s sent %d" %
          (time.time() - os.stat(path).st_mtime, me[0]["mode"],
           me[0]["fallback_name"], me[0]["bytes_sent"]))
s.close()
print("ok", rounds, "rounds")
PY

# run TAG PORT MODE [ENV...]: the client under strace in h2 (MODE plain
# or usmc), 200 rounds; counts in $t_work/TAG.count. With T_SINGLE=1 the
# client then waits (up to 10 s) to be single-threaded again.
run() {
	local tag=$1 port=$2 mode=$3
	shift 3
	t_strace_client "$tag" 60 "$mode" "$@" -- "$T_H1" "$port" 200 ${T_SINGLE:+single} ${T_STATCHK:+"$USMC_BUILD/tools/usmc-stat"} ||
		return 1
	if [ "$mode" = usmc ] && ! t_stats "$t_work/$tag/stats" "$F1"; then
		return 1
	fi
}

check() { # TAG: its rounds' calls are the plain run's
	if diff "$t_work/plain.count" "$t_work/$1.count" >"$t_work/$1.diff"; then
		t_log "ok $1: 200 rounds, the same calls as without usmc: $(tr '\n' ' ' <"$t_work/$1.count")$(grep -q single-threaded "$t_work/$1/out" && echo "; then single-threaded")"
	else
		t_log "$1: 200 rounds' calls differ from the plain run's (< plain, > usmc):"
		sed 's/^/  /' "$t_work/$1.diff"
		fails=$((fails + 1))
	fi
}

t_exec h1 timeout 300 python3 "$T_ECHO" "$T_H1" 7401 >"$t_work/echo.out" 2>&1 &
epid=$!
busywait 10000 t_listening h1 7401 || t_fail "echo server did not listen"

run plain 7401 plain || t_fail "the plain client failed"
t_log "plain: 200 rounds make $(tr '\n' ' ' <"$t_work/plain.count")"

# 1. fallback through the SMC TCP option (USMC_CGROUP=private: it loads
# under ip netns exec)
if T_SINGLE=1 run synopt 7401 usmc USMC_CGROUP=private USMC_DEBUG=1; then
	t_log "synopt: $(grep -o 'TCP fallback .*' "$t_work/synopt/err" | head -1)"
	check synopt
else
	fails=$((fails + 1))
fi

# 2. excluded by a rule
if T_SINGLE=1 T_STATCHK=1 run rule 7401 usmc USMC_CGROUP=private USMC_RULES="tcp port 7401"; then
	t_log "rule: $(grep usmc-stat "$t_work/rule/out")"
	check rule
else
	fails=$((fails + 1))
fi
kill $epid 2>/dev/null
wait $epid 2>/dev/null

# 3. fallback after a CLC exchange: a usmc echo server whose rule says tcp
# for this client declines its Proposal
t_usmc h1 "$t_work/decl-srv.stats" 7402 env USMC_RULES="tcp remote $T_H2" \
	python3 "$T_ECHO" "$T_H1" 7402 >"$t_work/decl-srv.out" 2>&1 &
dpid=$!
busywait 10000 t_listening h1 7402 || t_fail "usmc echo server did not listen"
if run decl 7402 usmc USMC_SMC_PORTS=7402 USMC_SYNOPT=off USMC_DEBUG=1; then
	t_log "decl: $(grep -o 'TCP fallback .*' "$t_work/decl/err" | head -1)"
	check decl
else
	fails=$((fails + 1))
fi
kill $dpid 2>/dev/null
wait $dpid 2>/dev/null

[ $fails = 0 ] || t_fail "$fails case(s) failed"
t_log "passed"
