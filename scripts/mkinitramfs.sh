#!/bin/sh
# Pack an initramfs (cpio, newc format) that boots outset as /init.
#
#   scripts/mkinitramfs.sh [--examples] OUT BINDIR [OVERLAY]
#
# BINDIR holds statically linked outset binaries (scripts/build-static.sh
# puts them in target/static/x86_64-unknown-linux-gnu/release). The image
# gets outset as /init (and /sbin/init), initctl with its start, stop,
# restart, reload and status links, telinit, runlevel, and shutdown with
# its reboot, halt and poweroff links when BINDIR has them; busybox (the
# static build, from busybox-static) for a shell and the usual tools; the
# shipped jobs.d as /etc/init, without the examples (hello, ticker) unless
# --examples is given. OVERLAY, a directory, is copied over the result
# last (extra jobs in OVERLAY/etc/init, say).
set -eu
usage="usage: $0 [--examples] OUT BINDIR [OVERLAY]"
# The jobs of jobs.d that only show what a job looks like.
examples="hello ticker"
with_examples=no
while [ $# -gt 0 ]; do
    case "$1" in
        --examples) with_examples=yes; shift ;;
        --) shift; break ;;
        -*) echo "$0: unknown option: $1" >&2; echo "$usage" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
out=$(abspath "$1")
bindir=$(abspath "$2")
overlay=${3:+$(abspath "$3")}
src=$(cd "$(dirname "$0")/.." && pwd)

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "$0: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
case "$(LC_ALL=C ldd "$busybox" 2>&1)" in
    *"not a dynamic"* | *"statically linked"*) ;;
    *) echo "$0: $busybox is not statically linked (apt-get install busybox-static)" >&2; exit 1 ;;
esac
command -v cpio >/dev/null || { echo "$0: cpio not found (apt-get install cpio)" >&2; exit 1; }
[ -x "$bindir/outset" ] || { echo "$0: no $bindir/outset (run scripts/build-static.sh)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cd "$root"
mkdir -p bin sbin etc/init proc sys dev run tmp root var/log/upstart
chmod 1777 tmp
ln -s ../run var/run

cp "$bindir/outset" init
ln -s ../init sbin/init
for bin in initctl telinit runlevel shutdown outset-cgmanager \
    upstart-udev-bridge upstart-socket-bridge upstart-file-bridge; do
    [ -x "$bindir/$bin" ] && cp "$bindir/$bin" "sbin/$bin"
done
for link in start stop restart reload status; do
    ln -s initctl "sbin/$link"
done
if [ -x sbin/shutdown ]; then
    for link in reboot halt poweroff; do
        ln -s shutdown "sbin/$link"
    done
fi

cp "$busybox" bin/busybox
for applet in $("$busybox" --list); do
    # outset's own tools win over busybox's init, halt, reboot, ...
    [ -e "sbin/$applet" ] || [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done

cp "$src"/jobs.d/*.conf etc/init/
if [ "$with_examples" = no ]; then
    for job in $examples; do
        rm -f "etc/init/$job.conf"
    done
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >etc/passwd
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >etc/group
echo outset >etc/hostname

[ -z "$overlay" ] || cp -a "$overlay"/. .

# Owned by root whoever packs it; the kernel unpacks it as is.
find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 >"$out.tmp"
mv "$out.tmp" "$out"
