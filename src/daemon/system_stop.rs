//! Feeding the built-in system stop (`crate::lifecycle::system_stop`):
//! its requests and what it sees of the jobs and processes.

use super::lifecycle::Machine;
use super::Daemon;
use crate::config::ContainerExit;
use crate::job::Level;
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
        } else if self.config.mode == Mode::Run {
            Ending::RunOver {
                status,
                show_logs: false,
            }
        } else {
            Ending::Exit(status)
        };
        self.begin_system_stop(action, emit, ending);
    }

    /// Begin the system stop, to end as `ending`.
    pub(super) fn begin_system_stop(&mut self, action: StopAction, emit: bool, ending: Ending) {
        let input = Input::Begin {
            action,
            emit_runlevel: emit,
            ending,
            jobs: self.jobs(),
            exits_seen: sweep::sees_every_exit(&*self.world.sys),
        };
        let actions = self.system_stop.handle(self.now_ms(), input);
        self.carry_out(Machine::SystemStop, actions);
    }

    /// Every process of every instance.
    pub(super) fn job_pids(&self) -> Vec<i32> {
        self.engine
            .slots
            .values()
            .flat_map(|s| s.instances.values())
            .flat_map(|i| i.pids.values().copied())
            .filter(|&p| p > 0)
            .collect()
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

    /// A container's jobs that failed: one whose failure is the
    /// container's (`exit-container-on-failure`) starts the system stop,
    /// to exit with its status. Returns whether it did.
    pub(super) fn check_container_failures(&mut self) -> bool {
        if self.config.mode != Mode::Container {
            return false;
        }
        let failures = self.world.take_failures();
        for env in failures {
            let job = env
                .iter()
                .find_map(|kv| kv.strip_prefix("JOB="))
                .unwrap_or_default();
            let Some(exit) = self
                .engine
                .slots
                .get(job)
                .and_then(|s| s.class.rare.exit_container_on_failure)
            else {
                continue;
            };
            let status = match exit {
                ContainerExit::Code(code) => i32::from(code),
                ContainerExit::JobStatus => crate::lifecycle::system_stop::failed_job_status(&env),
            };
            let msg = format!(
                "{job} failed ({}): stopping the container with exit status {status}",
                crate::lifecycle::run::how_it_failed(&env)
            );
            self.log(Level::Warn, &msg);
            self.start_system_stop(StopAction::PowerOff, true, status);
            return true;
        }
        false
    }

    /// Advance the stop; returns the exit status once it is over and the
    /// daemon should exit (on a machine it ends in `reboot(2)` instead).
    pub(super) fn check_system_stop(&mut self) -> Option<i32> {
        if self.system_stop.active() {
            // Looking may cost a walk of /proc: only when it matters.
            let input = Input::Tick {
                jobs: self.jobs(),
                runlevel_pending: self.engine.events.iter().any(|e| e.name == "runlevel"),
                processes_left: self.system_stop.wants_processes()
                    && sweep::any_left(&*self.world.sys),
                leftovers_left: self.system_stop.wants_leftovers()
                    && sweep::any_left_outside(&*self.world.sys, &self.job_pids()),
            };
            let actions = self.system_stop.handle(self.now_ms(), input);
            self.carry_out(Machine::SystemStop, actions);
        }
        self.take_exit()
    }
}
