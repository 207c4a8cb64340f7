#!/usr/bin/env bash
# The preload library needs nothing but the C library and the dynamic
# loader (libpthread and libdl, where they are separate): libbpf, libelf,
# libz and ISA-L are dlopen'ed when needed (RTLD_LOCAL), so none can clash
# with a host program's own copy (docs/preload.md, "Libraries"). The
# sanitizer build adds its runtimes.
set -u
lib=${USMC_BUILD:?}/preload/libusmc-preload.so
command -v readelf >/dev/null || { echo "SKIP: no readelf"; exit 77; }
[ -f "$lib" ] || { echo "FAIL: $lib not built"; exit 1; }
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "FAIL: no NEEDED entry read from $lib"; exit 1; }
allow='^(libc\.so\.[0-9]+|libpthread\.so\.[0-9]+|libdl\.so\.[0-9]+|ld-linux[-a-z0-9_.]*\.so\.[0-9]+)$'
[ "${USMC_SANITIZE:-OFF}" = ON ] &&
	allow='^(libc\.so\.[0-9]+|libpthread\.so\.[0-9]+|libdl\.so\.[0-9]+|ld-linux[-a-z0-9_.]*\.so\.[0-9]+|libasan\.so\.[0-9]+|libubsan\.so\.[0-9]+)$'
bad=0
for n in $needed; do
	if [[ $n =~ $allow ]]; then
		echo "ok: NEEDED $n"
	else
		echo "FAIL: NEEDED $n"
		bad=1
	fi
done
exit $bad
