#!/bin/sh
# Run a command where cgroup2 is the only cgroup file system, as on most
# current distributions: in a new mount namespace, everything under
# /sys/fs/cgroup gives way to one cgroup2 mount there. The host's own
# mounts are not touched. Needs root.
#
# Usage: scripts/v2-only.sh COMMAND [ARGS...]
#   e.g. scripts/v2-only.sh scripts/test-all.sh
set -eu
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
exec unshare --mount --propagation private sh -c '
    umount -R -l /sys/fs/cgroup 2>/dev/null || true
    mount -t cgroup2 none /sys/fs/cgroup
    exec "$@"' sh "$@"
