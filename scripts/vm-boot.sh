#!/bin/sh
# Boot an initramfs (see mkinitramfs.sh) in qemu with the serial console
# written to a file; qemu exits when the machine powers off (or panics).
#
#   scripts/vm-boot.sh INITRAMFS CONSOLE_LOG [KERNEL-ARGUMENT]...
#
# The kernel is $OUTSET_VM_KERNEL, or Debian's cloud kernel
# (linux-image-cloud-amd64). Emulated (TCG) unless OUTSET_VM_ACCEL=kvm.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 INITRAMFS CONSOLE_LOG [KERNEL-ARGUMENT]..." >&2; exit 2; }
initramfs=$1
log=$2
shift 2
kernel=${OUTSET_VM_KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || {
    echo "$0: no kernel (apt-get install linux-image-cloud-amd64, or set OUTSET_VM_KERNEL)" >&2
    exit 1
}
# TCG works everywhere. KVM only on request (OUTSET_VM_ACCEL=kvm): a
# /dev/kvm that opens can still fail once the vCPU starts (nested or
# paravirtual KVM), and qemu then aborts instead of falling back.
accel="-accel ${OUTSET_VM_ACCEL:-tcg}"
# random.trust_cpu: no waiting for entropy under TCG; panic=-1 with
# -no-reboot: a dying PID 1 ends qemu at once instead of hanging it.
# shellcheck disable=SC2086
exec qemu-system-x86_64 $accel -cpu max -m 512 -smp 1 \
    -nodefaults -display none -no-reboot \
    -serial "file:$log" \
    -kernel "$kernel" -initrd "$initramfs" \
    -append "console=ttyS0 random.trust_cpu=on panic=-1 $*"
