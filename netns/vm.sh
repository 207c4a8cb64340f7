# shellcheck shell=bash
# usmc VM tier library (docs/vm.md): Debian's own 6.12 kernel, fetched with
# apt, booted twice under qemu TCG, the two VMs joined by a socket netdev.
# The kernel brings what this machine's kernel lacks: rdma_rxe and AF_SMC,
# the peers usmc must be wire-compatible with. Sourced by netns/usmc-lab
# after netns/lib.sh (busywait, usmc_lab_log).
#
# Cache: $USMC_VM_CACHE/KVER/ (default /var/cache/usmc-lab/vm): vmlinuz,
# mods/*.ko (decompressed), modules.txt, package, ok; initrd.gz is rebuilt
# from them when netns/vm-init.sh changes. A run that finds "ok" fetches
# nothing.

USMC_VM_CACHE=${USMC_VM_CACHE:-/var/cache/usmc-lab/vm}

# Base modules /init loads, in dependency order: virtio-net and 9p.
USMC_VM_BASE_MODS="failover net_failover virtio_net netfs 9pnet 9pnet_virtio 9p"
# The kernel SMC-R peer, loaded by a scenario (tests/vm/lib_vm.sh). rxe
# needs the "crc32" shash (rxe_icrc_init), which is crc32_generic here.
USMC_VM_SMC_MODS="crc32_generic udp_tunnel ip6_udp_tunnel ib_core ib_uverbs rdma_rxe smc smc_diag"

# Why this machine cannot run the VM tier, or nothing when it can.
usmc_vm_capability() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: the kernel is fetched with apt-get into $USMC_VM_CACHE"
		return
	fi
	local c
	for c in qemu-system-x86_64 apt-get dpkg-deb xz gzip flock; do
		command -v $c >/dev/null || {
			echo "$c is missing (ci/setup.sh installs qemu-system-x86 and busybox-static)"
			return
		}
	done
	if ! /bin/busybox --list 2>/dev/null | grep -qx insmod; then
		echo "/bin/busybox is missing (apt-get install busybox-static)"
		return
	fi
	# the initramfs has no libc: only busybox-static's busybox runs there
	if ldd /bin/busybox >/dev/null 2>&1; then
		echo "/bin/busybox is dynamically linked (install busybox-static)"
		return
	fi
}

# The kernel ABI name to use: $USMC_VM_KERNEL, else the one Debian's
# linux-image-6.12-amd64 metapackage depends on (the newest 6.12 of
# bookworm and its security updates), else the newest in the cache.
usmc_vm_kernel() {
	local k
	if [ -n "${USMC_VM_KERNEL:-}" ]; then
		echo "$USMC_VM_KERNEL"
		return 0
	fi
	k=$(usmc_vm_kernel_from_apt)
	if [ -z "$k" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null 2>&1
		k=$(usmc_vm_kernel_from_apt)
	fi
	if [ -z "$k" ]; then
		k=$(find "$USMC_VM_CACHE" -mindepth 2 -maxdepth 2 -name ok 2>/dev/null |
			sed 's|/ok$||; s|.*/||' | sort -V | tail -1)
	fi
	[ -n "$k" ] && echo "$k"
}

usmc_vm_kernel_from_apt() {
	apt-cache depends linux-image-6.12-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\(6\.12\.[0-9]*+deb12-amd64\)\(-unsigned\)\{0,1\}$/\1/p' |
		sort -V | tail -1
}

# usmc_vm_prepare KVER: fetch the kernel and build the initramfs into the
# cache unless done. Prints the cache dir. Returns 77 when apt cannot
# fetch the kernel (no such package, no network), 1 on other failures.
usmc_vm_prepare() {
	local kver=$1 dir=$USMC_VM_CACHE/$1
	[ -f "$dir/ok" ] && {
		echo "$dir"
		return 0
	}
	mkdir -p "$USMC_VM_CACHE" || return 1
	# one preparer at a time; a second waits, then finds "ok"
	exec {lockfd}>"$USMC_VM_CACHE/.lock"
	flock -w 600 "$lockfd" || {
		usmc_lab_log "vm: $USMC_VM_CACHE/.lock held for 10 minutes"
		return 1
	}
	if [ -f "$dir/ok" ]; then
		exec {lockfd}>&-
		echo "$dir"
		return 0
	fi
	local rc=0
	_usmc_vm_build "$kver" "$dir" || rc=$?
	exec {lockfd}>&-
	[ $rc = 0 ] && echo "$dir"
	return $rc
}

_usmc_vm_build() {
	local kver=$1 dir=$2 tmp pkg deb m f
	tmp=$(mktemp -d "$USMC_VM_CACHE/.build.XXXXXX") || return 1
	# shellcheck disable=SC2064 # expand now: the trap outlives the locals
	trap "rm -rf '$tmp'" RETURN
	# signed and unsigned images hold the same vmlinuz and modules
	for pkg in "linux-image-$kver" "linux-image-$kver-unsigned"; do
		(cd "$tmp" && apt-get download "$pkg" >"$tmp/apt.log" 2>&1) && break
	done
	deb=$(find "$tmp" -maxdepth 1 -name 'linux-image-*.deb' | head -1)
	if [ -z "$deb" ]; then
		usmc_lab_log "vm: apt-get download linux-image-$kver failed: $(grep -m2 -E '^E:' "$tmp/apt.log" | tr '\n' ' ')"
		return 77
	fi
	usmc_lab_log "vm: fetched $(basename "$deb"); extracting"
	dpkg-deb -x "$deb" "$tmp/root" || return 1
	local kdir=$tmp/root/lib/modules/$kver
	if [ ! -r "$tmp/root/boot/vmlinuz-$kver" ] || [ ! -d "$kdir" ]; then
		usmc_lab_log "vm: $(basename "$deb") has no vmlinuz-$kver or modules"
		return 1
	fi
	mkdir -p "$tmp/mods" || return 1
	# busybox insmod cannot read .ko.xz: keep each module decompressed
	for m in $USMC_VM_BASE_MODS $USMC_VM_SMC_MODS; do
		f=$(find "$kdir/kernel" -name "$m.ko*" | head -1)
		if [ -z "$f" ]; then
			usmc_lab_log "vm: kernel $kver has no module $m"
			return 1
		fi
		case $f in
		*.xz) xz -dc "$f" >"$tmp/mods/$m.ko" ;;
		*.zst) zstd -qdc "$f" >"$tmp/mods/$m.ko" ;;
		*) cp "$f" "$tmp/mods/$m.ko" ;;
		esac || return 1
		echo "$m ${f#"$kdir"/}" >>"$tmp/modules.txt"
	done
	rm -rf "$dir" && mkdir -p "$dir" &&
		cp "$tmp/root/boot/vmlinuz-$kver" "$dir/vmlinuz" &&
		cp "$tmp/root/boot/config-$kver" "$dir/config" &&
		cp -r "$tmp/mods" "$tmp/modules.txt" "$dir/" &&
		basename "$deb" >"$dir/package" &&
		touch "$dir/ok" || return 1
	usmc_lab_log "vm: kernel $kver ready in $dir"
}

# usmc_vm_initrd DIR: DIR/initrd.gz, rebuilt when netns/vm-init.sh (its
# /init) or busybox changed: busybox, the cached modules, the load order.
usmc_vm_initrd() {
	local dir=$1 sum tmp
	sum=$(cat "$USMC_LAB_SRC/netns/vm-init.sh" /bin/busybox | sha256sum | cut -d' ' -f1)
	[ -f "$dir/initrd.gz" ] && [ "$(cat "$dir/initrd.sha256" 2>/dev/null)" = "$sum" ] && return 0
	tmp=$(mktemp -d "$USMC_VM_CACHE/.initrd.XXXXXX") || return 1
	mkdir -p "$tmp"/{bin,dev,proc,sys,newroot} &&
		cp /bin/busybox "$tmp/bin/busybox" &&
		cp -r "$dir/mods" "$tmp/mods" &&
		echo "$USMC_VM_BASE_MODS" >"$tmp/mods/base.order" &&
		echo "$USMC_VM_SMC_MODS" >"$tmp/mods/smc.order" &&
		install -m 755 "$USMC_LAB_SRC/netns/vm-init.sh" "$tmp/init" &&
		(cd "$tmp" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$dir/initrd.gz.new" &&
		mv "$dir/initrd.gz.new" "$dir/initrd.gz" &&
		echo "$sum" >"$dir/initrd.sha256"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

# A TCP port on 127.0.0.1 that nothing listens on, for the socket netdev.
usmc_vm_free_port() {
	local p _
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && {
			echo $p
			return 0
		}
	done
	return 1
}
