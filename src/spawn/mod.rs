//! Turning a spawn request into a running process: the command line, the
//! child-side setup and the status-pipe protocol.

mod child;
mod command;
pub mod helper;
pub mod nofile;
mod prepare;
pub mod record;

pub use child::{cloexec_pipe, fork_child, open_pty, HelperLaunch, Identity, Prepared};
pub use command::{build_command, Command};
pub use prepare::{
    is_last_process, log_path, open_self_exe, prepare, resolve_exe, PtyUnavailable, SpawnSettings,
    Spawned,
};
