//! Panic containment (extensions.md §6), through the hidden trigger of the
//! `panic-trigger` feature: `cargo test --features panic-trigger --test
//! panic`. A panic on the loop's thread or on a control thread re-execs
//! statefully (jobs keep their pids, initctl answers again); when re-exec
//! is made to fail, init stays alive and keeps reaping children.

mod common;

use common::procs::{alive, children};
use common::TempDir;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SLEEPER: &str = "exec sleep 1000\n";

/// A session init (killed with its jobs on drop) with the shared client
/// helpers.
type Session = common::Started;

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)]) -> Session {
        common::start_session(tag, jobs, &["--verbose"])
    }

    fn pid(&self, job: &str) -> i32 {
        let (code, out, _) = self.ctl(&["status", job]);
        assert_eq!(code, 0, "initctl status {job}: {out}");
        let pid = common::pid_of(&out);
        assert!(pid > 0, "no pid in {out:?}");
        pid
    }
}

fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Emit the trigger event; the caller's connection goes away with the old
/// image, so the call itself may fail.
fn trigger(s: &Session, site: &str) {
    let _ = s.ctl(&["emit", "--no-wait", &format!("outset-panic-{site}")]);
}

fn panic_reexecs_statefully(site: &str) {
    let mut s = Session::start(&format!("panic-{site}"), &[("sleeper", SLEEPER)]);
    assert_eq!(s.ctl(&["start", "sleeper"]).0, 0);
    let pid = s.pid("sleeper");
    assert!(alive(pid));
    let daemon = s.child.id();

    trigger(&s, site);
    s.wait_for("the stateful re-exec", || {
        s.log().contains("Stateful re-exec completed")
    });
    s.wait_for("the control socket", || s.ctl(&["version"]).0 == 0);

    let log = s.log();
    assert!(
        log.contains(&format!("panic trigger outset-panic-{site}")),
        "the panic is logged:\n{log}"
    );
    assert!(s.alive(), "init exited:\n{log}");
    assert_eq!(s.child.id(), daemon);
    assert_eq!(s.pid("sleeper"), pid, "the job kept its process");
    assert!(alive(pid));
    // The new image supervises it: stopping works and the pid is reaped.
    assert_eq!(s.ctl(&["stop", "sleeper"]).0, 0, "{}", s.log());
    s.wait_for("the job's process to be reaped", || !exists(pid));
    assert!(s.ctl(&["status", "sleeper"]).1.contains("stop/waiting"));
}

#[test]
fn panic_on_the_main_thread_reexecs_statefully() {
    panic_reexecs_statefully("main");
}

#[test]
fn panic_on_a_control_thread_reexecs_statefully() {
    panic_reexecs_statefully("control");
}

/// Start outset as PID 1 of new pid and mount namespaces with re-exec
/// made to fail; returns unshare and the host pid of that init.
fn start_pid1(dir: &TempDir) -> (Child, i32) {
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    dir.write("conf/sleeper.conf", "start on startup\nexec sleep 1000\n");
    // A job whose main process leaves an orphan behind, reparented to init.
    dir.write(
        "conf/orphaner.conf",
        "start on startup\ntask\nscript\n  sleep 2 &\n  echo $! > @DIR@/orphan.pid\nend script\n"
            .replace("@DIR@", &dir.0.display().to_string())
            .as_str(),
    );
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "--mount-proc", "--net", "--"])
        .arg(env!("CARGO_BIN_EXE_outset"))
        .args(["--container", "--no-dbus", "--verbose", "--confdir"])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .env("OUTSET_TEST_REEXEC_FAIL", "1")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run unshare");
    let deadline = Instant::now() + Duration::from_secs(30);
    let init = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.parse::<i32>().expect("pid");
        }
        assert!(Instant::now() < deadline, "no init in the namespace");
        std::thread::sleep(Duration::from_millis(20));
    };
    (unshare, init)
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn failed_reexec_leaves_pid1_alive_and_reaping() {
    let dir = TempDir::new("panic-pid1");
    let (mut unshare, init) = start_pid1(&dir);
    let _guard = KillOnDrop(init);
    let log = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            if Instant::now() > deadline {
                let _ = nix_kill(init);
                panic!("timed out waiting for {what}; log:\n{}", log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let sleeper = || {
        children(init)
            .into_iter()
            .find(|p| cmdline(*p).starts_with("sleep 1000"))
    };
    wait_for("the sleeper job", &|| sleeper().is_some());
    let job = sleeper().expect("sleeper");

    // The control socket is abstract, in the namespace's network stack.
    let emit = Command::new("nsenter")
        .args([
            "--target",
            &init.to_string(),
            "--pid",
            "--mount",
            "--net",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_initctl"))
        .args(["emit", "--no-wait", "outset-panic-main"])
        .env_remove("UPSTART_SESSION")
        .stdin(Stdio::null())
        .output()
        .expect("initctl");
    wait_for("both re-execs to fail", &|| {
        log().contains("only reaping children")
    });
    let text = log();
    assert!(
        text.contains("panic trigger outset-panic-main"),
        "{emit:?}\n{text}"
    );
    assert!(text.contains("attempting a stateless re-exec"), "{text}");

    // Still PID 1 of the namespace, and its children are reaped: the job
    // killed from outside, and the orphan the task left behind.
    assert!(alive(init), "init died:\n{text}");
    nix_kill(job).expect("kill the job");
    wait_for("the killed job to be reaped", &|| !exists(job));
    let orphan: i32 = std::fs::read_to_string(dir.0.join("orphan.pid"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    assert!(orphan > 0, "the task recorded its orphan:\n{}", log());
    // The pid is in the namespace's numbering; wait until init has no
    // child left at all, which includes the orphan (it exits on its own).
    wait_for("every child to be reaped", &|| children(init).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(init), "init died:\n{}", log());
    assert!(unshare.try_wait().expect("wait").is_none());

    // A container's PID 1 ends on SIGTERM, even in this state.
    // SAFETY: kill with a pid we started.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = unshare.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = unshare.kill();
            panic!("init did not end on SIGTERM:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1), "{}", log());
}

/// Never leave an init behind, whatever the test's outcome.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix_kill(self.0);
    }
}

fn nix_kill(pid: i32) -> Result<(), std::io::Error> {
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
