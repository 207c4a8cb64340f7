#!/usr/bin/env bash
# The fault matrix (docs/fault.md, "The fault matrix"): fault_matrix.py runs
# each case, a checksummed usmc-perf --bidi stream each way with one fault
# injected mid-stream, in a lab of two links when the lab has them, and
# prints the table. MATRIX_SEED, MATRIX_CASES and MATRIX_BYTES are passed
# on (see fault_matrix.py); MATRIX_KEEP=DIR keeps the cases' outputs.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
links=1
# two links need usmc-lab --links (the lab's usmc_lab_link_fault)
declare -F usmc_lab_link_fault >/dev/null && links=2
t_lab_up $links
export MATRIX_LAB=$t_lab MATRIX_LINKS=$links MATRIX_WORK=$t_work MATRIX_H1=$T_H1 MATRIX_H2=$T_H2
export MATRIX_PNET=${T_PNET:-} USMC_BUILD
MATRIX_NS1=$(usmc_lab_ns "$t_lab" h1) MATRIX_NS2=$(usmc_lab_ns "$t_lab" h2)
export MATRIX_NS1 MATRIX_NS2
rc=0
timeout 590 python3 "$USMC_SRC/tests/netns/fault_matrix.py" || rc=$?
# MATRIX_KEEP=DIR: each case's outputs and logs kept there
[ -z "${MATRIX_KEEP:-}" ] || cp -r "$t_work" "$MATRIX_KEEP"
[ $rc = 124 ] && t_fail "the matrix ran out of its 590 s"
[ $rc = 2 ] && t_fail "MATRIX_CASES names a case the matrix does not have"
[ $rc = 0 ] || t_fail "a case's observed outcome is not the expected one (the table above)"
t_log PASS
