//! The options every bridge takes, as Upstart's did.

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Detach and run in the background.
    #[arg(long)]
    pub daemon: bool,
    /// Connect to the session init named by $UPSTART_SESSION.
    #[arg(long)]
    pub user: bool,
    /// Print debugging messages.
    #[arg(long)]
    pub debug: bool,
    /// Print informational messages.
    #[arg(long)]
    pub verbose: bool,
}

/// The system init's private socket (control.md §1.1).
pub const SYSTEM_ADDRESS: &str = "unix:abstract=/com/ubuntu/upstart";

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("UPSTART_SESSION isn't set in the environment")]
    NoSession,
}

impl Common {
    /// Apply the verbosity options.
    pub fn set_log_level(&self) {
        use super::log;
        log::set_level(if self.debug {
            log::DEBUG
        } else if self.verbose {
            log::INFO
        } else {
            log::WARN
        });
    }

    /// Where init listens: $UPSTART_SESSION with `--user`, else the system
    /// init's private socket.
    pub fn init_address(&self) -> Result<String, OptionsError> {
        if self.user {
            std::env::var("UPSTART_SESSION").map_err(|_| OptionsError::NoSession)
        } else {
            Ok(SYSTEM_ADDRESS.to_string())
        }
    }
}
