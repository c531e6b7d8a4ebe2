//! `outset run` (extensions.md §3): wait for the jobs to settle (or give
//! up with 124), fail fast (125) when a service fails or a required job
//! is not running before the command, run the command, pass signals on
//! to its process group, and once it is over stop the system, exiting
//! with its status (128+N for signal N).

use super::{elapsed, Action, Answer, Millis};
use crate::job::{ExitStatus, Level};
use crate::pid1::StopAction;

/// The name of the task job that runs the command.
pub const RUN_JOB: &str = "run";

/// The exit status when the jobs do not settle in time (as timeout(1)).
pub const SETTLE_TIMEOUT_STATUS: i32 = 124;
/// The exit status when the command cannot be run, or its end was never
/// seen (as the shell's "command not found").
pub const NOT_RUN_STATUS: i32 = 127;
/// The exit status when a service failed, or a required job was not
/// running, before the command: as `env`, `nice` and `timeout` do when
/// they fail themselves before running their command.
pub const FAILED_BEFORE_COMMAND_STATUS: i32 = 125;
/// How many lines of a failed job's log are shown.
pub const LOG_TAIL_LINES: usize = 20;

/// What the daemon tells the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The event queue was drained.
    Tick {
        /// No event is queued.
        queue_empty: bool,
        /// The instances not at rest, as `job (goal/state)`. Only looked
        /// at while [`RunMode::settling`].
        unsettled: Vec<String>,
        /// The command's job still has an instance.
        command_present: bool,
        /// The required jobs that are not running, each with what it is
        /// instead (`stop/waiting`, `unknown job`). Only looked at while
        /// [`RunMode::settling`].
        required_down: Vec<(String, String)>,
    },
    /// An instance ended with a failed result (its `stopped` event, with
    /// that event's environment: `JOB`, `INSTANCE`, `PROCESS`,
    /// `EXIT_STATUS` or `EXIT_SIGNAL`).
    JobFailed(Vec<String>),
    /// A child ended. `command_pid` is the command job's main pid now, if
    /// it has one.
    ChildExited {
        pid: i32,
        exit: ExitStatus,
        command_pid: Option<i32>,
    },
    /// A signal meant for the command arrived.
    Signal {
        signal: i32,
        command_pid: Option<i32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Settling,
    /// The command runs as this pid (also its process group), once known.
    Running(Option<i32>),
    Over,
}

#[derive(Debug, Clone)]
pub struct RunMode {
    phase: Phase,
    started: Millis,
    settle_timeout: Millis,
    /// The command's exit status, once it ended.
    status: Option<i32>,
    /// `--require`: jobs that must be running before the command.
    required: Vec<String>,
    /// `--show-logs-on-failure`.
    show_logs: bool,
}

impl RunMode {
    /// Settling from `now`, for up to `settle_timeout` milliseconds.
    pub fn new(now: Millis, settle_timeout: Millis) -> Self {
        RunMode {
            phase: Phase::Settling,
            started: now,
            settle_timeout,
            status: None,
            required: Vec::new(),
            show_logs: false,
        }
    }

    /// Show every job's log at the end when the run fails (any status
    /// but 0).
    pub fn showing_logs_on_failure(mut self, show: bool) -> Self {
        self.show_logs = show;
        self
    }

    /// Also fail unless each of `jobs` is running once settled.
    pub fn requiring(mut self, jobs: Vec<String>) -> Self {
        self.required = jobs;
        self
    }

    /// The jobs named by `--require`.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Still waiting for the jobs to settle.
    pub fn settling(&self) -> bool {
        self.phase == Phase::Settling
    }

    /// When the settle timeout expires, while settling (everything else
    /// is driven by events).
    pub fn deadline(&self) -> Option<Millis> {
        self.settling().then(|| {
            self.started
                .saturating_add(self.settle_timeout)
                .saturating_add(1)
        })
    }

    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Action> {
        match input {
            Input::Tick {
                queue_empty,
                unsettled,
                command_present,
                required_down,
            } => self.tick(now, queue_empty, unsettled, command_present, required_down),
            Input::JobFailed(env) => self.job_failed(&env),
            Input::ChildExited {
                pid,
                exit,
                command_pid,
            } => {
                if let Phase::Running(known) = self.phase {
                    if known.or(command_pid) == Some(pid) {
                        self.status = Some(match exit {
                            ExitStatus::Exited(code) => code,
                            ExitStatus::Signaled(sig) => 128 + sig,
                        });
                    }
                }
                Vec::new()
            }
            Input::Signal {
                signal,
                command_pid,
            } => match self.phase {
                Phase::Running(known) => known
                    .or(command_pid)
                    .map(|group| Action::ForwardSignal { group, signal })
                    .into_iter()
                    .collect(),
                Phase::Settling if signal == libc::SIGINT || signal == libc::SIGTERM => {
                    let mut actions = vec![Action::Log(
                        Level::Info,
                        "Interrupted before the command ran".to_string(),
                    )];
                    actions.extend(self.end(128 + signal));
                    actions
                }
                _ => Vec::new(),
            },
        }
    }

    /// The outcome of `StartCommand`.
    pub fn answer(&mut self, _now: Millis, answer: Answer) -> Vec<Action> {
        if !self.settling() {
            return Vec::new();
        }
        match answer {
            Answer::CommandStarted(pid) => {
                self.phase = Phase::Running(pid);
                Vec::new()
            }
            Answer::CommandFailed(msg) => {
                let mut actions = vec![Action::Report(format!(
                    "outset run: unable to run the command: {msg}"
                ))];
                actions.extend(self.end(NOT_RUN_STATUS));
                actions
            }
            _ => Vec::new(),
        }
    }

    /// A service failed: before the command, that ends the run.
    fn job_failed(&mut self, env: &[String]) -> Vec<Action> {
        let job = var(env, "JOB").unwrap_or_default();
        if !self.settling() || job == RUN_JOB {
            return Vec::new();
        }
        let instance = var(env, "INSTANCE").unwrap_or_default();
        let name = if instance.is_empty() {
            job.to_string()
        } else {
            format!("{job} ({instance})")
        };
        let mut actions = vec![
            Action::Report(format!("outset run: {name} failed: {}", how_it_failed(env))),
            Action::ReportLogTail {
                job: job.to_string(),
                instance: instance.to_string(),
                lines: LOG_TAIL_LINES,
            },
        ];
        actions.extend(self.end(FAILED_BEFORE_COMMAND_STATUS));
        actions
    }

    fn tick(
        &mut self,
        now: Millis,
        queue_empty: bool,
        unsettled: Vec<String>,
        command_present: bool,
        required_down: Vec<(String, String)>,
    ) -> Vec<Action> {
        match self.phase {
            Phase::Settling if queue_empty && unsettled.is_empty() && !required_down.is_empty() => {
                let mut actions: Vec<Action> = required_down
                    .into_iter()
                    .map(|(job, what)| {
                        Action::Report(format!(
                            "outset run: required job {job} is not running ({what})"
                        ))
                    })
                    .collect();
                actions.extend(self.end(FAILED_BEFORE_COMMAND_STATUS));
                actions
            }
            Phase::Settling if queue_empty && unsettled.is_empty() => vec![Action::StartCommand],
            Phase::Settling if elapsed(now, self.started) > self.settle_timeout => {
                let secs = self.settle_timeout / 1000;
                let mut msg = format!("outset run: jobs did not settle within {secs} s:");
                if unsettled.is_empty() {
                    msg.push_str(" (events still queued)");
                }
                for job in unsettled {
                    msg.push(' ');
                    msg.push_str(&job);
                }
                let mut actions = vec![Action::Report(msg)];
                actions.extend(self.end(SETTLE_TIMEOUT_STATUS));
                actions
            }
            // The task is over once its instance is gone.
            Phase::Running(_) if !command_present => {
                let status = self.status.unwrap_or(NOT_RUN_STATUS);
                self.end(status)
            }
            _ => Vec::new(),
        }
    }

    fn end(&mut self, status: i32) -> Vec<Action> {
        self.phase = Phase::Over;
        vec![Action::StopSystem {
            action: StopAction::PowerOff,
            status,
            show_logs: self.show_logs && status != 0,
        }]
    }
}

/// The value of `name` in an event environment.
fn var<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// How a job failed, from its `stopped` event: `main process exited with
/// status 1`, `pre-start process killed by signal KILL`, `respawning too
/// fast`.
pub fn how_it_failed(env: &[String]) -> String {
    match var(env, "PROCESS") {
        None => "failed".to_string(),
        Some("respawn") => "respawning too fast".to_string(),
        Some(process) => match (var(env, "EXIT_STATUS"), var(env, "EXIT_SIGNAL")) {
            (Some(status), _) => format!("{process} process exited with status {status}"),
            (None, Some(signal)) => format!("{process} process killed by signal {signal}"),
            (None, None) => format!("{process} process could not be started"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Millis = 60_000;

    fn tick(
        m: &mut RunMode,
        now: Millis,
        queue_empty: bool,
        unsettled: &[&str],
        present: bool,
    ) -> Vec<Action> {
        m.handle(
            now,
            Input::Tick {
                queue_empty,
                unsettled: unsettled.iter().map(|s| s.to_string()).collect(),
                command_present: present,
                required_down: Vec::new(),
            },
        )
    }

    fn stop(status: i32) -> Action {
        Action::StopSystem {
            action: StopAction::PowerOff,
            status,
            show_logs: false,
        }
    }

    /// A run whose command started as `pid` (None: not spawned yet).
    fn running(pid: Option<i32>) -> RunMode {
        let mut m = RunMode::new(0, TIMEOUT);
        assert_eq!(
            tick(&mut m, 10, true, &[], false),
            vec![Action::StartCommand]
        );
        assert_eq!(m.answer(10, Answer::CommandStarted(pid)), vec![]);
        assert!(!m.settling());
        m
    }

    fn exited(m: &mut RunMode, pid: i32, exit: ExitStatus, command_pid: Option<i32>) {
        let input = Input::ChildExited {
            pid,
            exit,
            command_pid,
        };
        assert_eq!(m.handle(20, input), vec![]);
    }

    #[test]
    fn command_starts_once_settled() {
        let mut m = RunMode::new(1000, TIMEOUT);
        assert!(m.settling());
        assert_eq!(tick(&mut m, 1100, false, &[], false), vec![]);
        assert_eq!(
            tick(&mut m, 1200, true, &["db (start/starting)"], false),
            vec![]
        );
        assert_eq!(
            tick(&mut m, 1300, true, &[], false),
            vec![Action::StartCommand]
        );
    }

    #[test]
    fn settle_timeout_reports_the_unsettled_jobs_and_gives_124() {
        let mut m = RunMode::new(1000, TIMEOUT);
        assert_eq!(m.deadline(), Some(61_001));
        let waiting = ["db (start/starting)", "web (stop/killed)"];
        assert_eq!(tick(&mut m, 61_000, true, &waiting, false), vec![]);
        assert_eq!(
            tick(&mut m, 61_001, true, &waiting, false),
            vec![
                Action::Report(
                    "outset run: jobs did not settle within 60 s: \
                     db (start/starting) web (stop/killed)"
                        .into()
                ),
                stop(124)
            ]
        );
        assert_eq!(m.deadline(), None);
        assert_eq!(tick(&mut m, 70_000, true, &[], false), vec![]);
    }

    #[test]
    fn settle_timeout_with_events_still_queued() {
        let mut m = RunMode::new(0, 2000);
        assert_eq!(
            tick(&mut m, 2001, false, &[], false),
            vec![
                Action::Report(
                    "outset run: jobs did not settle within 2 s: (events still queued)".into()
                ),
                stop(124)
            ]
        );
    }

    #[test]
    fn a_command_that_cannot_start_gives_127() {
        let mut m = RunMode::new(0, TIMEOUT);
        assert_eq!(
            tick(&mut m, 10, true, &[], false),
            vec![Action::StartCommand]
        );
        assert_eq!(
            m.answer(10, Answer::CommandFailed("Unknown job: run".into())),
            vec![
                Action::Report("outset run: unable to run the command: Unknown job: run".into()),
                stop(127)
            ]
        );
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn the_command_exit_status_is_the_run_status() {
        let mut m = running(Some(42));
        assert_eq!(tick(&mut m, 15, true, &[], true), vec![]);
        exited(&mut m, 41, ExitStatus::Exited(9), None);
        exited(&mut m, 42, ExitStatus::Exited(3), None);
        assert_eq!(tick(&mut m, 30, true, &[], false), vec![stop(3)]);
        assert_eq!(tick(&mut m, 40, true, &[], false), vec![]);
    }

    #[test]
    fn a_signal_death_gives_128_plus_n() {
        let mut m = running(Some(42));
        exited(&mut m, 42, ExitStatus::Signaled(libc::SIGKILL), None);
        assert_eq!(tick(&mut m, 30, true, &[], false), vec![stop(137)]);
    }

    #[test]
    fn the_command_pid_may_come_later() {
        let mut m = running(None);
        exited(&mut m, 42, ExitStatus::Exited(5), None);
        exited(&mut m, 43, ExitStatus::Exited(6), Some(43));
        assert_eq!(tick(&mut m, 30, true, &[], false), vec![stop(6)]);
    }

    #[test]
    fn an_unseen_exit_gives_127() {
        let mut m = running(Some(42));
        assert_eq!(tick(&mut m, 30, true, &[], false), vec![stop(127)]);
    }

    #[test]
    fn signals_go_to_the_command_group_while_it_runs() {
        let mut m = running(Some(42));
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
            assert_eq!(
                m.handle(
                    20,
                    Input::Signal {
                        signal,
                        command_pid: None
                    }
                ),
                vec![Action::ForwardSignal { group: 42, signal }]
            );
        }
        let mut m = running(None);
        let sig = libc::SIGQUIT;
        assert_eq!(
            m.handle(
                20,
                Input::Signal {
                    signal: sig,
                    command_pid: None
                }
            ),
            vec![]
        );
        assert_eq!(
            m.handle(
                20,
                Input::Signal {
                    signal: sig,
                    command_pid: Some(7)
                }
            ),
            vec![Action::ForwardSignal {
                group: 7,
                signal: sig
            }]
        );
    }

    #[test]
    fn interrupt_before_the_command_gives_128_plus_n() {
        let mut m = RunMode::new(0, TIMEOUT);
        let hup = Input::Signal {
            signal: libc::SIGHUP,
            command_pid: None,
        };
        assert_eq!(m.handle(5, hup), vec![]);
        assert!(m.settling());
        let int = Input::Signal {
            signal: libc::SIGINT,
            command_pid: None,
        };
        assert_eq!(
            m.handle(5, int),
            vec![
                Action::Log(Level::Info, "Interrupted before the command ran".into()),
                stop(130)
            ]
        );
        let term = Input::Signal {
            signal: libc::SIGTERM,
            command_pid: None,
        };
        assert_eq!(m.handle(6, term), vec![]);
        assert_eq!(tick(&mut m, 10, true, &[], false), vec![]);
    }

    #[test]
    fn nothing_is_forwarded_once_over() {
        let mut m = running(Some(42));
        tick(&mut m, 30, true, &[], false);
        let int = Input::Signal {
            signal: libc::SIGINT,
            command_pid: Some(42),
        };
        assert_eq!(m.handle(40, int), vec![]);
    }

    fn env(vars: &[&str]) -> Vec<String> {
        vars.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn a_service_failing_before_the_command_ends_the_run_with_125() {
        let mut m = RunMode::new(0, TIMEOUT);
        let failed = env(&[
            "JOB=postgres",
            "INSTANCE=",
            "RESULT=failed",
            "PROCESS=main",
            "EXIT_STATUS=1",
        ]);
        assert_eq!(
            m.handle(5, Input::JobFailed(failed.clone())),
            vec![
                Action::Report(
                    "outset run: postgres failed: main process exited with status 1".into()
                ),
                Action::ReportLogTail {
                    job: "postgres".into(),
                    instance: String::new(),
                    lines: LOG_TAIL_LINES
                },
                stop(FAILED_BEFORE_COMMAND_STATUS)
            ]
        );
        assert_eq!(tick(&mut m, 10, true, &[], false), vec![]);
        assert_eq!(m.handle(11, Input::JobFailed(failed)), vec![]);
    }

    #[test]
    fn failures_after_the_start_or_of_the_command_itself_do_not_end_the_run() {
        let mut m = RunMode::new(0, TIMEOUT);
        let own = env(&[
            "JOB=run",
            "INSTANCE=",
            "RESULT=failed",
            "PROCESS=main",
            "EXIT_STATUS=1",
        ]);
        assert_eq!(m.handle(5, Input::JobFailed(own)), vec![]);
        let mut m = running(Some(42));
        let db = env(&[
            "JOB=db",
            "INSTANCE=",
            "RESULT=failed",
            "PROCESS=main",
            "EXIT_STATUS=1",
        ]);
        assert_eq!(m.handle(20, Input::JobFailed(db)), vec![]);
    }

    #[test]
    fn how_failures_read() {
        let read = |vars: &[&str]| how_it_failed(&env(vars));
        assert_eq!(
            read(&["PROCESS=pre-start", "EXIT_STATUS=4"]),
            "pre-start process exited with status 4"
        );
        assert_eq!(
            read(&["PROCESS=main", "EXIT_SIGNAL=KILL"]),
            "main process killed by signal KILL"
        );
        assert_eq!(read(&["PROCESS=respawn"]), "respawning too fast");
        assert_eq!(read(&["PROCESS=main"]), "main process could not be started");
        assert_eq!(read(&[]), "failed");
    }

    #[test]
    fn a_required_job_not_running_once_settled_ends_the_run_with_125() {
        let mut m = RunMode::new(0, TIMEOUT).requiring(vec!["postgres".into()]);
        let input = |queue_empty, unsettled: &[&str]| Input::Tick {
            queue_empty,
            unsettled: unsettled.iter().map(|s| s.to_string()).collect(),
            command_present: false,
            required_down: vec![("postgres".into(), "stop/waiting".into())],
        };
        // Not settled yet: it may still come up.
        assert_eq!(m.handle(5, input(false, &[])), vec![]);
        assert_eq!(
            m.handle(6, input(true, &["postgres (start/starting)"])),
            vec![]
        );
        assert_eq!(
            m.handle(7, input(true, &[])),
            vec![
                Action::Report(
                    "outset run: required job postgres is not running (stop/waiting)".into()
                ),
                stop(FAILED_BEFORE_COMMAND_STATUS)
            ]
        );
        assert_eq!(m.required(), ["postgres".to_string()]);
    }

    #[test]
    fn logs_are_shown_at_the_end_of_a_failed_run_when_asked() {
        let shows = |status: i32, asked: bool| {
            let mut m = RunMode::new(0, TIMEOUT).showing_logs_on_failure(asked);
            tick(&mut m, 10, true, &[], false);
            m.answer(10, Answer::CommandStarted(Some(42)));
            exited(&mut m, 42, ExitStatus::Exited(status), None);
            tick(&mut m, 30, true, &[], false)
        };
        let with = |status, show_logs| {
            vec![Action::StopSystem {
                action: StopAction::PowerOff,
                status,
                show_logs,
            }]
        };
        assert_eq!(shows(1, true), with(1, true));
        assert_eq!(shows(0, true), with(0, false));
        assert_eq!(shows(1, false), with(1, false));
        // The settle timeout too.
        let mut m = RunMode::new(0, 1000).showing_logs_on_failure(true);
        let actions = tick(&mut m, 1001, true, &["db (start/starting)"], false);
        assert_eq!(actions.last(), with(124, true).last());
    }
}
