#!/usr/bin/env bash
# usmc's log for operators (docs/runtime.md, "Logging"), in the two-host
# lab with python programs under usmc-run (h1 serves, h2 connects):
#  1. default level: a clean run (an SMC connection, 256 KiB echoed and
#     compared) prints nothing on either side's stderr;
#  2. server at debug to USMC_LOG_FILE, client at info to a file per
#     process (%p): the server's file has the banner (version, pid and
#     program, transport, rules, level, file) and an established line per
#     connection with both addresses and lgr/link (SMC-D: the peer's
#     GID); the client's has its established line and a fallback line
#     (to a plain server) with both addresses and the reason; every line
#     starts with a UTC ISO 8601 time stamp within the run; a forked
#     child's connection is logged in its own file under its own PID;
#     stderr stays empty;
#  3. the same client at debug with one file for both processes (no %p):
#     lines of both PIDs, each whole, and a banner for each;
#  4. the program closes usmc's log fd and opens a file of its own that
#     gets the same number: that file holds only the program's bytes and
#     the next line still reaches the log;
#  5. a log file that cannot be opened: one line on stderr, the program
#     works (every byte compared);
#  6. at info to stderr, the program puts a socket of its own on fd 2
#     before its first connection: no line enters that socket (fd 2 is
#     noted when the library loads, not when the runtime starts).
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3
t_lab_up
fails=0
SP=7501 # the usmc server
PP=7502 # a plain server
bad() {
	t_log "$*"
	fails=$((fails + 1))
}

cat >"$t_work/client.py" <<'PY'
# One echo exchange with the usmc server (256 KiB, every byte compared);
# "plain": also one with the plain server; "fork": a child makes its own
# exchange; "steal": closes usmc's log fd (found in /proc/self/fd), opens
# FILE, which gets that number, writes to it, and makes another exchange.
import os, socket, sys
host, sport, pport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
what = sys.argv[4:]
data = bytes((i * 7 + i // 251) & 0xFF for i in range(256 * 1024))

def echo(port):
    s = socket.create_connection((host, port))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    assert bytes(got) == data, "port %d: %d bytes back, differ" % (port, len(got))

if "fd2sock" in what:
    # before usmc's first socket: a socket of the program's on fd 2
    fd2a, fd2b = socket.socketpair()
    os.dup2(fd2a.fileno(), 2)
echo(sport)
print("pid %d" % os.getpid(), flush=True)
if "plain" in what:
    echo(pport)
if "fork" in what:
    pid = os.fork()
    if pid == 0:
        try:
            echo(sport)
            print("child %d" % os.getpid(), flush=True)
            os._exit(0)
        except BaseException as e:
            print("child: %r" % e, file=sys.stderr, flush=True)
            os._exit(1)
    _, st = os.waitpid(pid, 0)
    assert st == 0, "child status %d" % st
if "steal" in what:
    log, mine = what[what.index("steal") + 1:][:2]
    fds = [int(f) for f in os.listdir("/proc/self/fd")
           if os.path.realpath("/proc/self/fd/" + f) == os.path.realpath(log)]
    assert len(fds) == 1, "usmc's log fd: %r" % fds
    os.close(fds[0])
    fd = os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    assert fd == fds[0], "got fd %d, not %d" % (fd, fds[0])
    os.write(fd, b"the program's own\n")
    echo(sport)
    os.write(fd, b"still its own\n")
    os.close(fd)
    print("stole fd %d" % fds[0], flush=True)
if "fd2sock" in what:
    fd2b.setblocking(False)
    try:
        got = fd2b.recv(65536)
    except BlockingIOError:
        got = b""
    print("fd2 got %d bytes %r" % (len(got), got[:200]), flush=True)
print("ok", flush=True)
PY

# server NAME CONNS ENV...: the usmc echo server on h1, in the background
server() {
	local name=$1 n=$2
	shift 2
	t_exec h1 env "$@" USMC_STATS="$t_work/$name.s.stats" ${T_ASAN:+LD_PRELOAD=$T_ASAN} \
		timeout 120 "$T_RUN" -p $SP python3 "$T_ECHO" 0.0.0.0 $SP "$n" \
		>"$t_work/$name.s.out" 2>"$t_work/$name.s.err" &
	spid=$!
	busywait 10000 t_listening h1 $SP || bad "$name: the server did not listen: $(cat "$t_work/$name.s.err")"
}
# client NAME ENV... -- ARGS...: the usmc client on h2; its status
client() {
	local name=$1 env=()
	shift
	while [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	t_exec h2 env "${env[@]}" USMC_STATS="$t_work/$name.c.stats" ${T_ASAN:+LD_PRELOAD=$T_ASAN} \
		timeout 120 "$T_RUN" -p $SP python3 "$t_work/client.py" "$T_H1" $SP $PP "$@" \
		>"$t_work/$name.c.out" 2>"$t_work/$name.c.err"
}
# empty FILE WHAT: FILE has no byte
empty() {
	[ ! -s "$1" ] && return 0
	bad "$2 is not empty: $(head -5 "$1")"
	return 1
}
# stamps FILE T0 T1: every line is "ISO8601Z usmc[PID] LEVEL: ..." with a
# time from T0 to T1 (epoch seconds)
stamps() {
	python3 - "$@" <<'PY' || return 1
import datetime, re, sys
path, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rx = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z usmc\[\d+\] (error|warn|info|debug): \S")
lines = open(path).read().split("\n")
assert lines[-1] == "", "the last line is cut"
for l in lines[:-1]:
    m = rx.match(l)
    assert m, "not a log line: %r" % l
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert t0 - 1 <= t <= t1 + 1, "time %s outside the run %s..%s" % (m.group(1), t0, t1)
print("%d lines" % (len(lines) - 1))
PY
}
# has FILE ERE WHAT: a line of FILE matches ERE
has() {
	if grep -qE -- "$2" "$1"; then
		t_log "ok $3: $(grep -m1 -E -- "$2" "$1")"
	else
		bad "$3: no line matching '$2' in $1: $(tail -5 "$1" 2>/dev/null)"
	fi
}

t_exec h1 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept()
    while True:
        b = c.recv(65536)
        if not b: break
        c.sendall(b)
    c.close()' $PP >/dev/null 2>&1 &
ppid_srv=$!
trap 'rc=$?; kill $ppid_srv 2>/dev/null; t_cleanup $rc' EXIT
busywait 10000 t_listening h1 $PP || t_fail "the plain server did not listen"

if [ "$USMC_SHM" = 1 ]; then
	EST_MORE='\(SMC-Dv2, lgr [0-9]+ peer gid 0x[0-9a-f]{16}\)'
else
	EST_MORE='\(SMC-Rv2, lgr [0-9]+ link [0-9]+\)'
fi
ST1="smcr=1 fallback=0 failed=0"

# 1. the default level: nothing on stderr
server quiet 1
client quiet -- || bad "quiet: client failed: $(cat "$t_work/quiet.c.err")"
wait $spid || bad "quiet: server failed: $(cat "$t_work/quiet.s.err")"
t_stats "$t_work/quiet.c.stats" "$ST1" && t_stats "$t_work/quiet.s.stats" "$ST1" || fails=$((fails + 1))
empty "$t_work/quiet.c.err" "quiet: the client's stderr" &&
	empty "$t_work/quiet.s.err" "quiet: the server's stderr" &&
	t_log "ok default level: an SMC connection, nothing on stderr"

# 2. files: the server's at debug, the client's per process at info
t0=$(date +%s.%N)
server files 2 USMC_LOG_LEVEL=debug USMC_LOG_FILE="$t_work/server.log"
client files USMC_LOG_LEVEL=info USMC_LOG_FILE="$t_work/c-%p.log" -- plain fork ||
	bad "files: client failed: $(cat "$t_work/files.c.err")"
wait $spid || bad "files: server failed: $(cat "$t_work/files.s.err")"
t1=$(date +%s.%N)
empty "$t_work/files.c.err" "files: the client's stderr"
empty "$t_work/files.s.err" "files: the server's stderr"
cpid=$(sed -n 's/^pid //p' "$t_work/files.c.out")
kpid=$(sed -n 's/^child //p' "$t_work/files.c.out")
if [ -z "$cpid" ] || [ -z "$kpid" ] || [ "$cpid" = "$kpid" ]; then
	bad "files: client pids '$cpid', child '$kpid': $(cat "$t_work/files.c.out")"
fi
spid_log=$(sed -n 's/.* usmc\[\([0-9]*\)\] debug: usmc .*/\1/p' "$t_work/server.log" | head -1)
ver=$("$T_RUN" --version | awk '{print $3}')
has "$t_work/server.log" " usmc\[$spid_log\] debug: usmc $ver .*: pid $spid_log \(python3\), transport softroce \(shm (on|off), synopt (auto|off)\), rules USMC_SMC_PORTS=$SP( \+ [^,]+)?, log level debug to $t_work/server.log$" \
	"the server's banner"
n=$(grep -cE " info: fd [0-9]+: $T_SMC_NAME established $T_H1:$SP <- $T_H2:[0-9]+ $EST_MORE$" "$t_work/server.log")
[ "$n" = 2 ] && t_log "ok the server's two established lines: $(grep -m1 ' established ' "$t_work/server.log")" ||
	bad "files: $n established lines in the server's log, want 2: $(grep -E 'established|fallback' "$t_work/server.log")"
for f in server.log "c-$cpid.log" "c-$kpid.log"; do
	r=$(stamps "$t_work/$f" "$t0" "$t1") && t_log "ok $f: $r, each with a UTC time stamp within the run" ||
		bad "files: $f: $r"
done
has "$t_work/c-$cpid.log" "Z usmc\[$cpid\] info: fd [0-9]+: $T_SMC_NAME established $T_H2:[0-9]+ -> $T_H1:$SP $EST_MORE$" \
	"the client's established line"
has "$t_work/c-$cpid.log" "Z usmc\[$cpid\] info: fd [0-9]+: TCP fallback $T_H2:[0-9]+ -> $T_H1:$PP: [A-Z_]+ 0x[0-9a-f]{8} .+" \
	"the client's fallback line (a plain server)"
has "$t_work/c-$kpid.log" "Z usmc\[$kpid\] info: fd [0-9]+: $T_SMC_NAME established $T_H2:[0-9]+ -> $T_H1:$SP $EST_MORE$" \
	"the forked child's own file and PID"
if grep -q "usmc\[$kpid\]" "$t_work/c-$cpid.log" || grep -qv "usmc\[$kpid\]" "$t_work/c-$kpid.log"; then
	bad "files: a line of one process in the other's file: $(cat "$t_work"/c-*.log)"
fi
grep -q ' debug: ' "$t_work/c-$cpid.log" && bad "files: debug lines at level info: $(grep -m3 ' debug: ' "$t_work/c-$cpid.log")"

# 3. one file for parent and child
server shared 2
client shared USMC_LOG_LEVEL=debug USMC_LOG_FILE="$t_work/shared.log" -- fork ||
	bad "shared: client failed: $(cat "$t_work/shared.c.err")"
wait $spid || bad "shared: server failed"
cpid=$(sed -n 's/^pid //p' "$t_work/shared.c.out")
kpid=$(sed -n 's/^child //p' "$t_work/shared.c.out")
r=$(stamps "$t_work/shared.log" 0 9999999999) || bad "shared: $r"
has "$t_work/shared.log" "usmc\[$cpid\] info: fd [0-9]+: $T_SMC_NAME established $T_H2:[0-9]+ -> $T_H1:$SP " "shared: the parent's line"
has "$t_work/shared.log" "usmc\[$kpid\] info: fd [0-9]+: $T_SMC_NAME established $T_H2:[0-9]+ -> $T_H1:$SP " "shared: the child's line"
has "$t_work/shared.log" "usmc\[$cpid\] debug: usmc $ver .*: pid $cpid \(python3\), transport " "shared: the parent's banner"
has "$t_work/shared.log" "usmc\[$kpid\] debug: usmc $ver .*: pid $kpid \(python3\), transport " "shared: the child's own banner"

# 4. the program takes usmc's log fd number for a file of its own
server steal 2
client steal USMC_LOG_LEVEL=info USMC_LOG_FILE="$t_work/steal.log" -- steal "$t_work/steal.log" "$t_work/mine" ||
	bad "steal: client failed: $(cat "$t_work/steal.c.out" "$t_work/steal.c.err")"
wait $spid || bad "steal: server failed"
if [ "$(cat "$t_work/mine" 2>/dev/null)" = "the program's own
still its own" ]; then
	t_log "ok steal: $(grep stole "$t_work/steal.c.out"); the program's file holds its own bytes only"
else
	bad "steal: the program's file holds: $(cat "$t_work/mine")"
fi
n=$(grep -c " established " "$t_work/steal.log")
[ "$n" = 2 ] && t_log "ok steal: both established lines in the log" || bad "steal: $n established lines in the log, want 2"

# 5. a log file that cannot be opened
server nofile 1
client nofile USMC_LOG_FILE="$t_work/no/such/dir/x.log" -- ||
	bad "nofile: client failed: $(cat "$t_work/nofile.c.err")"
wait $spid || bad "nofile: server failed"
t_stats "$t_work/nofile.c.stats" "$ST1" || fails=$((fails + 1))
if [ "$(wc -l <"$t_work/nofile.c.err")" = 1 ] &&
	grep -qE "^usmc\[[0-9]+\]: cannot open log file $t_work/no/such/dir/x.log: No such file or directory; logging to stderr$" "$t_work/nofile.c.err" &&
	grep -qx ok "$t_work/nofile.c.out"; then
	t_log "ok nofile: the program works, one line: $(cat "$t_work/nofile.c.err")"
else
	bad "nofile: stderr '$(cat "$t_work/nofile.c.err")', stdout '$(cat "$t_work/nofile.c.out")'"
fi

# 6. a socket of the program's on fd 2 before the runtime starts
server fd2 1
client fd2 USMC_LOG_LEVEL=info -- plain fd2sock ||
	bad "fd2: client failed: $(cat "$t_work/fd2.c.err")"
wait $spid || bad "fd2: server failed"
if grep -qx "fd2 got 0 bytes b''" "$t_work/fd2.c.out" && grep -qx ok "$t_work/fd2.c.out"; then
	t_log "ok fd2: no log line in the program's socket on fd 2"
else
	bad "fd2: $(cat "$t_work/fd2.c.out")"
fi

[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
