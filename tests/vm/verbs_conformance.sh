#!/usr/bin/env bash
# the transport conformance suite over the verbs backend on the kernel's rxe
#
# VM cell 4a (docs/vm.md, transport/verbs/README.md): in VM 1, rxe0 on eth0
# with MTU 9000 (so the 4096-MTU case runs) and two addresses, SUBNET.1 and
# SUBNET.11, each with its RoCEv2 GID; test_tp_conformance runs its verbs
# row between them. The suite's own verdict decides: exit 0, and its
# CUnit summary with no failed test or assert. VM 2 only idles.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
bin=$USMC_BUILD/tests/transport/test_tp_conformance

case $1 in
srv)
	[ -x "$bin" ] || vm_fail "$bin is not built"
	ip link set eth0 mtu 9000 || vm_fail "cannot set eth0's MTU to 9000"
	ip addr add "$VM_SUBNET.11/24" dev eth0
	vm_kernel_smc
	# the kernel adds the second address's GID shortly after rxe0 exists
	hex=$(
		a=$VM_SUBNET.11 IFS=.
		# shellcheck disable=SC2086 # split the address into its bytes
		set -- $a
		printf '%02x%02x:%02x%02x' "$1" "$2" "$3" "$4"
	)
	for _ in $(seq 1 50); do
		grep -qs ":ffff:$hex\$" /sys/class/infiniband/rxe0/ports/1/gids/* && break
		sleep 0.1
	done
	cat /sys/class/infiniband/rxe0/ports/1/gids/[0-9] 2>/dev/null | grep -v '^0000:0000:0000:0000:0000:0000' | sed 's/^/  GID /'
	rc=0
	USMC_TEST_VERBS_ADDR0=$VM_SRV_ADDR USMC_TEST_VERBS_ADDR1=$VM_SUBNET.11 \
		timeout 400 "$bin" verbs >"$VM_OUT/conformance.txt" 2>&1 || rc=$?
	echo $rc >"$VM_OUT/conformance.exit"
	vm_log "test_tp_conformance verbs -> exit $rc"
	;;
host)
	[ -s "$VM_OUT/conformance.txt" ] || vm_fail "no output from the suite"
	grep -E 'Run Summary|suites|tests|asserts|SKIP|FAIL' "$VM_OUT/conformance.txt" | head -40
	rc=$(cat "$VM_OUT/conformance.exit")
	[ "$rc" = 77 ] && vm_fail "the suite skipped (exit 77) though rxe is there: $(tail -3 "$VM_OUT/conformance.txt" | tr '\n' ' ')"
	[ "$rc" = 0 ] || vm_fail "test_tp_conformance verbs exited $rc"
	awk '$1 == "tests" || $1 == "asserts" { if ($5 != "0") bad = 1 } END { exit bad }' "$VM_OUT/conformance.txt" ||
		vm_fail "the CUnit summary counts failures"
	grep -qE '^ +tests +[0-9]+ +[1-9]' "$VM_OUT/conformance.txt" || vm_fail "the suite ran no test"
	;;
esac
exit 0
