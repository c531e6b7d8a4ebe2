//! `outset run` (extensions.md §3), the daemon's side: the `run` job
//! that runs the command, and what the run-mode machine
//! (`crate::lifecycle::run`) is told.

use std::time::Duration;

use super::lifecycle::Machine;
use super::Daemon;
use crate::config::{ClassDefaults, Console, JobClass, Process, ProcessType};
use crate::job::{ExitStatus, Goal, JobKey, State};
use crate::lifecycle::run::Input;
use crate::lifecycle::{Answer, RunMode};

use crate::lifecycle::run::RUN_JOB;

/// What `outset run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: Vec<String>,
    pub settle_timeout: Duration,
    /// `--require`: jobs that must be running before the command.
    pub required: Vec<String>,
    /// `--show-logs-on-failure`: every job log of the run on standard
    /// error when the run fails.
    pub show_logs_on_failure: bool,
    /// The controlling terminal, lent to the command as its foreground
    /// process group (see `SpawnSettings::terminal`).
    pub terminal: Option<std::os::fd::RawFd>,
}

impl RunSpec {
    /// The run-mode machine for this run, settling from `now`.
    pub(super) fn machine(&self, now: u64) -> RunMode {
        let timeout = u64::try_from(self.settle_timeout.as_millis()).unwrap_or(u64::MAX);
        RunMode::new(now, timeout)
            .requiring(self.required.clone())
            .showing_logs_on_failure(self.show_logs_on_failure)
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
    class.rare.description = Some("the command given to outset run".to_string());
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

/// Which of `jobs` are not running (an instance `start/running`), each
/// with what it is instead.
fn not_running(d: &Daemon, jobs: &[String]) -> Vec<(String, String)> {
    jobs.iter()
        .filter_map(|job| {
            let Some(slot) = d.engine.slots.get(job.as_str()) else {
                return Some((job.clone(), "unknown job".to_string()));
            };
            let states: Vec<String> = slot
                .instances
                .values()
                .map(|i| format!("{}/{}", i.goal.name(), i.state.name()))
                .collect();
            if states.iter().any(|s| s == "start/running") {
                return None;
            }
            let what = if states.is_empty() {
                "stop/waiting".to_string()
            } else {
                states.join(", ")
            };
            Some((job.clone(), what))
        })
        .collect()
}

impl Daemon {
    /// Tell run mode the queue was drained: it may start the command,
    /// give up on settling, or start the stop once the command is over.
    /// Returns whether it did any of these (events may then be queued).
    pub(super) fn check_run(&mut self) -> bool {
        let Some(run) = &self.run else {
            return false;
        };
        let failures = self.world.take_failures();
        let settling = run.settling();
        let required_down = if settling {
            not_running(self, run.required())
        } else {
            Vec::new()
        };
        let mut acted = false;
        for env in failures {
            let now = self.now_ms();
            let actions = match &mut self.run {
                Some(run) => run.handle(now, Input::JobFailed(env)),
                None => Vec::new(),
            };
            acted |= !actions.is_empty();
            self.carry_out(Machine::Run, actions);
        }
        let Some(run) = &self.run else {
            return acted;
        };
        let input = Input::Tick {
            queue_empty: self.engine.events.is_empty(),
            unsettled: if run.settling() {
                unsettled(self)
            } else {
                Vec::new()
            },
            command_present: self.engine.instance(&JobKey::new(RUN_JOB, "")).is_some(),
            required_down,
        };
        let now = self.now_ms();
        let actions = match &mut self.run {
            Some(run) => run.handle(now, input),
            None => Vec::new(),
        };
        acted |= !actions.is_empty();
        self.carry_out(Machine::Run, actions);
        acted
    }

    /// Every job log written in this run, on standard error.
    pub(super) fn show_run_logs(&mut self) {
        let logs = self.world.run_logs.clone().unwrap_or_default();
        for (path, (job, instance)) in logs {
            let Ok(text) = std::fs::read(&path) else {
                continue;
            };
            let name = if instance.is_empty() {
                job
            } else {
                format!("{job} ({instance})")
            };
            let mut out = format!("outset run: log of {name} ({}):\n", path.display()).into_bytes();
            out.extend_from_slice(&text);
            if !text.ends_with(b"\n") {
                out.push(b'\n');
            }
            use std::io::Write;
            let _ = std::io::stderr().write_all(&out);
        }
    }

    /// The last `lines` lines of an instance's log, on standard error.
    pub(super) fn report_log_tail(&mut self, job: &str, instance: &str, lines: usize) {
        let path = crate::spawn::log_path(&self.config.logdir, job, instance);
        let Ok(text) = std::fs::read(&path) else {
            return;
        };
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        let tail = all
            .get(all.len().saturating_sub(lines)..)
            .unwrap_or_default();
        if tail.is_empty() {
            return;
        }
        let mut out = format!("outset run: last lines of {}:\n", path.display());
        for line in tail {
            out.push_str(line);
            out.push('\n');
        }
        eprint!("{out}");
    }

    /// Start the `run` job (the machine's `StartCommand`).
    pub(super) fn start_command(&mut self) -> Answer {
        match self
            .engine
            .start_job(&mut self.world, RUN_JOB, Vec::new(), None)
        {
            Ok(key) => Answer::CommandStarted(
                self.engine
                    .instance(&key)
                    .map(|i| i.pid(ProcessType::Main))
                    .filter(|&p| p > 0),
            ),
            Err(msg) => Answer::CommandFailed(msg.to_string()),
        }
    }

    /// The command job's main pid, once spawned.
    fn command_pid(&self) -> Option<i32> {
        self.engine
            .instance(&JobKey::new(RUN_JOB, ""))
            .map(|i| i.pid(ProcessType::Main))
            .filter(|&p| p > 0)
    }

    fn feed_run(&mut self, input: Input) {
        let now = self.now_ms();
        let actions = match &mut self.run {
            Some(run) => run.handle(now, input),
            None => return,
        };
        self.carry_out(Machine::Run, actions);
    }

    /// A child ended: run mode notes the command's status.
    pub(super) fn run_child_exited(&mut self, pid: i32, exit: ExitStatus) {
        if self.run.is_none() {
            return;
        }
        let command_pid = self.command_pid();
        self.feed_run(Input::ChildExited {
            pid,
            exit,
            command_pid,
        });
    }

    /// A signal for the command (run mode's forwarded signals).
    pub(super) fn run_forward(&mut self, signal: i32) {
        if self.run.is_none() {
            return;
        }
        let command_pid = self.command_pid();
        self.feed_run(Input::Signal {
            signal,
            command_pid,
        });
    }

    /// The extra class run mode adds to every configuration load.
    pub(super) fn run_classes(&self) -> Vec<JobClass> {
        match &self.config.run {
            Some(spec) => vec![run_class(&spec.command, &self.config.defaults)],
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
