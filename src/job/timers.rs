//! Timer input: the kill sequence of a main process and its SIGKILL
//! deadline.

use super::engine::Engine;
use super::sys::{Level, Sys};
use super::JobKey;
use crate::config::{signal_name, JobClass, ProcessType};

const SIGKILL: i32 = 9;

impl Engine {
    pub(super) fn kill_main(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
        class: &JobClass,
        pid: i32,
    ) {
        let sig = class.kill_signal;
        let sname = signal_name(sig).map_or(sig.to_string(), str::to_string);
        log!(
            sys,
            Level::Info,
            "Sending {sname} signal to {key} main process ({pid})"
        );
        match sys.kill(pid, sig, true) {
            Ok(()) => {
                let deadline = self.now_ms + (class.kill_timeout.max(0) as u64) * 1000;
                if let Some(inst) = self.inst(key) {
                    inst.kill_deadline = Some(deadline);
                    self.timed.insert(key.clone());
                }
            }
            Err(nix::errno::Errno::ESRCH) => {}
            Err(errno) => sys.log(
                Level::Warn,
                format!(
                    "Failed to send {sname} signal to {key} main process ({pid}): {}",
                    errno.desc()
                ),
            ),
        }
    }

    /// The earliest armed timer (monotonic milliseconds).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timed
            .iter()
            .filter_map(|key| self.deadline_of(key))
            .min()
    }

    fn deadline_of(&self, key: &JobKey) -> Option<u64> {
        let inst = self.instance(key)?;
        match (inst.kill_deadline, Self::readiness_deadline(inst)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fire every timer due at the current time.
    pub fn fire_timers(&mut self, sys: &mut dyn Sys) {
        let now = self.now_ms;
        let timed = std::mem::take(&mut self.timed);
        let mut due = Vec::new();
        for key in timed {
            match self.deadline_of(&key) {
                Some(d) if d <= now => due.push(key),
                Some(_) => {
                    self.timed.insert(key);
                }
                None => {}
            }
        }
        for key in due {
            self.readiness_timer(sys, &key);
            let Some(inst) = self.inst(&key) else {
                continue;
            };
            if inst.kill_deadline.is_none_or(|d| d > now) {
                continue;
            }
            inst.kill_deadline = None;
            let pid = inst.pid(ProcessType::Main);
            if pid > 0 {
                log!(
                    sys,
                    Level::Info,
                    "Sending KILL signal to {key} main process ({pid})"
                );
                let _ = sys.kill(pid, SIGKILL, true);
            }
        }
    }
}
