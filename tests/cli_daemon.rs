//! The `outset` command line: mistakes are refused or reported, never
//! silently ignored, and the options of Upstart's `init` behave as there.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::assert_root;
use common::namespace::bounded;
use common::{spawn_session, start_session, start_session_wrapped, TempDir};

/// `outset ARGS` with its runtime directory in DIR/run, bounded: an
/// outset that starts instead of refusing is killed (status 124).
fn outset(dir: &TempDir, args: &[&str]) -> Output {
    std::fs::create_dir_all(dir.0.join("run")).expect("runtime dir");
    bounded(10, env!("CARGO_BIN_EXE_outset"))
        .args(args)
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stdin(Stdio::null())
        .output()
        .expect("run outset")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `outset --user --no-startup-event ARGS` on DIR/conf (no `--logdir`
/// unless ARGS has one), as a running session.
fn session_on(dir: TempDir, args: &[&str]) -> common::Started {
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outset"));
    cmd.args(["--user", "--no-startup-event", "--confdir"])
        .arg(dir.0.join("conf"))
        .args(args);
    spawn_session(dir, cmd)
}

#[test]
fn unknown_and_misspelled_options_are_refused() {
    let dir = TempDir::new("badopt");
    let conf = dir.0.join("conf");
    std::fs::create_dir_all(&conf).expect("conf");
    let conf = conf.display().to_string();
    for (args, named) in [
        (vec!["--user", "--confdri", &conf], "'--confdri'"),
        (vec!["--user", "--bogus"], "'--bogus'"),
        (vec!["--bogus"], "'--bogus'"),
    ] {
        let o = outset(&dir, &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    // The likely meaning is offered, as clap does.
    let o = outset(&dir, &["--user", "--confdri", &conf]);
    assert!(text(&o.stderr).contains("--confdir"), "{o:?}");
}

#[test]
fn a_repeated_flag_is_simply_set() {
    let s = start_session_wrapped(
        "twice",
        &[("dump", "task\nexec sh -c 'env > @DIR@/env.out'\n")],
        &["--no-inherit-env", "--no-inherit-env"],
        &["env", "OUTSET_TEST_MARKER=inherited"],
    );
    let (code, _, err) = s.ctl(&["start", "dump"]);
    assert_eq!(code, 0, "{err}\n{}", s.log());
    let env = std::fs::read_to_string(s.dir.0.join("env.out")).expect("env.out");
    assert!(!env.contains("OUTSET_TEST_MARKER"), "{env}");
    assert!(env.contains("UPSTART_JOB=dump"), "{env}");
}

#[test]
fn options_outset_does_not_implement_are_refused_with_the_reason() {
    let dir = TempDir::new("unsupported");
    for (args, reason) in [
        (
            vec!["--user", "--session"],
            "--session and --user cannot be combined",
        ),
        (
            vec!["--user", "--chroot-sessions"],
            "--chroot-sessions is not supported: outset does not implement chroot sessions",
        ),
    ] {
        let o = outset(&dir, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(text(&o.stderr).contains(reason), "{args:?}: {o:?}");
    }
}

/// `telinit u` to the session `s`, then wait until the new image has
/// restored its state.
fn reexec(s: &common::Started) {
    let before = s.log().matches("Stateful re-exec completed").count();
    let o = s.cmd("timeout", &["90", env!("CARGO_BIN_EXE_telinit"), "u"]);
    assert!(o.status.code().is_some(), "telinit u: {o:?}");
    s.wait_for("the re-exec", || {
        s.log().matches("Stateful re-exec completed").count() > before
    });
    s.wait_for("the control socket", || s.ctl(&["version"]).0 == 0);
}

#[test]
fn write_state_file_keeps_the_state_of_each_reexec() {
    let s = start_session(
        "statefile",
        &[("svc", "exec sleep 1000\n")],
        &["--verbose", "--write-state-file"],
    );
    assert_eq!(s.ctl(&["start", "svc"]).0, 0, "{}", s.log());
    let state = s.dir.0.join("logs/upstart.state");
    assert!(!state.exists());
    reexec(&s);
    let data = std::fs::read_to_string(&state).expect("upstart.state after a re-exec");
    let json: serde_json::Value = serde_json::from_str(&data).expect("the state is JSON");
    assert!(json.to_string().contains("svc"), "{data}");
    // Written again on the next re-exec, by the image started from the
    // same command line.
    std::fs::remove_file(&state).expect("remove");
    reexec(&s);
    assert!(state.exists(), "{}", s.log());
    assert_eq!(s.ctl(&["stop", "svc"]).0, 0);
}

#[test]
fn a_missing_job_directory_is_reported() {
    let s = start_session("nodir", &[], &["--confdir", "/nonexistent/outset-jobs"]);
    s.wait_for("the warning", || {
        s.log().contains(
            "/nonexistent/outset-jobs: Unable to load configuration: No such file or directory",
        )
    });
}

#[test]
fn a_missing_log_directory_is_created() {
    let dir = TempDir::new("mklogdir");
    let logs = dir.0.join("deep/er/logs");
    let s = session_on(dir, &["--logdir", &logs.display().to_string()]);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&logs).expect("log directory created");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{}", s.log());
    assert!(!s.log().contains("log directory"), "{}", s.log());
}

#[test]
fn an_unusable_log_directory_is_reported() {
    let file = TempDir::new("logfile");
    let not_a_dir = file.write("plain", "");
    for (bad, reason) in [
        (Path::new("/proc/nope"), "No such file or directory"),
        (not_a_dir.as_path(), "Not a directory"),
    ] {
        let s = session_on(
            TempDir::new("badlogdir"),
            &["--logdir", &bad.display().to_string()],
        );
        let want = format!(
            "init: Unable to use log directory {}: {reason}; job output will be lost",
            bad.display()
        );
        s.wait_for("the warning", || s.log().contains(&want));
    }
}

/// Upstart's own suites remove an init's log directory right after
/// killing it with SIGKILL: the lock leaves nothing behind in it.
#[test]
fn the_log_directory_of_a_killed_init_can_be_removed() {
    let mut s = start_session("lock-rmdir", &[], &[]);
    let logs = s.dir.0.join("logs");
    assert!(logs.is_dir());
    let _ = s.child.kill();
    let _ = s.child.wait();
    let left: Vec<_> = std::fs::read_dir(&logs)
        .expect("log dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir(&logs).expect("rmdir the log directory");
}

#[test]
fn a_second_init_on_the_same_log_directory_names_the_first() {
    let first = start_session("lock-a", &[], &[]);
    let logs = first.dir.0.join("logs");
    let second = session_on(
        TempDir::new("lock-b"),
        &["--logdir", &logs.display().to_string()],
    );
    let want = format!(
        "init: Another init (pid {}) writes job logs to {}",
        first.child.id(),
        logs.display()
    );
    second.wait_for("the warning", || second.log().contains(&want));
    assert!(!first.log().contains("Another init"), "{}", first.log());
}

#[test]
fn relative_paths_are_resolved_before_pid1_changes_directory() {
    assert_root();
    let dir = TempDir::new("relative");
    dir.write("conf/rel.conf", "start on startup\ntask\nexec echo ran\n");
    // Unique, so that resolving from `/` (the defect) is visible, and
    // removed below if it happens.
    let logs = format!("outset-test-rel-logs-{}", std::process::id());
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let mut timeout = bounded(90, "unshare")
        .args(["--pid", "--mount", "--net", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_outset"))
        .args([
            "--container",
            "--no-dbus",
            "--confdir",
            "conf",
            "--logdir",
            &logs,
        ])
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare");
    let job_log = dir.0.join(&logs).join("rel.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ran = loop {
        if std::fs::read_to_string(&job_log).is_ok_and(|t| t.trim_end() == "ran") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Stop the container: SIGTERM to its PID 1 (timeout runs unshare,
    // which runs outset).
    let unshare = common::procs::child_of(timeout.id() as i32);
    if let Some(init) = unshare.and_then(common::procs::child_of) {
        // SAFETY: kill(2) on the namespace's init.
        unsafe { libc::kill(init, libc::SIGTERM) };
    }
    let status = timeout.wait().expect("wait");
    let _ = std::fs::remove_dir_all(Path::new("/").join(&logs));
    let init_log = std::fs::read_to_string(dir.0.join("init.log")).unwrap_or_default();
    assert!(ran, "the job did not run or log; init log:\n{init_log}");
    assert!(status.success(), "{status:?}; init log:\n{init_log}");
}

/// A copy of outset in DIR, with a `telinit` beside it that records its
/// arguments in DIR/telinit.out.
fn outset_beside_a_telinit(dir: &TempDir) -> std::path::PathBuf {
    let copy = dir.0.join("outset");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_outset"), &copy).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_outset"), &copy).expect("copy outset");
    }
    let script = dir.write(
        "telinit",
        &format!(
            "#!/bin/sh\necho \"$*\" > {}/telinit.out\nexit 7\n",
            dir.0.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy
}

#[test]
fn a_runlevel_argument_outside_pid1_is_handed_to_telinit() {
    assert_root();
    let dir = TempDir::new("telinit");
    let copy = outset_beside_a_telinit(&dir);
    for args in [vec!["5"], vec!["q"], vec!["u"], vec!["--no-dbus", "2"]] {
        let o = bounded(10, &copy.display().to_string())
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("outset");
        // telinit's own status comes back: it replaced outset.
        assert_eq!(o.status.code(), Some(7), "{args:?}: {o:?}");
        let got = std::fs::read_to_string(dir.0.join("telinit.out")).expect("telinit ran");
        assert_eq!(got, format!("{}\n", args.join(" ")));
    }
    // Without one, the message stays.
    let o = bounded(10, &copy.display().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("outset");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        text(&o.stderr).contains("Not being executed as init"),
        "{o:?}"
    );
}

#[test]
fn help_and_version_answer_in_both_forms() {
    let dir = TempDir::new("help");
    for h in ["--help", "-h"] {
        let o = outset(&dir, &[h]);
        assert_eq!(o.status.code(), Some(0), "{h}: {o:?}");
        let out = text(&o.stdout);
        assert!(out.contains("--confdir"), "{h}: {out}");
        assert!(out.contains("outset run [DAEMON-OPTIONS]"), "{h}: {out}");
    }
    for v in ["--version", "-V"] {
        let o = outset(&dir, &[v]);
        assert_eq!(o.status.code(), Some(0), "{v}: {o:?}");
        assert_eq!(
            text(&o.stdout),
            format!("outset {}\n", env!("CARGO_PKG_VERSION")),
            "{v}"
        );
    }
    let o = outset(&dir, &["run", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(text(&o.stdout).starts_with("Usage: outset run"), "{o:?}");
}

#[test]
fn a_job_that_fails_to_parse_is_logged_as_not_loaded() {
    let s = start_session("broken", &[("broken", "exec true\nbogus stanza\n")], &[]);
    let (code, _, err) = s.ctl(&["start", "broken"]);
    assert_ne!(code, 0);
    assert!(err.contains("Unknown job: broken"), "{err}");
    let conf = s.dir.0.join("conf/broken.conf");
    let want = format!(
        "init: {}:2: Unknown stanza\ninit: job broken not loaded: {} has errors\n",
        conf.display(),
        conf.display()
    );
    assert!(s.log().contains(&want), "{}", s.log());
}
