#!/bin/sh
# Run one fuzz target for a while, seeding its corpus first.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [-- LIBFUZZER_OPTIONS...]
#        scripts/fuzz.sh all [SECONDS]    every target in turn
#        scripts/fuzz.sh seed TARGET      only (re)seed fuzz/corpus/TARGET
#
# Targets: parse_job expand event_match control upstart_state restore_state.
# SECONDS defaults to 60. Needs cargo-fuzz (`cargo install cargo-fuzz
# --locked`); only a stable toolchain is needed, RUSTC_BOOTSTRAP=1 is set
# here. The corpus comes from ../shared/corpus (or $OUTSET_CORPUS). Exits
# non-zero when the target finds a crash, leak or timeout; the input is
# left in fuzz/artifacts/TARGET/. See fuzz/README.md.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
targets="parse_job expand event_match control upstart_state restore_state"
shared=${OUTSET_CORPUS:-$root/../shared/corpus}
corpus=$root/fuzz/corpus

die() { echo "fuzz.sh: $*" >&2; exit 1; }

# Events offered to every seed expression of event_match.
EVENTS='startup
runlevel RUNLEVEL=2 PREVLEVEL=N
filesystem
local-filesystems
net-device-up IFACE=eth0 LOGICAL=eth0 ADDRFAM=inet METHOD=dhcp
started JOB=dbus INSTANCE=
stopping JOB=network-manager RESULT=ok
starting JOB=lightdm
stopped JOB=udev RESULT=failed PROCESS=main EXIT_STATUS=1
runlevel RUNLEVEL=0 PREVLEVEL=2'

seed_event_match() {
    dir=$corpus/event_match
    mkdir -p "$dir"
    # Every `start on`/`stop on` stanza of the job corpus, continuation
    # lines joined while parentheses are open.
    awk '
        function flush() { if (expr != "") print expr; expr = ""; depth = 0 }
        {
            line = $0; sub(/#.*/, "", line)
            if (depth > 0) { expr = expr " " line }
            else if (match(line, /^[ \t]*(start|stop)[ \t]+on[ \t]+/)) {
                flush(); expr = substr(line, RLENGTH + 1)
            } else next
            n = gsub(/\(/, "(", line); m = gsub(/\)/, ")", line)
            depth += n - m
            if (depth <= 0) flush()
        }
        END { flush() }
    ' "$shared"/jobs/*.conf "$shared"/jobs/*.override 2>/dev/null | sort -u | {
        n=0
        while IFS= read -r expr; do
            n=$((n + 1))
            printf '%s\0%s\n' "$expr" "$EVENTS" > "$dir/expr-$n"
        done
        echo "seeded $n event_match inputs"
    }
}

seed_upstart_state() {
    dir=$corpus/upstart_state
    mkdir -p "$dir"
    for f in "$shared"/upstart-state/*.json; do
        # The 1.13 file is a template for an inherited descriptor number.
        sed 's/@JOB_PROCESS_FD@/5/g' "$f" > "$dir/$(basename "$f")"
    done
    # Real payloads are up to 1 MiB, which libFuzzer runs at a few dozen
    # inputs a second: add small ones cut from them (the first job classes
    # and events only; references may dangle, which is input too).
    if command -v python3 >/dev/null; then
        python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(d, name)) as f:
        state = json.load(f)
    for keep in (1, 3):
        small = {k: (v[:keep] if isinstance(v, list) else v) for k, v in state.items()}
        with open(os.path.join(d, f"{name[:-5]}-first{keep}.json"), "w") as f:
            json.dump(small, f)
PY
    fi
    echo "seeded $(ls "$dir" | wc -l) upstart_state inputs"
}

# outset's own payloads, taken from a live session init with GetState()
# at several moments: jobs running, instances, events held by trees,
# blocked events, tasks and a job waiting in a kill timeout.
seed_restore_state() {
    dir=$corpus/restore_state
    mkdir -p "$dir"
    cargo build -q --bin outset --bin initctl
    work=$(mktemp -d)
    mkdir -p "$work/conf" "$work/run" "$work/logs"
    cat > "$work/conf/sleeper.conf" <<'EOF'
start on fuzz-a and (fuzz-b or fuzz-c)
stop on fuzz-stop
env A=1
export A
respawn
exec sleep 1000
EOF
    cat > "$work/conf/multi.conf" <<'EOF'
instance $N
start on fuzz-multi N=*
stop on fuzz-stop N=$N
exec sleep 1000
EOF
    cat > "$work/conf/logger.conf" <<'EOF'
start on fuzz-log
console log
script
  echo started
  exec sleep 1000
end script
EOF
    cat > "$work/conf/stubborn.conf" <<'EOF'
start on fuzz-stubborn
kill timeout 60
script
  trap '' TERM
  while :; do sleep 1; done
end script
EOF
    cat > "$work/conf/blocker.conf" <<'EOF'
start on starting sleeper
task
exec sleep 2
EOF
    cat > "$work/conf/abstract.conf" <<'EOF'
start on fuzz-abstract
stop on fuzz-b
EOF
    XDG_RUNTIME_DIR=$work/run target/debug/outset --user --no-startup-event \
        --confdir "$work/conf" --logdir "$work/logs" 2>"$work/outset.log" &
    pid=$!
    trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
    i=0
    while [ ! -f "$work/run/upstart/sessions/$pid.session" ]; do
        i=$((i + 1)); [ $i -lt 300 ] || die "session init did not start"
        sleep 0.1
    done
    . "$work/run/upstart/sessions/$pid.session"
    export UPSTART_SESSION
    n=0
    snap() {
        n=$((n + 1))
        dbus-send --peer="$UPSTART_SESSION" --print-reply=literal \
            /com/ubuntu/Upstart com.ubuntu.Upstart0_6.GetState \
            | sed 's/^ *//' > "$dir/state-$n"
    }
    snap
    target/debug/initctl emit --no-wait fuzz-a; snap
    target/debug/initctl emit --no-wait fuzz-abstract; snap
    target/debug/initctl emit --no-wait fuzz-c; sleep 0.3; snap
    target/debug/initctl emit --no-wait fuzz-multi N=1
    target/debug/initctl emit --no-wait fuzz-multi N=two; sleep 0.3; snap
    target/debug/initctl emit --no-wait fuzz-log; sleep 0.3; snap
    target/debug/initctl emit --no-wait fuzz-stubborn; sleep 0.3; snap
    target/debug/initctl stop --no-wait stubborn; sleep 0.3; snap
    target/debug/initctl emit --no-wait fuzz-stop; sleep 0.3; snap
    target/debug/initctl set-env FOO=bar; snap
    kill "$pid"; wait "$pid" 2>/dev/null || true
    trap - EXIT
    rm -rf "$work"
    echo "seeded $n restore_state inputs"
}

seed() {
    case $1 in
    parse_job | expand)
        [ -d "$corpus/$1" ] && [ -n "$(ls -A "$corpus/$1")" ] || fuzz/seed-corpus.sh "$shared/jobs" ;;
    event_match) seed_event_match ;;
    upstart_state) seed_upstart_state ;;
    restore_state) seed_restore_state ;;
    control) mkdir -p "$corpus/control" ;; # structured input: libFuzzer starts from nothing
    *) die "unknown target $1 (one of: $targets)" ;;
    esac
}

run() {
    target=$1 secs=$2
    shift 2
    [ -n "$(ls -A "$corpus/$target" 2>/dev/null)" ] || [ "$target" = control ] || seed "$target"
    mkdir -p "$corpus/$target"
    dict=
    [ -f "fuzz/$target.dict" ] && dict=-dict=fuzz/$target.dict
    # The control target waits for its daemon's answers; the state
    # payloads are large. Both need more than the default 1200 s only when
    # something hangs, which is what -timeout reports.
    cargo fuzz run --fuzz-dir fuzz "$target" "$corpus/$target" -- \
        $dict -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 \
        -print_final_stats=1 "$@"
}

[ $# -ge 1 ] || die "usage: $0 TARGET|all|seed TARGET [SECONDS] [-- LIBFUZZER_OPTIONS]"
command -v cargo-fuzz >/dev/null || die "cargo-fuzz missing: cargo install cargo-fuzz --locked"
case $1 in
seed)
    [ $# -ge 2 ] || die "usage: $0 seed TARGET"
    seed "$2" ;;
all)
    secs=${2:-60}
    for t in $targets; do run "$t" "$secs"; done ;;
*)
    t=$1
    secs=${2:-60}
    [ $# -ge 2 ] && shift 2 || shift 1
    [ "${1:-}" = -- ] && shift
    case " $targets " in *" $t "*) ;; *) die "unknown target $t (one of: $targets)" ;; esac
    run "$t" "$secs" "$@" ;;
esac
