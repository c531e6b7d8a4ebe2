//! What the engine asks of the outside world. The daemon implements it with
//! real processes; tests use a recording fake.

use std::sync::Arc;

use nix::errno::Errno;

use crate::config::{JobClass, ProcessType};

use super::error::{EngineError, SpawnError};
use super::JobKey;

/// Daemon log priorities (pid1.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Message,
    Warn,
    Error,
    Fatal,
}

/// Everything needed to start one process of one instance.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub job: JobKey,
    pub process: ProcessType,
    pub class: Arc<JobClass>,
    /// The complete process environment.
    pub env: Vec<String>,
    /// Follow forks with ptrace (`expect fork|daemon`).
    pub trace: bool,
    /// The cgroup manager's address when the class needs cgroups: the
    /// process is then set up by the spawn helper.
    pub cgroup_manager: Option<String>,
}

/// A change the engine makes that others may observe (a job or instance
/// added or removed, a goal or state changed, a failure, an emitted
/// event), in the engine's terms. The daemon hands each to the control
/// plane as a `control::Change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    JobAdded(String),
    JobRemoved(String),
    InstanceAdded(JobKey),
    InstanceRemoved(JobKey),
    GoalChanged(JobKey, &'static str),
    StateChanged(JobKey, &'static str),
    Failed(JobKey, i32),
    EventEmitted(String, Vec<String>),
}

/// The answer to a caller waiting on a job or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// [`EngineError::JobFailed`] or [`EngineError::EventFailed`].
    Failed(EngineError),
}

pub trait Sys {
    /// Start a process; returns its pid. An error means nothing was started
    /// (the reference retries such failures).
    fn spawn(&mut self, req: &SpawnRequest) -> Result<i32, SpawnError>;
    /// Send `signal` to the process group led by `pid` (or to `pid` alone
    /// when `group` is false).
    fn kill(&mut self, pid: i32, signal: i32, group: bool) -> Result<(), Errno>;
    fn log(&mut self, level: Level, message: String);
    /// Whether a message at `level` would be written at all: the engine
    /// builds the frequent ones (every state change) only if so.
    fn logs(&self, _level: Level) -> bool {
        true
    }
    /// Report a [`Change`] (for the control plane's objects and signals).
    fn changed(&mut self, _change: Change) {}
    /// ptrace requests for `expect fork|daemon`. A `Sys` that cannot
    /// trace answers `ENOSYS`.
    fn ptrace_setoptions(&mut self, _pid: i32, _follow: bool) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    fn ptrace_cont(&mut self, _pid: i32, _signal: i32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    fn ptrace_detach(&mut self, _pid: i32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// The pid of the child a traced process just forked.
    fn ptrace_new_child(&mut self, _pid: i32) -> Result<i32, Errno> {
        Err(Errno::ENOSYS)
    }
    /// Learn of the end of `pid`, a process the engine now follows that
    /// may not be init's child (`MAINPID=` of `expect notify`).
    fn watch_process(&mut self, _pid: i32) {}
    fn reply(&mut self, _token: u64, _reply: Reply) {}
    /// Is AppArmor usable (process-spawning.md §9)? Asked each time a
    /// `security` process would run, as the reference does.
    fn apparmor_available(&mut self) -> bool {
        false
    }
    /// An event that carried a file has finished: close the file.
    fn release_fd(&mut self, _fd: i32) {}
}
