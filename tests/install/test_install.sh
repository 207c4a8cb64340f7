#!/usr/bin/env bash
# cmake --install into a DESTDIR, then the installed tools, from there:
# every file where GNUInstallDirs puts it; usmc-run finds its preload and
# runs a program with it; --explain finds usmc-rules; the example
# usmc.conf loads, with its examples uncommented too; the man pages
# render and say the tool's own NAME; bash completion offers a tool's
# options from its --help and completes usmc-run's program.
set -euo pipefail
build=${USMC_BUILD:?} src=${USMC_SRC:?}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
dest=$(mktemp -d /tmp/usmc-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
prefix=/usr
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$dest.log" 2>&1 ||
	{ cat "$dest.log"; fail "cmake --install"; }
rm -f "$dest.log"
root=$dest$prefix
bindir=$root/bin
# the same LIBDIR and MANDIR the build was configured with
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
mandir=$(sed -n 's/^CMAKE_INSTALL_MANDIR:PATH=//p' "$build/CMakeCache.txt")
datadir=$(sed -n 's/^CMAKE_INSTALL_DATADIR:PATH=//p' "$build/CMakeCache.txt")
docdir=$(sed -n 's/^CMAKE_INSTALL_DOCDIR:PATH=//p' "$build/CMakeCache.txt")
: "${libdir:=lib}" "${mandir:=share/man}" "${datadir:=share}" "${docdir:=share/doc/usmc}"

tools=(usmc-run usmc-netns usmc-perf usmc-rules usmc-stat usmc-check usmc-decode usmc-smcctl)
for t in "${tools[@]}"; do
	[ -x "$bindir/$t" ] || fail "$prefix/bin/$t not installed"
	comp=$root/$datadir/bash-completion/completions/$t
	[ -f "$comp" ] || fail "no bash completion for $t at $comp"
done
lib=$root/$libdir/usmc/libusmc-preload.so
[ -f "$lib" ] || fail "no preload at $lib"
conf=$root/$docdir/examples/usmc.conf.example
[ -f "$conf" ] || fail "no usmc.conf.example at $conf"
echo "installed: ${#tools[@]} tools, the preload, completions, the example"

# no installed program or library loads anything from the build tree
for f in "$bindir"/usmc-* "$lib"; do
	[ "$(head -c4 "$f" | tail -c3)" = ELF ] || continue
	dyn=$(readelf -d "$f")
	if grep -E "\(R(UN)?PATH\)" <<<"$dyn" | grep -q -- "$build"; then
		fail "$f has the build tree in its RPATH"
	fi
done

# usmc-run finds the installed preload (relative to itself) and runs a
# program with it: the program's own maps show it
got=$("$bindir/usmc-run" --print-lib)
[ "$(readlink -f "$got")" = "$(readlink -f "$lib")" ] ||
	fail "usmc-run --print-lib gave $got, not $lib"
# an ASan build's preload needs the ASan runtime first (as the preload
# label does); cat's own leaks are not usmc's
asan=()
deps=$(ldd "$lib" 2>/dev/null || true)
if grep -q libasan <<<"$deps"; then
	asan=(env "LD_PRELOAD=$(awk '/libasan/ {print $3; exit}' <<<"$deps")"
		"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi
maps=$(USMC_CONF= "${asan[@]}" "$bindir/usmc-run" cat /proc/self/maps 2>&1) ||
	fail "installed usmc-run cat: $maps"
grep -q -- "$(readlink -f "$lib")" <<<"$maps" ||
	fail "the program under the installed usmc-run has not mapped $lib"
echo "usmc-run: $got, and a program ran with it"

# --explain finds usmc-rules next to the installed usmc-run
out=$(USMC_CONF= "$bindir/usmc-run" --explain --connect 10.0.0.1:6379 redis-cli 2>&1) ||
	fail "installed usmc-run --explain: $out"
grep -q -i "smc\|tcp" <<<"$out" || fail "--explain said nothing useful: $out"
echo "usmc-run --explain: $(head -1 <<<"$out")"

# the example loads as shipped (everything commented), and with every
# example rule and setting uncommented
USMC_CONF=$conf "$bindir/usmc-rules" --list >/dev/null ||
	fail "the example usmc.conf is refused: $(USMC_CONF=$conf "$bindir/usmc-rules" --list 2>&1)"
sed 's/^#   //' "$conf" >"$dest/all.conf"
n=$(grep -c '^[st]' "$dest/all.conf")
[ "$n" -ge 5 ] || fail "the example has only $n example lines"
out=$(USMC_CONF=$dest/all.conf "$bindir/usmc-rules" --list 2>&1) ||
	fail "the example with its examples uncommented is refused: $out"
echo "usmc.conf.example: loads, and with its $n examples uncommented"

# man pages: one per tool, the tool's own NAME line, rendering cleanly
if [ "${USMC_MAN:-OFF}" = ON ]; then
	for t in "${tools[@]}"; do
		page=$(ls "$root/$mandir"/man[18]/"$t".[18] 2>/dev/null | head -1)
		[ -n "$page" ] || fail "no man page for $t"
		help=$("$bindir/$t" --help) || fail "$t --help failed"
		want=$(sed -n '/^NAME$/{n;s/^ *//;s/ - .*//;p;q}' <<<"$help")
		[ "$want" = "$t" ] || fail "$t --help has NAME '$want'"
		if command -v groff >/dev/null; then
			txt=$(groff -man -Tutf8 -ww -z "$page" 2>&1) ||
				fail "groff on $page: $txt"
			[ -z "$txt" ] || fail "groff warns on $page: $txt"
			txt=$(groff -man -Tascii "$page" 2>/dev/null | col -b)
			grep -Eq "^ *$t +- " <<<"$txt" || fail "$page: no '$t - ...' NAME line"
		else
			grep -q '^\.SH NAME' "$page" || fail "$page has no NAME section"
		fi
	done
	echo "man pages: ${#tools[@]}, each with its NAME, rendered without a warning"
else
	noman="man pages: not built: no txt2man when the build was configured (ci/setup.sh installs it)"
fi

# bash completion, from the installed file: options from --help, and the
# program after usmc-run's options
out=$(PATH=$bindir:$PATH bash -c '
	source "$1"
	COMP_WORDS=(usmc-stat --al); COMP_CWORD=1; _usmc
	echo "${COMPREPLY[*]}"
	COMP_WORDS=(usmc-netns x); COMP_CWORD=2; COMP_WORDS+=(st); _usmc
	echo "${COMPREPLY[*]}"
' _ "$root/$datadir/bash-completion/completions/usmc-stat")
grep -q -- "--all" <<<"$(sed -n 1p <<<"$out")" || fail "completion of usmc-stat --al gave: $out"
grep -qx "status" <<<"$(sed -n 2p <<<"$out")" || fail "completion of usmc-netns x st gave: $out"
echo "bash completion: usmc-stat --al -> $(sed -n 1p <<<"$out")"
# the library: SONAME, exactly usmc.h's calls exported, each USMC_0; the
# example builds against the DESTDIR install through pkg-config and
# through find_package(usmc), and runs over SMC-R on loopback
so=$root/$libdir/libusmc.so
[ -f "$root/include/usmc.h" ] || fail "usmc.h not installed"
dyn=$(readelf -d "$so")
grep -q "SONAME.*\[libusmc.so.0\]" <<<"$dyn" || fail "libusmc.so has no SONAME libusmc.so.0"
want=$(grep -o "usmc_[a-z_0-9]*(" "$root/include/usmc.h" | tr -d '(' | sort -u)
got=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sort -u)
names=$(sed 's/@@USMC_0$//' <<<"$got" | sort -u)
[ "$names" = "$want" ] ||
	fail "libusmc.so exports other than usmc.h's calls: $(diff <(echo "$want") <(echo "$names") | head)"
grep -v -q "@@USMC_0$" <<<"$got" && fail "a symbol of libusmc.so without the version USMC_0"
echo "libusmc.so: SONAME libusmc.so.0, $(wc -l <<<"$want") calls, each USMC_0"
ex=$root/$docdir/examples/usmc-echo.c
[ -f "$ex" ] || fail "no example at $ex"
flags=$(PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$root/$libdir/pkgconfig pkg-config --cflags --libs usmc) ||
	fail "pkg-config does not know usmc"
cc -Wall -Wextra -Werror "$ex" $flags -pthread -o "$dest/echo-pc" || fail "the example does not build with pkg-config: $flags"
mkdir "$dest/cm"
cat >"$dest/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(echo C)
find_package(usmc 0.1 REQUIRED)
find_package(Threads REQUIRED)
add_executable(echo-cm $ex)
target_link_libraries(echo-cm PRIVATE usmc::usmc Threads::Threads)
CM
cmake -S "$dest/cm" -B "$dest/cm/b" -DCMAKE_PREFIX_PATH="$root" >"$dest/cm.log" 2>&1 &&
	cmake --build "$dest/cm/b" >>"$dest/cm.log" 2>&1 || { cat "$dest/cm.log"; fail "the example does not build with find_package(usmc)"; }
# port 0: the example binds a free port itself (a fixed one could be
# another test's ephemeral port); the rule makes loopback SMC
for exe in "$dest/echo-pc" "$dest/cm/b/echo-cm"; do
	out=$(USMC_CONF= USMC_RULES="smc remote 127.0.0.1" LD_LIBRARY_PATH=$root/$libdir \
		timeout 30 "${asan[@]}" "$exe" 0 "hello over SMC-R" 2>&1) || fail "${exe##*/}: $out"
	grep -qx "client: SMC-R over softroce" <<<"$out" || fail "${exe##*/} did not run over SMC-R: $out"
	grep -qx "echoed: hello over SMC-R" <<<"$out" || fail "${exe##*/}: $out"
done
echo "the example: built by pkg-config and by find_package(usmc); ran over SMC-R and echoed"

if [ -n "${noman:-}" ]; then
	echo "SKIP: everything else passed; $noman"
	exit 77
fi
echo "PASS"
