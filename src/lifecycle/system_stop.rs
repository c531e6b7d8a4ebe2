//! The built-in system stop (extensions.md §4): the `runlevel` event,
//! every goal to stop through the normal state machine (up to the largest
//! `kill timeout`, at least 5 s), SIGTERM to whatever is left, SIGKILL
//! 2 s later (repeated until nothing is left, for up to 5 s), then
//! `sync()` and `reboot(2)` or exit.

use super::{elapsed, Action, Answer, Jobs, Millis};
use crate::job::Level;
use crate::pid1::StopAction;

/// How long stragglers get between SIGTERM and SIGKILL.
const TERM_GRACE: Millis = 2000;
/// How long SIGKILLed processes get to disappear before we give up on them.
const KILL_GRACE: Millis = 5000;
/// How often the stop is looked at: processes outside the jobs (and
/// descendants that are not our children) end without telling us.
const CHECK_EVERY: Millis = 100;

/// How the stop ends once everything is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// PID 1 of a machine: `reboot(2)` with the stop's action.
    Reboot,
    /// PID 1 of a machine asked for an exit status (`EXIT_CODE`, not 0):
    /// hand it to the host of a qemu machine, else as [`Ending::Reboot`].
    RebootWithStatus(u8),
    /// Everyone else (container, run mode): exit with this status.
    Exit(i32),
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
    },
    /// The loop went round.
    Tick {
        jobs: Jobs,
        /// A `runlevel` event is queued or being handled.
        runlevel_pending: bool,
        /// Some process other than init is left. Only looked at while
        /// [`SystemStop::sweeping`], so the daemon need not find out
        /// otherwise.
        processes_left: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
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
    ending: Ending,
    since: Millis,
    /// How long the current phase may take.
    window: Millis,
    last_check: Millis,
}

impl Default for SystemStop {
    fn default() -> Self {
        SystemStop {
            phase: Phase::Idle,
            action: StopAction::PowerOff,
            ending: Ending::Exit(0),
            since: 0,
            window: 0,
            last_check: 0,
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

    /// When the stop must be looked at again.
    pub fn deadline(&self) -> Option<Millis> {
        self.active()
            .then(|| self.last_check.saturating_add(CHECK_EVERY))
    }

    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Action> {
        match input {
            Input::Begin {
                action,
                emit_runlevel,
                ending,
                jobs,
            } => self.begin(now, action, emit_runlevel, ending, jobs),
            Input::Tick {
                jobs,
                runlevel_pending,
                processes_left,
            } => {
                if !self.active() {
                    return Vec::new();
                }
                self.last_check = now;
                self.tick(now, jobs, runlevel_pending, processes_left)
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
    ) -> Vec<Action> {
        if self.phase != Phase::Idle {
            return Vec::new();
        }
        *self = SystemStop {
            phase: Phase::Runlevel,
            action,
            ending,
            since: now,
            window: jobs.kill_window() * 1000,
            last_check: now,
        };
        let mut actions = vec![
            Action::Log(
                Level::Info,
                format!("System stop requested ({})", action.name()),
            ),
            Action::DisableRespawn,
        ];
        if emit_runlevel {
            actions.push(Action::EmitRunlevel(action));
        }
        actions
    }

    fn tick(&mut self, now: Millis, jobs: Jobs, runlevel_pending: bool, left: bool) -> Vec<Action> {
        let within = elapsed(now, self.since) <= self.window;
        match self.phase {
            Phase::Runlevel if runlevel_pending && within => Vec::new(),
            Phase::Runlevel => {
                self.enter(now, Phase::Stopping, jobs.kill_window() * 1000);
                vec![Action::StopAll]
            }
            Phase::Stopping if jobs.instances && within => Vec::new(),
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
            Ending::Exit(status) => vec![Action::Sync, Action::Exit(status)],
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
    fn sigkill_at_once_when_sigterm_left_nothing() {
        let mut m = swept(300, Ending::Exit(0));
        assert_eq!(
            tick(&mut m, 400, false, false, false),
            vec![Action::SignalAll(libc::SIGKILL)]
        );
        assert_eq!(
            tick(&mut m, 500, false, false, false),
            vec![Action::Sync, Action::Exit(0)]
        );
        assert!(!m.active());
        assert_eq!(m.deadline(), None);
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
            vec![Action::Sync, Action::Exit(42)]
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
                Action::Sync,
                Action::Exit(0)
            ]
        );
    }

    #[test]
    fn a_machine_reboots_and_stands_down_if_refused() {
        let mut m = swept(0, Ending::Reboot);
        tick(&mut m, 100, false, false, false);
        assert_eq!(
            tick(&mut m, 200, false, false, false),
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
        };
        assert_eq!(m.handle(300, again).len(), 3);
    }

    #[test]
    fn a_machine_with_an_exit_status_hands_it_over_before_powering_off() {
        let mut m = swept(0, Ending::RebootWithStatus(3));
        tick(&mut m, 100, false, false, false);
        assert_eq!(
            tick(&mut m, 200, false, false, false),
            vec![
                Action::Log(Level::Message, "Will now power-off".into()),
                Action::Sync,
                Action::DebugExit(3),
                Action::Reboot(StopAction::PowerOff),
            ]
        );
    }

    #[test]
    fn exit_code_comes_from_the_runlevel_event() {
        let env = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exit_code(&env(&["RUNLEVEL=0", "EXIT_CODE=3"])), Some(3));
        assert_eq!(exit_code(&env(&["RUNLEVEL=0"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODE=256"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODE=-1"])), None);
        assert_eq!(exit_code(&env(&["EXIT_CODES=3"])), None);
    }

    #[test]
    fn idle_machine_ignores_ticks() {
        let mut m = SystemStop::default();
        assert_eq!(tick(&mut m, 100, true, true, true), vec![]);
        assert_eq!(m.deadline(), None);
        assert_eq!(m.answer(100, Answer::RebootFailed("x".into())), vec![]);
    }
}
