//! Carrying out what the lifecycle machines (`crate::lifecycle`) ask:
//! the only place their actions meet the engine and the system.

use super::Daemon;
use crate::job::{JobKey, Level};
use crate::lifecycle::{Action, Answer, Ending, Jobs, Millis};
use crate::pid1::sweep;

/// Which machine asked, so that answers go back to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Machine {
    SessionEnd,
    SystemStop,
    Run,
}

impl Daemon {
    /// What the machines see of the engine now.
    pub(super) fn jobs(&self) -> Jobs {
        Jobs {
            instances: self.engine.has_instances(),
            processes: self.engine.has_processes(),
            kill_timeout: self.largest_kill_timeout(),
        }
    }

    /// The largest `kill timeout` among classes with instances.
    fn largest_kill_timeout(&self) -> u64 {
        self.engine
            .slots
            .values()
            .filter(|s| !s.instances.is_empty())
            .map(|s| s.class.kill_timeout.max(0) as u64)
            .max()
            .unwrap_or(0)
    }

    /// The earliest moment a machine must be looked at again.
    pub(super) fn lifecycle_deadline(&self) -> Option<Millis> {
        [
            self.session_end.deadline(),
            self.system_stop.deadline(),
            self.run.as_ref().and_then(|r| r.deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Carry out `actions` from `machine` in order, handing it the answers
    /// of those that have one. Stops at `Exit`, whose status is kept for
    /// the loop (see `take_exit`).
    pub(super) fn carry_out(&mut self, machine: Machine, actions: Vec<Action>) {
        for action in actions {
            if self.exit_status.is_some() {
                return;
            }
            let Some(answer) = self.perform(action) else {
                continue;
            };
            let now = self.now_ms();
            let more = match machine {
                Machine::SessionEnd => self.session_end.answer(now, answer),
                Machine::SystemStop => self.system_stop.answer(now, answer),
                Machine::Run => match &mut self.run {
                    Some(run) => run.answer(now, answer),
                    None => Vec::new(),
                },
            };
            self.carry_out(machine, more);
        }
    }

    /// The status to exit with, once a machine said so.
    pub(super) fn take_exit(&mut self) -> Option<i32> {
        self.exit_status.take()
    }

    fn perform(&mut self, action: Action) -> Option<Answer> {
        match action {
            Action::Log(level, msg) => self.log(level, &msg),
            Action::Report(msg) => eprintln!("{msg}"),
            Action::ReportLogTail {
                job,
                instance,
                lines,
            } => self.report_log_tail(&job, &instance, lines),
            Action::DisableRespawn => self.engine.no_respawn = true,
            Action::Emit(name, env) => {
                self.engine.emit(name, env);
            }
            Action::EmitRunlevel(action) => {
                let prev = crate::pid1::runlevel::current_level();
                let env = crate::lifecycle::system_stop::runlevel_env(action, prev);
                self.engine.emit("runlevel", env);
            }
            Action::StopAll => {
                self.engine.stop_all(&mut self.world);
                return Some(Answer::StoppedAll(self.jobs()));
            }
            Action::WarnFailedToStop => self.warn_failed_to_stop(),
            Action::SignalAll(sig) => {
                sweep::signal_all(&*self.world.sys, sig);
            }
            Action::SignalLeftovers(sig) => {
                sweep::signal_outside(&*self.world.sys, sig, &self.job_pids());
            }
            Action::SyncRoot => sync_root(),
            Action::StartCommand => return Some(self.start_command()),
            Action::ForwardSignal { group, signal } => {
                // The command's process group (its pid is the group's
                // id: it made its own, or its own session).
                let _ = self.world.sys.kill(-group, signal);
            }
            Action::StopSystem {
                action,
                status,
                show_logs,
            } => self.begin_system_stop(action, true, Ending::RunOver { status, show_logs }),
            Action::ShowLogs => self.show_run_logs(),
            Action::Sync => nix::unistd::sync(),
            Action::DebugExit(status) => {
                let e = crate::pid1::debug_exit::exit(status);
                // On real hardware there is nothing to say.
                if e != crate::pid1::debug_exit::DebugExitError::NotQemu {
                    self.log(
                        Level::Info,
                        &format!("Exit status {status} not handed over: {e}"),
                    );
                }
            }
            Action::Reboot(action) => {
                // Synced just before.
                let e = crate::pid1::reboot::reboot(action, true);
                return Some(Answer::RebootFailed(e.to_string()));
            }
            Action::Exit(status) => self.exit_status = Some(status),
        }
        None
    }

    /// Name every instance still alive as having failed to stop.
    fn warn_failed_to_stop(&mut self) {
        let left: Vec<String> = self
            .engine
            .slots
            .iter()
            .flat_map(|(job, s)| {
                s.instances
                    .keys()
                    .map(move |i| JobKey::new(job, i).to_string())
            })
            .collect();
        for job in left {
            self.log(Level::Warn, &format!("job {job} failed to stop"));
        }
    }
}

/// `syncfs(2)` on the file system of `/`: a container's own, not every
/// file system of the host.
fn sync_root() {
    if let Ok(root) = std::fs::File::open("/") {
        let _ = nix::unistd::syncfs(&root);
    }
}
