#!/bin/busybox sh
# /init of the VM tier's initramfs (docs/vm.md; built by netns/vm.sh).
# Loads virtio-net and 9p, mounts the host's / read-only over 9p and the
# run's output directory writable at the same path, then runs the guest
# script of the source tree (tests/vm/guest.sh) with the host's bash,
# chrooted into the host's /. Ends the VM when it ends, whatever happened:
# the host's timeout is only for a hung kernel.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^usmc_$1=//p"; }

# Ends the VM at once: sysrq "b" resets it without the kernel's device
# shutdown, which can block for minutes when an SMC link group's peer is
# gone (removing rxe0 waits for the link group); -no-reboot makes the reset
# end qemu. Every output went through 9p, which writes through; sync anyway.
halt() {
	echo "usmc-vm: $*"
	sync
	echo b >/proc/sysrq-trigger
	poweroff -f
}

for m in $(cat /mods/base.order); do
	insmod "/mods/$m.ko" || echo "usmc-vm: insmod $m failed"
done

R=/newroot
O9="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$O9,ro" hostroot $R || halt "cannot mount the host's / (9p tag hostroot)"
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
# the guest gets its own /tmp and /run; the host's /tmp stays reachable
# for the trees below, which may live there (a CI clone, a --keep dir)
mkdir -p /hosttmp
mount --bind $R/tmp /hosttmp
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
for p in $(arg src) $(arg build); do
	case $p in
	/tmp/*)
		mkdir -p "$R$p"
		mount --bind "/hosttmp/${p#/tmp/}" "$R$p" || halt "cannot show the host's $p"
		;;
	esac
done
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
mount -t bpf bpf $R/sys/fs/bpf
# the SMC modules for a scenario to load, where the chroot can see them
mkdir -p $R/run/usmc-vm/mods
cp /mods/* $R/run/usmc-vm/mods/

out=$(arg out)
[ -n "$out" ] || halt "no usmc_out= on the kernel command line"
mkdir -p "$R$out" 2>/dev/null
mount -t 9p -o "$O9" out "$R$out" || halt "cannot mount the output directory (9p tag out) on $out"

src=$(arg src)
role=$(arg role)
echo "usmc-vm: $(uname -r) up, role $role, running $src/tests/vm/guest.sh"
chroot $R /bin/bash "$src/tests/vm/guest.sh" "$role" "$out"
halt "guest script exited $?"
