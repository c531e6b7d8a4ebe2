#!/bin/sh
# Fill fuzz/corpus/ (git-ignored) with seeds taken from the job-file corpus.
# Usage: fuzz/seed-corpus.sh [JOBS_DIR]
# JOBS_DIR defaults to $OUTSET_CORPUS/jobs (or $OUTSET_CORPUS itself when it
# holds the .conf files), else ../shared/corpus/jobs beside the repository.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -gt 0 ]; then
    jobs=$1
elif [ -n "${OUTSET_CORPUS:-}" ]; then
    jobs=$OUTSET_CORPUS
    [ -d "$jobs/jobs" ] && jobs=$jobs/jobs
else
    jobs=$here/../../shared/corpus/jobs
fi
if [ ! -d "$jobs" ]; then
    echo "seed-corpus.sh: no job corpus at $jobs (pass a directory or set OUTSET_CORPUS)" >&2
    exit 1
fi
mkdir -p "$here/corpus/parse_job" "$here/corpus/expand"

# parse_job: every .conf and .override file as it is.
n=0
for f in "$jobs"/*.conf "$jobs"/*.override; do
    [ -f "$f" ] || continue
    cp "$f" "$here/corpus/parse_job/$(basename "$f")"
    n=$((n + 1))
done

# expand: each distinct $-reference found in the job files, one per file.
m=0
grep -ho '\$[{A-Za-z_][^ "]*' "$jobs"/*.conf 2>/dev/null | sort -u | while IFS= read -r ref; do
    m=$((m + 1))
    printf '%s' "$ref" > "$here/corpus/expand/ref-$m"
done
m=$(find "$here/corpus/expand" -type f | wc -l)
echo "seeded $n parse_job inputs and $m expand inputs from $jobs"
