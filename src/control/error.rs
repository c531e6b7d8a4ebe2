//! D-Bus errors with Upstart's names (`com.ubuntu.Upstart0_6.Error.*`).

use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::DBusError;

use super::protocol::CallError;
use crate::job::EngineError;

/// The D-Bus error name of each engine error (control.md).
pub fn dbus_name(e: &EngineError) -> &'static str {
    match e {
        EngineError::UnknownJob(_) => "com.ubuntu.Upstart0_6.Error.UnknownJob",
        EngineError::UnknownInstance(_) => "com.ubuntu.Upstart0_6.Error.UnknownInstance",
        EngineError::UnknownJobInstance { .. } => "com.ubuntu.Upstart0_6.Error.UnknownJobInstance",
        EngineError::AlreadyStarted(_) => "com.ubuntu.Upstart0_6.Error.AlreadyStarted",
        EngineError::AlreadyStopped(_) => "com.ubuntu.Upstart0_6.Error.AlreadyStopped",
        EngineError::NotRunning(_) => "com.ubuntu.Upstart0_6.Error.NotRunning",
        EngineError::CGroupManagerNotAvailable(_) => {
            "com.ubuntu.Upstart0_6.Error.CGroupManagerNotAvailable"
        }
        EngineError::PermissionDenied(_) => "com.ubuntu.Upstart0_6.Error.PermissionDenied",
        EngineError::JobFailed(_) => "com.ubuntu.Upstart0_6.Error.JobFailed",
        EngineError::EventFailed => "com.ubuntu.Upstart0_6.Error.EventFailed",
        EngineError::InstanceName(_)
        | EngineError::EmptyJobName
        | EngineError::EmptyVariable
        | EngineError::NoSuchVariable(_)
        | EngineError::BadJobDetails => "org.freedesktop.DBus.Error.InvalidArgs",
        EngineError::SignalFailed(_) | EngineError::ReloadUnfinished(_) => {
            "org.freedesktop.DBus.Error.Failed"
        }
    }
}

impl From<EngineError> for CallError {
    fn from(e: EngineError) -> Self {
        CallError::new(dbus_name(&e), e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct UpstartError(pub CallError);

impl From<CallError> for UpstartError {
    fn from(e: CallError) -> Self {
        UpstartError(e)
    }
}

impl From<zbus::Error> for UpstartError {
    fn from(e: zbus::Error) -> Self {
        UpstartError(CallError::new(
            "org.freedesktop.DBus.Error.Failed",
            e.to_string(),
        ))
    }
}

impl DBusError for UpstartError {
    fn create_reply(&self, hdr: &Header<'_>) -> zbus::Result<Message> {
        Message::error(hdr, self.name()).build(&(self.0.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        // Every name comes from this crate's constants and is valid.
        ErrorName::from_str_unchecked(self.0.name.as_str())
    }

    fn description(&self) -> Option<&str> {
        Some(&self.0.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::WaitKind;

    #[test]
    fn engine_errors_keep_upstarts_names_and_messages() {
        let cases = [
            (
                EngineError::UnknownJobInstance {
                    job: "web".into(),
                    instance: "a".into(),
                },
                "com.ubuntu.Upstart0_6.Error.UnknownJobInstance",
                "Unknown instance: a of job web",
            ),
            (
                EngineError::AlreadyStopped("web (a)".into()),
                "com.ubuntu.Upstart0_6.Error.AlreadyStopped",
                "Job has already been stopped: web (a)",
            ),
            (
                EngineError::NoSuchVariable("FOO".into()),
                "org.freedesktop.DBus.Error.InvalidArgs",
                "No such variable: FOO",
            ),
            (
                EngineError::SignalFailed(nix::errno::Errno::ESRCH),
                "org.freedesktop.DBus.Error.Failed",
                "No such process",
            ),
            (
                EngineError::JobFailed(WaitKind::Restart),
                "com.ubuntu.Upstart0_6.Error.JobFailed",
                "Job failed to restart",
            ),
        ];
        for (e, name, message) in cases {
            assert_eq!(CallError::from(e), CallError::new(name, message));
        }
    }
}
