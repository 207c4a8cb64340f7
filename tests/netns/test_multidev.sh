#!/usr/bin/env bash
# Many devices per process (docs/runtime.md, "Devices"): each lab host gets
# a second address on its veth (h1 .1 and .11, h2 .2 and .12). One
# usmc-perf client process in h2 makes two connections at once, one from
# .2 to .1 and one from .12 to .11, to one usmc-perf server in h1
# listening on the wildcard address. Both must be SMC-R and byte-exact,
# and usmc-stat must show each side's two connections on two devices with
# two local GIDs. With one device per process the second connection fell
# back with NOSMCRDEV.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
T_STAT=$USMC_BUILD/tools/usmc-stat
[ -x "$T_STAT" ] || t_fail "usmc-stat is not built ($T_STAT missing)"
t_lab_up

net=${T_H1%.*}
A1=$T_H1 A2=$T_H2 A11=$net.11 A12=$net.12
t_exec h1 ip addr add "$A11/24" dev "$USMC_LAB_IFNAME" || t_fail "cannot add $A11 to h1"
t_exec h2 ip addr add "$A12/24" dev "$USMC_LAB_IFNAME" || t_fail "cannot add $A12 to h2"
t_log "h1 has $A1 and $A11, h2 has $A2 and $A12"

PORT=7090
N=$((32 * 1024 * 1024))
t_server "$t_work/md.server" $PORT "$T_PERF" -s -1 -p $PORT --verify --json
# --idle keeps both connections open, idle, while usmc-stat looks
t_exec h2 timeout 120 "$T_PERF" -c "$A1,$A11" -B "$A2,$A12" -P 2 -p $PORT \
	-n $N --idle 4000 --verify --json \
	>"$t_work/md.client" 2>"$t_work/md.client.err" &
cpid=$!

# stat_check HOST ROLE ADDR ADDR: usmc-stat in HOST lists two SMCR
# connections of ROLE, one from each local address, each on its own device
# whose GID is its address.
stat_check() {
	t_exec "$1" "$T_STAT" --json >"$t_work/stat.$1" 2>&1 || return 1
	python3 - "$t_work/stat.$1" "$2" "$3" "$4" <<'EOF'
import json, sys
path, role, a, b = sys.argv[1:5]
try:
    rows = json.load(open(path))
except ValueError:
    sys.exit(1)
rows = [r for r in rows if r["comm"] == "usmc-perf" and r["role"] == role]
smcr = [r for r in rows if r["mode"] == "SMCR"]
if len(smcr) != 2:
    sys.exit(1)
addrs = sorted(r["local"].rsplit(":", 1)[0] for r in smcr)
if addrs != sorted([a, b]):
    sys.exit(1)
for r in smcr:
    ip = r["local"].rsplit(":", 1)[0]
    if r["local_gid"] != "::ffff:" + ip or not r["device"].endswith("@" + ip):
        sys.exit(1)
if smcr[0]["device"] == smcr[1]["device"] or smcr[0]["lgr_id"] == smcr[1]["lgr_id"]:
    sys.exit(1)
for r in smcr:
    print("%s %s: %s on device %s, GID %s, link group %s" % (
        role, r["local"], r["mode"], r["device"], r["local_gid"], r["lgr_id"]))
EOF
}

bad=0
for side in "h2 client $A2 $A12" "h1 server $A1 $A11"; do
	# shellcheck disable=SC2086
	if busywait 3500 stat_check $side >"$t_work/stat.ok" 2>&1; then
		sed "s/^/$T_NAME: /" "$t_work/stat.ok"
	else
		host=${side%% *}
		t_log "usmc-stat in $host does not show two SMC-R connections on two devices:"
		t_exec "$host" "$T_STAT" -d | sed 's/^/  /'
		bad=1
	fi
done

rc=0
wait $cpid || rc=$?
[ $rc = 0 ] || kill "$t_spid" 2>/dev/null
t_wait_server "$t_work/md.server" || rc=1
path=$(t_json "$t_work/md.client" path)
verify=$(t_json "$t_work/md.client" verify)
bytes=$(t_json "$t_work/md.client" bytes)
conns=$(t_json "$t_work/md.client" connections)
t_log "client: path $path, verify $verify, bytes $bytes over $conns connections"
if [ $rc != 0 ] || [ "$path" != smcr ] || [ "$verify" != ok ] ||
	[ "$bytes" != $((2 * N)) ] || [ "$conns" != 2 ]; then
	sed 's/^/  client: /' "$t_work/md.client" "$t_work/md.client.err" | tail -10
	bad=1
fi
nok=$(t_json_all "$t_work/md.server" verify | grep -c '^ok$')
nsmc=$(t_json_all "$t_work/md.server" path | grep -c '^smcr$')
t_log "server: $nok connections verified, $nsmc over smcr"
if [ "$nok" != 2 ] || [ "$nsmc" != 2 ]; then
	sed 's/^/  server: /' "$t_work/md.server" "$t_work/md.server.err" | tail -10
	bad=1
fi
[ $bad = 0 ] || t_fail "connections from two local addresses: not both SMC-R on two devices"
t_log "ok one process, two local addresses: both SMC-R, two devices each side, byte-exact"
t_log PASS
