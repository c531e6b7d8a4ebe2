#!/bin/sh
# Build statically linked binaries (glibc, crt-static) for an initramfs or
# a container image. They land in target/static/x86_64-unknown-linux-gnu/
# release/; a separate target directory keeps the normal build untouched.
set -eu
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
# No debug info: the image stays small.
export CARGO_PROFILE_RELEASE_DEBUG=0
exec cargo build --release --bins \
    --target x86_64-unknown-linux-gnu --target-dir target/static "$@"
