//! The built-in system stop (extensions.md §4): the runlevel event, goals
//! to stop through the normal state machine, SIGTERM then SIGKILL for
//! whatever is left, reap, sync, then `reboot(2)` on a machine or exit.

use std::time::{Duration, Instant};

use super::Daemon;
use crate::job::Level;
use crate::pid1::{sweep, Mode, StopAction};

/// How long stragglers get between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long SIGKILLed processes get to disappear before we give up on them.
const KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The `runlevel` event (and what it started or stopped) is finishing.
    Runlevel,
    /// Every instance's goal is stop; waiting for them to get there.
    Stopping,
    /// SIGTERM sent to every process left.
    Term,
    /// SIGKILL sent; reaping.
    Kill,
}

pub(super) struct SystemStop {
    action: StopAction,
    /// The exit status when the stop ends in an exit.
    status: i32,
    phase: Phase,
    since: Instant,
    /// How long the current phase may take.
    window: Duration,
}

impl SystemStop {
    /// Event handling stops once the process sweeps begin: nothing new may
    /// be started behind them.
    pub(super) fn frozen(&self) -> bool {
        matches!(self.phase, Phase::Term | Phase::Kill)
    }

    /// When the loop must look at the stop again.
    pub(super) fn tick() -> Duration {
        Duration::from_millis(100)
    }
}

impl Daemon {
    /// Begin the system stop for `action`. With `emit`, the `runlevel`
    /// event is emitted here; without, the caller already queued it (it
    /// came over D-Bus from `telinit` or `shutdown`). `status` is the exit
    /// status when the stop ends in an exit. Only the first request counts.
    pub(super) fn start_system_stop(&mut self, action: StopAction, emit: bool, status: i32) {
        if self.system_stop.is_some() {
            return;
        }
        self.log(
            Level::Info,
            &format!("System stop requested ({})", action.name()),
        );
        self.engine.no_respawn = true;
        if emit {
            let extra: Vec<String> = action
                .init_halt()
                .map(|h| format!("INIT_HALT={h}"))
                .into_iter()
                .collect();
            let prev = crate::pid1::runlevel::current_level();
            let mut env = vec![
                format!("RUNLEVEL={}", action.runlevel()),
                format!("PREVLEVEL={prev}"),
            ];
            env.extend(extra);
            self.engine.emit("runlevel", env);
        }
        self.system_stop = Some(SystemStop {
            action,
            status,
            phase: Phase::Runlevel,
            since: Instant::now(),
            window: Duration::from_secs(self.max_kill_timeout()),
        });
    }

    /// A `runlevel` event is being emitted over D-Bus: runlevels 0 and 6
    /// start the built-in stop of PID 1 (machine or container).
    pub(super) fn observe_emit(&mut self, name: &str, env: &[String]) {
        if name != "runlevel" || !matches!(self.config.mode, Mode::Machine | Mode::Container) {
            return;
        }
        if let Some(action) = StopAction::from_runlevel_event(env) {
            self.start_system_stop(action, false, 0);
        }
    }

    fn enter(&mut self, phase: Phase) {
        let window = match phase {
            Phase::Runlevel | Phase::Stopping => Duration::from_secs(self.max_kill_timeout()),
            Phase::Term => TERM_GRACE,
            Phase::Kill => KILL_GRACE,
        };
        match phase {
            Phase::Stopping => self.engine.stop_all(&mut self.shell),
            Phase::Term => {
                sweep::signal_all(&*self.shell.sys, libc::SIGTERM);
            }
            Phase::Kill => {
                sweep::signal_all(&*self.shell.sys, libc::SIGKILL);
            }
            Phase::Runlevel => {}
        }
        if let Some(stop) = &mut self.system_stop {
            stop.phase = phase;
            stop.since = Instant::now();
            stop.window = window;
        }
    }

    /// Advance the stop; returns the exit status once it is over and the
    /// daemon should exit (on a machine it ends in `reboot(2)` instead).
    pub(super) fn check_system_stop(&mut self) -> Option<i32> {
        let stop = self.system_stop.as_ref()?;
        let (phase, elapsed, window) = (stop.phase, stop.since.elapsed(), stop.window);
        match phase {
            Phase::Runlevel => {
                let pending = self.engine.events.iter().any(|e| e.name == "runlevel");
                if !pending || elapsed > window {
                    self.enter(Phase::Stopping);
                }
                None
            }
            Phase::Stopping => {
                if self.engine.has_instances() && elapsed <= window {
                    return None;
                }
                self.warn_failed_to_stop();
                self.enter(Phase::Term);
                None
            }
            Phase::Term => {
                if sweep::any_left(&*self.shell.sys) && elapsed <= window {
                    return None;
                }
                self.enter(Phase::Kill);
                None
            }
            Phase::Kill => {
                if sweep::any_left(&*self.shell.sys) && elapsed <= window {
                    // New children (a post-stop spawned by an exit) get
                    // the same treatment.
                    sweep::signal_all(&*self.shell.sys, libc::SIGKILL);
                    return None;
                }
                if sweep::any_left(&*self.shell.sys) {
                    self.log(Level::Warn, "Some processes did not go away");
                }
                self.finish_system_stop()
            }
        }
    }

    /// `sync()`, then `reboot(2)` as PID 1 of a machine, else the exit
    /// status.
    fn finish_system_stop(&mut self) -> Option<i32> {
        let stop = self.system_stop.as_ref()?;
        let (action, status) = (stop.action, stop.status);
        if self.config.mode == Mode::Machine && std::process::id() == 1 {
            self.log(Level::Message, &format!("Will now {}", action.name()));
            let e = crate::pid1::reboot::reboot(action, false);
            // Exiting would panic the kernel: stay, reaping, and say why.
            self.log(Level::Error, &format!("Unable to {}: {e}", action.name()));
            self.system_stop = None;
            return None;
        }
        nix::unistd::sync();
        Some(status)
    }
}
