#!/usr/bin/env bash
# netns/usmc-lab itself: two labs side by side on the same subnet, traffic
# between h2 and h1, a capture that really holds that traffic, refusal of
# a duplicate name, teardown with processes still running, teardown of a
# half-built lab, idempotent down, and the skip code without root.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd socat tcpdump tshark timeout setpriv
why=$(usmc_lab_capability)
[ -z "$why" ] || t_skip "cannot run network namespaces: $why"
LAB=$USMC_SRC/netns/usmc-lab
a=lab-a-$$
b=lab-b-$$
c=lab-c-$$
work=$(mktemp -d /tmp/usmc-labtest.XXXXXX)
cleanup() {
	for n in "$a" "$b" "$c"; do "$LAB" --name "$n" down >/dev/null 2>&1; done
	rm -rf "$work"
}
trap cleanup EXIT

"$LAB" --name "$a" up >/dev/null || t_fail "up $a"
"$LAB" --name "$b" up >/dev/null || t_fail "up $b (same subnet, other name)"
if "$LAB" --name "$a" up >/dev/null 2>&1; then t_fail "a second 'up $a' succeeded"; fi
"$LAB" --name "$a" status | grep -q '10.77.0.2/24' || t_fail "status does not show h2's address"

# Echo across lab a, captured on h1.
"$LAB" --name "$a" capture start h1 "$work/a.pcap" >/dev/null || t_fail "capture start"
"$LAB" --name "$a" exec h1 timeout 20 socat TCP-LISTEN:7300,reuseaddr EXEC:cat &
srv=$!
busywait 5000 eval "[ -n \"\$(ip netns exec usmc-$a-h1 ss -Hltn 'sport = :7300')\" ]" ||
	t_fail "socat did not listen in h1"
reply=$(echo "hello from h2" | "$LAB" --name "$a" exec h2 timeout 10 socat -t2 - TCP:10.77.0.1:7300) ||
	t_fail "h2 could not reach h1"
[ "$reply" = "hello from h2" ] || t_fail "echo returned '$reply'"
wait "$srv"
"$LAB" --name "$a" capture stop h1 >"$work/stop.out" || t_fail "capture stop"
n=$(tshark -r "$work/a.pcap" -Y 'tcp.port == 7300 && tcp.len > 0' 2>/dev/null | grep -c .)
[ "$n" -ge 2 ] || t_fail "the capture holds $n data segments on port 7300, expected the request and the echo"
t_log "ok echo h2 -> h1 in lab a; capture holds $n data segments; $(tr '\n' ' ' <"$work/stop.out")"

# Lab b is separate: h1 of b does not have lab a's listener.
if "$LAB" --name "$b" exec h2 timeout 5 socat -u /dev/null TCP:10.77.0.1:7300 2>/dev/null; then
	t_fail "lab b reached a listener it should not have"
fi

# down with processes still running inside; then down again.
"$LAB" --name "$a" exec h1 sleep 1000 &
"$LAB" --name "$a" exec h2 sleep 1000 &
busywait 5000 eval "[ -n \"\$(ip netns pids usmc-$a-h2)\" ]" || t_fail "sleep did not start"
"$LAB" --name "$a" down || t_fail "down $a with processes inside"
{ wait; } 2>/dev/null
ip netns list | grep -q "usmc-$a-" && t_fail "namespaces of $a are still there"
"$LAB" --name "$a" down || t_fail "a second down of $a failed"
"$LAB" --name "$b" down || t_fail "down $b"
t_log "ok down kills what runs inside, removes the namespaces, and is idempotent"

# A half-built lab (one namespace, no state directory) is cleaned up too.
ip netns add "usmc-$c-h1" || t_fail "could not make a half-built lab"
"$LAB" --name "$c" down || t_fail "down of a half-built lab"
ip netns list | grep -q "usmc-$c-" && t_fail "half-built lab $c was left behind"
t_log "ok down removes a half-built lab"

# Without root: 77 with --test, 1 otherwise; never a crash. The user
# nobody may not be able to enter the checkout (a clone under a 0700
# directory: exit 126), so it runs a copy of the lab in a readable one.
t_work_up
chmod 755 "$t_work" && mkdir -p "$t_work/src/netns" &&
	cp "$USMC_SRC/netns/usmc-lab" "$USMC_SRC/netns/lib.sh" "$t_work/src/netns/" &&
	chmod -R a+rX "$t_work/src" || t_fail "cannot copy the lab for the user nobody"
NLAB=$t_work/src/netns/usmc-lab
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups "$NLAB" --test up >/dev/null 2>&1 || rc=$?
[ $rc = 77 ] || t_fail "without root, 'usmc-lab --test up' exited $rc, not 77"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups "$NLAB" up >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || t_fail "without root, 'usmc-lab up' exited $rc, not 1"
t_log "ok without root: exit 77 with --test, 1 without"
rc=0
"$LAB" frobnicate >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || t_fail "an unknown command exited $rc, not 2"
t_log PASS
