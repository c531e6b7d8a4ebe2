//! `outset run` (extensions.md §3) through the real binary: exit status,
//! stdio, signal forwarding, settling, and nothing left behind — with and
//! without `--pid-ns`. Needs root for `--pid-ns`.

mod common;

use common::TempDir;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A per-test marker that can be searched for in /proc/*/cmdline.
fn marker(n: u32) -> String {
    format!("{}", 100_000 + (std::process::id() % 50_000) * 10 + n)
}

/// Live processes whose command line contains `needle` as a whole word.
fn processes_with(needle: &str) -> Vec<i32> {
    common::procs::pids()
        .into_iter()
        .filter(|&pid| common::procs::cmdline_has(pid, needle))
        .collect()
}

/// `outset run` on `jobs` with `opts`, then `-- command`.
fn outset_run(dir: &TempDir, jobs: &[(&str, &str)], opts: &[&str], command: &[&str]) -> Command {
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    for (name, text) in jobs {
        dir.write(
            &format!("conf/{name}.conf"),
            &text.replace("@DIR@", &dir.0.display().to_string()),
        );
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outset"));
    cmd.arg("run")
        .args(opts)
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    cmd
}

fn output(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("outset run");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("outset run did not return");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

const MODES: [&[&str]; 2] = [&[], &["--pid-ns"]];

#[test]
fn exit_status_is_the_commands() {
    common::assert_root();
    for mode in MODES {
        for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 128 + 9)] {
            let dir = TempDir::new("run-status");
            let out = output(outset_run(&dir, &[], mode, &["sh", "-c", script]));
            assert_eq!(
                out.status.code(),
                Some(code),
                "{mode:?} {script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_command_that_cannot_run_gives_127() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-127");
        let out = output(outset_run(&dir, &[], mode, &["/nonexistent/command", "x"]));
        assert_eq!(out.status.code(), Some(127), "{mode:?}");
    }
}

#[test]
fn stdio_passes_through_and_arguments_stay_whole() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-stdio");
        let mut cmd = outset_run(
            &dir,
            &[],
            mode,
            &[
                "sh",
                "-c",
                "read line; echo \"got $line\"; echo \"$1|$2\"; echo oops >&2; echo \"job=$UPSTART_JOB\"",
                "sh",
                "two words",
                "it's $HOME",
            ],
        );
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("outset run");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"hello\n")
            .expect("write");
        let out = child.wait_with_output().expect("output");
        assert!(out.status.success(), "{mode:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "got hello\ntwo words|it's $HOME\njob=run\n",
            "{mode:?}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("oops\n"));
    }
}

#[test]
fn pid_ns_gives_the_command_a_fresh_proc() {
    common::assert_root();
    let dir = TempDir::new("run-pidns");
    let out = output(outset_run(
        &dir,
        &[],
        &["--pid-ns"],
        &["sh", "-c", "cat /proc/1/comm"],
    ));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "outset\n");
}

#[test]
fn services_are_stopped_and_stubborn_ones_killed() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-stubborn");
        let m = marker(i as u32);
        let polite = "start on startup\nstop on runlevel [016]\nconsole none\n\
             exec sh -c 'trap \"echo polite >> @DIR@/stopped; exit 0\" TERM; echo up > @DIR@/polite.up; \
             while :; do sleep 0.05; done'\n";
        let stubborn = format!(
            "start on startup\nconsole none\nkill timeout 1\n\
             exec sh -c 'trap \"echo stubborn >> @DIR@/stopped\" TERM; sleep {m} & echo $! > @DIR@/child.pid; \
             while :; do sleep 0.05; done'\n"
        );
        let out = output(outset_run(
            &dir,
            &[("polite", polite), ("stubborn", &stubborn)],
            mode,
            &[
                "sh",
                "-c",
                &format!(
                    "d={}; while [ ! -s $d/child.pid ] || [ ! -s $d/polite.up ]; do sleep 0.05; done; \
                     kill -0 $(cat $d/child.pid)",
                    dir.0.display()
                ),
            ],
        ));
        // The command saw the stubborn service's child running.
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stopped = std::fs::read_to_string(dir.0.join("stopped")).unwrap_or_default();
        assert!(stopped.contains("polite\n"), "{mode:?}: {stopped}");
        // The stubborn one ignored SIGTERM and was killed at its timeout.
        assert!(stopped.contains("stubborn\n"), "{mode:?}: {stopped}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .any(|l| l.contains("stubborn main process") && l.contains("killed by KILL")),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
    }
}

#[test]
fn a_daemonised_grandchild_does_not_leak() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-leak");
        let m = marker(10 + i as u32);
        // Double fork plus a new session: the classic daemon.
        let script = format!("(setsid sleep {m} < /dev/null > /dev/null 2>&1 &); exit 0");
        let out = output(outset_run(&dir, &[], mode, &["sh", "-c", &script]));
        assert!(out.status.success(), "{mode:?}");
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}: leaked");
    }
}

#[test]
fn settle_timeout_names_the_unsettled_jobs_and_exits_124() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-settle");
        let m = marker(20 + i as u32);
        let stuck =
            format!("start on startup\nconsole none\npre-start exec sleep {m}\nexec sleep 1\n");
        let fine = "start on startup\nconsole none\nexec sleep 1000\n";
        let out = output(outset_run(
            &dir,
            &[("stuck", &stuck), ("fine", fine)],
            &[mode, &["--settle-timeout", "1"]].concat(),
            &["touch", &dir.0.join("ran").display().to_string()],
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(124), "{mode:?}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains("did not settle"))
            .unwrap_or_else(|| panic!("{mode:?}: {err}"));
        assert!(line.contains("stuck (start/pre-start)"), "{line}");
        assert!(!line.contains("fine"), "{line}");
        assert!(!dir.0.join("ran").exists(), "{mode:?}: the command ran");
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
    }
}

#[test]
fn signals_are_forwarded_to_the_command() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-signal");
        let ready = dir.0.join("ready");
        let script = format!(
            "trap 'exit 7' USR1; echo > {}; while :; do sleep 0.05; done",
            ready.display()
        );
        let mut child = outset_run(&dir, &[], mode, &["sh", "-c", &script])
            .stderr(Stdio::piped())
            .spawn()
            .expect("outset run");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "{mode:?}: command never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(7), "{mode:?}");

        // SIGTERM reaches a command that does not catch it: 128+15.
        let dir = TempDir::new("run-signal");
        let mut child = outset_run(&dir, &[], mode, &["sleep", "1000"])
            .spawn()
            .expect("outset run");
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(
            child.wait().expect("wait").code(),
            Some(128 + 15),
            "{mode:?}"
        );
    }
}

#[test]
fn usage_errors() {
    for args in [
        &["run"][..],
        &["run", "--"],
        &["run", "--settle-timeout", "x", "--", "true"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_outset"))
            .args(args)
            .output()
            .expect("outset");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("outset run: "));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_outset"))
        .args(["run", "--help"])
        .output()
        .expect("outset");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: outset run "));
}
