//! Restoring outset's own state (`--state-fd`) from a payload that does
//! not match what was handed over: descriptors it names but that were not
//! inherited are ignored, malformed event trees are refused, and either way
//! init keeps running.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The state of a fresh session with one running job, from `GetState()`.
fn payload() -> serde_json::Value {
    let mut s = common::start_session("restore-src", &[("sleeper", "exec sleep 1000\n")], &[]);
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

/// Start `outset --user` restoring `state` from descriptor 3; returns its
/// log once it answers `initctl version` (or fails the test).
fn restore(tag: &str, state: &serde_json::Value) -> String {
    let dir = common::TempDir::new(tag);
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    dir.write("state.json", &state.to_string());
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new("sh")
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
    let read_log = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        if let Some(addr) = std::fs::read_to_string(&session)
            .ok()
            .and_then(|t| Some(t.trim_end().strip_prefix("UPSTART_SESSION=")?.to_string()))
        {
            let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
                .args(["emit", "after-restore"])
                .env("UPSTART_SESSION", &addr)
                .output()
                .expect("initctl");
            if o.status.success() {
                break true;
            }
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let text = read_log();
    assert!(answered, "init does not answer after the restore:\n{text}");
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
    assert!(
        log.contains("Ignoring 9 descriptors the state names but did not hand over"),
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
