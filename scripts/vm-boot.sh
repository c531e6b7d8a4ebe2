#!/bin/sh
# Boot an initramfs (see mkinitramfs.sh) in qemu with the serial console
# written to a file; qemu exits when the machine powers off (or panics).
#
#   scripts/vm-boot.sh [--timeout SECS] INITRAMFS CONSOLE_LOG
#                      [KERNEL-ARGUMENT]... [--qemu QEMU-ARGUMENT...]
#
# Exit status: the status the machine handed over through qemu's
# isa-debug-exit device (outset does so for `EXIT_CODE=N` in its system
# stop, e.g. the outset.run= command's status: 1 to 127); 0 when it
# powered off, halted or rebooted without one; 1 when the kernel
# panicked; 124 when it was still running after SECS seconds (it is then
# killed); qemu's own status when qemu failed.
#
# The kernel is $OUTSET_VM_KERNEL, or Debian's cloud kernel
# (linux-image-cloud-amd64). Emulated (TCG) unless OUTSET_VM_ACCEL=kvm.
# Everything after --qemu is passed to qemu as it is (say, `-m 2048` or
# a disk).
set -eu
usage="usage: $0 [--timeout SECS] INITRAMFS CONSOLE_LOG [KERNEL-ARGUMENT]... [--qemu QEMU-ARGUMENT...]"
timeout=
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout)
            timeout=${2:?--timeout needs a number of seconds}
            case "$timeout" in
                '' | *[!0-9]*) echo "$0: --timeout: not a number of seconds: $timeout" >&2; exit 2 ;;
            esac
            shift 2
            ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
initramfs=$1
log=$2
shift 2
kernel_args=
while [ $# -gt 0 ] && [ "$1" != --qemu ]; do
    kernel_args="$kernel_args $1"
    shift
done
[ $# -eq 0 ] || shift # --qemu; what is left goes to qemu.

kernel=${OUTSET_VM_KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || {
    echo "$0: no kernel (apt-get install linux-image-cloud-amd64, or set OUTSET_VM_KERNEL)" >&2
    exit 1
}
# TCG works everywhere. KVM only on request (OUTSET_VM_ACCEL=kvm): a
# /dev/kvm that opens can still fail once the vCPU starts (nested or
# paravirtual KVM), and qemu then aborts instead of falling back.
accel="-accel ${OUTSET_VM_ACCEL:-tcg}"
# GNU timeout in the foreground: qemu stays in our process group, so
# whoever stops this script's group stops qemu too.
limit=
[ -z "$timeout" ] || limit="timeout --foreground -k 5 $timeout"
# random.trust_cpu: no waiting for entropy under TCG; panic=-1 with
# -no-reboot: a dying PID 1 ends qemu at once instead of hanging it.
# isa-debug-exit: a write of N to port 0xf4 ends qemu with (N << 1) | 1.
status=0
# shellcheck disable=SC2086
$limit qemu-system-x86_64 $accel -cpu max -m 512 -smp 1 \
    -nodefaults -display none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -serial "file:$log" \
    -kernel "$kernel" -initrd "$initramfs" \
    -append "console=ttyS0 random.trust_cpu=on panic=-1$kernel_args" \
    "$@" || status=$?

if [ -n "$timeout" ] && [ "$status" -eq 124 ]; then
    echo "$0: the machine was still running after $timeout s" >&2
    exit 124
fi
case $status in
    0)
        if grep -q "Kernel panic - not syncing" "$log" 2>/dev/null; then
            echo "$0: the kernel panicked (see $log)" >&2
            exit 1
        fi
        exit 0
        ;;
    # qemu's own failure (the device is never written 0).
    1) exit 1 ;;
esac
# An odd status from the device: (N << 1) | 1.
if [ $((status % 2)) -eq 1 ]; then
    exit $((status >> 1))
fi
exit "$status"
