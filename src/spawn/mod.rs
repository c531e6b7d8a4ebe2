//! Turning a spawn request into a running process: the command line, the
//! child-side setup and the status-pipe protocol.

pub mod apparmor;
mod child;
mod command;
pub mod helper;
mod identity;
pub mod nofile;
mod prepare;
pub mod record;
pub mod remote_mounts;

pub use child::{cloexec_pipe, fork_child, open_pty, CStrBlock, HelperLaunch, Prepared};
pub use command::{build_command, Command};
pub use prepare::{
    is_last_process, log_path, needs_helper, open_self_exe, prepare, resolve_exe, PtyUnavailable,
    SpawnSettings, Spawned,
};
