//! The child side's connection to a cgroup manager speaking
//! `org.linuxcontainers.cgmanager0_0` (cgroups.md §4, §7): peer-to-peer, no
//! `Hello`, no destination, synchronous calls. Used only by the spawn
//! helper, a process of its own, so blocking here never blocks init.

use serde::Serialize;
use thiserror::Error;
use zbus::connection::Builder;
use zbus::Connection;

/// Object path of the manager.
pub const MANAGER_PATH: &str = "/org/linuxcontainers/cgmanager";
/// Interface of the manager.
pub const MANAGER_IFACE: &str = "org.linuxcontainers.cgmanager0_0";

#[derive(Debug, Error)]
pub enum ManagerError {
    /// The manager answered with a D-Bus error.
    #[error("{method}: {name}: {message}")]
    Call {
        method: &'static str,
        name: String,
        message: String,
    },
    /// No answer: the connection failed or broke.
    #[error("{context}: {source}")]
    Transport {
        context: &'static str,
        #[source]
        source: zbus::Error,
    },
}

impl ManagerError {
    /// An errno for the status record: the OS error behind a transport
    /// failure, the error a manager's message names, else EIO.
    pub fn errno(&self) -> i32 {
        match self {
            ManagerError::Transport {
                source: zbus::Error::InputOutput(e),
                ..
            } => e.raw_os_error().unwrap_or(libc::EIO),
            ManagerError::Call { message, .. } => errno_named_in(message).unwrap_or(libc::EIO),
            _ => libc::EIO,
        }
    }
}

/// The errno a manager's `message` ends with, if any: cgmanager reports
/// "…: Permission denied" and the like, outset-cgmanager the same text
/// followed by " (os error N)".
fn errno_named_in(message: &str) -> Option<i32> {
    let numbered = message
        .strip_suffix(')')
        .and_then(|m| m.rsplit_once(" (os error "))
        .and_then(|(_, n)| n.parse::<i32>().ok())
        .filter(|n| *n > 0);
    if numbered.is_some() {
        return numbered;
    }
    (1..134).find(|&n| {
        let text = nix::errno::Errno::from_raw(n).desc();
        !text.is_empty() && !text.starts_with("Unknown") && message.ends_with(text)
    })
}

pub struct ManagerClient {
    conn: Connection,
}

impl ManagerClient {
    /// Connect to `address` (e.g. `unix:path=/sys/fs/cgroup/cgmanager/sock`).
    pub fn connect(address: &str) -> Result<ManagerClient, ManagerError> {
        let transport = |source| ManagerError::Transport {
            context: "connect",
            source,
        };
        let builder = Builder::address(address).p2p();
        let conn = zbus::block_on(builder.build()).map_err(transport)?;
        Ok(ManagerClient { conn })
    }

    /// One synchronous call. There is no bus on a peer-to-peer connection,
    /// so the call carries no destination and nothing can be auto-started.
    fn call<B>(&self, method: &'static str, body: &B) -> Result<zbus::Message, ManagerError>
    where
        B: Serialize + zbus::zvariant::DynamicType,
    {
        let reply = zbus::block_on(self.conn.call_method(
            None::<&str>,
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            method,
            body,
        ));
        reply.map_err(|e| match e {
            zbus::Error::MethodError(name, message, _) => ManagerError::Call {
                method,
                name: name.to_string(),
                message: message.unwrap_or_default(),
            },
            zbus::Error::FDO(e) => {
                use zbus::DBusError;
                ManagerError::Call {
                    method,
                    name: e.name().to_string(),
                    message: e.description().unwrap_or_default().to_string(),
                }
            }
            source => ManagerError::Transport {
                context: method,
                source,
            },
        })
    }

    /// The cgroup of `pid`, relative to the manager's own.
    pub fn pid_cgroup_abs(&self, controller: &str, pid: i32) -> Result<String, ManagerError> {
        let reply = self.call("GetPidCgroupAbs", &(controller, pid))?;
        reply
            .body()
            .deserialize::<String>()
            .map_err(|source| ManagerError::Transport {
                context: "GetPidCgroupAbs",
                source,
            })
    }

    /// Move `pid` into `path` given relative to the manager's own cgroup.
    pub fn move_pid_abs(&self, controller: &str, path: &str, pid: i32) -> Result<(), ManagerError> {
        self.call("MovePidAbs", &(controller, path, pid)).map(drop)
    }

    /// Create `path` (and its parents); whether it existed does not matter.
    pub fn create(&self, controller: &str, path: &str) -> Result<(), ManagerError> {
        self.call("Create", &(controller, path)).map(drop)
    }

    pub fn set_value(
        &self,
        controller: &str,
        path: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ManagerError> {
        self.call("SetValue", &(controller, path, key, value))
            .map(drop)
    }

    pub fn chown(
        &self,
        controller: &str,
        path: &str,
        uid: u32,
        gid: u32,
    ) -> Result<(), ManagerError> {
        // The interface carries ids as `i`.
        self.call("Chown", &(controller, path, uid as i32, gid as i32))
            .map(drop)
    }

    pub fn remove_on_empty(&self, controller: &str, path: &str) -> Result<(), ManagerError> {
        self.call("RemoveOnEmpty", &(controller, path)).map(drop)
    }

    pub fn move_pid(&self, controller: &str, path: &str, pid: i32) -> Result<(), ManagerError> {
        self.call("MovePid", &(controller, path, pid)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_from_manager_text() {
        assert_eq!(
            errno_named_in("write memory.max: Invalid argument"),
            Some(libc::EINVAL)
        );
        assert_eq!(
            errno_named_in("creating cgroup upstart/x: Read-only file system (os error 30)"),
            Some(libc::EROFS)
        );
        assert_eq!(errno_named_in("no such controller"), None);
        assert_eq!(errno_named_in("odd (os error x)"), None);
        let e = ManagerError::Call {
            method: "Create",
            name: "org.freedesktop.DBus.Error.InvalidArgs".into(),
            message: "controller nope: not mounted".into(),
        };
        assert_eq!(e.errno(), libc::EIO);
    }
}
