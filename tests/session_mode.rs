//! `outset --session`: Upstart's test mode. A system init that is not
//! PID 1, reads its jobs from `--confdir` or `$UPSTART_CONFDIR`, is
//! controlled over the D-Bus session bus, and re-execs on SIGTERM (as
//! Upstart's own test suites use it).

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::session_bus::SessionBus;
use common::TempDir;

/// An init in test mode on a private session bus; killed (with its jobs)
/// on drop.
struct TestInit {
    dir: TempDir,
    child: Child,
    bus: SessionBus,
}

impl TestInit {
    /// `outset --session ARGS` with `DBUS_SESSION_BUS_ADDRESS` naming a
    /// fresh bus, stderr in DIR/daemon.log and `env` added.
    fn start(dir: TempDir, args: &[&str], env: &[(&str, String)]) -> TestInit {
        TestInit::start_as(dir, &[], args, env)
    }

    /// `start`, through `wrapper` (such as `setpriv ... --`); the bus
    /// then admits every user.
    fn start_as(dir: TempDir, wrapper: &[&str], args: &[&str], env: &[(&str, String)]) -> TestInit {
        let bus = SessionBus::start_with(
            &dir.0,
            "<policy context=\"default\"><allow user=\"*\"/></policy>",
        );
        let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(env!("CARGO_BIN_EXE_outset"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_outset")),
        };
        let child = command
            .arg("--session")
            .args(args)
            .env_remove("UPSTART_SESSION")
            .env_remove("UPSTART_CONFDIR")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("outset");
        let init = TestInit { dir, child, bus };
        init.wait_for("init to own com.ubuntu.Upstart", || {
            init.ctl(&["version"]).0 == 0
        });
        init
    }

    /// `initctl --session ARGS`: (exit code, stdout, stderr), bounded.
    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let o: Output = Command::new("timeout")
            .args(["30", env!("CARGO_BIN_EXE_initctl"), "--session"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env_remove("UPSTART_SESSION")
            .env_remove("UPSTART_JOB")
            .env_remove("UPSTART_INSTANCE")
            .stdin(Stdio::null())
            .output()
            .expect("initctl");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("daemon.log")).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestInit {
    fn drop(&mut self) {
        let doomed = common::procs::descendants(self.child.id() as i32);
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in doomed {
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn job_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("conf/sleeper.conf", "exec sleep 600\n");
    dir.write("conf/env.conf", "task\nexec env\nconsole log\n");
    std::fs::create_dir_all(dir.0.join("logs")).expect("logs");
    dir
}

#[test]
fn a_test_init_is_controlled_over_the_session_bus() {
    let dir = job_dir("session-bus");
    let conf = dir.0.join("conf").display().to_string();
    let logs = dir.0.join("logs").display().to_string();
    let init = TestInit::start(
        dir,
        &["--no-inherit-env", "--confdir", &conf, "--logdir", &logs],
        &[],
    );
    assert_ne!(init.child.id(), 1);
    assert_eq!(
        init.ctl(&["start", "sleeper"]).1,
        format!(
            "sleeper start/running, process {}\n",
            common::pid_of(&init.ctl(&["status", "sleeper"]).1)
        )
    );
    let (code, list, _) = init.ctl(&["list"]);
    assert_eq!(code, 0);
    assert!(list.contains("sleeper start/running, process"), "{list}");
    // A system init's jobs get no copy of init's environment.
    assert_eq!(init.ctl(&["start", "env"]).0, 0);
    let env = std::fs::read_to_string(init.dir.0.join("logs/env.log")).expect("env.log");
    assert!(!env.contains("DBUS_SESSION_BUS_ADDRESS"), "{env}");
}

#[test]
fn a_test_init_reads_upstart_confdir() {
    let dir = job_dir("session-confdir");
    let conf = dir.0.join("conf").display().to_string();
    let logs = dir.0.join("logs").display().to_string();
    let init = TestInit::start(dir, &["--logdir", &logs], &[("UPSTART_CONFDIR", conf)]);
    let (code, out, err) = init.ctl(&["status", "sleeper"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "sleeper stop/waiting\n", "")
    );
}

#[test]
fn sigterm_re_execs_a_test_init_and_its_jobs_live_on() {
    let dir = job_dir("session-reexec");
    let conf = dir.0.join("conf").display().to_string();
    let logs = dir.0.join("logs").display().to_string();
    let init = TestInit::start(dir, &["--confdir", &conf, "--logdir", &logs], &[]);
    assert_eq!(init.ctl(&["start", "sleeper"]).0, 0);
    let job = common::pid_of(&init.ctl(&["status", "sleeper"]).1);
    assert!(job > 0);
    let pid = init.child.id() as i32;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    init.wait_for("the re-exec'd image", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|a| a == b"--restart"))
            .unwrap_or(false)
            && init.ctl(&["version"]).0 == 0
    });
    assert!(init.log().contains("Re-executing"), "{}", init.log());
    assert_eq!(
        init.ctl(&["status", "sleeper"]).1,
        format!("sleeper start/running, process {job}\n")
    );
}

#[test]
fn a_test_init_needs_no_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = job_dir("session-nobody");
    for d in ["", "logs"] {
        let p = dir.0.join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let conf = dir.0.join("conf").display().to_string();
    let logs = dir.0.join("logs").display().to_string();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let init = TestInit::start_as(dir, &nobody, &["--confdir", &conf, "--logdir", &logs], &[]);
    assert_eq!(init.ctl(&["start", "sleeper"]).0, 0, "{}", init.log());
    let job = common::pid_of(&init.ctl(&["status", "sleeper"]).1);
    let uid = std::fs::read_to_string(format!("/proc/{job}/status"))
        .expect("job status")
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("Uid line");
    assert_eq!(uid, "65534");
}

/// `outset --session` on `bus_address`, with no bus started by the test.
fn spawn_on(dir: &TempDir, bus_address: &str, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    Command::new(env!("CARGO_BIN_EXE_outset"))
        .arg("--session")
        .args(extra)
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
        .env_remove("UPSTART_SESSION")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("outset")
}

#[test]
fn sigusr1_has_a_test_init_join_a_bus_started_after_it() {
    let dir = job_dir("session-usr1");
    let address = format!("unix:path={}/session_bus_socket", dir.0.display());
    let mut child = spawn_on(&dir, &address, &[]);
    let bus = SessionBus::start(&dir.0);
    assert_eq!(bus.address.split(',').next(), Some(address.as_str()));
    let version = || {
        Command::new("timeout")
            .args(["30", env!("CARGO_BIN_EXE_initctl"), "--session", "version"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !version() {
        assert!(Instant::now() < deadline, "init never joined the bus");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigusr1_does_not_end_a_test_init_without_a_bus() {
    let dir = job_dir("session-usr1-nodbus");
    let mut child = spawn_on(&dir, "unix:path=/nonexistent/bus", &["--no-dbus"]);
    // Once running, SIGUSR1 is read by the main loop; before, it would
    // end any process: wait for the loop to be up.
    let log = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    let up = || {
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .map(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigBlk:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                    .is_some_and(|m| m & (1 << (libc::SIGUSR1 - 1)) != 0)
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !up() {
        assert!(
            Instant::now() < deadline,
            "never blocked SIGUSR1; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    // A bound for something that must never happen.
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().expect("try_wait").is_none(), "{}", log());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn session_and_user_cannot_be_combined() {
    let o = Command::new(env!("CARGO_BIN_EXE_outset"))
        .args(["--session", "--user"])
        .stdin(Stdio::null())
        .output()
        .expect("outset");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--session and --user cannot be combined"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_test_init_without_a_session_bus_says_so() {
    let dir = job_dir("session-nobus");
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_outset"))
        .arg("--session")
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("outset");
    let text = "Unable to connect to the D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set";
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    while !read().contains(text) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(read().contains(text), "{}", read());
}
