//! outset as PID 1 of fresh PID, mount, UTS, IPC and network namespaces
//! (`unshare --fork --mount-proc`), in container mode. Needs root.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

pub fn assert_root() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test needs root to create namespaces (run the suite as root, as CI does)"
    );
}

pub struct Namespace {
    pub dir: TempDir,
    pub unshare: Child,
    exited: Option<ExitStatus>,
}

/// `@DIR@` becomes the test directory, `@BIN@` a directory holding
/// `shutdown` and its `reboot`, `halt`, `poweroff` names, `telinit`
/// and `initctl`.
pub fn expand(text: &str, dir: &TempDir) -> String {
    text.replace("@DIR@", &dir.0.display().to_string())
        .replace("@BIN@", &dir.0.join("bin").display().to_string())
}

fn link_binaries(dir: &TempDir) {
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let shutdown = env!("CARGO_BIN_EXE_shutdown");
    for name in ["shutdown", "reboot", "halt", "poweroff"] {
        std::os::unix::fs::symlink(shutdown, bin.join(name)).expect("symlink");
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_telinit"), bin.join("telinit"))
        .expect("symlink");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_initctl"), bin.join("initctl"))
        .expect("symlink");
}

impl Namespace {
    /// Start outset (`--container` plus `extra`) as PID 1 on `jobs`.
    pub fn start(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Namespace {
        assert_root();
        let dir = TempDir::new(tag);
        link_binaries(&dir);
        std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
        for (name, text) in jobs {
            dir.write(&format!("conf/{name}.conf"), &expand(text, &dir));
        }
        let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--fork",
                "--mount-proc",
            ])
            .arg(env!("CARGO_BIN_EXE_outset"))
            .arg("--container")
            .args(extra)
            .arg("--confdir")
            .arg(dir.0.join("conf"))
            .arg("--logdir")
            .arg(dir.0.join("logs"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("run unshare");
        Namespace {
            dir,
            unshare,
            exited: None,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("init.log")).unwrap_or_default()
    }

    /// The host pid of the namespace's PID 1 (unshare's only child).
    pub fn init_pid(&self) -> i32 {
        let id = self.unshare.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
                .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no PID 1 in the namespace");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the namespace's init.
        unsafe { libc::kill(self.init_pid(), sig) };
    }

    /// Wait until `rel` exists and ends in a newline; its text.
    pub fn wait_file(&mut self, rel: &str) -> String {
        let path = self.dir.0.join(rel);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if text.ends_with('\n') {
                    return text;
                }
            }
            let gone = self.exited.is_some() || self.unshare.try_wait().ok().flatten().is_some();
            if gone || Instant::now() > deadline {
                panic!("{rel} never appeared; init log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for the namespace (unshare) to end.
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.unshare.try_wait().expect("wait") {
                self.exited = Some(status);
                return status;
            }
            if Instant::now() > deadline {
                panic!("PID 1 did not stop; init log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn touch(&self, rel: &str) {
        std::fs::write(self.dir.0.join(rel), "").expect("touch");
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if self.exited.is_none() && self.unshare.try_wait().ok().flatten().is_none() {
            let id = self.unshare.id();
            let children = std::fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
                .unwrap_or_default();
            for pid in children
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) on the namespace's init; the kernel then
                // ends everything inside.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}
