//! A `post-start` that outlives its main process (outset(8), deliberate
//! differences): Upstart waits for it, so a readiness loop polling a
//! service that died at once held the job (and whoever waited for
//! `started`) for as long as the loop ran. outset kills it instead; the
//! job goes on failing or respawning as the main process's end decides.

use super::engine::Engine;
use super::state::State;
use super::sys::{Level, Sys};
use super::JobKey;
use crate::config::ProcessType;

const SIGKILL: i32 = 9;

impl Engine {
    /// The main process has ended while `post-start` runs: kill the
    /// post-start process group. Its end advances the state as usual.
    pub(super) fn abandon_post_start(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        let Some(inst) = self.instance(key) else {
            return;
        };
        let pid = inst.pid(ProcessType::PostStart);
        if inst.state != State::PostStart || pid <= 0 {
            return;
        }
        log!(
            sys,
            Level::Info,
            "Killing {key} post-start process ({pid}): main process has ended"
        );
        if sys.kill(pid, SIGKILL, true).is_ok() {
            self.abandoned.insert(pid);
        }
    }
}
