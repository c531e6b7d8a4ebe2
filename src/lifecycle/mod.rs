//! How the daemon ends: three timed phase machines, pure like the job
//! engine (`src/job/`). Each is plain data plus
//! `handle(now, input) -> Vec<Action>`: the daemon feeds it what it saw
//! (a tick with the current time, what is left of the jobs, a signal, the
//! command's exit) and carries out the actions it returns (stop every
//! job, signal every process, sync, reboot, exit). They read no clock
//! (`now` is the engine's CLOCK_MONOTONIC milliseconds) and make no system
//! call, so every phase and timeout is testable on a virtual clock.
//!
//! - [`session_end`]: a session init's quiesce (pid1.md §8).
//! - [`system_stop`]: the built-in system stop (extensions.md §4).
//! - [`run`]: `outset run` around its command (extensions.md §3).

mod action;
pub mod run;
pub mod session_end;
pub mod system_stop;

pub use action::{Action, Answer, Jobs, Millis};
pub use run::RunMode;
pub use session_end::{Requester, SessionEnd};
pub use system_stop::{Ending, SystemStop};

/// The shortest time jobs are given to stop, whatever their `kill
/// timeout`s (pid1.md §8, extensions.md §4), in seconds.
pub const MIN_KILL_WINDOW: u64 = 5;

/// Milliseconds from `since` to `now` (zero if the clock seems to go back).
fn elapsed(now: Millis, since: Millis) -> Millis {
    now.saturating_sub(since)
}
