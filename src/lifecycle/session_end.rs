//! A session init's end (pid1.md §8, Upstart's quiesce): jobs started by
//! `session-end` get up to 5 seconds (logout only), then every job gets
//! the largest `kill timeout` (at least 5 s) to stop, checked once a
//! second; the session ends as soon as no job process is left, at once
//! when no instance is left. Processes left over are not killed.

use super::{elapsed, Action, Answer, Jobs, Millis};
use crate::job::Level;

/// How often the phases are checked.
const CHECK_EVERY: Millis = 1000;
/// How long jobs started by `session-end` may run before the kill phase.
const SESSION_END_JOBS: Millis = 5000;

/// Who asked for the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// SIGTERM (or Ctrl-C): reason `shutdown`.
    System,
    /// `EndSession`: reason `logout`.
    Session,
}

impl Requester {
    /// The `TYPE` of the `session-end` event and the word in the logs.
    pub fn reason(self) -> &'static str {
        match self {
            Requester::System => "shutdown",
            Requester::Session => "logout",
        }
    }
}

/// What the daemon tells the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// End the session. `interested`: some job's `start on` matches this
    /// `session-end` event. Only the first request counts.
    Begin {
        requester: Requester,
        interested: bool,
        jobs: Jobs,
    },
    /// The loop went round (an event was handled, the clock moved).
    Tick(Jobs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not asked to end.
    Idle,
    /// Jobs started by `session-end` run (up to 5 s).
    Wait,
    /// Every goal is stop; `window` seconds to get there.
    Kill { window: u64 },
    /// Over: the daemon was told to exit.
    Done,
}

#[derive(Debug, Clone)]
pub struct SessionEnd {
    phase: Phase,
    requester: Requester,
    started: Millis,
    /// The current phase began; the checks count from here.
    phase_started: Millis,
    last_check: Millis,
    /// The kill phase was just entered by a check: the answer to its
    /// `StopAll` decides whether the session is over.
    verdict_pending: bool,
}

impl Default for SessionEnd {
    fn default() -> Self {
        SessionEnd {
            phase: Phase::Idle,
            requester: Requester::System,
            started: 0,
            phase_started: 0,
            last_check: 0,
            verdict_pending: false,
        }
    }
}

impl SessionEnd {
    /// Ending, and not yet over.
    pub fn active(&self) -> bool {
        matches!(self.phase, Phase::Wait | Phase::Kill { .. })
    }

    /// When the next check is due.
    pub fn deadline(&self) -> Option<Millis> {
        self.active()
            .then(|| self.last_check.saturating_add(CHECK_EVERY))
    }

    pub fn handle(&mut self, now: Millis, input: Input) -> Vec<Action> {
        match input {
            Input::Begin {
                requester,
                interested,
                jobs,
            } => self.begin(now, requester, interested, jobs),
            Input::Tick(jobs) => self.tick(now, jobs),
        }
    }

    /// The outcome of a `StopAll` this machine asked for.
    pub fn answer(&mut self, now: Millis, answer: Answer) -> Vec<Action> {
        match answer {
            Answer::StoppedAll(jobs) if std::mem::take(&mut self.verdict_pending) => {
                if jobs.processes {
                    Vec::new()
                } else {
                    self.finish(now, false)
                }
            }
            _ => Vec::new(),
        }
    }

    fn begin(
        &mut self,
        now: Millis,
        requester: Requester,
        interested: bool,
        jobs: Jobs,
    ) -> Vec<Action> {
        if self.phase != Phase::Idle {
            return Vec::new();
        }
        let reason = requester.reason();
        self.requester = requester;
        self.started = now;
        self.phase_started = now;
        self.last_check = now;
        // Only a logout waits for the jobs `session-end` starts.
        self.phase = if requester == Requester::Session && interested {
            Phase::Wait
        } else {
            Phase::Kill {
                window: jobs.kill_window(),
            }
        };
        vec![
            Action::Log(Level::Info, format!("Quiescing due to {reason} request")),
            Action::DisableRespawn,
            Action::Emit("session-end", vec![format!("TYPE={reason}")]),
            Action::StopAll,
        ]
    }

    fn tick(&mut self, now: Millis, jobs: Jobs) -> Vec<Action> {
        if !self.active() {
            return Vec::new();
        }
        // No instance left once the queue was drained: over at once.
        if !jobs.instances {
            return self.finish(now, false);
        }
        if elapsed(now, self.last_check) < CHECK_EVERY {
            return Vec::new();
        }
        self.last_check = now;
        let phase = elapsed(now, self.phase_started);
        match self.phase {
            Phase::Wait if phase >= SESSION_END_JOBS || !jobs.processes => {
                self.phase = Phase::Kill {
                    window: jobs.kill_window(),
                };
                self.phase_started = now;
                self.verdict_pending = true;
                vec![Action::StopAll]
            }
            Phase::Kill { window } if phase / 1000 > window => self.finish(now, true),
            _ if !jobs.processes => self.finish(now, false),
            _ => Vec::new(),
        }
    }

    fn finish(&mut self, now: Millis, timed_out: bool) -> Vec<Action> {
        self.phase = Phase::Done;
        self.verdict_pending = false;
        let mut actions = Vec::new();
        if timed_out {
            actions.push(Action::WarnFailedToStop);
        }
        let took = match elapsed(now, self.started) / 1000 {
            0 => "<1 second".to_string(),
            1 => "1 second".to_string(),
            n => format!("{n} seconds"),
        };
        actions.push(Action::Log(
            Level::Info,
            format!("Quiesce {} sequence took {took}", self.requester.reason()),
        ));
        actions.push(Action::Exit(0));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(processes: bool, kill_timeout: u64) -> Jobs {
        Jobs {
            instances: true,
            processes,
            kill_timeout,
        }
    }

    const NONE_LEFT: Jobs = Jobs {
        instances: false,
        processes: false,
        kill_timeout: 0,
    };

    fn begin(requester: Requester, interested: bool, j: Jobs) -> (SessionEnd, Vec<Action>) {
        let mut m = SessionEnd::default();
        let actions = m.handle(
            0,
            Input::Begin {
                requester,
                interested,
                jobs: j,
            },
        );
        (m, actions)
    }

    fn took(text: &str, reason: &str) -> Action {
        Action::Log(
            Level::Info,
            format!("Quiesce {reason} sequence took {text}"),
        )
    }

    #[test]
    fn begins_by_stopping_everything_once() {
        let (mut m, actions) = begin(Requester::System, false, jobs(true, 0));
        assert_eq!(
            actions,
            vec![
                Action::Log(Level::Info, "Quiescing due to shutdown request".into()),
                Action::DisableRespawn,
                Action::Emit("session-end", vec!["TYPE=shutdown".into()]),
                Action::StopAll,
            ]
        );
        assert!(m.active());
        // A stop that comes straight from the start decides nothing.
        assert_eq!(m.answer(0, Answer::StoppedAll(jobs(false, 0))), vec![]);
        let again = Input::Begin {
            requester: Requester::Session,
            interested: true,
            jobs: jobs(true, 0),
        };
        assert_eq!(m.handle(10, again), vec![]);
    }

    #[test]
    fn ends_at_once_when_no_instance_is_left() {
        let (mut m, _) = begin(Requester::System, false, jobs(true, 0));
        assert_eq!(
            m.handle(300, Input::Tick(NONE_LEFT)),
            vec![took("<1 second", "shutdown"), Action::Exit(0)]
        );
        assert!(!m.active());
        assert_eq!(m.deadline(), None);
        assert_eq!(m.handle(400, Input::Tick(NONE_LEFT)), vec![]);
    }

    #[test]
    fn checks_processes_once_a_second() {
        let (mut m, _) = begin(Requester::System, false, jobs(true, 0));
        assert_eq!(m.deadline(), Some(1000));
        // Between checks, only "no instance" counts.
        assert_eq!(m.handle(999, Input::Tick(jobs(false, 0))), vec![]);
        assert_eq!(
            m.handle(1000, Input::Tick(jobs(false, 0))),
            vec![took("1 second", "shutdown"), Action::Exit(0)]
        );
    }

    #[test]
    fn kill_phase_gives_up_after_five_seconds_at_least() {
        let (mut m, _) = begin(Requester::System, false, jobs(true, 2));
        for t in (1..=5).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 0))), vec![], "at {t}");
            assert_eq!(m.deadline(), Some(t + 1000));
        }
        assert_eq!(
            m.handle(6000, Input::Tick(jobs(true, 0))),
            vec![
                Action::WarnFailedToStop,
                took("6 seconds", "shutdown"),
                Action::Exit(0)
            ]
        );
    }

    #[test]
    fn kill_phase_allows_the_longest_kill_timeout() {
        let (mut m, _) = begin(Requester::System, false, jobs(true, 8));
        for t in (1..=8).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 0))), vec![], "at {t}");
        }
        let end = m.handle(9000, Input::Tick(jobs(true, 0)));
        assert_eq!(end.first(), Some(&Action::WarnFailedToStop));
        assert_eq!(end.last(), Some(&Action::Exit(0)));
    }

    #[test]
    fn logout_without_interested_jobs_goes_straight_to_the_kill_phase() {
        let (mut m, actions) = begin(Requester::Session, false, jobs(true, 0));
        assert!(actions.contains(&Action::Emit("session-end", vec!["TYPE=logout".into()])));
        for t in (1..=5).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 0))), vec![]);
        }
        assert_eq!(
            m.handle(6000, Input::Tick(jobs(true, 0))).first(),
            Some(&Action::WarnFailedToStop)
        );
    }

    #[test]
    fn shutdown_never_waits_for_session_end_jobs() {
        let (mut m, _) = begin(Requester::System, true, jobs(true, 0));
        // Straight in the kill phase: nothing new is stopped on ticks.
        for t in (1..=5).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 0))), vec![]);
        }
        assert_eq!(
            m.handle(6000, Input::Tick(jobs(true, 0))).first(),
            Some(&Action::WarnFailedToStop)
        );
    }

    #[test]
    fn logout_waits_five_seconds_for_session_end_jobs() {
        let (mut m, actions) = begin(Requester::Session, true, jobs(true, 9));
        assert_eq!(actions.last(), Some(&Action::StopAll));
        for t in (1..=4).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 9))), vec![], "at {t}");
        }
        // Five seconds on, the kill phase begins: everything stops again.
        assert_eq!(
            m.handle(5000, Input::Tick(jobs(true, 7))),
            vec![Action::StopAll]
        );
        assert_eq!(m.answer(5000, Answer::StoppedAll(jobs(true, 7))), vec![]);
        // Its clock starts then, with the kill timeout of that moment.
        for t in (6..=12).map(|s| s * 1000) {
            assert_eq!(m.handle(t, Input::Tick(jobs(true, 9))), vec![], "at {t}");
        }
        assert_eq!(
            m.handle(13000, Input::Tick(jobs(true, 9))),
            vec![
                Action::WarnFailedToStop,
                took("13 seconds", "logout"),
                Action::Exit(0)
            ]
        );
    }

    #[test]
    fn wait_phase_ends_early_when_no_process_runs() {
        let (mut m, _) = begin(Requester::Session, true, jobs(true, 0));
        assert_eq!(
            m.handle(1000, Input::Tick(jobs(false, 0))),
            vec![Action::StopAll]
        );
        // Nothing started by the stop: the session is over.
        assert_eq!(
            m.answer(1000, Answer::StoppedAll(jobs(false, 0))),
            vec![took("1 second", "logout"), Action::Exit(0)]
        );
    }

    #[test]
    fn wait_phase_stop_that_starts_processes_carries_on() {
        let (mut m, _) = begin(Requester::Session, true, jobs(true, 0));
        assert_eq!(
            m.handle(1000, Input::Tick(jobs(false, 0))),
            vec![Action::StopAll]
        );
        // A pre-stop process started: wait for it.
        assert_eq!(m.answer(1000, Answer::StoppedAll(jobs(true, 0))), vec![]);
        assert_eq!(m.handle(1500, Input::Tick(jobs(false, 0))), vec![]);
        assert_eq!(
            m.handle(2000, Input::Tick(jobs(false, 0))),
            vec![took("2 seconds", "logout"), Action::Exit(0)]
        );
    }

    #[test]
    fn idle_machine_does_nothing() {
        let mut m = SessionEnd::default();
        assert!(!m.active());
        assert_eq!(m.deadline(), None);
        assert_eq!(m.handle(5000, Input::Tick(NONE_LEFT)), vec![]);
    }
}
