//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod bus;
pub mod cgroup_layout;
pub mod namespace;
pub mod pids_cgroup;
pub mod procs;
pub mod session_bus;
pub mod wire;

use std::path::PathBuf;

/// The shared corpus of real job files. Tests that need it fail (never skip)
/// when it is missing: set `OUTSET_CORPUS` to its location.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("OUTSET_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.join("jobs").is_dir(),
        "job-file corpus not found at {} (set OUTSET_CORPUS)",
        dir.display()
    );
    dir
}

/// Copy an executable to `to` (replacing any file there) through `cp`, so
/// that this process never holds a writable descriptor of it: a fork by
/// another test thread would carry that descriptor until its exec, and
/// executing the copy meanwhile fails with ETXTBSY ("Text file busy").
pub fn copy_executable(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_file(to);
    let out = std::process::Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "cp {} {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "outset-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A session init started on its own job directory and runtime directory.
pub struct Started {
    pub dir: TempDir,
    pub child: std::process::Child,
    /// Its control address, read from its session file.
    pub address: String,
    /// End it on drop the way a user does first (SIGTERM stops every job,
    /// 10 s at most), so that no job process is left holding a cgroup.
    pub stop_gently: bool,
}

impl Started {
    /// `prog ARGS` as a client of this session (stdin closed, no job
    /// environment of the test's own).
    pub fn cmd(&self, prog: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new(prog)
            .args(args)
            .env("UPSTART_SESSION", &self.address)
            .env_remove("UPSTART_JOB")
            .env_remove("UPSTART_INSTANCE")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run client")
    }

    /// `gdbus introspect` of `path` on this session's private socket.
    pub fn introspect(&self, path: &str) -> std::process::Output {
        self.cmd(
            "gdbus",
            &[
                "introspect",
                "--address",
                &self.address,
                "--dest",
                "com.ubuntu.Upstart",
                "--object-path",
                path,
            ],
        )
    }

    /// `initctl ARGS`: (exit code, stdout, stderr). Bounded (60 s, for
    /// an init under load): an init that stopped answering fails the test
    /// (status 124) instead of hanging it.
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let mut bounded = vec!["60", env!("CARGO_BIN_EXE_initctl")];
        bounded.extend_from_slice(args);
        let o = self.cmd("timeout", &bounded);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// What the init wrote to its stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    /// Wait (30 s at most) until `cond` holds; panics with the init's log.
    pub fn wait_for(&self, what: &str, cond: impl FnMut() -> bool) {
        wait_until(what, 30, cond, || format!("log:\n{}", self.log()));
    }

    /// The init's pid.
    pub fn init_pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The init has not exited.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Started {
    /// `telinit u` and wait until the new image has restored the state
    /// and answers again.
    pub fn reexec(&self) {
        let before = self.log().matches("Stateful re-exec completed").count();
        let o = std::process::Command::new("timeout")
            .arg("90")
            .arg(env!("CARGO_BIN_EXE_telinit"))
            .arg("u")
            .env("UPSTART_SESSION", &self.address)
            .output()
            .expect("telinit");
        assert!(
            o.status.success() || o.status.code() == Some(1),
            "telinit u: {o:?}"
        );
        self.wait_for("the re-exec", || {
            self.log().matches("Stateful re-exec completed").count() > before
        });
        self.wait_for("the control socket", || self.ctl(&["version"]).0 == 0);
    }
}

/// A failing test must not leave its init behind (it would keep the test
/// harness's output pipe open and hang whoever reads it), nor the jobs it
/// was supervising.
impl Drop for Started {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Keep the init's log of a failed test for inspection.
            let keep = std::env::temp_dir().join(format!(
                "{}.daemon.log",
                self.dir
                    .0
                    .file_name()
                    .map_or("outset".into(), |n| n.to_string_lossy())
            ));
            if std::fs::copy(self.dir.0.join("daemon.log"), &keep).is_ok() {
                eprintln!("daemon log kept in {}", keep.display());
            }
        }
        if self.stop_gently {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while self.child.try_wait().ok().flatten().is_none()
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let doomed = procs::descendants(self.child.id() as i32);
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in doomed {
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Jobs that would not stop (a pre-start still running, a fork
        // never made) outlive the session's end, as in Upstart, no longer
        // under the init. Its address names its pid, unique on this
        // machine while the test runs.
        if self.address.ends_with(&format!("/{}", self.child.id())) {
            procs::kill_session_leftovers(&self.address);
        }
    }
}

/// Wait until `cond` holds, `secs` seconds at most; on timeout, panic
/// naming `what`, followed by what `context` says (a log, counts).
pub fn wait_until(
    what: &str,
    secs: u64,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; {}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fail (never skip) a test that needs root when not run as root.
pub fn assert_root() {
    assert!(
        is_root(),
        "this test needs root (run the suite as root, as CI does)"
    );
}

/// The pid at the end of an `initctl status` line (`... process 123`); 0
/// when it names none.
pub fn pid_of(status: &str) -> i32 {
    status
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Start `outset --user --no-startup-event` (plus `extra` options) on
/// `jobs` (`@DIR@` in their text becomes the test directory), with logs in
/// `DIR/logs`, stderr in `DIR/daemon.log`, and wait for its session file.
pub fn start_session(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Started {
    start_session_wrapped(tag, jobs, extra, &[])
}

/// `start_session`, run through `wrapper` (a command that execs the rest
/// of its command line in its own process, such as `prlimit ... --`).
pub fn start_session_wrapped(
    tag: &str,
    jobs: &[(&str, &str)],
    extra: &[&str],
    wrapper: &[&str],
) -> Started {
    start_session_prepared(tag, jobs, extra, wrapper, |_| {})
}

/// `start_session_wrapped`, with `prepare` given the test directory (its
/// job files written) before the init starts.
pub fn start_session_prepared(
    tag: &str,
    jobs: &[(&str, &str)],
    extra: &[&str],
    wrapper: &[&str],
    prepare: impl FnOnce(&TempDir),
) -> Started {
    use std::process::Command;
    let dir = TempDir::new(tag);
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    for (name, text) in jobs {
        dir.write(
            &format!("conf/{name}.conf"),
            &text.replace("@DIR@", &dir.0.display().to_string()),
        );
    }
    prepare(&dir);
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(env!("CARGO_BIN_EXE_outset"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_outset")),
    };
    command
        .args(["--user", "--no-startup-event"])
        .args(extra)
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"));
    spawn_session(dir, command)
}

/// Run `command` (an `outset --user ...` command line, possibly behind a
/// wrapper) with its runtime directory in DIR/run and stderr in
/// DIR/daemon.log, and wait for its session file.
pub fn spawn_session(dir: TempDir, mut command: std::process::Command) -> Started {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    std::fs::create_dir_all(dir.0.join("run")).expect("runtime dir");
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let child = command
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("outset");
    let session_file = dir
        .0
        .join(format!("run/upstart/sessions/{}.session", child.id()));
    // Until its address is known, a failure must still end the init
    // (dropping `Started` ends it).
    let mut started = Started {
        dir,
        child,
        address: String::new(),
        stop_gently: false,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    started.address = loop {
        if let Ok(text) = std::fs::read_to_string(&session_file) {
            if let Some(a) = text.trim_end().strip_prefix("UPSTART_SESSION=") {
                break a.to_string();
            }
        }
        if Instant::now() > deadline || started.child.try_wait().ok().flatten().is_some() {
            panic!(
                "no session file; log:\n{}",
                std::fs::read_to_string(started.dir.0.join("daemon.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    started
}
