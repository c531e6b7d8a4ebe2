//! One running (or starting, or stopping) copy of a job.

use std::collections::BTreeMap;

use super::notify::Readiness;
use super::state::{Goal, State};
use crate::config::ProcessType;
use crate::event::{EventId, EventTree};

/// Something an instance holds until it finishes a request (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Event(EventId),
    /// A control-plane caller waiting for the outcome.
    Waiter {
        token: u64,
        kind: WaitKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    Start,
    Stop,
    Restart,
}

impl WaitKind {
    pub fn failure_message(self) -> &'static str {
        match self {
            WaitKind::Start => "Job failed to start",
            WaitKind::Stop => "Job failed while stopping",
            WaitKind::Restart => "Job failed to restart",
        }
    }
}

/// Where ptrace following of the main process stands (§10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trace {
    #[default]
    None,
    New,
    NewChild,
    Normal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub goal: Goal,
    pub state: State,
    pub env: Vec<String>,
    pub start_env: Option<Vec<String>>,
    pub stop_env: Option<Vec<String>>,
    pub stop_on: Option<EventTree>,
    /// Live pids by process type (absent = none).
    pub pids: BTreeMap<ProcessType, i32>,
    /// The job event this instance waits for.
    pub blocker: Option<EventId>,
    pub blocking: Vec<Held>,
    pub failed: bool,
    pub failed_process: Option<ProcessType>,
    /// −1 for a spawn failure; `signal << 8` for a death by signal.
    pub exit_status: i32,
    /// Start of the current respawn window (monotonic seconds) and how many
    /// respawns it has seen.
    pub respawn_time: u64,
    pub respawn_count: i32,
    /// Deadline of the SIGKILL timer (monotonic milliseconds), if armed.
    pub kill_deadline: Option<u64>,
    pub trace: Trace,
    pub trace_forks: u32,
    /// What an `expect notify` main process has said (extensions.md §7).
    pub readiness: Readiness,
}

impl Instance {
    pub fn new(name: &str, stop_on: Option<EventTree>) -> Self {
        Instance {
            name: name.to_string(),
            goal: Goal::Stop,
            state: State::Waiting,
            env: Vec::new(),
            start_env: None,
            stop_env: None,
            stop_on,
            pids: BTreeMap::new(),
            blocker: None,
            blocking: Vec::new(),
            failed: false,
            failed_process: None,
            exit_status: 0,
            respawn_time: 0,
            respawn_count: 0,
            kill_deadline: None,
            trace: Trace::None,
            trace_forks: 0,
            readiness: Readiness::default(),
        }
    }

    pub fn pid(&self, kind: ProcessType) -> i32 {
        self.pids.get(&kind).copied().unwrap_or(0)
    }
}
