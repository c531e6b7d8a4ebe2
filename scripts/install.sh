#!/bin/sh
# Install outset where Upstart 1.13 put its files: binaries in /sbin,
# init-checkconf in /usr/bin, man pages, bash completion, the system bus
# policy and the shipped jobs. DESTDIR stages the whole tree (packaging).
set -eu

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [OPTION]...
Build outset (release) and install it under $DESTDIR (default: /).

  --init          also make /sbin/init outset (replaces the system's init)
  --prefix DIR    where /usr goes (default /usr)
  --bindir DIR    take the binaries from DIR instead of building them
  --no-build      use target/release as it is
  --examples      also install the example jobs (hello, ticker)
  -h, --help      this text

Environment: DESTDIR (staging root, default empty).
EOF
}

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr
bindir=
as_init=no
build=yes
examples=no
while [ $# -gt 0 ]; do
    case "$1" in
        --init) as_init=yes ;;
        --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
        --bindir) bindir=${2:?--bindir needs a directory}; build=no; shift ;;
        --no-build) build=no ;;
        --examples) examples=yes ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
: "${bindir:=$here/target/release}"
dest=${DESTDIR:-}

if [ "$build" = yes ]; then
    (cd "$here" && cargo build --release --bins)
fi

# Every binary the package declares, so that new ones are installed too.
bins=$(awk '/^\[/ { bin = ($0 == "[[bin]]") } bin && /^name = / { gsub(/"/, "", $3); print $3 }' "$here/Cargo.toml")
for b in $bins; do
    [ -x "$bindir/$b" ] || { echo "install.sh: $bindir/$b missing (build first)" >&2; exit 1; }
done

sbin=$dest/sbin
usrbin=$dest$prefix/bin
mandir=$dest$prefix/share/man
install -d "$sbin" "$usrbin" "$mandir" "$dest/etc/init"

for b in $bins; do
    case "$b" in
        init-checkconf) install -m 0755 "$bindir/$b" "$usrbin/$b" ;;
        *) install -m 0755 "$bindir/$b" "$sbin/$b" ;;
    esac
done
for name in start stop restart reload status; do
    ln -sf initctl "$sbin/$name"
done
for name in reboot halt poweroff; do
    ln -sf shutdown "$sbin/$name"
done
if [ "$as_init" = yes ]; then
    ln -sf outset "$sbin/init"
fi

for page in "$here"/man/*.[0-9]; do
    section=${page##*.}
    install -d "$mandir/man$section"
    install -m 0644 "$page" "$mandir/man$section/"
done

install -D -m 0644 "$here/contrib/bash-completion/initctl" \
    "$dest$prefix/share/bash-completion/completions/initctl"
install -D -m 0644 "$here/contrib/dbus/Upstart.conf" \
    "$dest/etc/dbus-1/system.d/Upstart.conf"

# Job files: an administrator's own file of the same name is kept. The
# examples (a greeting and a job that ticks for ever) only when asked.
kept=
for job in "$here"/jobs.d/*; do
    [ -f "$job" ] || continue
    case "${job##*/}" in
        hello.conf | ticker.conf) [ "$examples" = yes ] || continue ;;
    esac
    target=$dest/etc/init/${job##*/}
    if [ -e "$target" ]; then
        kept="$kept ${job##*/}"
    else
        install -m 0644 "$job" "$target"
    fi
done
if [ -d "$here/sessions.d" ]; then
    install -d "$dest$prefix/share/upstart/sessions"
    for job in "$here"/sessions.d/*; do
        [ -f "$job" ] && install -m 0644 "$job" "$dest$prefix/share/upstart/sessions/"
    done
fi
[ -z "$kept" ] || echo "install.sh: kept existing job files in $dest/etc/init:$kept"
echo "installed outset under ${dest:-/}"
