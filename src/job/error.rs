//! Why the engine refused a control call, and why a waiting caller's job
//! or event failed. The control plane gives each its D-Bus error name
//! (control/error.rs); the messages here are Upstart's, word for word.

use nix::errno::Errno;
use thiserror::Error;

use super::WaitKind;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("Unknown job: {0}")]
    UnknownJob(String),
    /// Names the instance only.
    #[error("Unknown instance: {0}")]
    UnknownInstance(String),
    /// The environment calls' form, naming the job too.
    #[error("Unknown instance: {instance} of job {job}")]
    UnknownJobInstance { job: String, instance: String },
    /// The instance as the message names it (`job (instance)`, or for a
    /// restart the instance alone, as the reference words it).
    #[error("Job is already running: {0}")]
    AlreadyStarted(String),
    #[error("Job has already been stopped: {0}")]
    AlreadyStopped(String),
    #[error("Job is not running: {0}")]
    NotRunning(String),
    #[error("Job cannot be started as cgroup manager not available: {0}")]
    CGroupManagerNotAvailable(String),
    /// The instance name did not expand: the expansion error (with the
    /// class's usage line for a start).
    #[error("{0}")]
    InstanceName(String),
    #[error("Job may not be empty string")]
    EmptyJobName,
    #[error("Variable may not be empty string")]
    EmptyVariable,
    #[error("No such variable: {0}")]
    NoSuchVariable(String),
    #[error("Job details must be empty or JOB and INSTANCE")]
    BadJobDetails,
    /// Something init refuses to do as PID 1.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The reload signal could not be sent.
    #[error("{}", .0.desc())]
    SignalFailed(Errno),
    /// An `expect notify` job said `RELOADING=1` and not `READY=1`
    /// in time, or its main process ended first.
    #[error("Job did not finish reloading: {0}")]
    ReloadUnfinished(String),
    /// A waiting caller's job failed.
    #[error("{}", .0.failure_message())]
    JobFailed(WaitKind),
    /// A waiting caller's event failed.
    #[error("Event failed")]
    EventFailed,
}

/// Why a process could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// The spawn helper is init's own executable.
    #[error("unable to open own executable: {0}")]
    SelfExe(std::io::Error),
    /// Preparing the child (its pipes, pty, script or plan) failed.
    #[error("{0}")]
    Prepare(std::io::Error),
    /// The clone failed.
    #[error("{}", crate::os_error::strerror(*.0 as i32))]
    Fork(Errno),
}
