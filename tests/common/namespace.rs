//! outset as PID 1 of fresh PID, mount and network namespaces (UTS and
//! IPC too for the container tests) via `unshare --fork --mount-proc`, so
//! the control socket is private to the test, in container mode, driven
//! from outside with `nsenter`. Needs root, as CI has.

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::procs::{self, state, status_field};
use super::TempDir;

// Re-exported: namespace tests name them through this module too.
#[allow(unused_imports)]
pub use super::{assert_root, is_root};

/// Run `program` under `timeout`, so that nothing a test runs can hang it.
pub fn bounded(secs: u32, program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.arg("-k").arg("5").arg(secs.to_string()).arg(program);
    c
}

/// The namespaces of a container's PID 1, as `unshare` options.
const CONTAINER: &[&str] = &["--pid", "--mount", "--uts", "--ipc", "--net"];
/// The namespaces of a serving PID 1 (the control socket private to the
/// test), as `unshare` and `nsenter` options.
const SERVING: &[&str] = &["--pid", "--mount", "--net"];

/// A container-mode outset running as PID 1 of its own namespaces.
pub struct Namespace {
    pub dir: TempDir,
    pub unshare: Child,
    /// Host pid of the namespace's PID 1 (0 if it was gone before it could
    /// be seen).
    pub init: i32,
    exited: Option<ExitStatus>,
}

/// Which system bus PID 1 is given.
enum Bus<'a> {
    /// Whatever the test's environment says.
    Inherited,
    /// None: `--no-dbus`.
    Off,
    /// The bus at this address.
    At(&'a str),
}

/// How to start PID 1.
struct Launch<'a> {
    /// Run in front of outset (e.g. `prlimit --nofile=64 --`).
    wrapper: &'a [&'a str],
    /// Options after `--container`.
    extra: &'a [&'a str],
    bus: Bus<'a>,
    /// Wait until its control socket answers.
    serving: bool,
    /// No `--logdir`, and standard output a pipe for the test to read
    /// (`unshare.stdout`).
    stdout_piped: bool,
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

/// Builds a root without the container markers (`/.dockerenv` and
/// friends) from bind mounts of the host's directories, with a small
/// `/dev` whose `console` and `kmsg` are plain files (DIR/console and
/// DIR/kmsg, so that what PID 1 writes there can be read), then starts
/// outset with the script's arguments as PID 1 of new PID and network
/// namespaces chrooted there, without `container` in its environment.
const MARKER_FREE_ROOT: &str = r#"
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
exec unshare --pid --net --fork --root=$R --mount-proc "$OUTSET" "$@"
"#;

/// outset with `args` as PID 1 of a PID namespace in a root without any
/// container marker (see `MARKER_FREE_ROOT`); the caller sets stdio and
/// spawns. PID 1 is the child of the returned process's child.
pub fn marker_free_pid1(dir: &TempDir, args: &[&str]) -> Command {
    assert_root();
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(MARKER_FREE_ROOT)
        .arg("sh")
        .args(args)
        .env("DIR", &dir.0)
        .env("OUTSET", env!("CARGO_BIN_EXE_outset"))
        .env_remove("container");
    c
}

/// A spawned `marker_free_pid1`, killed with its namespace when dropped
/// (a failing test must not leave PID 1 behind).
pub struct MarkerFree(pub Child);

impl MarkerFree {
    /// The namespace's PID 1 as the host sees it, once it is there.
    pub fn init_pid(&self) -> Option<i32> {
        procs::child_of(self.0.id() as i32)
    }
}

impl Drop for MarkerFree {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            for pid in procs::children(self.0.id() as i32) {
                // SAFETY: kill(2) on the namespace's init.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Namespace {
    /// Start outset (`--container` plus `extra`) as PID 1 on `jobs`,
    /// without waiting for it to serve.
    pub fn start(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Namespace {
        Self::launch(
            tag,
            jobs,
            Launch {
                wrapper: &[],
                extra,
                bus: Bus::Inherited,
                serving: false,
                stdout_piped: false,
            },
        )
    }

    /// Start outset without a system bus on `jobs` and wait until its
    /// control socket answers.
    pub fn serving(tag: &str, jobs: &[(&str, &str)]) -> Namespace {
        Self::serving_with(tag, jobs, &[], &[])
    }

    /// Like `serving`, with `wrapper` (e.g. `prlimit --nofile=64 --`) in
    /// front of outset and `extra` options after `--container`.
    pub fn serving_with(
        tag: &str,
        jobs: &[(&str, &str)],
        wrapper: &[&str],
        extra: &[&str],
    ) -> Namespace {
        Self::launch(
            tag,
            jobs,
            Launch {
                wrapper,
                extra,
                bus: Bus::Off,
                serving: true,
                stdout_piped: false,
            },
        )
    }

    /// Like `serving`, joined to the system bus at `bus` (a path address
    /// reachable from the namespace).
    pub fn serving_on_bus(tag: &str, jobs: &[(&str, &str)], bus: &str) -> Namespace {
        Self::launch(
            tag,
            jobs,
            Launch {
                wrapper: &[],
                extra: &[],
                bus: Bus::At(bus),
                serving: true,
                stdout_piped: false,
            },
        )
    }

    /// Like `serving`, without `--logdir`: job output goes to PID 1's
    /// standard output, a pipe the test reads from `unshare.stdout`.
    pub fn serving_to_stdout(tag: &str, jobs: &[(&str, &str)]) -> Namespace {
        Self::launch(
            tag,
            jobs,
            Launch {
                wrapper: &[],
                extra: &[],
                bus: Bus::Off,
                serving: true,
                stdout_piped: true,
            },
        )
    }

    fn launch(tag: &str, jobs: &[(&str, &str)], how: Launch) -> Namespace {
        assert_root();
        let dir = TempDir::new(tag);
        link_binaries(&dir);
        std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
        for (name, text) in jobs {
            dir.write(&format!("conf/{name}.conf"), &expand(text, &dir));
        }
        let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
        let mut cmd = Command::new("unshare");
        let namespaces = if how.serving { SERVING } else { CONTAINER };
        cmd.args(namespaces).args(["--fork", "--mount-proc"]);
        cmd.args(how.wrapper);
        cmd.arg(env!("CARGO_BIN_EXE_outset")).arg("--container");
        match how.bus {
            Bus::Inherited => {}
            Bus::Off => {
                cmd.arg("--no-dbus").env_remove("DBUS_SYSTEM_BUS_ADDRESS");
            }
            Bus::At(address) => {
                cmd.env("DBUS_SYSTEM_BUS_ADDRESS", address);
            }
        }
        cmd.args(how.extra).arg("--confdir").arg(dir.0.join("conf"));
        if how.stdout_piped {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.arg("--logdir")
                .arg(dir.0.join("logs"))
                .stdout(Stdio::null());
        }
        cmd.stdin(Stdio::null()).stderr(log);
        let unshare = cmd.spawn().expect("run unshare");
        let mut me = Namespace {
            dir,
            unshare,
            init: 0,
            exited: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = procs::child_of(me.unshare.id() as i32) {
                // The wrapper (if any) has exec'd outset once its name shows.
                if procs::comm(pid) == "outset" {
                    me.init = pid;
                    if !how.serving || me.ctl(&["version"]).status.success() {
                        break;
                    }
                }
            } else if !how.serving && me.unshare.try_wait().ok().flatten().is_some() {
                // Gone already: what it left is for the test to look at.
                break;
            }
            assert!(
                Instant::now() < deadline,
                "PID 1 did not come up; log:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        me
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("init.log")).unwrap_or_default()
    }

    /// The host pid of the namespace's PID 1.
    pub fn init_pid(&self) -> i32 {
        assert!(self.init > 0, "no PID 1 in the namespace");
        self.init
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the namespace's init.
        unsafe { libc::kill(self.init_pid(), sig) };
    }

    /// A command run inside the namespaces (pids and /proc as PID 1 sees
    /// them, its control socket reachable).
    pub fn inside(&self, secs: u32, args: &[&str]) -> Command {
        let mut c = bounded(secs, "nsenter");
        c.arg("-t")
            .arg(self.init_pid().to_string())
            .args(SERVING)
            .arg("--")
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
    pub fn wait_for(&self, what: &str, secs: u64, cond: impl FnMut() -> bool) {
        super::wait_until(what, secs, cond, || format!("init log:\n{}", self.log()));
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

    /// SIGTERM PID 1 (container mode: stop every job and exit) and wait.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    pub fn touch(&self, rel: &str) {
        std::fs::write(self.dir.0.join(rel), "").expect("touch");
    }

    /// Host pids of every process in the namespace (PID 1 included).
    pub fn processes(&self) -> Vec<i32> {
        let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", self.init)) else {
            return Vec::new();
        };
        procs::pids()
            .into_iter()
            .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok() == Some(ns.clone()))
            .collect()
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

    /// How many private clients PID 1 holds a connection to: the
    /// connected sockets of its network namespace that carry the control
    /// socket's name (what init accepted; clients' own ends have none).
    pub fn client_count(&self) -> usize {
        std::fs::read_to_string(format!("/proc/{}/net/unix", self.init))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(5) == Some(&"03") && f.get(7) == Some(&"@/com/ubuntu/upstart")
            })
            .count()
    }

    /// `n` connections to PID 1's control socket past the D-Bus
    /// handshake, made one after another from inside its network
    /// namespace (abstract sockets belong to one).
    pub fn authenticated_clients(&self, n: usize) -> Vec<std::os::unix::net::UnixStream> {
        use std::os::fd::AsRawFd;
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.init_pid())).expect("netns");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on this thread only, with a namespace
                    // descriptor we hold open.
                    let joined = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(joined, 0, "setns: {}", std::io::Error::last_os_error());
                    (0..n)
                        .map(|_| {
                            super::wire::raw_authenticated("unix:abstract=/com/ubuntu/upstart")
                        })
                        .collect()
                })
                .join()
                .expect("connecting thread")
        })
    }

    /// PID 1's resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.init, "VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn alive(&self) -> bool {
        procs::alive(self.init)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if self.exited.is_none() && self.unshare.try_wait().ok().flatten().is_none() {
            // Killing PID 1 takes the whole namespace with it.
            for pid in procs::children(self.unshare.id() as i32) {
                // SAFETY: kill(2) on the namespace's init.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
    }
}
