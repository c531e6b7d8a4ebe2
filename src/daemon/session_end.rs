//! Feeding a session init's end (`crate::lifecycle::session_end`).

use super::lifecycle::Machine;
use super::Daemon;
use crate::event::EventRef;
use crate::lifecycle::session_end::Input;
use crate::lifecycle::Requester;

impl Daemon {
    /// Start ending the session: SIGTERM (`shutdown`) or EndSession
    /// (`logout`). Only the first request counts.
    pub(super) fn start_quiesce(&mut self, requester: Requester) {
        let env = vec![format!("TYPE={}", requester.reason())];
        let event = EventRef {
            id: 0,
            name: "session-end",
            env: &env,
        };
        let interested = self.engine.slots.values().any(|s| {
            s.start_on
                .as_ref()
                .is_some_and(|t| t.could_match(&event, &[]))
        });
        let input = Input::Begin {
            requester,
            interested,
            jobs: self.jobs(),
        };
        let actions = self.session_end.handle(self.now_ms(), input);
        self.carry_out(Machine::SessionEnd, actions);
    }

    /// Returns the exit status once the session is over.
    pub(super) fn check_quiesce(&mut self) -> Option<i32> {
        if self.session_end.active() {
            let input = Input::Tick(self.jobs());
            let actions = self.session_end.handle(self.now_ms(), input);
            self.carry_out(Machine::SessionEnd, actions);
        }
        self.take_exit()
    }
}
