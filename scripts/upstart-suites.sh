#!/bin/sh
# Run Upstart 1.13's own test suites against Upstart and against outset,
# and print their counts side by side:
#
#   scripts/upstart-suites.sh --upstart-src DIR --libnih-src DIR
#       [--build DIR] [--outset-bin DIR] [--only SUITE[:TEST] | --only python]
#
# The suites are the ones Upstart's authors wrote to drive the real `init`
# and `initctl` binaries: util/tests/test_initctl.c and
# init/tests/test_main.c (C, libnih's test macros) and
# scripts/tests/test_pyupstart_session_init.py (Python 3). They find the
# binaries through compile-time paths (UPSTART_BINARY and INITCTL_BINARY
# in test/test_util_common.c, BUILT_* in scripts/pyupstartvars.py), so
# each C suite is linked twice: once with Upstart's own paths and once
# with outset's (`outset` as init, outset's `initctl`).
#
# Sources are never downloaded here: --upstart-src is an Upstart 1.13
# source tree and --libnih-src a libnih 1.0.x one (see
# scripts/build-upstart.sh for where they come from). Everything is built
# in --build (default $OUTSET_UPSTART_BUILD, else /tmp/upstart-suites),
# outside the repository; a second run reuses that build (remove the
# directory to start afresh). The binaries under test come from
# --outset-bin (default: target/release, built here with cargo).
#
# Nothing in the tests is changed but their main(): before each test
# function it calls, a line `=== NAME` is printed (stdout made line
# buffered, so that nothing is lost when a test aborts), and
# UPSTART_SUITE_FROM=NAME skips the functions before NAME. libnih's TEST_*
# macros abort at the first failure; the suite is then run again from the
# function after the one that failed, so one failure does not hide the
# rest. A feature is one `...` line a suite prints; a function that
# aborted passes the features before the one it aborted in, and fails
# that one and those it never reached (as many as it printed against
# Upstart). Each run is in a PID namespace of its own when run as root,
# so that no process a failed test left behind outlives it.
#
# The Python system-level suite (test_pyupstart_system_init.py) is not
# run: it drives the machine's own PID 1 and writes to /etc/init.
#
# Dependencies (Debian): those of scripts/build-upstart.sh, dbus (for
# dbus-daemon), python3-dbus python3-gi python3-pyinotify, and timeout
# (coreutils).
set -eu

usage() {
    sed -n 's/^#   //p' "$0" | head -n 2 >&2
    exit 2
}

repo=$(cd "$(dirname "$0")/.." && pwd)
upstart_src=${UPSTART_SRC-}
nih_src=${LIBNIH_SRC-}
build=${OUTSET_UPSTART_BUILD:-/tmp/upstart-suites}
outset_bin=
only=
while [ $# -gt 0 ]; do
    case "$1" in
        --upstart-src) upstart_src=$2; shift 2 ;;
        --libnih-src) nih_src=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --outset-bin) outset_bin=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "$0: unknown option $1" >&2; usage ;;
    esac
done
case "$build" in
    /*) ;;
    *) build=$(pwd)/$build ;;
esac
case "$build/" in
    "$repo"/*) echo "$0: --build must be outside the repository" >&2; exit 2 ;;
esac
mkdir -p "$build"

prefix=$build/prefix
tree=$build/tree/upstart

# 1. libnih and Upstart, configured and built in $build/tree.
if [ ! -x "$prefix/sbin/init" ] || [ ! -x "$tree/init/init" ]; then
    if [ -z "$upstart_src" ] || [ -z "$nih_src" ]; then
        echo "$0: no build in $build yet: give --upstart-src and --libnih-src" >&2
        exit 2
    fi
    rm -rf "$build/tree" "$prefix"
    "$repo/scripts/build-upstart.sh" --build-dir "$build/tree" \
        "$nih_src" "$upstart_src" "$prefix"
fi

# 2. The binaries under test.
if [ -z "$outset_bin" ]; then
    (cd "$repo" && cargo build --release --bins)
    outset_bin=$repo/target/release
fi
outset_bin=$(cd "$outset_bin" && pwd)
for b in outset initctl upstart-file-bridge; do
    [ -x "$outset_bin/$b" ] || { echo "$0: $outset_bin/$b missing" >&2; exit 1; }
done

# 3. Each test function of the C suites' main() announced, and the suite
# restartable from any of them.
select_tests() {
    file=$1
    # The first time, keep the original (the sysmacros fix aside).
    [ -f "$file.orig" ] || cp "$file" "$file.orig"
    awk '
        BEGIN {
            helper = "/* Announce each test; skip those before UPSTART_SUITE_FROM, or all but UPSTART_SUITE_ONLY. */\n" \
                "static int\nsuite_wanted (const char *name)\n{\n" \
                "\tstatic int started = FALSE;\n" \
                "\tconst char *from = getenv (\"UPSTART_SUITE_FROM\");\n" \
                "\tconst char *only = getenv (\"UPSTART_SUITE_ONLY\");\n\n" \
                "\tsetvbuf (stdout, NULL, _IOLBF, 0);\n" \
                "\tif (only)\n" \
                "\t\tstarted = ! strcmp (only, name);\n" \
                "\telse if (! from || ! strcmp (from, name))\n" \
                "\t\tstarted = TRUE;\n" \
                "\tif (started)\n" \
                "\t\tprintf (\"=== %s\\n\", name);\n\n" \
                "\treturn started;\n}\n"
        }
        {
            line = $0
            if ($0 ~ /^main \(/)
                in_main = 1
            if (in_main && line ~ /^\t+test_[a-z0-9_]+ \(\);$/ &&
                line !~ /test_common_(setup|cleanup)/) {
                name = line
                sub(/^\t+/, "", name)
                sub(/ \(\);$/, "", name)
                sub(/test_[a-z0-9_]+ \(\);$/,
                    "if (suite_wanted (\"" name "\")) " name " ();", line)
            }
            if (NR > 1) {
                if ($0 ~ /^main \(/)
                    print helper
                print prev
            }
            prev = line
        }
        END { print prev }
    ' "$file.orig" > "$file.new"
    if cmp -s "$file.new" "$file"; then rm "$file.new"; else mv "$file.new" "$file"; fi
}
select_tests "$tree/util/tests/test_initctl.c"
select_tests "$tree/init/tests/test_main.c"

# The test functions a suite's main() calls, in order.
functions() {
    sed -n 's/.*if (suite_wanted ("\(test_[a-z0-9_]*\)")).*/\1/p' "$1"
}

# 4. The C suites, linked against the paths of each target.
build_suites() {
    target=$1 init=$2 initctl=$3
    out=$build/bin/$target
    mkdir -p "$out"
    rm -f "$tree/test/libtest_util_common.a" "$tree/test/test_util_common.o" \
        "$tree/util/test_initctl" "$tree/init/test_main"
    (
        cd "$tree"
        export PATH="$prefix/bin:$PATH"
        make -s -C test libtest_util_common.a \
            UPSTART_BINARY="$init" INITCTL_BINARY="$initctl"
        make -s -C util test_initctl
        make -s -C init test_main
    ) > "$build/make-$target.log" 2>&1 || {
        echo "$0: building the suites for $target failed; see $build/make-$target.log" >&2
        exit 1
    }
    cp "$tree/util/test_initctl" "$tree/init/test_main" "$out/"
}
build_suites upstart "$tree/init/init" "$tree/util/initctl"
build_suites outset "$outset_bin/outset" "$outset_bin/initctl"

# The Python session suite, one copy per target.
python_copy() {
    target=$1 init=$2 initctl=$3 bridge=$4
    py=$build/py/$target
    rm -rf "$py"
    mkdir -p "$py/scripts/tests" "$py/extra"
    cp "$tree/scripts/pyupstart.py" "$py/scripts/"
    cp "$tree/scripts/tests/test_pyupstart_session_init.py" "$py/scripts/tests/"
    cp -r "$tree/extra/conf-session" "$py/extra/"
    {
        echo "BUILT_UPSTART = '$init'"
        echo "BUILT_INITCTL = '$initctl'"
        echo "BUILT_FILE_BRIDGE = '$bridge'"
    } > "$py/scripts/pyupstartvars.py"
}
python_copy upstart "$tree/init/init" "$tree/util/initctl" "$tree/extra/upstart-file-bridge"
python_copy outset "$outset_bin/outset" "$outset_bin/initctl" "$outset_bin/upstart-file-bridge"

# 5. Run. Results: $build/results/TARGET/SUITE.log (the runs, each ended
# by `=== END STATUS`) and SUITE.counts (FUNCTION STARTED FAILED).
results=$build/results
isolated() { # run "$@" where nothing it leaves behind survives it
    if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null; then
        # A shell is process 1 there: the suites must not be.
        unshare --pid --fork --kill-child --mount-proc \
            sh -c '"$@"; exit $?' sh "$@"
    else
        "$@"
    fi
    status=$?
    # The files and directories libnih's TEST_FILENAME names (/tmp/FILE-
    # FUNCTION-LINE-PID) that an aborted test left: in a namespace the
    # next run has the same pid.
    rm -rf /tmp/test_initctl.c-* /tmp/test_main.c-* /tmp/test_util_common.c-*
    return $status
}
run_c() {
    target=$1 suite=$2 dir=$3 sbin=$4
    case "$only" in
        ""|"$suite"|"$suite":*) ;;
        *) return 0 ;;
    esac
    log=$results/$target/$suite.log
    : > "$log"
    from=
    single=${only#"$suite"}
    single=${single#:}
    while :; do
        set +e
        (
            cd "$tree/$dir"
            # As once installed: init's own directory is on PATH (outset
            # puts it on its jobs' PATH otherwise, and test_job_env
            # compares a job's PATH with the suite's).
            export PATH="$sbin:$PATH"
            export TERM="${TERM:-linux}"
            if [ -n "$from" ]; then export UPSTART_SUITE_FROM="$from"; fi
            if [ -n "$single" ]; then export UPSTART_SUITE_ONLY="$single"; fi
            isolated timeout -k 10 1800 "$build/bin/$target/$suite"
        ) < /dev/null > "$log.run" 2>&1
        status=$?
        set -e
        cat "$log.run" >> "$log"
        echo "=== END $status" >> "$log"
        [ "$status" -eq 0 ] && break
        [ -z "$single" ] || break
        last=$(sed -n 's/^=== \(test_[a-z0-9_]*\)$/\1/p' "$log.run" | tail -n 1)
        [ -n "$last" ] || break
        from=$(functions "$tree/$dir/tests/$suite.c" | sed -n "/^$last\$/{n;p;}")
        [ -n "$from" ] || break
    done
    rm -f "$log.run"
    awk '
        /^=== END / { if ($3 != 0 && cur != "") failed[cur] = 1; cur = ""; next }
        /^=== test_/ { cur = $2; if (!(cur in seen)) order[++n] = cur; seen[cur] = 1; next }
        /^\.\.\./ { if (cur != "") count[cur]++ }
        END { for (i = 1; i <= n; i++) print order[i], count[order[i]] + 0, (order[i] in failed) ? 1 : 0 }
    ' "$log" > "$results/$target/$suite.counts"
}
run_python() {
    target=$1 sbin=$2
    case "$only" in ""|python) ;; *) return 0 ;; esac
    log=$results/$target/python.session.log
    set +e
    (
        cd "$build/py/$target/scripts/tests"
        # The jobs of extra/conf-session run the file bridge by name.
        export PATH="$sbin:$PATH"
        isolated timeout -k 10 1800 /usr/bin/python3 -m unittest -v \
            test_pyupstart_session_init
    ) > "$log" 2>&1 < /dev/null
    set -e
}
mkdir -p "$results/upstart" "$results/outset"
run_c upstart test_initctl util "$tree/init"
run_c upstart test_main init "$tree/init"
run_c outset test_initctl util "$outset_bin"
run_c outset test_main init "$outset_bin"
run_python upstart "$prefix/sbin"
run_python outset "$outset_bin"

# 6. The counts. A function's features are the most it printed against
# either target.
passed() { # STARTED FAILED -> features passed
    if [ "$2" -eq 0 ]; then echo "$1"; elif [ "$1" -gt 0 ]; then echo $(($1 - 1)); else echo 0; fi
}
count_of() { # TARGET SUITE FUNCTION -> "STARTED FAILED" ("0 1" if never run)
    line=$(awk -v f="$3" '$1 == f { print $2, $3 }' "$results/$1/$2.counts" 2>/dev/null)
    echo "${line:-0 1}"
}
printf '%-40s %15s %15s\n' "suite: test" "Upstart 1.13" "outset"
for suite in test_initctl test_main; do
    dir=util
    [ "$suite" = test_main ] && dir=init
    [ -f "$results/upstart/$suite.counts" ] || continue
    t_total=0 t_up=0 t_out=0
    for f in $(functions "$tree/$dir/tests/$suite.c"); do
        # shellcheck disable=SC2046
        set -- $(count_of upstart "$suite" "$f") $(count_of outset "$suite" "$f")
        total=$1
        [ "$3" -gt "$total" ] && total=$3
        [ "$total" -eq 0 ] && continue
        up_passed=$(passed "$1" "$2")
        out_passed=$(passed "$3" "$4")
        t_total=$((t_total + total))
        t_up=$((t_up + up_passed))
        t_out=$((t_out + out_passed))
        if [ "$up_passed" -ne "$total" ] || [ "$out_passed" -ne "$total" ]; then
            printf '%-40s %15s %15s\n' "  $f" "$up_passed/$total" "$out_passed/$total"
        fi
    done
    printf '%-40s %15s %15s\n' "$suite (features)" "$t_up/$t_total" "$t_out/$t_total"
done
for target in upstart outset; do
    log=$results/$target/python.session.log
    if [ -f "$log" ]; then
        ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' "$log")
        bad=$(grep -c -E '^(FAIL|ERROR): ' "$log" || true)
        eval "py_$target=\$((\${ran:-0} - bad))/\${ran:-0}"
    else
        eval "py_$target=-"
    fi
done
printf '%-40s %15s %15s\n' "python session (tests)" "$py_upstart" "$py_outset"
echo "Logs: $results/{upstart,outset}/"
