//! A private D-Bus session bus: `dbus-daemon` listening in a test
//! directory, letting everybody own and call everything (as a user's own
//! session bus does). Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct SessionBus {
    child: Child,
    /// What `DBUS_SESSION_BUS_ADDRESS` says for this bus.
    pub address: String,
}

impl SessionBus {
    /// A bus on the socket `DIR/session_bus_socket`.
    pub fn start(dir: &Path) -> SessionBus {
        SessionBus::start_with(dir, "")
    }

    /// A bus whose configuration also holds `extra` (elements such as
    /// `<servicedir>`).
    pub fn start_with(dir: &Path, extra: &str) -> SessionBus {
        let d = dir.display();
        let config = dir.join("session-bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"
 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">
<busconfig>
  <type>session</type>
  <listen>unix:path={d}/session_bus_socket</listen>
  {extra}
  <policy context=\"default\">
    <allow send_destination=\"*\"/>
    <allow own=\"*\"/>
    <allow receive_sender=\"*\"/>
  </policy>
</busconfig>
"
            ),
        )
        .expect("bus configuration");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon");
        let mut line = String::new();
        {
            use std::io::BufRead;
            let stdout = child.stdout.take().expect("stdout");
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("bus address");
        }
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "{address}");
        SessionBus { child, address }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
