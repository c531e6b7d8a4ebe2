//! What every peer-to-peer D-Bus server of outset shares (init's control
//! socket and outset-cgmanager's): a server GUID and a stand-in for the
//! bus daemon's own interface.

use zbus::interface;

/// A server GUID from the kernel's RNG without waiting for it to be
/// seeded (PID 1 and the cgroup manager start early in boot, before that).
pub fn guid() -> Option<zbus::Guid<'static>> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom fills our buffer of the given length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_INSECURE) };
    if n != bytes.len() as isize {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    zbus::Guid::try_from(hex).ok()
}

/// A stand-in, at `/org/freedesktop/DBus`, for the few `org.freedesktop.DBus`
/// calls that bus clients (gdbus, busctl, dbus-send --address) make before
/// anything else; the reference's peer server rejected them.
pub struct BusStandIn {
    pub serial: std::sync::atomic::AtomicU64,
    /// Init's connections: the signals the client asked for (`Hello`,
    /// `AddMatch`); `None` where no signals are sent anyway.
    pub subscriptions: Option<std::sync::Arc<super::subscriptions::Subscriptions>>,
}

#[interface(name = "org.freedesktop.DBus")]
impl BusStandIn {
    fn hello(&self) -> String {
        if let Some(s) = &self.subscriptions {
            s.register();
        }
        let n = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(":1.{n}")
    }

    fn add_match(&self, rule: String) -> zbus::fdo::Result<()> {
        match &self.subscriptions {
            Some(s) => s.add(&rule),
            None => Ok(()),
        }
    }

    fn remove_match(&self, rule: String) -> zbus::fdo::Result<()> {
        match &self.subscriptions {
            Some(s) => s.remove(&rule),
            None => Ok(()),
        }
    }

    fn get_name_owner(&self, _name: String) -> String {
        ":1.0".to_string()
    }
}
