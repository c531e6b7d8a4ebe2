#!/bin/sh
# Build the Upstart reference for `cargo bench --bench daemon --
# --against-upstart PREFIX`: libnih 1.0.x (which provides nih-dbus-tool)
# and Upstart 1.13, both installed under PREFIX, the binaries finding
# PREFIX/lib through their rpath.
#
#   scripts/build-upstart.sh [--build-dir DIR] LIBNIH_SRC UPSTART_SRC PREFIX
#
# LIBNIH_SRC and UPSTART_SRC are source checkouts (libnih 1.0.4 from
# github.com/keybuk/libnih; Upstart 1.13 is the "NEWS: Release 1.13" commit
# of lp:upstart, also found in github.com/ubports/upstart). They are copied
# to a scratch directory and left untouched. The scratch directory is
# removed afterwards unless --build-dir names it (a new or empty directory),
# which keeps the configured trees for building Upstart's own tests there
# (scripts/upstart-suites.sh does).
#
# Build dependencies (Debian): autoconf automake libtool autopoint gettext
# pkg-config libdbus-1-dev libexpat1-dev libjson-c-dev.
#
# What a current toolchain needs, applied to the copy:
# - libnih's nih-dbus-tool defines a variable in a header that several of
#   its files include: compile it with -fcommon (gcc 10 and later default
#   to -fno-common).
# - Upstart's init uses makedev/major/minor, which glibc no longer declares
#   through <sys/types.h>: include <sys/sysmacros.h>.
# Left out: the udev, socket, local and dconf bridges, cgroup support
# (cgmanager), NLS and the libupstart ABI check.
set -eu

build_dir=
if [ "${1-}" = --build-dir ] && [ $# -ge 2 ]; then
    build_dir=$2
    shift 2
fi
if [ $# -ne 3 ]; then
    echo "usage: $0 [--build-dir DIR] LIBNIH_SRC UPSTART_SRC PREFIX" >&2
    exit 2
fi
nih_src=$(cd "$1" && pwd)
upstart_src=$(cd "$2" && pwd)
prefix=$3
case "$prefix" in
    /*) ;;
    *) echo "$0: PREFIX must be an absolute path" >&2; exit 2 ;;
esac

for tool in autoreconf autopoint libtoolize pkg-config make cc; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool not found (see the dependencies at the top)" >&2
        exit 1
    }
done
for module in dbus-1 expat json-c; do
    pkg-config --exists "$module" || {
        echo "$0: pkg-config module $module missing (see the dependencies)" >&2
        exit 1
    }
done

jobs=$(nproc 2>/dev/null || echo 1)
if [ -n "$build_dir" ]; then
    mkdir -p "$build_dir"
    if [ -n "$(ls -A "$build_dir")" ]; then
        echo "$0: $build_dir is not empty" >&2
        exit 1
    fi
    work=$(cd "$build_dir" && pwd)
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/build-upstart.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
cp -a "$nih_src" "$work/libnih"
cp -a "$upstart_src" "$work/upstart"
rm -rf "$work/libnih/.git" "$work/upstart/.git"

rpath="-Wl,-rpath,$prefix/lib"

echo "== libnih $(sed -n 's/^AC_INIT(\[libnih\], \[\([^]]*\)\].*/\1/p' "$work/libnih/configure.ac")"
(
    cd "$work/libnih"
    autoreconf -fi
    ./configure --prefix="$prefix" --disable-nls \
        CFLAGS="-O2 -g -fcommon" LDFLAGS="$rpath"
    make -j"$jobs"
    make install
)

version=$(sed -n 's/^AC_INIT(\[upstart\], \[\([^]]*\)\].*/\1/p' "$work/upstart/configure.ac")
echo "== upstart $version"
(
    cd "$work/upstart"
    for f in init/main.c init/system.c; do
        grep -q '<sys/sysmacros.h>' "$f" ||
            sed -i 's|^#include <sys/types.h>$|&\n#include <sys/sysmacros.h>|' "$f"
        grep -q '<sys/sysmacros.h>' "$f" || {
            echo "$0: could not patch $f" >&2
            exit 1
        }
    done
    # libnih's autoconf macros and pkg-config files, and nih-dbus-tool.
    export ACLOCAL_PATH="$prefix/share/aclocal"
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    export PATH="$prefix/bin:$PATH"
    autoreconf -fi
    ./configure --prefix="$prefix" --sysconfdir="$prefix/etc" --disable-nls \
        --disable-udev-bridge --disable-socket-bridge --disable-local-bridge \
        --disable-dconf-bridge --disable-cgroups --disable-abi-check \
        CFLAGS="-O2 -g" LDFLAGS="$rpath"
    make -j"$jobs"
    make install
)

"$prefix/sbin/init" --version | head -n 1
"$prefix/sbin/initctl" --version | head -n 1
