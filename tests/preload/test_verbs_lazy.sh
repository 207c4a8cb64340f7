#!/usr/bin/env bash
# libibverbs (and the libnl it pulls in) enters a program under the preload
# only when it opens a verbs device (transport/verbs/README.md, "Loading"):
# neither the preload library nor a program linked with the runtime needs
# it (readelf NEEDED), a program under usmc-run with the verbs transport
# has neither libibverbs nor libusmc-verbs.so mapped until a connection
# asks for a device, and then has both (the control that shows the maps
# check can see them). No RDMA device is needed: the open then fails and
# the connection falls back.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd readelf python3
fails=0
t_work_up verbs-lazy
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then t_log "ok $what"; else
		t_log "FAILED: $what"
		fails=$((fails + 1))
	fi
}
BAD='libibverbs|libnl-|librdmacm|libmlx|librxe'
needed() { readelf -d "$1" | awk '/\(NEEDED\)/ {print $NF}' | tr -d '[]'; }
no_rdma_needed() { # FILE
	local n
	n=$(needed "$1") || return 1
	[ -n "$n" ] || return 1 # readelf read nothing: not a check
	if grep -Eq "$BAD" <<<"$n"; then
		t_log "$1 needs: $(tr '\n' ' ' <<<"$n")"
		return 1
	fi
}
check "libusmc-preload.so needs no libibverbs/libnl" no_rdma_needed "$T_LIB"
for p in tools/usmc-perf tests/transport/test_runtime_devices; do
	check "$p (the runtime linked in) needs no libibverbs/libnl" no_rdma_needed "$USMC_BUILD/$p"
done
MOD=$(dirname "$T_LIB")/libusmc-verbs.so
if [ ! -f "$MOD" ]; then
	[ $fails = 0 ] || t_fail "$fails check(s) failed"
	t_skip "built without verbs (no $MOD): the NEEDED checks passed, the loading ones cannot run"
fi
check "libusmc-verbs.so, next to the preload, needs libibverbs.so.1" \
	grep -qx 'libibverbs.so.1' <(needed "$MOD")

# A kernel listener that takes one connection and holds it until the
# client's end closes.
python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.settimeout(60)
c, _ = s.accept()
while c.recv(4096):
    pass
' "$t_work/port" &
lpid=$!
busywait 10000 test -s "$t_work/port" || t_fail "the listener did not start"
port=$(cat "$t_work/port")

maps_has() { grep -q "$2" "$1"; }
maps_lacks() { ! grep -q "$2" "$1"; }
# verbs asked for, no connection yet: nothing loaded
t_usmc - "$t_work/stats0" "$port" -t verbs cat /proc/self/maps >"$t_work/maps0" 2>"$t_work/err0"
check "under usmc-run: the preload is mapped" maps_has "$t_work/maps0" libusmc-preload.so
check "-t verbs, no connection: no libibverbs" maps_lacks "$t_work/maps0" libibverbs
check "-t verbs, no connection: no libusmc-verbs.so" maps_lacks "$t_work/maps0" libusmc-verbs
check "-t verbs, no connection: no libnl" maps_lacks "$t_work/maps0" libnl-
# a connection to an SMC port (explicit mode: the listener sends no SMC
# option) opens the device: the module and libibverbs come in. The write
# waits for the connection's outcome; bash must not exec cat (the maps
# read are bash's, and bash writes the stats line at exit).
USMC_SYNOPT=off t_usmc - "$t_work/stats1" "$port" -t verbs \
	bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' && echo x >&3 && cat /proc/$$/maps; exit 0' \
	>"$t_work/maps1" 2>"$t_work/err1"
check "-t verbs, a connection: libusmc-verbs.so loaded" maps_has "$t_work/maps1" libusmc-verbs.so
check "-t verbs, a connection: libibverbs loaded with it" maps_has "$t_work/maps1" libibverbs
check "the connection fell back (no RDMA device here)" t_stats "$t_work/stats1" "fallback=1"
wait "$lpid" 2>/dev/null
[ $fails = 0 ] || {
	cat "$t_work"/err* >&2
	t_fail "$fails check(s) failed"
}
t_log PASS
