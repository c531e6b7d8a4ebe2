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

/// Builds a root without the container markers (`/.dockerenv` and
/// friends) from bind mounts of the host's directories, with a small
/// `/dev` whose `console` and `kmsg` are plain files (so the log can be
/// read), then starts outset as PID 1 of new PID and network namespaces
/// chrooted there: machine mode, as on a real machine, except that
/// reboot(2) only ends the namespace.
const MACHINE_ROOT: &str = r#"
set -e
R=/mnt
mount -t tmpfs tmpfs $R
for e in /*; do
  n=${e#/}
  case $n in proc|dev|mnt) continue;; esac
  if [ -L "$e" ]; then cp -P "$e" "$R/$n"
  elif [ -d "$e" ]; then mkdir "$R/$n"; mount --rbind "$e" "$R/$n"
  fi
done
mkdir $R/proc $R/dev
mount -t tmpfs tmpfs $R/dev
for n in null zero full random urandom tty ptmx; do
  touch $R/dev/$n; mount --bind /dev/$n $R/dev/$n
done
mkdir $R/dev/pts; mount --bind /dev/pts $R/dev/pts
: > "$DIR/console"; touch $R/dev/console; mount --bind "$DIR/console" $R/dev/console
: > "$DIR/kmsg"; touch $R/dev/kmsg; mount --bind "$DIR/kmsg" $R/dev/kmsg
exec unshare --pid --net --fork --root=$R --mount-proc "$OUTSET" --confdir "$DIR/conf" --logdir "$DIR/logs"
"#;

#[test]
fn machine_pid1_reexecs_on_sigterm_and_powers_off_through_reboot2() {
    use std::time::{Duration, Instant};
    common::namespace::assert_root();
    let dir = common::TempDir::new("machine");
    let d = dir.0.display().to_string();
    std::fs::create_dir_all(dir.0.join("bin")).expect("bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_shutdown"), dir.0.join("bin/poweroff"))
        .expect("symlink");
    let expand = |t: &str| t.replace("@DIR@", &d).replace("@BIN@", &format!("{d}/bin"));
    dir.write("conf/observer.conf", &expand(OBSERVER));
    // Appends its pid at every start: one line means it was never
    // restarted, across the re-exec too.
    dir.write(
        "conf/svc.conf",
        &expand(
            "start on startup\nstop on runlevel [016]\nconsole none\n\
             exec sh -c 'echo $$ >> @DIR@/svc.pids; trap \"echo svc >> @DIR@/stopped; exit 0\" TERM; \
             while :; do sleep 0.05; done'\n",
        ),
    );
    // Waits for @DIR@/go, then powers off (retrying while the re-exec'd
    // image is not listening yet).
    dir.write(
        "conf/trigger.conf",
        &expand(
            "start on startup\nconsole none\nscript\n  \
             while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
             until @BIN@/poweroff 2>> @DIR@/cmd.err; do sleep 0.1; done\nend script\n",
        ),
    );
    let mut child = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            MACHINE_ROOT,
        ])
        .env("DIR", &dir.0)
        .env("OUTSET", env!("CARGO_BIN_EXE_outset"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("unshare");
    let log = || {
        format!(
            "kmsg:\n{}\nconsole:\n{}",
            std::fs::read_to_string(dir.0.join("kmsg")).unwrap_or_default(),
            std::fs::read_to_string(dir.0.join("console")).unwrap_or_default()
        )
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "{what}; {}", log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("svc never started", &|| dir.0.join("svc.pids").exists());
    // The namespace's PID 1: the child of the inner unshare.
    let id = child.id();
    let init: i32 = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .expect("init pid");

    // SIGTERM to a machine's PID 1 is a stateful re-exec.
    // SAFETY: kill(2) on the namespace's init.
    unsafe { libc::kill(init, libc::SIGTERM) };
    wait("no re-exec", &|| {
        std::fs::read(format!("/proc/{init}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"--restart"))
    });
    assert!(log().contains("init: Re-executing "), "{}", log());

    // poweroff: the system stop, then reboot(2), which inside a PID
    // namespace kills PID 1 with SIGINT.
    std::fs::write(dir.0.join("go"), "").expect("go");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("PID 1 did not end; {}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal() == Some(libc::SIGINT) || status.code() == Some(128 + libc::SIGINT),
        "{status:?}; {}",
        log()
    );
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
    assert_eq!(read("svc.pids").lines().count(), 1, "{}", log());
    assert_eq!(read("stopped"), "svc\n", "{}", log());
    assert_eq!(read("runlevel"), "0 POWEROFF\n", "{}", log());
    assert!(log().contains("init: Will now power-off"), "{}", log());
}

#[test]
fn a_delayed_shutdown_waits_and_can_be_cancelled() {
    use std::time::{Duration, Instant};
    let dir = common::TempDir::new("shutdown-cancel");
    let pid_file = dir.0.join("shutdown.pid");
    let shutdown = env!("CARGO_BIN_EXE_shutdown");
    let waiting = std::process::Command::new(shutdown)
        .args(["-h", "+1", "going away"])
        .env("OUTSET_SHUTDOWN_PID_FILE", &pid_file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shutdown");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n')) {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = std::process::Command::new(shutdown)
        .arg("-c")
        .env("OUTSET_SHUTDOWN_PID_FILE", &pid_file)
        .output()
        .expect("shutdown -c");
    assert!(cancel.status.success(), "{cancel:?}");
    let out = waiting.wait_with_output().expect("wait");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("going down for power off in 1 minute(s): going away"),
        "{err}"
    );
    assert!(err.contains("Shutdown cancelled"), "{err}");
    assert!(!pid_file.exists());
    // Nothing left to cancel.
    let again = std::process::Command::new(shutdown)
        .arg("-c")
        .env("OUTSET_SHUTDOWN_PID_FILE", &pid_file)
        .output()
        .expect("shutdown -c");
    assert_eq!(again.status.code(), Some(1));
}
