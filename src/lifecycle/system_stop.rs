//! The built-in system stop (extensions.md §4): the `runlevel` event,
//! every goal to stop through the normal state machine (up to the largest
//! `kill timeout`, at least 5 s), SIGTERM to whatever is left, SIGKILL
//! 2 s later (repeated until nothing is left, for up to 5 s), then
//! `sync()` and `reboot(2)` or exit.
//!
//! Run mode's end (extensions.md §3) first sends the command's leftovers
//! (processes that are not a job's) SIGTERM, then SIGKILL, and does not
//! sync. Every phase ends as soon as its condition holds: the daemon ticks
//! the machine on every turn of its loop, which a child's exit wakes, so
//! the windows below are only upper bounds.

use super::{elapsed, Action, Answer, Jobs, Millis};
use crate::job::Level;
use crate::pid1::StopAction;

/// How long stragglers get between SIGTERM and SIGKILL.
const TERM_GRACE: Millis = 2000;
/// How long SIGKILLed processes get to disappear before we give up on them.
const KILL_GRACE: Millis = 5000;
/// How often the stop is looked at when the daemon cannot see every
/// process end (neither PID 1 nor a subreaper: descendants that are not
/// its children end without telling it).
const CHECK_EVERY: Millis = 100;

/// How the stop ends once everything is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// PID 1 of a machine: `sync()`, then `reboot(2)` with the stop's
    /// action.
    Reboot,
    /// PID 1 of a machine asked for an exit status (`EXIT_CODE`, not 0):
    /// hand it to the host of a qemu machine, else as [`Ending::Reboot`].
    RebootWithStatus(u8),
    /// A container (or a machine's init that is not PID 1): sync the
    /// root file system only (`syncfs`), then exit with this status.
    Exit(i32),
    /// The end of `outset run`: the command's leftovers first, no sync;
    /// exit with this status, after showing the run's logs if asked.
    RunOver { status: i32, show_logs: bool },
}

/// What the daemon tells the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Stop the system. With `emit_runlevel` the machine queues the
    /// `runlevel` event; without, the caller already did (it came over
    /// D-Bus from `telinit` or `shutdown`). Only the first request counts.
    Begin {
        action: StopAction,
        emit_runlevel: bool,
        ending: Ending,
        jobs: Jobs,
        /// Every process's end wakes the daemon (it is PID 1 or a
        /// subreaper), so nothing needs polling.
        exits_seen: bool,
    },
    /// The loop went round.
    Tick {
        jobs: Jobs,
        /// A `runlevel` event is queued or being handled.
        runlevel_pending: bool,
        /// Some process other than init is left. Only looked at while
        /// [`SystemStop::wants_processes`], so the daemon need not find
        /// out otherwise.
        processes_left: bool,
        /// Some process is left that is neither a job's process nor a
        /// descendant of one. Only looked at while
        /// [`SystemStop::wants_leftovers`].
        leftovers_left: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Run mode: SIGTERM sent to the command's leftovers.
    LeftoversTerm,
    /// Run mode: SIGKILL sent to the command's leftovers.
    LeftoversKill,
    /// The `runlevel` event (and what it started or stopped) is finishing.
    Runlevel,
    /// Every instance's goal is stop; waiting for them to get there.
    Stopping,
    /// SIGTERM sent to every process left.
    Term,
    /// SIGKILL sent; waiting for them to be reaped.
    Kill,
    /// Told the daemon to exit or reboot.
    Done,
}

#[derive(Debug, Clone)]
pub struct SystemStop {
    phase: Phase,
    action: StopAction,
    emit_runlevel: bool,
    ending: Ending,
    since: Millis,
    /// How long the current phase may take.
    window: Millis,
    last_check: Millis,
    /// The phase just changed: look again at once, with what the actions
    /// changed.
    recheck: bool,
    exits_seen: bool,
    /// The largest kill window seen at the start (seconds).
    kill_window: u64,
}

impl Default for SystemStop {
    fn default() -> Self {
        SystemStop {
            phase: Phase::Idle,
            action: StopAction::PowerOff,
            emit_runlevel: false,
            ending: Ending::Exit(0),
            since: 0,
            window: 0,
            last_check: 0,
            recheck: false,
            exits_seen: false,
            kill_window: 0,
        }
    }
}

/// The `runlevel` event's variable that carries the exit status of a
/// container's init (`shutdown --exit-code N`). Not `EXIT_STATUS`, which
/// job events use for a process's status.
pub const EXIT_CODE: &str = "EXIT_CODE";

/// The exit status asked for in a `runlevel` event's environment, if a
/// valid one (0–255).
pub fn exit_code(env: &[String]) -> Option<i32> {
    env.iter()
        .find_map(|kv| kv.strip_prefix(EXIT_CODE)?.strip_prefix('='))
        .and_then(|v| v.parse::<u8>().ok())
        .map(i32::from)
}

/// The exit status a failed job's `stopped` event stands for: its
/// `EXIT_STATUS`, 128+N for `EXIT_SIGNAL` N (a name or a number), 1 when
/// it has neither (it respawned too fast, or could not be started).
pub fn failed_job_status(env: &[String]) -> i32 {
    let var = |name: &str| {
        env.iter()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    if let Some(status) = var("EXIT_STATUS").and_then(|v| v.parse::<u8>().ok()) {
        return i32::from(status);
    }
    var("EXIT_SIGNAL")
        .and_then(|v| {
            v.parse::<i32>()
                .ok()
                .or_else(|| crate::config::signal_from_name(v))
        })
        .map_or(1, |sig| 128 + sig)
}

/// The `runlevel` event's environment for `action`, coming from runlevel
/// `prev`, as Upstart's `shutdown` emitted it.
pub fn runlevel_env(action: StopAction, prev: char) -> Vec<String> {
    let mut env = vec![
        format!("RUNLEVEL={}", action.runlevel()),
        format!("PREVLEVEL={prev}"),
    ];
    env.extend(action.init_halt().map(|h| format!("INIT_HALT={h}")));
    env
}

impl SystemStop {
    /// Stopping, and not yet over.
    pub fn active(&self) -> bool {
        !matches!(self.phase, Phase::Idle | Phase::Done)
    }

    /// The process sweeps have begun: nothing new may be started behind
    /// them, so the daemon stops handling events.
    pub fn sweeping(&self) -> bool {
        matches!(self.phase, Phase::Term | Phase::Kill)
    }

    /// Whether the next tick needs `processes_left`.
    pub fn wants_processes(&self) -> bool {
        matches!(self.phase, Phase::Stopping | Phase::Term | Phase::Kill)
    }

    /// Whether the next tick needs `leftovers_left`.
    pub fn wants_leftovers(&self) -> bool {
        matches!(self.phase, Phase::LeftoversTerm | Phase::LeftoversKill)
    }

    /// When the stop must be looked at again: at once after a change of
    /// phase, else when the phase's window ends (and every 100 ms when
    /// ends of processes may go unseen).
    pub fn deadline(&self) -> Option<Millis> {
        if !self.active() {
            return None;
        }
        if self.recheck {
            return Some(self.last_check);
        }
        let end = self.since.saturating_add(self.window).saturating_add(1);
        Some(if self.exits_seen {
            end
        } else {
            end.min(self.last_check.saturating_add(CHECK_EVERY))
        })
    }

    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Action> {
        match input {
            Input::Begin {
                action,
                emit_runlevel,
                ending,
                jobs,
                exits_seen,
            } => self.begin(now, action, emit_runlevel, ending, jobs, exits_seen),
            Input::Tick {
                jobs,
                runlevel_pending,
                processes_left,
                leftovers_left,
            } => {
                if !self.active() {
                    return Vec::new();
                }
                self.last_check = now;
                let phase = self.phase;
                let actions =
                    self.tick(now, jobs, runlevel_pending, processes_left, leftovers_left);
                self.recheck = self.phase != phase;
                actions
            }
        }
    }

    /// A failed `reboot(2)`: say why and stand down (exiting would panic
    /// the kernel); a new request may try again.
    pub fn answer(&mut self, _now: Millis, answer: Answer) -> Vec<Action> {
        match answer {
            Answer::RebootFailed(e) if self.phase == Phase::Done => {
                self.phase = Phase::Idle;
                vec![Action::Log(
                    Level::Error,
                    format!("Unable to {}: {e}", self.action.name()),
                )]
            }
            _ => Vec::new(),
        }
    }

    fn begin(
        &mut self,
        now: Millis,
        action: StopAction,
        emit_runlevel: bool,
        ending: Ending,
        jobs: Jobs,
        exits_seen: bool,
    ) -> Vec<Action> {
        if self.phase != Phase::Idle {
            return Vec::new();
        }
        *self = SystemStop {
            phase: Phase::Runlevel,
            action,
            emit_runlevel,
            ending,
            since: now,
            window: jobs.kill_window() * 1000,
            last_check: now,
            recheck: true,
            exits_seen,
            kill_window: jobs.kill_window(),
        };
        let mut actions = vec![
            Action::Log(
                Level::Info,
                format!("System stop requested ({})", action.name()),
            ),
            Action::DisableRespawn,
        ];
        if matches!(ending, Ending::RunOver { .. }) {
            self.enter(now, Phase::LeftoversTerm, TERM_GRACE);
            actions.push(Action::SignalLeftovers(libc::SIGTERM));
        } else {
            actions.extend(self.runlevel());
        }
        actions
    }

    /// The `runlevel` event, unless the caller queued it.
    fn runlevel(&mut self) -> Vec<Action> {
        if self.emit_runlevel {
            vec![Action::EmitRunlevel(self.action)]
        } else {
            Vec::new()
        }
    }

    fn tick(
        &mut self,
        now: Millis,
        jobs: Jobs,
        runlevel_pending: bool,
        left: bool,
        leftovers: bool,
    ) -> Vec<Action> {
        let within = elapsed(now, self.since) <= self.window;
        match self.phase {
            Phase::LeftoversTerm if leftovers && within => Vec::new(),
            Phase::LeftoversTerm if leftovers => {
                self.enter(now, Phase::LeftoversKill, KILL_GRACE);
                vec![Action::SignalLeftovers(libc::SIGKILL)]
            }
            Phase::LeftoversKill if leftovers && within => Vec::new(),
            Phase::LeftoversTerm | Phase::LeftoversKill => {
                let mut actions = Vec::new();
                if leftovers {
                    actions.push(Action::Log(
                        Level::Warn,
                        "Some of the command's processes did not go away".to_string(),
                    ));
                }
                let window = jobs.kill_window().max(self.kill_window) * 1000;
                self.enter(now, Phase::Runlevel, window);
                actions.extend(self.runlevel());
                actions
            }
            Phase::Runlevel if runlevel_pending && within => Vec::new(),
            Phase::Runlevel => {
                self.enter(now, Phase::Stopping, jobs.kill_window() * 1000);
                vec![Action::StopAll]
            }
            Phase::Stopping if jobs.instances && within => Vec::new(),
            // Nothing to sweep.
            Phase::Stopping if !jobs.instances && !left => self.finish(),
            Phase::Stopping => {
                self.enter(now, Phase::Term, TERM_GRACE);
                let mut actions = Vec::new();
                if jobs.instances {
                    actions.push(Action::WarnFailedToStop);
                }
                actions.push(Action::SignalAll(libc::SIGTERM));
                actions
            }
            Phase::Term if left && within => Vec::new(),
            Phase::Term if !left => self.finish(),
            Phase::Term => {
                self.enter(now, Phase::Kill, KILL_GRACE);
                vec![Action::SignalAll(libc::SIGKILL)]
            }
            // New children (a post-stop spawned by an exit) get the same
            // treatment.
            Phase::Kill if left && within => vec![Action::SignalAll(libc::SIGKILL)],
            Phase::Kill => {
                let mut actions = Vec::new();
                if left {
                    actions.push(Action::Log(
                        Level::Warn,
                        "Some processes did not go away".to_string(),
                    ));
                }
                actions.extend(self.finish());
                actions
            }
            Phase::Idle | Phase::Done => Vec::new(),
        }
    }

    fn enter(&mut self, now: Millis, phase: Phase, window: Millis) {
        self.phase = phase;
        self.since = now;
        self.window = window;
    }

    fn finish(&mut self) -> Vec<Action> {
        self.phase = Phase::Done;
        match self.ending {
            Ending::Reboot => vec![
                Action::Log(Level::Message, format!("Will now {}", self.action.name())),
                Action::Sync,
                Action::Reboot(self.action),
            ],
            Ending::RebootWithStatus(status) => vec![
                Action::Log(Level::Message, format!("Will now {}", self.action.name())),
                Action::Sync,
                Action::DebugExit(status),
                Action::Reboot(self.action),
            ],
            Ending::Exit(status) => vec![Action::SyncRoot, Action::Exit(status)],
            Ending::RunOver { status, show_logs } => {
                let mut actions = Vec::new();
                if show_logs {
                    actions.push(Action::ShowLogs);
                }
                actions.push(Action::Exit(status));
                actions
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(instances: bool, kill_timeout: u64) -> Jobs {
        Jobs {
            instances,
            processes: instances,
            kill_timeout,
        }
    }

    fn tick(
        m: &mut SystemStop,
        now: Millis,
        instances: bool,
        pending: bool,
        left: bool,
    ) -> Vec<Action> {
        m.handle(
            now,
            Input::Tick {
                jobs: jobs(instances, 0),
                runlevel_pending: pending,
                processes_left: left,
                leftovers_left: false,
            },
        )
    }

    fn begin(
        action: StopAction,
        emit: bool,
        ending: Ending,
        kill_timeout: u64,
    ) -> (SystemStop, Vec<Action>) {
        let mut m = SystemStop::default();
        let actions = m.handle(
            0,
            Input::Begin {
                action,
                emit_runlevel: emit,
                ending,
                jobs: jobs(true, kill_timeout),
                exits_seen: false,
            },
        );
        (m, actions)
    }

    /// A stop that reached the SIGTERM sweep at `now`.
    fn swept(now: Millis, ending: Ending) -> SystemStop {
        let (mut m, _) = begin(StopAction::PowerOff, true, ending, 0);
        assert_eq!(tick(&mut m, 0, true, false, true), vec![Action::StopAll]);
        assert_eq!(
            tick(&mut m, now, false, false, true),
            vec![Action::SignalAll(libc::SIGTERM)]
        );
        m
    }

    #[test]
    fn begins_with_the_runlevel_event_once() {
        let (mut m, actions) = begin(StopAction::Reboot, true, Ending::Reboot, 0);
        assert_eq!(
            actions,
            vec![
                Action::Log(Level::Info, "System stop requested (reboot)".into()),
                Action::DisableRespawn,
                Action::EmitRunlevel(StopAction::Reboot),
            ]
        );
        assert!(m.active());
        assert!(!m.sweeping());
        let again = Input::Begin {
            action: StopAction::Halt,
            emit_runlevel: true,
            ending: Ending::Exit(3),
            jobs: jobs(true, 0),
            exits_seen: false,
        };
        assert_eq!(m.handle(5, again), vec![]);
    }

    #[test]
    fn a_runlevel_event_already_queued_is_not_emitted_again() {
        let (_, actions) = begin(StopAction::Halt, false, Ending::Exit(0), 0);
        assert_eq!(
            actions,
            vec![
                Action::Log(Level::Info, "System stop requested (halt)".into()),
                Action::DisableRespawn,
            ]
        );
    }

    #[test]
    fn exit_code_comes_from_the_runlevel_event() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exit_code(&env(&["RUNLEVEL=0", "EXIT_CODE=7"])), Some(7));
        assert_eq!(exit_code(&env(&["RUNLEVEL=0"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODE=256"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODE=-1"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODES=1"])), None);
    }

    #[test]
    fn a_failed_jobs_status() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            failed_job_status(&env(&["RESULT=failed", "PROCESS=main", "EXIT_STATUS=3"])),
            3
        );
        assert_eq!(
            failed_job_status(&env(&["PROCESS=main", "EXIT_SIGNAL=KILL"])),
            137
        );
        assert_eq!(
            failed_job_status(&env(&["PROCESS=main", "EXIT_SIGNAL=40"])),
            168
        );
        assert_eq!(failed_job_status(&env(&["PROCESS=respawn"])), 1);
    }

    #[test]
    fn runlevel_environment_is_what_shutdown_emitted() {
        assert_eq!(
            runlevel_env(StopAction::PowerOff, '2'),
            ["RUNLEVEL=0", "PREVLEVEL=2", "INIT_HALT=POWEROFF"]
        );
        assert_eq!(
            runlevel_env(StopAction::Halt, 'N'),
            ["RUNLEVEL=0", "PREVLEVEL=N", "INIT_HALT=HALT"]
        );
        assert_eq!(
            runlevel_env(StopAction::Reboot, '2'),
            ["RUNLEVEL=6", "PREVLEVEL=2"]
        );
    }

    #[test]
    fn jobs_stop_once_the_runlevel_event_is_handled() {
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(0), 0);
        assert_eq!(tick(&mut m, 100, true, true, true), vec![]);
        assert_eq!(m.deadline(), Some(200));
        assert_eq!(tick(&mut m, 200, true, false, true), vec![Action::StopAll]);
    }

    #[test]
    fn runlevel_event_gets_the_kill_window_at_most() {
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(0), 7);
        assert_eq!(tick(&mut m, 7000, true, true, true), vec![]);
        assert_eq!(tick(&mut m, 7001, true, true, true), vec![Action::StopAll]);
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(0), 1);
        assert_eq!(tick(&mut m, 5000, true, true, true), vec![]);
        assert_eq!(tick(&mut m, 5001, true, true, true), vec![Action::StopAll]);
    }

    #[test]
    fn stopping_waits_for_jobs_up_to_the_longest_kill_timeout() {
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(0), 0);
        let stopping = m.handle(
            1000,
            Input::Tick {
                jobs: jobs(true, 9),
                runlevel_pending: false,
                processes_left: true,
                leftovers_left: false,
            },
        );
        assert_eq!(stopping, vec![Action::StopAll]);
        assert_eq!(tick(&mut m, 10_000, true, false, true), vec![]);
        assert!(!m.sweeping());
        assert_eq!(
            tick(&mut m, 10_001, true, false, true),
            vec![Action::WarnFailedToStop, Action::SignalAll(libc::SIGTERM)]
        );
        assert!(m.sweeping());
    }

    #[test]
    fn stopping_waits_five_seconds_at_least() {
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(0), 0);
        assert_eq!(tick(&mut m, 0, true, false, true), vec![Action::StopAll]);
        assert_eq!(tick(&mut m, 5000, true, false, true), vec![]);
        assert_eq!(
            tick(&mut m, 5001, true, false, true),
            vec![Action::WarnFailedToStop, Action::SignalAll(libc::SIGTERM)]
        );
    }

    #[test]
    fn sweeps_as_soon_as_every_job_stopped() {
        let m = swept(300, Ending::Exit(0));
        assert!(m.sweeping());
    }

    #[test]
    fn sigkill_follows_sigterm_two_seconds_later() {
        let mut m = swept(300, Ending::Exit(0));
        assert_eq!(tick(&mut m, 2300, false, false, true), vec![]);
        assert_eq!(
            tick(&mut m, 2301, false, false, true),
            vec![Action::SignalAll(libc::SIGKILL)]
        );
    }

    #[test]
    fn over_at_once_when_sigterm_left_nothing() {
        let mut m = swept(300, Ending::Exit(0));
        assert_eq!(
            tick(&mut m, 400, false, false, false),
            vec![Action::SyncRoot, Action::Exit(0)]
        );
        assert!(!m.active());
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn no_sweep_when_nothing_is_left_once_the_jobs_stopped() {
        let (mut m, _) = begin(StopAction::PowerOff, true, Ending::Exit(4), 0);
        assert_eq!(tick(&mut m, 0, true, false, false), vec![Action::StopAll]);
        assert_eq!(
            tick(&mut m, 1, false, false, false),
            vec![Action::SyncRoot, Action::Exit(4)]
        );
    }

    #[test]
    fn sigkill_repeats_until_nothing_is_left_then_exits() {
        let mut m = swept(0, Ending::Exit(42));
        assert_eq!(
            tick(&mut m, 2001, false, false, true),
            vec![Action::SignalAll(libc::SIGKILL)]
        );
        for t in [2100, 2200, 7001] {
            assert_eq!(
                tick(&mut m, t, false, false, true),
                vec![Action::SignalAll(libc::SIGKILL)],
                "at {t}"
            );
        }
        assert_eq!(
            tick(&mut m, 7100, false, false, false),
            vec![Action::SyncRoot, Action::Exit(42)]
        );
    }

    #[test]
    fn gives_up_on_processes_five_seconds_after_sigkill() {
        let mut m = swept(0, Ending::Exit(0));
        assert_eq!(
            tick(&mut m, 2001, false, false, true),
            vec![Action::SignalAll(libc::SIGKILL)]
        );
        assert_eq!(
            tick(&mut m, 7002, false, false, true),
            vec![
                Action::Log(Level::Warn, "Some processes did not go away".into()),
                Action::SyncRoot,
                Action::Exit(0)
            ]
        );
    }

    #[test]
    fn a_machine_reboots_and_stands_down_if_refused() {
        let mut m = swept(0, Ending::Reboot);
        assert_eq!(
            tick(&mut m, 100, false, false, false),
            vec![
                Action::Log(Level::Message, "Will now power-off".into()),
                Action::Sync,
                Action::Reboot(StopAction::PowerOff),
            ]
        );
        assert_eq!(
            m.answer(200, Answer::RebootFailed("Operation not permitted".into())),
            vec![Action::Log(
                Level::Error,
                "Unable to power-off: Operation not permitted".into()
            )]
        );
        assert!(!m.active());
        assert!(!m.sweeping());
        // A later request starts over.
        let again = Input::Begin {
            action: StopAction::Reboot,
            emit_runlevel: true,
            ending: Ending::Reboot,
            jobs: jobs(true, 0),
            exits_seen: false,
        };
        assert_eq!(m.handle(300, again).len(), 3);
    }

    #[test]
    fn a_machine_with_an_exit_status_hands_it_over_before_powering_off() {
        let mut m = swept(0, Ending::RebootWithStatus(3));
        assert_eq!(
            tick(&mut m, 100, false, false, false),
            vec![
                Action::Log(Level::Message, "Will now power-off".into()),
                Action::Sync,
                Action::DebugExit(3),
                Action::Reboot(StopAction::PowerOff),
            ]
        );
    }

    #[test]
    fn idle_machine_ignores_ticks() {
        let mut m = SystemStop::default();
        assert_eq!(tick(&mut m, 100, true, true, true), vec![]);
        assert_eq!(m.deadline(), None);
        assert_eq!(m.answer(100, Answer::RebootFailed("x".into())), vec![]);
    }

    fn run_tick(
        m: &mut SystemStop,
        now: Millis,
        instances: bool,
        left: bool,
        leftovers: bool,
    ) -> Vec<Action> {
        m.handle(
            now,
            Input::Tick {
                jobs: jobs(instances, 0),
                runlevel_pending: false,
                processes_left: left,
                leftovers_left: leftovers,
            },
        )
    }

    fn run_over(status: i32) -> (SystemStop, Vec<Action>) {
        let mut m = SystemStop::default();
        let actions = m.handle(
            0,
            Input::Begin {
                action: StopAction::PowerOff,
                emit_runlevel: true,
                ending: Ending::RunOver {
                    status,
                    show_logs: status != 0,
                },
                jobs: jobs(true, 30),
                exits_seen: true,
            },
        );
        (m, actions)
    }

    #[test]
    fn run_mode_sends_the_leftovers_away_before_the_runlevel_event() {
        let (mut m, actions) = run_over(3);
        assert_eq!(
            actions,
            vec![
                Action::Log(Level::Info, "System stop requested (power-off)".into()),
                Action::DisableRespawn,
                Action::SignalLeftovers(libc::SIGTERM),
            ]
        );
        assert!(!m.sweeping());
        assert!(m.wants_leftovers());
        // Looked at again at once, then only when the grace ends (or a
        // child's exit wakes the daemon).
        assert_eq!(m.deadline(), Some(0));
        assert_eq!(run_tick(&mut m, 1, true, true, true), vec![]);
        assert_eq!(m.deadline(), Some(2001));
        assert_eq!(
            run_tick(&mut m, 50, true, true, false),
            vec![Action::EmitRunlevel(StopAction::PowerOff)]
        );
        assert!(!m.wants_leftovers());
        assert_eq!(m.deadline(), Some(50));
        // The jobs get their kill window (here: at least 5 s), as ever.
        assert_eq!(
            run_tick(&mut m, 60, true, true, false),
            vec![Action::StopAll]
        );
        assert_eq!(run_tick(&mut m, 70, true, true, false), vec![]);
        assert_eq!(m.deadline(), Some(5061));
        assert_eq!(
            run_tick(&mut m, 80, false, false, false),
            vec![Action::ShowLogs, Action::Exit(3)]
        );
    }

    #[test]
    fn run_mode_kills_leftovers_that_ignore_sigterm() {
        let (mut m, _) = run_over(0);
        assert_eq!(run_tick(&mut m, 2000, true, true, true), vec![]);
        assert_eq!(
            run_tick(&mut m, 2001, true, true, true),
            vec![Action::SignalLeftovers(libc::SIGKILL)]
        );
        assert_eq!(run_tick(&mut m, 7001, true, true, true), vec![]);
        assert_eq!(
            run_tick(&mut m, 7002, true, true, true),
            vec![
                Action::Log(
                    Level::Warn,
                    "Some of the command's processes did not go away".into()
                ),
                Action::EmitRunlevel(StopAction::PowerOff)
            ]
        );
    }

    #[test]
    fn run_mode_with_nothing_left_is_over_without_waiting() {
        let mut m = SystemStop::default();
        m.handle(
            0,
            Input::Begin {
                action: StopAction::PowerOff,
                emit_runlevel: true,
                ending: Ending::RunOver {
                    status: 0,
                    show_logs: false,
                },
                jobs: Jobs::default(),
                exits_seen: true,
            },
        );
        let mut all = Vec::new();
        for now in 0..3 {
            assert!(m.deadline().is_some_and(|d| d <= now), "{now}");
            all.extend(run_tick(&mut m, now, false, false, false));
        }
        assert_eq!(
            all,
            vec![
                Action::EmitRunlevel(StopAction::PowerOff),
                Action::StopAll,
                Action::Exit(0)
            ]
        );
        assert!(!m.active());
    }
}
