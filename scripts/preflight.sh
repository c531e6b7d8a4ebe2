#!/bin/sh
# Say what the test suite needs and this machine lacks, before any test
# runs, instead of letting a test fail deep inside. Exits 1 when anything
# is missing, unless OUTSET_PREFLIGHT=warn (then it only says so, for a
# partial run). Run by scripts/test-all.sh (and .ci/run, after installing).
set -u
cd "$(dirname "$0")/.."

missing=""
lack() { missing="$missing
  - $1"; }

[ "$(id -u)" = 0 ] || lack "root (the namespace, cgroup and PID 1 tests need it)"

for cmd in sh mount unshare setpriv nsenter prlimit mkfifo \
    gdbus dbus-send dbus-daemon qemu-system-x86_64 cpio cargo \
    python3 redis-server redis-cli; do
    command -v "$cmd" >/dev/null 2>&1 || lack "command: $cmd"
done

# The VM and container tests pack a statically linked busybox and build
# the static binaries against glibc's static library.
bb=$(command -v busybox 2>/dev/null || true)
case "$(LC_ALL=C ldd "${bb:-/nonexistent}" 2>&1)" in
    *"not a dynamic"* | *"statically linked"*) ;;
    *) lack "a statically linked busybox (busybox-static)" ;;
esac
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || lack "static glibc: /usr/lib/x86_64-linux-gnu/libc.a (libc6-dev)"
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 ||
    lack "a cloud kernel: /boot/vmlinuz-*-cloud-amd64 (linux-image-cloud-amd64)"

v2_mounts=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") break;
                   if ($(i + 1) == "cgroup2") print $5 }' /proc/self/mountinfo)
# Whether a controller is in a cgroup2 mount, or on a mounted v1 hierarchy.
in_v2() {
    for mnt in $v2_mounts; do
        grep -qw "$1" "$mnt/cgroup.controllers" 2>/dev/null && return 0
    done
    return 1
}
in_v1() {
    awk -v c="$1" '$3 == "cgroup" { n = split($4, o, ",");
        for (i = 1; i <= n; i++) if (o[i] == c) found = 1 }
        END { exit !found }' /proc/self/mounts
}

# The fork-exhaustion test caps init with a pids cgroup: v1's, or v2's.
pids=""
[ -e /sys/fs/cgroup/pids/cgroup.procs ] && pids=v1
[ -z "$pids" ] && in_v2 pids && pids=v2
# Bound to a v1 hierarchy that is not mounted here (a cgroup2-only mount
# namespace on such a kernel): the tests mount that hierarchy themselves.
[ -n "$pids" ] || awk '$1 == "pids" && $2 != 0 { found = 1 } END { exit !found }' /proc/cgroups ||
    lack "the pids cgroup controller (v1 at /sys/fs/cgroup/pids, or in a cgroup2 mount)"

# The cgroup stanza and cgroup manager tests place jobs in pids, memory
# or hugetlb (2 MB pages), whichever the layout offers (tests/common/
# cgroup_layout.rs): hugetlb alone where cgroup2 is the only cgroup file
# system and the kernel keeps the others in v1 hierarchies.
placing=""
for c in pids memory hugetlb; do
    [ "$c" = hugetlb ] && [ ! -d /sys/kernel/mm/hugepages/hugepages-2048kB ] && continue
    { in_v1 "$c" || in_v2 "$c"; } && placing=$c && break
done
[ -n "$placing" ] ||
    lack "a cgroup controller to place jobs in: pids, memory or hugetlb (2 MB pages), on a mounted v1 hierarchy or in cgroup2"

# The hung-mount test mounts a FUSE file system whose daemon never answers.
[ -c /dev/fuse ] || lack "/dev/fuse (the fuse module: modprobe fuse)"

corpus="${OUTSET_CORPUS:-../shared/corpus}"
[ -d "$corpus/jobs" ] || lack "the job-file corpus: $corpus/jobs (set OUTSET_CORPUS)"

if [ -n "$missing" ]; then
    echo "The tests need what this machine lacks:$missing" >&2
    [ "${OUTSET_PREFLIGHT:-}" = warn ] || exit 1
fi
