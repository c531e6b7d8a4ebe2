//! Restoring outset's own state (`--state-fd`) from a payload that does
//! not match what was handed over: descriptors it names but that were not
//! inherited are ignored, malformed event trees are refused, and either way
//! init keeps running.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLEEPER: &str = "exec sleep 1000\n";

/// The state of a fresh session with one running job, from `GetState()`.
fn payload() -> serde_json::Value {
    let mut s = common::start_session("restore-src", &[("sleeper", SLEEPER)], &[]);
    let ctl = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["start", "sleeper"])
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("initctl");
    assert!(ctl.status.success(), "{ctl:?}");
    let out = Command::new("dbus-send")
        .arg(format!("--peer={}", s.address))
        .args([
            "--print-reply=literal",
            "/com/ubuntu/Upstart",
            "com.ubuntu.Upstart0_6.GetState",
        ])
        .output()
        .expect("dbus-send");
    // SAFETY: kill with the pid of the child we started.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let _ = s.child.wait();
    assert!(out.status.success(), "{out:?}");
    let mut state: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("GetState returns JSON");
    // The restored image takes its log level from the state.
    state["outset"]["daemon"]["log_priority"] = "info".into();
    state
}

/// A session init started on a crafted state, answering.
struct Restored {
    dir: common::TempDir,
    child: std::process::Child,
    address: String,
}

impl Restored {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    /// `initctl ARGS`, bounded: (exit code, stdout).
    fn ctl(&self, args: &[&str]) -> (i32, String) {
        let o = Command::new("timeout")
            .arg("30")
            .arg(env!("CARGO_BIN_EXE_initctl"))
            .args(args)
            .env("UPSTART_SESSION", &self.address)
            .stdin(Stdio::null())
            .output()
            .expect("initctl");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `outset --user` restoring `state` from descriptor 3 and wait
/// until it answers (or fail the test with its log).
fn start_restored(tag: &str, state: &serde_json::Value) -> Restored {
    let dir = common::TempDir::new(tag);
    // The job the state names is still configured, where the state says.
    dir.write("conf/sleeper.conf", SLEEPER);
    let mut state = state.clone();
    for source in state["conf_sources"].as_array_mut().into_iter().flatten() {
        source["path"] = dir.0.join("conf").display().to_string().into();
    }
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    dir.write("state.json", &state.to_string());
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" --user --no-startup-event --verbose --confdir "$1" --logdir "$2" --restart --state-fd 3 3<"$3""#)
        .arg(env!("CARGO_BIN_EXE_outset"))
        .arg(dir.0.join("conf"))
        .arg(dir.0.join("logs"))
        .arg(dir.0.join("state.json"))
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("outset");
    let session = dir
        .0
        .join(format!("run/upstart/sessions/{}.session", child.id()));
    let mut me = Restored {
        dir,
        child,
        address: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(addr) = std::fs::read_to_string(&session)
            .ok()
            .and_then(|t| Some(t.trim_end().strip_prefix("UPSTART_SESSION=")?.to_string()))
        {
            me.address = addr;
            if me.ctl(&["emit", "after-restore"]).0 == 0 {
                break;
            }
        }
        let gone = me.child.try_wait().ok().flatten().is_some();
        assert!(
            Instant::now() < deadline && !gone,
            "init does not answer after the restore:\n{}",
            me.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    me
}

/// Start `outset --user` restoring `state` from descriptor 3; returns its
/// log once it answers `initctl version` (or fails the test).
fn restore(tag: &str, state: &serde_json::Value) -> String {
    let mut restored = start_restored(tag, state);
    let _ = restored.child.kill();
    let _ = restored.child.wait();
    let text = restored.log();
    assert!(
        text.contains("after-restore"),
        "init still logs after the restore:\n{text}"
    );
    text
}

#[test]
fn descriptors_not_handed_over_are_not_adopted() {
    let mut state = payload();
    let outset = &mut state["outset"]["daemon"];
    // Standard descriptors and ones that are not open at all.
    outset["event_fds"] = serde_json::json!([0, 1, 2, 200, 201]);
    outset["scripts"] = serde_json::json!([[12345, "echo hi", 2]]);
    outset["io"] = serde_json::json!([
        {"Status": {"pid": 12345, "fd": 2, "buf": []}},
        {"Script": {"fd": 1, "data": [104, 105], "done": 0}},
        {"Status": {"pid": 12346, "fd": 202, "buf": []}}
    ]);
    let log = restore("restore-fds", &state);
    // The nine above, and the source init's `expect notify` socket.
    assert!(
        log.contains("Ignoring 10 descriptors the state names but did not hand over"),
        "{log}"
    );
    assert!(log.contains("Stateful re-exec completed"), "{log}");
}

#[test]
fn malformed_event_trees_are_refused() {
    let mut state = payload();
    let classes = state["job_classes"].as_array_mut().expect("job_classes");
    let sleeper = classes
        .iter_mut()
        .find(|c| c["name"] == "sleeper")
        .expect("the sleeper class");
    // Conditions travel as post-order operator lists: an operator without
    // its operands must be refused, not walked.
    sleeper["start_on"] = serde_json::json!([{"type": "EVENT_AND", "value": 0}]);
    let log = restore("restore-tree", &state);
    assert!(
        log.contains("reverting to stateless re-exec"),
        "the refusal is logged:\n{log}"
    );
    assert!(!log.contains("Stateful re-exec completed"), "{log}");
}

/// The sleeper's instance in a payload.
fn sleeper(state: &mut serde_json::Value) -> &mut serde_json::Value {
    state["job_classes"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find(|c| c["name"] == "sleeper"))
        .and_then(|c| c["jobs"].as_array_mut()?.first_mut())
        .expect("the sleeper instance")
}

/// A process that is not init's, in its own process group (so that a
/// group signal meant for a job could reach nothing else); killed when
/// dropped.
struct Stranger(std::process::Child);

impl Stranger {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        Stranger(
            Command::new("sleep")
                .arg("1000")
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sleep"),
        )
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_restored_pid_that_is_not_inits_child_is_lost_not_signalled() {
    let mut state = payload();
    let other = Stranger::start();
    let pid = other.0.id() as i64;
    sleeper(&mut state)["pid"][0] = pid.into();
    let r = start_restored("restore-stranger", &state);
    r_wait(&r, "the job to move on", || {
        r.ctl(&["status", "sleeper"]).1 == "sleeper stop/waiting\n"
    });
    assert!(
        r.log().contains(&format!(
            "sleeper main process ({pid}) is not a child of init: treating it as exited"
        )),
        "{}",
        r.log()
    );
    // Nothing to stop: the call answers at once, and signals nobody.
    assert_ne!(r.ctl(&["stop", "sleeper"]).0, 124);
    assert!(common::procs::alive(pid as i32), "the stranger lives");
    assert!(!r.log().contains("Sending"), "{}", r.log());
}

#[test]
fn held_output_for_a_file_outside_the_log_directory_is_refused() {
    let mut state = payload();
    let victim = common::TempDir::new("restore-victim");
    let target = victim.write("precious", "precious\n");
    let outset = &mut state["outset"]["daemon"];
    outset["disk_writeable"] = false.into();
    outset["unflushed"] = serde_json::json!([
        [target.display().to_string(), b"overwritten\n".to_vec()],
        ["relative.log", b"x".to_vec()]
    ]);
    let r = start_restored("restore-paths", &state);
    assert_eq!(r.ctl(&["notify-disk-writeable"]).0, 0);
    assert_eq!(
        std::fs::read_to_string(&target).expect("victim"),
        "precious\n"
    );
    let log = r.log();
    assert!(
        log.contains(&format!(
            "Ignoring output held for {}: not a file of the log directory",
            target.display()
        )),
        "{log}"
    );
    assert!(
        log.contains("Ignoring output held for relative.log"),
        "{log}"
    );
}

/// Wait (30 s at most) until `cond` holds.
fn r_wait(r: &Restored, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            r.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_restored_pid_naming_init_itself_is_never_signalled() {
    let mut state = payload();
    sleeper(&mut state)["pid"][0] = 1.into();
    let file = common::TempDir::new("restore-pid1-state");
    // The configuration the state names (it is read again after the restore).
    file.write("conf/sleeper.conf", SLEEPER);
    for source in state["conf_sources"].as_array_mut().into_iter().flatten() {
        source["path"] = file.0.join("conf").display().to_string().into();
    }
    let path = file.write("state.json", &state.to_string());
    let wrapper = format!(r#"exec "$@" 3<"{}""#, path.display());
    let ns = common::namespace::Namespace::serving_with(
        "restore-pid1",
        &[("sleeper", SLEEPER)],
        &["sh", "-c", &wrapper, "sh"],
        &["--restart", "--state-fd", "3"],
    );
    ns.wait_for("the job to move on", 30, || {
        String::from_utf8_lossy(&ns.ctl(&["status", "sleeper"]).stdout) == "sleeper stop/waiting\n"
    });
    assert!(
        ns.log()
            .contains("sleeper main process (1) is init itself: treating it as exited"),
        "{}",
        ns.log()
    );
    let _ = ns.ctl(&["stop", "sleeper"]);
    assert!(ns.alive(), "PID 1 lives; log:\n{}", ns.log());
    assert!(ns.ctl(&["version"]).status.success(), "{}", ns.log());
}
