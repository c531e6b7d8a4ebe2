//! What the machines ask of the daemon, and what it tells them back.

use crate::job::Level;
use crate::pid1::StopAction;

/// A point on the daemon's monotonic clock, in milliseconds (the engine's
/// time base).
pub type Millis = u64;

/// What the machines see of the job engine at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Jobs {
    /// Some instance of some job exists.
    pub instances: bool,
    /// Some job process is running.
    pub processes: bool,
    /// The largest `kill timeout` (seconds) among classes with instances;
    /// zero when there are none.
    pub kill_timeout: u64,
}

impl Jobs {
    /// How long, in seconds, the jobs are given to stop: their largest
    /// `kill timeout`, at least [`super::MIN_KILL_WINDOW`].
    pub fn kill_window(&self) -> u64 {
        self.kill_timeout.max(super::MIN_KILL_WINDOW)
    }
}

/// One thing for the daemon to do, in the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write a message to init's log.
    Log(Level, String),
    /// Tell the user on init's standard error (run mode's own messages).
    Report(String),
    /// Show the last `lines` lines of this instance's log on init's
    /// standard error (nothing when it has none).
    ReportLogTail {
        job: String,
        instance: String,
        lines: usize,
    },
    /// No job respawns from now on.
    DisableRespawn,
    /// Queue an event.
    Emit(&'static str, Vec<String>),
    /// Queue the `runlevel` event for this stop, as `telinit` would
    /// (its `PREVLEVEL` is the daemon's to find out).
    EmitRunlevel(StopAction),
    /// Set every instance's goal to stop; answered with
    /// [`Answer::StoppedAll`].
    StopAll,
    /// Log `job JOB failed to stop` for every instance still there.
    WarnFailedToStop,
    /// Send this signal to every process left (the sweep).
    SignalAll(i32),
    /// Send this signal to every process left that is neither a job's
    /// process nor a descendant of one (run mode's command leftovers).
    SignalLeftovers(i32),
    /// Start the `run` job; answered with [`Answer::CommandStarted`] or
    /// [`Answer::CommandFailed`].
    StartCommand,
    /// Send `signal` to the command's process group.
    ForwardSignal { group: i32, signal: i32 },
    /// Begin the system stop (run mode's end), exiting with `status`;
    /// with `show_logs`, every log of the run is shown at its end.
    StopSystem {
        action: StopAction,
        status: i32,
        show_logs: bool,
    },
    /// Show every job log written in this run on init's standard error.
    ShowLogs,
    /// `sync()` the filesystems.
    Sync,
    /// `syncfs()` the file system of `/` only (a container's own).
    SyncRoot,
    /// Hand this exit status to a virtual machine's host (qemu's
    /// isa-debug-exit device), which ends the machine; nothing happens
    /// without the device, and the next action follows.
    DebugExit(u8),
    /// `reboot(2)`; returns only on failure, answered with
    /// [`Answer::RebootFailed`].
    Reboot(StopAction),
    /// Leave the main loop; the daemon exits with this status.
    Exit(i32),
}

/// The outcome of an action, for the machine that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every goal is now stop; what is left of the jobs right after.
    StoppedAll(Jobs),
    /// The command's job started, its main process being this pid if
    /// already spawned.
    CommandStarted(Option<i32>),
    /// The command's job could not be started.
    CommandFailed(String),
    /// `reboot(2)` returned with this error.
    RebootFailed(String),
}
