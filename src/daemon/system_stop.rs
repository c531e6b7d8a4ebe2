//! Feeding the built-in system stop (`crate::lifecycle::system_stop`):
//! its requests and what it sees of the jobs and processes.

use super::lifecycle::Machine;
use super::Daemon;
use crate::lifecycle::system_stop::Input;
use crate::lifecycle::Ending;
use crate::pid1::{sweep, Mode, StopAction};

impl Daemon {
    /// Begin the system stop for `action`. With `emit`, the `runlevel`
    /// event is emitted here; without, the caller already queued it (it
    /// came over D-Bus from `telinit` or `shutdown`). `status` is the exit
    /// status when the stop ends in an exit. Only the first request counts.
    pub(super) fn start_system_stop(&mut self, action: StopAction, emit: bool, status: i32) {
        // Only PID 1 of a machine reboots; everyone else exits.
        let ending = if self.config.mode == Mode::Machine && std::process::id() == 1 {
            match u8::try_from(status) {
                Ok(code) if code != 0 => Ending::RebootWithStatus(code),
                _ => Ending::Reboot,
            }
        } else {
            Ending::Exit(status)
        };
        let input = Input::Begin {
            action,
            emit_runlevel: emit,
            ending,
            jobs: self.jobs(),
        };
        let actions = self.system_stop.handle(self.now_ms(), input);
        self.carry_out(Machine::SystemStop, actions);
    }

    /// A `runlevel` event is being emitted over D-Bus: runlevels 0 and 6
    /// start the built-in stop of PID 1 (machine or container), with the
    /// exit status its `EXIT_CODE` asks for.
    pub(super) fn observe_emit(&mut self, name: &str, env: &[String]) {
        if name != "runlevel" || !matches!(self.config.mode, Mode::Machine | Mode::Container) {
            return;
        }
        if let Some(action) = StopAction::from_runlevel_event(env) {
            let status = crate::lifecycle::system_stop::exit_code(env).unwrap_or(0);
            self.start_system_stop(action, false, status);
        }
    }

    /// Advance the stop; returns the exit status once it is over and the
    /// daemon should exit (on a machine it ends in `reboot(2)` instead).
    pub(super) fn check_system_stop(&mut self) -> Option<i32> {
        if self.system_stop.active() {
            let input = Input::Tick {
                jobs: self.jobs(),
                runlevel_pending: self.engine.events.iter().any(|e| e.name == "runlevel"),
                // Looking costs a walk of /proc outside PID 1: only while
                // sweeping, when it matters.
                processes_left: self.system_stop.sweeping() && sweep::any_left(),
            };
            let actions = self.system_stop.handle(self.now_ms(), input);
            self.carry_out(Machine::SystemStop, actions);
        }
        self.take_exit()
    }
}
