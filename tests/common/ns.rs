//! outset as PID 1 of a fresh PID, mount and network namespace (the
//! control socket is then private to the test), driven from outside with
//! `nsenter`. Needs root, as CI has.

use super::TempDir;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn assert_root() {
    assert!(
        is_root(),
        "this test needs root to create namespaces (run the suite as root, as CI does)"
    );
}

/// A system-mode outset running as PID 1 of its own namespaces.
pub struct Pid1 {
    pub dir: TempDir,
    unshare: Child,
    /// Host pid of the namespace's PID 1.
    pub init: i32,
}

/// Run `cmd` under `timeout`, so that nothing a test runs can hang it.
pub fn bounded(secs: u32, program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg("-k").arg("5").arg(secs.to_string()).arg(program);
    c
}

impl Pid1 {
    /// Start outset on `jobs` (`@DIR@` in their text becomes the test
    /// directory) with `wrapper` (e.g. `prlimit --nofile=64 --`) in front
    /// of it, and wait until its control socket answers.
    pub fn start_with(tag: &str, jobs: &[(&str, &str)], wrapper: &[&str], extra: &[&str]) -> Pid1 {
        Self::launch(tag, jobs, wrapper, extra, None)
    }

    /// Start outset joined to the system bus at `bus` (a path address
    /// reachable from the namespace).
    pub fn start_on_bus(tag: &str, jobs: &[(&str, &str)], bus: &str) -> Pid1 {
        Self::launch(tag, jobs, &[], &[], Some(bus))
    }

    fn launch(
        tag: &str,
        jobs: &[(&str, &str)],
        wrapper: &[&str],
        extra: &[&str],
        bus: Option<&str>,
    ) -> Pid1 {
        assert_root();
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.0.join("conf")).expect("conf dir");
        for (name, text) in jobs {
            dir.write(
                &format!("conf/{name}.conf"),
                &text.replace("@DIR@", &dir.0.display().to_string()),
            );
        }
        let log = std::fs::File::create(dir.0.join("init.log")).expect("init log");
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--mount", "--net", "--fork", "--mount-proc"]);
        cmd.args(wrapper);
        cmd.arg(env!("CARGO_BIN_EXE_outset")).arg("--container");
        match bus {
            Some(address) => cmd.env("DBUS_SYSTEM_BUS_ADDRESS", address),
            None => cmd.arg("--no-dbus").env_remove("DBUS_SYSTEM_BUS_ADDRESS"),
        };
        cmd.args(extra)
            .arg("--confdir")
            .arg(dir.0.join("conf"))
            .arg("--logdir")
            .arg(dir.0.join("logs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let unshare = cmd.spawn().expect("run unshare");
        let mut me = Pid1 {
            dir,
            unshare,
            init: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = child_of(me.unshare.id() as i32) {
                // The wrapper (if any) has exec'd outset once its name shows.
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "outset" {
                    me.init = pid;
                    if me.ctl(&["version"]).status.success() {
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "PID 1 did not come up; log:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        me
    }

    pub fn start(tag: &str, jobs: &[(&str, &str)]) -> Pid1 {
        Self::start_with(tag, jobs, &[], &[])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("init.log")).unwrap_or_default()
    }

    /// A command run inside the namespaces (pids and /proc as PID 1 sees
    /// them, its control socket reachable).
    pub fn inside(&self, secs: u32, args: &[&str]) -> Command {
        let mut c = bounded(secs, "nsenter");
        c.arg("-t")
            .arg(self.init.to_string())
            .args(["--pid", "--mount", "--net", "--"])
            .args(args)
            .env_remove("UPSTART_SESSION")
            .env_remove("UPSTART_JOB")
            .env_remove("UPSTART_INSTANCE")
            .stdin(Stdio::null());
        c
    }

    /// `initctl ARGS` as root inside the namespaces.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut all = vec![env!("CARGO_BIN_EXE_initctl")];
        all.extend_from_slice(args);
        self.inside(60, &all).output().expect("nsenter initctl")
    }

    /// `initctl ARGS`, expecting success; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let o = self.ctl(args);
        assert!(
            o.status.success(),
            "initctl {args:?} failed: {}{}\ninit log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Wait (bounded) until `cond` holds; panics with PID 1's log.
    pub fn wait_for(&self, what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; init log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Host pids of every process in the namespace (PID 1 included).
    pub fn processes(&self) -> Vec<i32> {
        let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", self.init)) else {
            return Vec::new();
        };
        std::fs::read_dir("/proc")
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                    .filter(|p| {
                        std::fs::read_link(format!("/proc/{p}/ns/pid")).ok() == Some(ns.clone())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Host pids of the namespace's zombies.
    pub fn zombies(&self) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|p| state(*p) == Some('Z'))
            .collect()
    }

    /// Open descriptors of PID 1.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.init))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// PID 1's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.init, "VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn alive(&self) -> bool {
        state(self.init).is_some_and(|s| s != 'Z')
    }

    /// SIGTERM PID 1 (container mode: stop every job and exit) and wait.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the namespace's init.
        unsafe { libc::kill(self.init, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.unshare.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "PID 1 did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        // Killing PID 1 takes the whole namespace with it.
        if self.init > 0 {
            // SAFETY: kill(2).
            unsafe { libc::kill(self.init, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// The first child of `pid`.
pub fn child_of(pid: i32) -> Option<i32> {
    children(pid).into_iter().next()
}

pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The one-letter state of a process.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A line of /proc/PID/status after its label.
pub fn status_field(pid: i32, label: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
}

/// The pid a process has inside its own (innermost) PID namespace.
pub fn ns_pid(pid: i32) -> Option<i32> {
    status_field(pid, "NSpid:")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
