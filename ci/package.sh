#!/usr/bin/env bash
# Builds the Debian packages (usmc-tools, libusmc0, libusmc-dev) with
# dpkg-buildpackage from a copy of the committed tree, then checks what
# each holds: the tools and the preload in usmc-tools, the shared library
# alone in libusmc0, the header, .so link, usmc.pc and CMake package in
# libusmc-dev; and that dpkg-shlibdeps found the library's dependencies.
# Usage: ci/package.sh [OUTDIR] (default: a temporary directory, removed).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/usmc-package.XXXXXX)
keep=${1:-}
trap '[ -z "$keep" ] && rm -rf "$work"' EXIT
fail() {
	echo "package: FAIL: $*" >&2
	exit 1
}
# the tree as committed (plus uncommitted changes to tracked files)
(cd "$src" && git ls-files -z | tar --null -T - -cf -) | (mkdir "$work/usmc" && tar -C "$work/usmc" -xf -)
echo "package: dpkg-buildpackage in $work/usmc"
start=$(date +%s)
(cd "$work/usmc" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$work/build.log" 2>&1 ||
	{ tail -40 "$work/build.log"; fail "dpkg-buildpackage"; }
echo "package: built in $(($(date +%s) - start)) s"
ver=$(cd "$work/usmc" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for p in usmc-tools libusmc0 libusmc-dev; do
	deb=$work/${p}_${ver}_${arch}.deb
	[ -f "$deb" ] || fail "no $deb"
	dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/$p.list"
done
has() { # PACKAGE PATH...
	local p=$1
	shift
	for f in "$@"; do grep -qx -- "$f" "$work/$p.list" || fail "$p lacks $f"; done
}
has usmc-tools /usr/bin/usmc-run /usr/bin/usmc-stat /usr/bin/usmc-check /usr/bin/usmc-perf /usr/bin/usmc-rules \
	/usr/bin/usmc-netns /usr/bin/usmc-decode /usr/bin/usmc-smcctl \
	"/usr/lib/$ma/usmc/libusmc-preload.so" /usr/share/man/man1/usmc-run.1.gz \
	/usr/share/bash-completion/completions/usmc-run
has libusmc0 "/usr/lib/$ma/libusmc.so.0"
has libusmc-dev /usr/include/usmc.h "/usr/lib/$ma/libusmc.so" "/usr/lib/$ma/pkgconfig/usmc.pc" \
	"/usr/lib/$ma/cmake/usmc/usmcConfig.cmake"
grep -q "include/usmc.h" "$work/libusmc0.list" && fail "libusmc0 holds the header"
dep=$(dpkg-deb -f "$work/libusmc0_${ver}_${arch}.deb" Depends)
grep -q "libc6" <<<"$dep" || fail "libusmc0 Depends has no libc6 (shlibs): $dep"
echo "package: usmc-tools $(wc -l <"$work/usmc-tools.list") paths, libusmc0 (Depends: $dep), libusmc-dev: as expected"
if [ -n "$keep" ]; then
	mkdir -p "$keep"
	cp "$work"/*.deb "$keep"/
	echo "package: the .debs are in $keep"
fi
