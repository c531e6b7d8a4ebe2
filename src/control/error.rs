//! D-Bus errors with Upstart's names (`com.ubuntu.Upstart0_6.Error.*`).

use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::DBusError;

use super::protocol::CallError;

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
