//! `outset run` (extensions.md §3): wait for the jobs to settle, run the
//! command as the task job `run` with the caller's stdio, pass signals on
//! to it, then stop the system and exit with the command's status.

use std::time::{Duration, Instant};

use super::Daemon;
use crate::config::{ClassDefaults, Console, JobClass, Process, ProcessType};
use crate::job::{ExitStatus, Goal, JobKey, Level, State};
use crate::pid1::StopAction;

/// The name of the job that runs the command.
pub const RUN_JOB: &str = "run";

/// What `outset run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: Vec<String>,
    pub settle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Settling,
    /// The command runs as this pid (also its process group).
    Running(Option<i32>),
    Over,
}

pub(super) struct RunState {
    spec: RunSpec,
    phase: Phase,
    since: Instant,
    /// The command's exit status, once it ended.
    status: Option<i32>,
}

impl RunState {
    pub(super) fn new(spec: RunSpec) -> Self {
        RunState {
            spec,
            phase: Phase::Settling,
            since: Instant::now(),
            status: None,
        }
    }
}

/// Quote one argument for `/bin/sh` unless it is plainly safe.
fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The `run` task: the command with the caller's stdio. The command line
/// goes through the usual shell rules; quoting keeps every argument whole
/// (the shell then execs the command, so its pid stays the job's).
pub(super) fn run_class(command: &[String], defaults: &ClassDefaults) -> JobClass {
    let mut class = JobClass::new(RUN_JOB, "(outset run)", defaults);
    class.description = Some("the command given to outset run".to_string());
    class.task = true;
    class.console = Console::Inherit;
    let text: Vec<String> = command.iter().map(|a| quote(a)).collect();
    class.processes.insert(
        ProcessType::Main,
        Process {
            script: false,
            command: text.join(" "),
            line: 0,
        },
    );
    class
}

/// Instances that are not at rest: neither `running` with goal start nor
/// `waiting` with goal stop.
fn unsettled(d: &Daemon) -> Vec<String> {
    d.engine
        .slots
        .iter()
        .flat_map(|(job, s)| {
            s.instances.iter().filter_map(move |(name, i)| {
                let rest = (i.state == State::Running && i.goal == Goal::Start)
                    || (i.state == State::Waiting && i.goal == Goal::Stop);
                (!rest).then(|| {
                    format!(
                        "{} ({}/{})",
                        JobKey::new(job, name),
                        i.goal.name(),
                        i.state.name()
                    )
                })
            })
        })
        .collect()
}

impl Daemon {
    /// Drive run mode one step: start the command once settled, give up
    /// on settling, or start the stop once the command is over. Returns
    /// whether it did any of these (events may then be queued).
    pub(super) fn check_run(&mut self) -> bool {
        let Some(run) = &self.run else {
            return false;
        };
        match run.phase {
            Phase::Settling => {
                let waiting = unsettled(self);
                if self.engine.events.is_empty() && waiting.is_empty() {
                    self.start_command();
                    return true;
                } else if run.since.elapsed() > run.spec.settle_timeout {
                    let secs = run.spec.settle_timeout.as_secs();
                    let mut msg = format!("outset run: jobs did not settle within {secs} s:");
                    if waiting.is_empty() {
                        msg.push_str(" (events still queued)");
                    }
                    for w in waiting {
                        msg.push_str(&format!(" {w}"));
                    }
                    eprintln!("{msg}");
                    self.end_run(124);
                    return true;
                }
                false
            }
            Phase::Running(_) => {
                // The task is over once its instance is gone.
                if self.engine.instance(&JobKey::new(RUN_JOB, "")).is_none() {
                    let status = run.status.unwrap_or(127);
                    self.end_run(status);
                    return true;
                }
                false
            }
            Phase::Over => false,
        }
    }

    fn start_command(&mut self) {
        match self
            .engine
            .start_job(&mut self.shell, RUN_JOB, Vec::new(), None)
        {
            Ok(key) => {
                let pid = self
                    .engine
                    .instance(&key)
                    .map(|i| i.pid(ProcessType::Main))
                    .filter(|&p| p > 0);
                if let Some(run) = &mut self.run {
                    run.phase = Phase::Running(pid);
                }
            }
            Err((_, msg)) => {
                eprintln!("outset run: unable to run the command: {msg}");
                self.end_run(127);
            }
        }
    }

    fn end_run(&mut self, status: i32) {
        if let Some(run) = &mut self.run {
            run.phase = Phase::Over;
        }
        self.start_system_stop(StopAction::PowerOff, true, status);
    }

    /// A child ended: note the command's status (128+N for signal N).
    pub(super) fn run_child_exited(&mut self, pid: i32, exit: ExitStatus) {
        let Some(run) = &mut self.run else {
            return;
        };
        let main = match run.phase {
            Phase::Running(Some(p)) => p,
            Phase::Running(None) => match self
                .engine
                .instance(&JobKey::new(RUN_JOB, ""))
                .map(|i| i.pid(ProcessType::Main))
            {
                Some(p) if p > 0 => p,
                _ => return,
            },
            _ => return,
        };
        if pid == main {
            run.status = Some(match exit {
                ExitStatus::Exited(code) => code,
                ExitStatus::Signaled(sig) => 128 + sig,
            });
        }
    }

    /// A forwarded signal: to the command's process group while it runs;
    /// before it runs, SIGINT and SIGTERM give up (exit 128+N).
    pub(super) fn run_forward(&mut self, signo: i32) {
        let Some(run) = &self.run else {
            return;
        };
        match run.phase {
            Phase::Running(pid) => {
                let pid = pid.or_else(|| {
                    self.engine
                        .instance(&JobKey::new(RUN_JOB, ""))
                        .map(|i| i.pid(ProcessType::Main))
                        .filter(|&p| p > 0)
                });
                if let Some(pid) = pid {
                    // The command's process group (it runs in its own
                    // session, so pid == pgid).
                    let _ = self.shell.sys.kill(-pid, signo);
                }
            }
            Phase::Settling if signo == libc::SIGINT || signo == libc::SIGTERM => {
                self.log(Level::Info, "Interrupted before the command ran");
                self.end_run(128 + signo);
            }
            _ => {}
        }
    }

    /// Still waiting for the jobs to settle (the loop must wake up to
    /// notice the settle timeout).
    pub(super) fn run_settling(&self) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.phase == Phase::Settling)
    }

    /// The extra class run mode adds to every configuration load.
    pub(super) fn run_classes(&self) -> Vec<JobClass> {
        match &self.run {
            Some(run) => vec![run_class(&run.spec.command, &self.config.defaults)],
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting_keeps_arguments_whole() {
        assert_eq!(quote("ls"), "ls");
        assert_eq!(quote("-la"), "-la");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}
