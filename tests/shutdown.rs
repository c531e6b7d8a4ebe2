//! shutdown, reboot, halt, poweroff and telinit 0|6 inside a container:
//! the built-in stop runs, services stop, PID 1 exits 0; `-f` calls
//! reboot(2) at once, which the kernel turns into the end of the PID
//! namespace. Needs root. The commands run inside the namespace, from a
//! job of its PID 1, never on the host.

mod common;

use common::namespace::Namespace;
use std::os::unix::process::{CommandExt, ExitStatusExt};

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
         script\n  : > @DIR@/utmp\n  : > @DIR@/wtmp\n  while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
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
        // A restart command for the firmware: still a reboot.
        ("reboot -f firmware-update", libc::SIGHUP),
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
        // But the system's going down is on record, as `last` shows it.
        let last = last(&ns.dir.0.join("wtmp"));
        assert!(last.contains("shutdown system down"), "{command}: {last}");
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
}

#[test]
fn machine_pid1_reexecs_on_sigterm_and_powers_off_through_reboot2() {
    use std::time::{Duration, Instant};
    common::assert_root();
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
            "start on startup\nconsole none\nenv OUTSET_UTMP_FILE=@DIR@/utmp\nenv OUTSET_WTMP_FILE=@DIR@/wtmp\n\
             script\n  : > @DIR@/utmp\n  : > @DIR@/wtmp\n  \
             while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
             until @BIN@/poweroff 2>> @DIR@/cmd.err; do sleep 0.1; done\nend script\n",
        ),
    );
    // Inside a PID namespace only `--machine` makes it a machine.
    let conf = format!("{d}/conf");
    let logs = format!("{d}/logs");
    let mut child = common::namespace::MarkerFree(
        common::namespace::marker_free_pid1(
            &dir,
            &["--machine", "--confdir", &conf, "--logdir", &logs],
        )
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("unshare"),
    );
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
    let init = child.init_pid().expect("init pid");

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
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            panic!("PID 1 did not end; {}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
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

/// `last -x -f FILE`: the records of a wtmp file as the admin reads them.
fn last(wtmp: &std::path::Path) -> String {
    let out = std::process::Command::new("last")
        .args(["-x", "-f"])
        .arg(wtmp)
        .output()
        .expect("last (util-linux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A terminal a user is logged in on: a pseudo-terminal recorded in a
/// utmp file of the test's own, whose output the test reads.
struct LoggedIn {
    master: std::fs::File,
    _slave: std::os::fd::OwnedFd,
    utmp: std::path::PathBuf,
}

impl LoggedIn {
    fn new(dir: &common::TempDir) -> LoggedIn {
        use std::os::fd::AsFd;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let name = nix::unistd::ttyname(pty.slave.as_fd()).expect("ttyname");
        let line = name.strip_prefix("/dev").expect("a /dev path");
        let utmp = dir.0.join("utmp");
        // SAFETY: an all-zero utmpx is a valid empty record.
        let mut rec: libc::utmpx = unsafe { std::mem::zeroed() };
        rec.ut_type = libc::USER_PROCESS;
        rec.ut_pid = std::process::id() as i32;
        for (d, s) in rec
            .ut_line
            .iter_mut()
            .zip(line.to_string_lossy().trim_start_matches('/').bytes())
        {
            *d = s as libc::c_char;
        }
        for (d, s) in rec.ut_user.iter_mut().zip("tester".bytes()) {
            *d = s as libc::c_char;
        }
        // SAFETY: utmpx is plain old data; the file holds whole records.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&rec as *const libc::utmpx).cast::<u8>(),
                std::mem::size_of::<libc::utmpx>(),
            )
        };
        std::fs::write(&utmp, bytes).expect("write utmp");
        let master = std::fs::File::from(pty.master);
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("non-blocking");
        LoggedIn {
            master,
            _slave: pty.slave,
            utmp,
        }
    }

    /// What has been written to the terminal so far.
    fn screen(&mut self) -> String {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = self.master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[test]
fn warnings_reach_every_logged_in_terminal() {
    common::assert_root();
    let dir = common::TempDir::new("shutdown-wall");
    let mut tty = LoggedIn::new(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shutdown"))
        .args(["-k", "now", "lunch", "break"])
        .env("OUTSET_UTMP_FILE", &tty.utmp)
        .output()
        .expect("shutdown");
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let screen = tty.screen();
    assert!(
        screen.contains("Broadcast message from root@"),
        "{screen:?}"
    );
    assert!(
        screen.contains("The system is going down for maintenance NOW!"),
        "{screen:?}"
    );
    assert!(screen.contains("lunch break"), "{screen:?}");
}

#[test]
fn a_delayed_shutdown_waits_keeps_logins_out_and_can_be_cancelled() {
    use std::time::{Duration, Instant};
    common::assert_root();
    let dir = common::TempDir::new("shutdown-cancel");
    let mut tty = LoggedIn::new(&dir);
    let pid_file = dir.0.join("shutdown.pid");
    let nologin = dir.0.join("nologin");
    let utmp = tty.utmp.clone();
    let shutdown = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_shutdown"));
        c.env("OUTSET_SHUTDOWN_PID_FILE", &pid_file)
            .env("OUTSET_NOLOGIN_FILE", &nologin)
            .env("OUTSET_UTMP_FILE", &utmp);
        c
    };
    let waiting = shutdown()
        .args(["-P", "+1", "going", "away"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shutdown");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&pid_file).is_ok_and(|t| t.ends_with('\n')) {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Another one is refused while this one waits.
    let second = shutdown().args(["-r", "+3"]).output().expect("shutdown");
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("Another shutdown is already running"));
    // Within five minutes of the end, new logins are refused.
    let text = std::fs::read_to_string(&nologin).expect("/etc/nologin written");
    assert!(
        text.contains("The system is going down for power off in 1 minute!"),
        "{text:?}"
    );
    assert!(text.contains("going away"), "{text:?}");
    let screen = tty.screen();
    assert!(screen.contains("power off in 1 minute!"), "{screen:?}");

    let cancel = shutdown()
        .args(["-c", "never", "mind"])
        .output()
        .expect("shutdown -c");
    assert!(cancel.status.success(), "{cancel:?}");
    let out = waiting.wait_with_output().expect("wait");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, "shutdown: Shutdown cancelled\n");
    assert!(!pid_file.exists());
    assert!(!nologin.exists(), "/etc/nologin removed on cancel");
    assert!(tty.screen().contains("never mind"));
    // Nothing left to cancel.
    let again = shutdown().arg("-c").output().expect("shutdown -c");
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "shutdown: Cannot find pid of running shutdown\n"
    );
}

#[test]
fn without_an_init_shutdown_asks_sysvinit_through_its_fifo() {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    common::assert_root();
    let dir = common::TempDir::new("shutdown-sysvinit");
    let fifo = dir.0.join("initctl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // In a network namespace of its own no init listens on the control
    // socket.
    let run = || {
        std::process::Command::new("unshare")
            .args(["--net", env!("CARGO_BIN_EXE_shutdown"), "-r", "now"])
            .env("OUTSET_INITCTL_FIFO", &fifo)
            .env("OUTSET_UTMP_FILE", dir.0.join("utmp"))
            .output()
            .expect("unshare shutdown")
    };
    // Nobody reads the FIFO: nothing can take the request.
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "shutdown: Unable to shutdown system\n"
    );

    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open fifo");
    let out = run();
    assert!(out.status.success(), "{out:?}");
    let mut req = Vec::new();
    reader.read_to_end(&mut req).ok();
    assert_eq!(req.len(), 384, "sysvinit's request size");
    let int = |i: usize| i32::from_ne_bytes(req[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    assert_eq!(
        (int(0), int(1), int(2), int(3)),
        (0x0309_1969, 1, b'6' as i32, 5)
    );
}

#[test]
fn reboot_w_only_writes_the_shutdown_record() {
    common::assert_root();
    let dir = common::TempDir::new("shutdown-wtmp");
    let wtmp = dir.0.join("wtmp");
    // As on a machine, the file exists (glibc appends, never creates).
    std::fs::write(&wtmp, "").expect("create wtmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shutdown"))
        .arg0("reboot")
        .arg("-w")
        .env("OUTSET_UTMP_FILE", dir.0.join("utmp"))
        .env("OUTSET_WTMP_FILE", &wtmp)
        .output()
        .expect("reboot -w");
    assert!(out.status.success(), "{out:?}");
    assert!(
        last(&wtmp).contains("shutdown system down"),
        "{}",
        last(&wtmp)
    );
}

#[test]
fn exit_code_becomes_the_containers_exit_status() {
    for (command, code) in [
        ("shutdown --exit-code 7 -h now", 7),
        ("shutdown --exit-code=9 -r now", 9),
        ("poweroff --exit-code 3", 3),
        ("halt --exit-code=0", 0),
    ] {
        let mut ns = run_command("shutdown-exit-code", command);
        let status = ns.wait_exit();
        let log = ns.log();
        let out = std::fs::read_to_string(ns.dir.0.join("cmd.out")).unwrap_or_default();
        assert_eq!(status.code(), Some(code), "{command}: {out}; log:\n{log}");
        let stopped = std::fs::read_to_string(ns.dir.0.join("stopped")).unwrap_or_default();
        assert_eq!(stopped, "svc\n", "{command}: log:\n{log}");
    }
}

#[test]
fn a_bad_exit_code_is_refused() {
    let shutdown = env!("CARGO_BIN_EXE_shutdown");
    for (args, why) in [
        (
            &["--exit-code", "256", "-h", "now"][..],
            "invalid exit code: 256",
        ),
        (&["--exit-code=x", "-h", "now"], "invalid exit code: x"),
        (
            &["-h", "now", "--exit-code"],
            "missing argument: --exit-code",
        ),
    ] {
        let out = std::process::Command::new(shutdown)
            .args(args)
            .output()
            .expect("shutdown");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("shutdown: {why}")),
            "{args:?}: {err}"
        );
    }
}
