#!/usr/bin/env bash
# ctest vm_timeout (docs/vm.md): a hung VM is killed by usmc-lab's timeout,
# the run fails (exit 1), says which VM hung, and keeps its console log
# where it says. The scenario tests/vm/hang.sh stops VM 1's guest script.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/usmc-vm-timeout.XXXXXX) || exit 1
trap 'rm -rf "$out"' EXIT
rc=0
timeout 300 bash "$src/netns/usmc-lab" --test --timeout 45 --keep "$out/run" "$@" vm run hang \
	>"$out/log" 2>&1 || rc=$?
cat "$out/log"
[ $rc = 77 ] && exit 77
fail() {
	echo "FAIL: $*"
	exit 1
}
[ $rc = 1 ] || fail "usmc-lab exited $rc, expected 1"
line=$(grep -m1 'VM srv hung and was killed after 45 s; console log kept: ' "$out/log") ||
	fail "no 'VM srv hung ... console log kept' line"
log=${line##*console log kept: }
[ -s "$log" ] || fail "the console log $log is missing or empty"
grep -q 'usmc-vm: .* up, role srv' "$log" || fail "$log is not VM 1's console"
grep -q 'VM cli hung' "$out/log" && fail "VM 2 powered off on its own, yet is reported hung"
echo "PASS: VM 1 killed after 45 s, console log kept ($(wc -l <"$log") lines)"
