//! Goals and states of an instance (events-and-states.md §6).

use crate::config::ProcessType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Stop,
    Start,
    Respawn,
}

impl Goal {
    pub fn name(self) -> &'static str {
        match self {
            Goal::Stop => "stop",
            Goal::Start => "start",
            Goal::Respawn => "respawn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Starting,
    SecuritySpawning,
    Security,
    PreStarting,
    PreStart,
    Spawning,
    Spawned,
    PostStarting,
    PostStart,
    Running,
    PreStopping,
    PreStop,
    Stopping,
    Killed,
    PostStopping,
    PostStop,
}

impl State {
    pub const ALL: [State; 17] = [
        State::Waiting,
        State::Starting,
        State::SecuritySpawning,
        State::Security,
        State::PreStarting,
        State::PreStart,
        State::Spawning,
        State::Spawned,
        State::PostStarting,
        State::PostStart,
        State::Running,
        State::PreStopping,
        State::PreStop,
        State::Stopping,
        State::Killed,
        State::PostStopping,
        State::PostStop,
    ];

    /// The name `initctl` and D-Bus use.
    pub fn name(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Starting => "starting",
            State::SecuritySpawning => "security-spawning",
            State::Security => "security",
            State::PreStarting => "pre-starting",
            State::PreStart => "pre-start",
            State::Spawning => "spawning",
            State::Spawned => "spawned",
            State::PostStarting => "post-starting",
            State::PostStart => "post-start",
            State::Running => "running",
            State::PreStopping => "pre-stopping",
            State::PreStop => "pre-stop",
            State::Stopping => "stopping",
            State::Killed => "killed",
            State::PostStopping => "post-stopping",
            State::PostStop => "post-stop",
        }
    }

    /// The process a spawn state launches, or the waiting state after it
    /// waits for.
    pub fn process(self) -> Option<ProcessType> {
        Some(match self {
            State::SecuritySpawning | State::Security => ProcessType::Security,
            State::PreStarting | State::PreStart => ProcessType::PreStart,
            State::Spawning | State::Spawned => ProcessType::Main,
            State::PostStarting | State::PostStart => ProcessType::PostStart,
            State::PreStopping | State::PreStop => ProcessType::PreStop,
            State::PostStopping | State::PostStop => ProcessType::PostStop,
            _ => return None,
        })
    }

    /// The transient states that launch a process on entry.
    pub fn is_spawn_state(self) -> bool {
        matches!(
            self,
            State::SecuritySpawning
                | State::PreStarting
                | State::Spawning
                | State::PostStarting
                | State::PreStopping
                | State::PostStopping
        )
    }
}
