#!/usr/bin/env bash
# valgrind memcheck on both ends of a verified 4 MiB SMC-R stream between
# two namespaces: any invalid access, use of uninitialised memory or
# definite/indirect leak fails the test (valgrind exits 99).
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss valgrind
t_need_perf
# ci/test.sh also runs the netns label on the ASan+UBSan build; valgrind
# cannot run sanitizer-instrumented binaries, and that build's sanitizers
# already check these runs. The normal build runs this test.
if grep -q '^USMC_SANITIZE:BOOL=ON' "$USMC_BUILD/CMakeCache.txt" 2>/dev/null; then
	t_skip "this build is sanitizer-instrumented (USMC_SANITIZE=ON); valgrind runs on the normal build"
fi
t_lab_up
# The suppressions are valgrind's false positives on libbpf's bpf(2)
# attributes (softroce's port sharing makes its maps with libbpf).
VG=(valgrind --error-exitcode=99 --suppressions="$USMC_SRC/runtime/bpf/usmc_synopt.supp"
	--leak-check=full --errors-for-leak-kinds=definite,indirect --track-fds=no -q)
T_TIMEOUT=400 T_LISTEN_MS=60000
t_server "$t_work/vg.server" 7070 "${VG[@]}" "$T_PERF" -s -1 -p 7070 --verify --json
crc=0 src=0
t_exec h2 timeout 400 "${VG[@]}" "$T_PERF" -c "$T_H1" -p 7070 -n 4M --verify --json --timeout 300 \
	>"$t_work/vg.client" 2>"$t_work/vg.client.err" || crc=$?
t_wait_server "$t_work/vg.server" || src=$?
[ $crc != 99 ] || t_fail "valgrind found errors in the client: $(cat "$t_work/vg.client.err")"
[ $src != 99 ] || t_fail "valgrind found errors in the server: $(cat "$t_work/vg.server.err")"
[ $crc = 0 ] && [ $src = 0 ] || t_fail "client exit $crc, server exit $src: $(tail -5 "$t_work/vg.client.err" "$t_work/vg.server.err")"
t_check_smcr vg 4194304 || t_fail "the transfer under valgrind was not SMC-R, verified, 4 MiB"
t_log "PASS: no memcheck errors or leaks on either side"
