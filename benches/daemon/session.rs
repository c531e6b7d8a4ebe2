//! A supervisor under test: outset (or Upstart) as a session init on a
//! generated job directory, driven by its own `initctl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which binaries to run.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// Label in the report (`outset`, `upstart`).
    pub label: String,
    pub init: PathBuf,
    pub initctl: PathBuf,
}

impl Binaries {
    /// Upstart installed under `prefix` (`PREFIX/sbin/init`,
    /// `PREFIX/sbin/initctl`), or a build tree holding `init/init` and
    /// `util/initctl`.
    pub fn upstart(prefix: &Path) -> Result<Binaries, String> {
        let pairs = [
            ("sbin/init", "sbin/initctl"),
            ("init/init", "util/initctl"),
            ("init", "initctl"),
        ];
        for (init, ctl) in pairs {
            let (init, initctl) = (prefix.join(init), prefix.join(ctl));
            if init.is_file() && initctl.is_file() {
                return Ok(Binaries {
                    label: "upstart".into(),
                    init,
                    initctl,
                });
            }
        }
        Err(format!(
            "no Upstart under {} (looked for sbin/init and sbin/initctl)",
            prefix.display()
        ))
    }
}

/// A fresh directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "outset-bench-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Job files to generate: `count` files named `PREFIX0 … PREFIXn-1`.
pub struct JobSet<'a> {
    pub prefix: &'a str,
    pub count: usize,
    pub text: &'a str,
}

/// `task`, started by `go`, running /bin/true: the emit workload.
pub const GO_TASK: &str = "task\nstart on go\nexec /bin/true\n";

/// Why a workload has no figure.
#[derive(Debug)]
pub enum Failure {
    /// The init died under the workload: a result in itself (Upstart
    /// 1.13 aborts once it watches more descriptors than `select()`
    /// takes, about a thousand tasks spawning at once).
    Crashed(String),
    /// Anything else: the init answered wrongly, or the harness failed.
    Failed(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Failed(e)
    }
}

/// A running session init.
pub struct Session {
    pub bins: Binaries,
    /// Removed (with the job files) when the session is dropped.
    dir: Scratch,
    pub child: Child,
    pub address: String,
}

/// Outcome of one `initctl` run.
pub struct Run {
    pub elapsed: Duration,
    pub ok: bool,
    pub stdout: String,
}

impl Session {
    /// Write the job files, start the init with `--user --no-log` (no
    /// startup event, no message bus) and wait until it has written its
    /// session file (`$XDG_RUNTIME_DIR/upstart/sessions/PID.session`, the
    /// `UPSTART_SESSION` address), answers, and has loaded `last_job`.
    pub fn start(bins: &Binaries, jobs: &[JobSet<'_>], last_job: &str) -> Result<Session, String> {
        let dir = Scratch::new(&bins.label);
        let conf = dir.0.join("conf");
        let run = dir.0.join("run");
        for d in [&conf, &run, &dir.0.join("logs")] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        for set in jobs {
            for i in 0..set.count {
                let path = conf.join(format!("{}{i}.conf", set.prefix));
                std::fs::write(&path, set.text).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let log = std::fs::File::create(dir.0.join("init.log")).map_err(|e| e.to_string())?;
        // The same flags for both inits (Upstart 1.13 takes all of them):
        // only the private socket, whose address the session file gives.
        let child = Command::new(&bins.init)
            .args(["--user", "--no-log", "--no-startup-event", "--no-dbus"])
            .arg("--confdir")
            .arg(&conf)
            .arg("--logdir")
            .arg(dir.0.join("logs"))
            .env("XDG_RUNTIME_DIR", &run)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("UPSTART_SESSION")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bins.init.display()))?;
        let session_file = run.join(format!("upstart/sessions/{}.session", child.id()));
        let mut session = Session {
            bins: bins.clone(),
            dir,
            child,
            address: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(text) = std::fs::read_to_string(&session_file) {
                if let Some(a) = text.trim_end().strip_prefix("UPSTART_SESSION=") {
                    session.address = a.to_string();
                    break;
                }
            }
            if Instant::now() > deadline || session.exited() {
                return Err(format!("{} did not start", bins.label));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Answering calls about the last job means the loading is done.
        while !session.initctl(&["status", last_job])?.ok {
            if Instant::now() > deadline || session.exited() {
                return Err(format!("{} did not load its jobs", bins.label));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(session)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Classify a failed step: if the init died (it may take a moment to
    /// be reaped after its connections dropped), it crashed, and the last
    /// line it wrote says why; otherwise the step just failed.
    pub fn failure(&mut self, what: &str) -> Failure {
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break None,
            }
        };
        let Some(status) = status else {
            return Failure::Failed(what.to_string());
        };
        let log = std::fs::read_to_string(self.dir.0.join("init.log")).unwrap_or_default();
        let last: String = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .chars()
            .take(120)
            .collect();
        Failure::Crashed(format!(
            "{what}: {} exited, {status}: {last}",
            self.bins.label
        ))
    }

    /// Run `initctl ARGS` against this session and time it (up to 10
    /// minutes; a hung run counts as failed).
    pub fn initctl(&self, args: &[&str]) -> Result<Run, String> {
        let start = Instant::now();
        let mut child = Command::new(&self.bins.initctl)
            .args(args)
            .env("UPSTART_SESSION", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bins.initctl.display()))?;
        // Read while it runs so a long listing cannot fill the pipe.
        let mut out = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(o) = out.as_mut() {
                use std::io::Read;
                let _ = o.read_to_string(&mut text);
            }
            text
        });
        let status = wait_at_most(&mut child, Duration::from_secs(600));
        let elapsed = start.elapsed();
        let stdout = reader.join().unwrap_or_default();
        Ok(Run {
            elapsed,
            ok: status.is_some_and(|s| s.success()),
            stdout,
        })
    }

    /// A memory figure of the init from /proc/PID/status (`VmRSS`,
    /// `RssAnon`, …), in KiB.
    pub fn memory_kib(&self, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = text
            .lines()
            .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// End the session (SIGTERM: every job is stopped) and wait for it.
    pub fn stop(mut self) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.exited() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Wait for `child` to end, for `limit` at most (then kill it: `None`).
///
/// The wait blocks in `poll` on the child's pidfd. Polling `try_wait` every
/// 200 µs instead could wake the benchmark 5000 times a second, on a
/// machine of two processors where the supervisor and its tasks are what
/// is being timed.
fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) } as i32;
    if fd >= 0 {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            let interrupted =
                n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
            // Ended, failed, or out of time (a timed-out poll comes round
            // once more with nothing left).
            if (n != 0 && !interrupted) || left.is_zero() {
                break;
            }
        }
        // SAFETY: closes the pidfd opened above.
        unsafe { libc::close(fd) };
    }
    match child.try_wait() {
        Ok(Some(status)) => Some(status),
        Ok(None) if fd >= 0 => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
        // No pidfd (an old kernel): wait without a limit.
        Ok(None) => child.wait().ok(),
        Err(_) => None,
    }
}
