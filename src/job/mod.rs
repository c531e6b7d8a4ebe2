//! The job engine: classes, instances, the event queue and the goal/state
//! machine (events-and-states.md). It is pure: inputs come in through
//! methods, and everything it needs from the world goes through [`Sys`].

/// Log through `sys`, formatting the message only if `sys` would write
/// it (a task's start and stop log a dozen Info lines nobody reads at the
/// default priority).
macro_rules! log {
    ($sys:expr, $level:expr, $($arg:tt)+) => {{
        let level = $level;
        if $sys.logs(level) {
            $sys.log(level, format!($($arg)+));
        }
    }};
}

mod classes;
mod engine;
mod envops;
mod error;
mod events;
mod instance;
mod interest;
mod lookup;
mod names;
mod notify;
mod post_start;
mod processes;
mod requests;
mod state;
mod sys;
mod timers;
mod transitions;
mod validate;

pub use engine::{ClassChange, Engine, EngineOptions, Event, EventWaiter, ExitStatus, Slot};
pub use error::{EngineError, SpawnError};
pub use instance::{Held, Instance, Trace, WaitKind};
pub use lookup::{InstanceDirectory, InstanceName, Naming};
pub use names::{ClassName, InstName, NameKey};
/// What `Sys::kill` and the ptrace requests fail with.
pub use nix::errno::Errno;
pub use notify::{NotifyMessage, Readiness};
pub use state::{Goal, State};
pub use sys::{Change, Level, Reply, SpawnRequest, Sys};

/// Names an instance: its class (job) name and instance name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey {
    pub job: String,
    pub instance: String,
}

impl JobKey {
    pub fn new(job: &str, instance: &str) -> Self {
        JobKey {
            job: job.to_string(),
            instance: instance.to_string(),
        }
    }
}

impl std::fmt::Display for JobKey {
    /// `job` or `job (instance)`, as Upstart's messages name instances.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.instance.is_empty() {
            f.write_str(&self.job)
        } else {
            write!(f, "{} ({})", self.job, self.instance)
        }
    }
}

#[cfg(test)]
mod tests;
