//! The loop's side of its children: what a spawn's status pipe said,
//! and what `waitid` reports, handed to the engine in the order it needs
//! (a spawn's outcome before the exit of the same process). Functions of
//! the engine and the world only, so unit tests drive them through the
//! fake kernel (`crate::sys::fake`).

use super::world::{Outcome, World};
use crate::job::{Engine, ExitStatus};
use crate::sys::{ChildState, WaitFlags, WaitFor};

/// Hand the engine what a status pipe (or a pidfd) said.
pub(super) fn apply(engine: &mut Engine, world: &mut World, outcome: Outcome) {
    match outcome {
        Outcome::SpawnOk(pid) => engine.spawn_ok(world, pid),
        Outcome::SpawnError(pid, msg) => engine.spawn_error(world, pid, &msg),
        Outcome::Vanished(pid) => {
            world.process_ended(pid);
            engine.child_exited(world, pid, ExitStatus::Exited(0));
        }
    }
}

/// Drain the event queue, handing the engine the outcomes of spawns
/// that were complete at once (which can queue more events).
pub(super) fn run_queue(engine: &mut Engine, world: &mut World) {
    loop {
        engine.run_queue(world);
        let Some(outcome) = world.take_settled() else {
            return;
        };
        apply(engine, world, outcome);
        while let Some(outcome) = world.take_settled() {
            apply(engine, world, outcome);
        }
    }
}

/// Reap children until one has exited, and return it; stops and ptrace
/// traps met on the way go to the engine at once. `None` when no child is
/// left to reap. A pid whose status pipe is still open is drained first,
/// so the engine always learns the exec's outcome before the exit; the
/// caller then tells the engine of the exit.
pub(super) fn next_exit(engine: &mut Engine, world: &mut World) -> Option<(i32, ExitStatus)> {
    let flags = WaitFlags {
        stops: true,
        keep: false,
    };
    loop {
        let event = world.sys.wait(WaitFor::Any, flags).ok()??;
        let (pid, exit) = match event.state {
            ChildState::Exited(status) => (event.pid, ExitStatus::Exited(status)),
            ChildState::Killed(signal) => (event.pid, ExitStatus::Signaled(signal)),
            ChildState::Stopped(signal) => {
                engine.child_stopped(world, event.pid, signal);
                continue;
            }
            ChildState::Trapped(status) => {
                engine.child_trapped(world, event.pid, status & 0xff, status >> 8);
                continue;
            }
            ChildState::Other => continue,
        };
        if engine.spawn_pending(pid) {
            if let Some(outcome) = world.drain_status(pid) {
                apply(engine, world, outcome);
            }
        }
        world.process_ended(pid);
        return Some((pid, exit));
    }
}

#[cfg(test)]
#[path = "children_tests.rs"]
mod tests;
