//! shutdown, reboot, halt, poweroff and telinit 0|6 inside a container:
//! the built-in stop runs, services stop, PID 1 exits 0; `-f` calls
//! reboot(2) at once, which the kernel turns into the end of the PID
//! namespace. Needs root. The commands run inside the namespace, from a
//! job of its PID 1, never on the host.

mod common;

use common::namespace::Namespace;
use std::os::unix::process::ExitStatusExt;

/// Records `RUNLEVEL INIT_HALT` of every runlevel event.
const OBSERVER: &str = "start on runlevel\ntask\nconsole none\n\
     exec sh -c 'echo \"$RUNLEVEL ${INIT_HALT:-}\" >> @DIR@/runlevel'\n";

/// Records `svc` in @DIR@/stopped on SIGTERM.
const SERVICE: &str = "start on startup\nstop on runlevel [016]\nconsole none\n\
     exec sh -c 'trap \"echo svc >> @DIR@/stopped; exit 0\" TERM; echo up > @DIR@/svc.up; \
     while :; do sleep 0.05; done'\n";

/// Runs COMMAND once @DIR@/go exists (utmp records go to the test dir).
fn trigger(command: &str) -> String {
    format!(
        "start on startup\nconsole none\nenv OUTSET_UTMP_FILE=@DIR@/utmp\nenv OUTSET_WTMP_FILE=@DIR@/wtmp\n\
         script\n  : > @DIR@/utmp\n  while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
         @BIN@/{command} > @DIR@/cmd.out 2>&1 || echo \"exit $?\" >> @DIR@/cmd.out\nend script\n"
    )
}

fn run_command(tag: &str, command: &str) -> Namespace {
    let t = trigger(command);
    let mut ns = Namespace::start(
        tag,
        &[("observer", OBSERVER), ("svc", SERVICE), ("trigger", &t)],
        &[],
    );
    ns.wait_file("svc.up");
    ns.touch("go");
    ns
}

#[test]
fn stop_commands_stop_services_and_end_pid1_with_exit_zero() {
    for (command, runlevel) in [
        ("poweroff", "0 POWEROFF\n"),
        ("halt", "0 HALT\n"),
        ("reboot", "6 \n"),
        ("shutdown -h now", "0 \n"),
        ("shutdown -P +0", "0 POWEROFF\n"),
        ("shutdown -r now", "6 \n"),
        ("telinit 0", "0 \n"),
        ("telinit 6", "6 \n"),
    ] {
        let mut ns = run_command("shutdown-cmd", command);
        let status = ns.wait_exit();
        let log = ns.log();
        let out = std::fs::read_to_string(ns.dir.0.join("cmd.out")).unwrap_or_default();
        assert!(
            status.success(),
            "{command}: exit {status:?}; output {out:?}; log:\n{log}"
        );
        let seen = std::fs::read_to_string(ns.dir.0.join("runlevel")).unwrap_or_default();
        assert_eq!(seen, runlevel, "{command}: log:\n{log}");
        let stopped = std::fs::read_to_string(ns.dir.0.join("stopped")).unwrap_or_default();
        assert_eq!(stopped, "svc\n", "{command}: log:\n{log}");
        assert!(out.is_empty(), "{command}: {out}");
        // The runlevel change was recorded where the job said.
        let utmp = std::fs::metadata(ns.dir.0.join("utmp")).map_or(0, |m| m.len());
        assert!(utmp > 0, "{command}: no utmp record");
    }
}

#[test]
fn forced_commands_end_the_namespace_at_once() {
    // Inside a PID namespace reboot(2) kills the namespace's init: its
    // parent sees SIGINT for halt and power-off, SIGHUP for reboot.
    for (command, signal) in [
        ("poweroff -f", libc::SIGINT),
        ("halt -f", libc::SIGINT),
        ("reboot -f", libc::SIGHUP),
    ] {
        let mut ns = run_command("shutdown-force", command);
        let status = ns.wait_exit();
        let code = status.code().map(|c| c - 128);
        assert!(
            status.signal() == Some(signal) || code == Some(signal),
            "{command}: {status:?}; log:\n{}",
            ns.log()
        );
        // No graceful stop happened: no runlevel event, no SIGTERM.
        assert!(!ns.dir.0.join("runlevel").exists(), "{command}");
        assert!(!ns.dir.0.join("stopped").exists(), "{command}");
    }
}

#[test]
fn bad_arguments_are_refused() {
    let shutdown = env!("CARGO_BIN_EXE_shutdown");
    for args in [
        &["-h", "soon"][..],
        &["-h"],
        &["-x", "now"],
        &["-h", "25:00"],
    ] {
        let out = std::process::Command::new(shutdown)
            .args(args)
            .output()
            .expect("shutdown");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("shutdown: "), "{args:?}: {err}");
    }
    let out = std::process::Command::new(shutdown)
        .args(["-h", "soon"])
        .output()
        .expect("shutdown");
    assert!(String::from_utf8_lossy(&out.stderr).contains("illegal time value: soon"));
    // -k only warns: nothing is asked of init (none listens here anyway).
    let out = std::process::Command::new(shutdown)
        .args(["-k", "now", "maintenance"])
        .output()
        .expect("shutdown");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("maintenance"));
}
