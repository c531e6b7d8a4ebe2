#!/bin/sh
# Run every check and test of the project: formatting, lints, unit and
# integration tests (including the real-world job-file corpus in
# ../shared/corpus, or $OUTSET_CORPUS).
set -eu
cd "$(dirname "$0")/.."
# What the tests need and this machine lacks, said before anything runs.
scripts/preflight.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# Panic containment, through a trigger only test builds have.
cargo test --features panic-trigger --test panic
./target/debug/init-checkconf jobs.d/*.conf sessions.d/*.conf
