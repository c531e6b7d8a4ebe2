//! Turning a spawn request into a running process: the command line, the
//! child-side setup and the status-pipe protocol.

mod child;
mod command;
mod prepare;
pub mod record;

pub use child::{cloexec_pipe, fork_child, open_pty, Identity, Prepared};
pub use command::{build_command, Command};
pub use prepare::{log_path, prepare, resolve_exe, PtyUnavailable, SpawnSettings, Spawned};
