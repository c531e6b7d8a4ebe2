//! A private system bus for tests: `dbus-daemon` with the distribution's
//! system configuration (`/usr/share/dbus-1/system.conf`: deny by
//! default), its own socket, and outset's shipped policy
//! (`contrib/dbus/Upstart.conf`) in place of `system.d`. It can be
//! started after init, killed and started again, as a job would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::namespace::bounded;

/// `setpriv` as nobody, for a client that is not root.
pub const NOBODY: [&str; 5] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
];

pub struct SystemBus {
    pub socket: PathBuf,
    pub address: String,
    config: PathBuf,
    child: Option<Child>,
}

impl SystemBus {
    /// A bus listening at `socket` once started (its directory is made
    /// then, if missing); its configuration goes into `dir`.
    pub fn at(dir: &Path, socket: &Path) -> SystemBus {
        let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/dbus/Upstart.conf");
        let system = std::fs::read_to_string("/usr/share/dbus-1/system.conf")
            .expect("/usr/share/dbus-1/system.conf (the dbus package)");
        let mut conf = String::new();
        for line in system.lines() {
            let t = line.trim();
            // Run as root in the foreground, with no helper, pid file,
            // syslog, activation or other policy files than outset's.
            let dropped = [
                "<user>",
                "<fork/>",
                "<pidfile>",
                "<syslog/>",
                "<servicehelper>",
                "<standard_system_servicedirs/>",
                "<include",
                "<includedir>",
            ];
            if dropped.iter().any(|d| t.starts_with(d)) {
                continue;
            }
            if t.starts_with("<listen>") {
                conf.push_str(&format!(
                    "<listen>unix:path={}</listen>\n",
                    socket.display()
                ));
                continue;
            }
            if t == "</busconfig>" {
                conf.push_str(&format!("<include>{policy}</include>\n"));
            }
            conf.push_str(line);
            conf.push('\n');
        }
        let config = dir.join("system-bus.conf");
        std::fs::write(&config, conf).expect("bus config");
        SystemBus {
            socket: socket.to_path_buf(),
            address: format!("unix:path={}", socket.display()),
            config,
            child: None,
        }
    }

    /// A session bus at `DIR/session_bus_socket` that lets everybody own
    /// and call everything (as a user's own bus does).
    pub fn session(dir: &Path) -> SystemBus {
        let socket = dir.join("session_bus_socket");
        let conf = format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"
 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <policy context=\"default\">
    <allow send_destination=\"*\" eavesdrop=\"true\"/>
    <allow eavesdrop=\"true\"/>
    <allow own=\"*\"/>
  </policy>
</busconfig>
",
            socket.display()
        );
        let config = dir.join("session-bus.conf");
        std::fs::write(&config, conf).expect("bus config");
        SystemBus {
            address: format!("unix:path={}", socket.display()),
            socket,
            config,
            child: None,
        }
    }

    /// Start the bus daemon and wait for its socket; anyone may connect.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "bus already running");
        if let Some(parent) = self.socket.parent() {
            std::fs::create_dir_all(parent).expect("bus socket directory");
        }
        // Killed by the test (or on drop), so not under `timeout`.
        let child = Command::new("dbus-daemon")
            .args(["--nofork", "--nopidfile"])
            .arg(format!("--config-file={}", self.config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.socket.exists() {
            assert!(Instant::now() < deadline, "no bus socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        let c = std::ffi::CString::new(self.socket.display().to_string()).expect("path");
        // SAFETY: chmod on the socket the bus just made.
        unsafe { libc::chmod(c.as_ptr(), 0o666) };
    }

    /// Kill the bus daemon outright (its socket file stays behind).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Who owns `name` on the bus (`GetNameOwner`), if anybody.
    pub fn owner(&self, name: &str) -> Option<String> {
        let o = bounded(30, "gdbus")
            .args(["call", "--address", &self.address])
            .args(["--dest", "org.freedesktop.DBus"])
            .args(["--object-path", "/org/freedesktop/DBus"])
            .args(["--method", "org.freedesktop.DBus.GetNameOwner", name])
            .output()
            .expect("gdbus");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// `initctl --system ARGS` through this bus, as nobody unless
    /// `as_root`: (status, stdout, stderr).
    pub fn initctl(&self, as_root: bool, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = if as_root {
            vec!["env"]
        } else {
            NOBODY.to_vec()
        };
        all.extend([env!("CARGO_BIN_EXE_initctl"), "--system"]);
        all.extend(args);
        let o = bounded(60, all[0])
            .args(&all[1..])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .env_remove("UPSTART_SESSION")
            .output()
            .expect("initctl --system");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        self.kill();
    }
}
