//! `apparmor load` and `apparmor switch` against the real daemon in
//! `--user` mode. This host has no AppArmor, so each init runs in a mount
//! namespace of its own where AppArmor looks enabled (a `Y` in
//! /sys/module/apparmor/parameters/enabled, on a tmpfs over /sys/module)
//! or not, and where /sbin/apparmor_parser is a script of the test that
//! records its arguments. Needs root, as CI has.

mod common;

use common::{spawn_session, Started, TempDir};
use std::process::Command;

const PROFILE: &str = "/etc/apparmor.d/test.profile";

/// A job that loads a profile and records the order of its processes.
const LOADED: &str = "apparmor load /etc/apparmor.d/test.profile\n\
    pre-start exec sh -c 'echo pre-start >> @DIR@/order'\n\
    exec sh -c 'echo main >> @DIR@/order; exec sleep 1000'\n";

/// A job that switches its main process to a profile.
const SWITCHED: &str = "apparmor switch /usr/bin/${PROG}\n\
    env PROG=confined\n\
    pre-start exec sh -c 'echo pre-start >> @DIR@/order'\n\
    exec sh -c 'echo main >> @DIR@/order; exec sleep 1000'\n";

/// What the namespace looks like to the init.
struct Host {
    /// The contents of the `enabled` switch, or no AppArmor module at all.
    enabled: Option<&'static str>,
    /// The fake parser's body after its line recording the arguments.
    parser_tail: &'static str,
    /// The fake parser's first line.
    shebang: &'static str,
}

const ENABLED: Host = Host {
    enabled: Some("Y"),
    parser_tail: "exit 0",
    shebang: "#!/bin/sh",
};

/// Start a session init on `jobs` inside a mount namespace set up as
/// `host` describes.
fn start(tag: &str, jobs: &[(&str, &str)], host: &Host) -> Started {
    common::assert_root();
    let dir = TempDir::new(tag);
    let root = dir.0.display().to_string();
    for (name, text) in jobs {
        dir.write(&format!("conf/{name}.conf"), &text.replace("@DIR@", &root));
    }
    let parser = dir.write(
        "apparmor_parser",
        &format!(
            "{}\necho \"parser $*\" >> {root}/order\n{}\n",
            host.shebang, host.parser_tail
        ),
    );
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(&parser)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let module = match host.enabled {
        Some(value) => format!(
            "mount -t tmpfs none /sys/module && \
             mkdir -p /sys/module/apparmor/parameters && \
             echo {value} > /sys/module/apparmor/parameters/enabled && "
        ),
        None => "mount -t tmpfs none /sys/module && ".to_string(),
    };
    let setup = format!(
        "set -e; {module}mount --bind {} /sbin/apparmor_parser; exec \"$@\"",
        parser.display()
    );
    let mut command = Command::new("unshare");
    command
        .args(["-m", "--propagation", "private", "sh", "-c", &setup, "sh"])
        .arg(env!("CARGO_BIN_EXE_outset"))
        .args(["--user", "--no-startup-event", "--confdir"])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"));
    spawn_session(dir, command)
}

fn order(s: &Started) -> String {
    std::fs::read_to_string(s.dir.0.join("order")).unwrap_or_default()
}

/// Wait until the order file has `lines` lines, and return it.
fn order_of(s: &Started, lines: usize) -> String {
    s.wait_for("the job's processes to run", || {
        order(s).lines().count() >= lines
    });
    order(s)
}

#[test]
fn load_runs_the_parser_before_pre_start() {
    let s = start("aa-load", &[("loaded", LOADED)], &ENABLED);
    let (code, out, err) = s.ctl(&["start", "loaded"]);
    assert_eq!(code, 0, "{err}\n{}", s.log());
    assert!(out.starts_with("loaded start/running, process "), "{out}");
    assert_eq!(
        order_of(&s, 3),
        format!("parser -r -W {PROFILE}\npre-start\nmain\n")
    );
}

#[test]
fn a_failing_parser_does_not_fail_the_job() {
    // The reference deliberately ignores the parser's exit status.
    let host = Host {
        parser_tail: "exit 3",
        ..ENABLED
    };
    let s = start("aa-load-fails", &[("loaded", LOADED)], &host);
    let (code, out, err) = s.ctl(&["start", "loaded"]);
    assert_eq!(code, 0, "{err}\n{}", s.log());
    assert!(out.starts_with("loaded start/running, process "), "{out}");
    assert_eq!(
        order_of(&s, 3),
        format!("parser -r -W {PROFILE}\npre-start\nmain\n")
    );
    let log = s.log();
    assert!(
        log.contains("loaded security process (") && log.contains(") terminated with status 3"),
        "{log}"
    );
}

#[test]
fn a_parser_that_cannot_run_fails_the_job() {
    let host = Host {
        shebang: "#!/nonexistent/interpreter",
        ..ENABLED
    };
    let s = start("aa-load-unrunnable", &[("loaded", LOADED)], &host);
    let (code, _, err) = s.ctl(&["start", "loaded"]);
    assert_eq!((code, err.as_str()), (1, "initctl: Job failed to start\n"));
    let log = s.log();
    assert!(
        log.contains(
            "Failed to spawn loaded security process: unable to execute: \
             No such file or directory"
        ),
        "{log}"
    );
    assert_eq!(s.ctl(&["status", "loaded"]).1, "loaded stop/waiting\n");
    // Neither pre-start nor main ran.
    assert_eq!(order(&s), "");
}

#[test]
fn without_apparmor_neither_stanza_does_anything() {
    let both = format!("apparmor switch /usr/bin/confined\n{LOADED}");
    for (tag, enabled) in [("aa-none", None), ("aa-off", Some("N"))] {
        let host = Host { enabled, ..ENABLED };
        let s = start(tag, &[("both", &both)], &host);
        let (code, out, err) = s.ctl(&["start", "both"]);
        assert_eq!(code, 0, "{tag}: {err}\n{}", s.log());
        assert!(out.starts_with("both start/running, process "), "{out}");
        // No parser run; the main process runs unconfined.
        assert_eq!(order_of(&s, 2), "pre-start\nmain\n", "{tag}");
    }
}

#[test]
fn switch_applies_to_the_main_process_only() {
    // This kernel has no security module to take the request: the write
    // to /proc/self/attr/exec fails, and so does the main process's spawn
    // (directly, and through the spawn helper that `setuid` needs).
    for (tag, extra) in [("aa-switch", ""), ("aa-switch-helper", "setuid root\n")] {
        let s = start(
            tag,
            &[("switched", &format!("{extra}{SWITCHED}"))],
            &ENABLED,
        );
        let (code, _, err) = s.ctl(&["start", "switched"]);
        assert_eq!(
            (code, err.as_str()),
            (1, "initctl: Job failed to start\n"),
            "{tag}"
        );
        let log = s.log();
        assert!(
            log.contains(
                "Failed to spawn switched main process: unable to switch security profile: "
            ),
            "{tag}: {log}"
        );
        // pre-start ran unconfined; main never did.
        assert_eq!(order(&s), "pre-start\n", "{tag}");
    }
}
