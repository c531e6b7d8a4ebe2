//! What a manager call can fail with, and the D-Bus error each failure is
//! sent back as.

use thiserror::Error;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::DBusError;

#[derive(Debug, Error)]
pub enum CgError {
    /// A malformed argument: bad path, key, pid, mode.
    #[error("{0}")]
    InvalidArgs(String),
    /// No hierarchy carries this controller (or it is not usable).
    #[error("{0}")]
    UnknownController(String),
    /// The caller may not do this (extensions.md §1: authorisation).
    #[error("{0}")]
    AccessDenied(String),
    /// A cgroup, file or process that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something this manager deliberately does not do.
    #[error("{0}")]
    NotSupported(String),
    /// A cgroup filesystem operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl CgError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CgError::InvalidArgs(msg.into())
    }

    pub fn denied(msg: impl Into<String>) -> Self {
        CgError::AccessDenied(msg.into())
    }

    /// Wrap an I/O error, naming what was being done. Missing files and
    /// refused access keep their own D-Bus names.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        match source.kind() {
            std::io::ErrorKind::NotFound => CgError::NotFound(format!("{what}: {source}")),
            std::io::ErrorKind::PermissionDenied => {
                CgError::AccessDenied(format!("{what}: {source}"))
            }
            _ => CgError::Io { what, source },
        }
    }

    /// The D-Bus error name sent to the client.
    pub fn dbus_name(&self) -> &'static str {
        match self {
            CgError::InvalidArgs(_) => "org.freedesktop.DBus.Error.InvalidArgs",
            CgError::UnknownController(_) => {
                "org.linuxcontainers.cgmanager0_0.Error.UnknownController"
            }
            CgError::AccessDenied(_) => "org.freedesktop.DBus.Error.AccessDenied",
            CgError::NotFound(_) => "org.freedesktop.DBus.Error.FileNotFound",
            CgError::NotSupported(_) => "org.freedesktop.DBus.Error.NotSupported",
            CgError::Io { .. } => "org.freedesktop.DBus.Error.Failed",
        }
    }
}

/// Errors as the interface methods return them.
#[derive(Debug)]
pub struct ReplyError {
    name: &'static str,
    message: String,
}

impl From<CgError> for ReplyError {
    fn from(e: CgError) -> Self {
        ReplyError {
            name: e.dbus_name(),
            message: e.to_string(),
        }
    }
}

impl From<zbus::Error> for ReplyError {
    fn from(e: zbus::Error) -> Self {
        ReplyError {
            name: "org.freedesktop.DBus.Error.Failed",
            message: e.to_string(),
        }
    }
}

impl DBusError for ReplyError {
    fn create_reply(&self, hdr: &Header<'_>) -> zbus::Result<Message> {
        Message::error(hdr, self.name()).build(&(self.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        // Every name is one of the constants above, all valid.
        ErrorName::from_str_unchecked(self.name)
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, CgError>;
