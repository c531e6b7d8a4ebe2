//! `expect notify` (extensions.md §7): the main process says it is ready
//! with `READY=1` over the sd_notify protocol. The daemon owns the socket,
//! checks who sent each datagram and hands the parsed message here; this
//! file is the engine's side: readiness, the main pid, the status text and
//! the `notify timeout` timer.

use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::state::{Goal, State};
use super::sys::{Level, Reply, Sys};
use super::{EngineError, JobKey};
use crate::config::{Expect, ProcessType};

/// What an instance has said on the notify socket so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// The last `STATUS=` text (empty clears it).
    pub status: Option<String>,
    /// `RELOADING=1` came and no `READY=1` since.
    pub reloading: bool,
    /// `STOPPING=1` came.
    pub stopping: bool,
    /// When `notify timeout` fails the job (monotonic milliseconds).
    pub deadline: Option<u64>,
    /// Callers of `Reload` waiting for `READY=1` (reply tokens). Not
    /// carried across a re-exec: neither are the replies they stand for.
    #[serde(skip)]
    pub reload_waiters: Vec<u64>,
    /// When those callers are answered anyway: the end of the grace
    /// period after the reload signal, or, once `RELOADING=1` came, the
    /// end of the reload's bound.
    #[serde(skip)]
    pub reload_deadline: Option<u64>,
}

/// How long after the reload signal an `expect notify` job has to say
/// `RELOADING=1` for `Reload` to wait for its `READY=1`.
pub const RELOAD_GRACE_MS: u64 = 250;

/// How long `Reload` waits for `READY=1` after `RELOADING=1` when the job
/// has no `notify timeout`.
pub const RELOAD_BOUND_SECS: u64 = 90;

/// The longest `STATUS=` text kept; longer ones are cut (at a character
/// boundary).
pub const STATUS_MAX: usize = 1024;

/// One sd_notify datagram: newline-separated `KEY=VALUE` assignments.
/// Unknown keys are ignored, as sd_notify(3) asks of a receiver.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NotifyMessage {
    pub ready: bool,
    pub reloading: bool,
    pub stopping: bool,
    pub status: Option<String>,
    pub main_pid: Option<i32>,
    pub errno: Option<i32>,
}

impl NotifyMessage {
    pub fn parse(data: &[u8]) -> Self {
        let text = String::from_utf8_lossy(data);
        let mut m = NotifyMessage::default();
        for line in text.split('\n') {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "READY" => m.ready = value == "1",
                "RELOADING" => m.reloading = value == "1",
                "STOPPING" => m.stopping = value == "1",
                "STATUS" => {
                    let mut end = value.len().min(STATUS_MAX);
                    while !value.is_char_boundary(end) {
                        end -= 1;
                    }
                    m.status = Some(value.get(..end).unwrap_or_default().to_string());
                }
                "MAINPID" => m.main_pid = value.parse().ok().filter(|p: &i32| *p > 1),
                "ERRNO" => m.errno = value.parse().ok(),
                _ => {}
            }
        }
        m
    }
}

impl Engine {
    /// The instance (and which of its processes) `pid` is, if any.
    pub fn owner_of(&self, pid: i32) -> Option<(JobKey, ProcessType)> {
        self.pids.get(&pid).cloned()
    }

    /// Is `key` an `expect notify` instance?
    pub fn expects_notify(&self, key: &JobKey) -> bool {
        self.class_of(key)
            .is_some_and(|c| c.expect == Expect::Notify)
    }

    /// `NOTIFY_SOCKET` in the environment of an `expect notify` main
    /// process.
    pub(super) fn notify_env(&self, key: &JobKey, process: ProcessType, out: &mut Vec<String>) {
        if process != ProcessType::Main || !self.expects_notify(key) {
            return;
        }
        if let Some(address) = &self.options.notify_socket {
            crate::env::set(out, format!("NOTIFY_SOCKET={address}"));
        }
    }

    /// A new main process of an `expect notify` instance: forget what the
    /// last one said and arm `notify timeout`.
    pub(super) fn readiness_spawned(&mut self, key: &JobKey) {
        let Some(class) = self.class_of(key) else {
            return;
        };
        if class.expect != Expect::Notify {
            return;
        }
        let deadline = class
            .rare
            .notify_timeout
            .map(|s| self.now_ms.saturating_add(s.saturating_mul(1000)));
        if let Some(inst) = self.inst(key) {
            inst.readiness = Readiness {
                deadline,
                ..Readiness::default()
            };
        }
        if deadline.is_some() {
            self.timed.insert(key.clone());
        }
    }

    /// A datagram from one of `key`'s processes (the daemon has checked
    /// the sender, and that `MAINPID` is the instance's too).
    pub fn notify(&mut self, sys: &mut dyn Sys, key: &JobKey, sender: i32, msg: NotifyMessage) {
        if !self.expects_notify(key) {
            log!(
                sys,
                Level::Debug,
                "Ignored notification from {key} process ({sender}): job does not expect notify"
            );
            return;
        }
        if let Some(errno) = msg.errno {
            sys.log(
                Level::Warn,
                format!(
                    "{key} main process reported error {errno}: {}",
                    nix::errno::Errno::from_raw(errno).desc()
                ),
            );
        }
        if let Some(pid) = msg.main_pid {
            self.set_main_pid(sys, key, pid);
        }
        let Some(inst) = self.inst(key) else { return };
        if let Some(status) = msg.status {
            if !status.is_empty() {
                log!(sys, Level::Info, "{key} status: {status}");
            }
            inst.readiness.status = (!status.is_empty()).then_some(status);
        }
        if msg.stopping && !inst.readiness.stopping {
            inst.readiness.stopping = true;
            log!(sys, Level::Info, "{key} main process is stopping");
        }
        if msg.reloading {
            inst.readiness.reloading = true;
            log!(sys, Level::Info, "{key} main process is reloading");
            if !inst.readiness.reload_waiters.is_empty() {
                let bound = self.reload_bound(key);
                if let Some(inst) = self.inst(key) {
                    inst.readiness.reload_deadline = Some(bound);
                }
            }
        }
        if !msg.ready {
            return;
        }
        let Some(inst) = self.inst(key) else { return };
        if std::mem::take(&mut inst.readiness.reloading) {
            log!(sys, Level::Info, "{key} main process reloaded");
        }
        self.reload_done(sys, key, None);
        let Some(inst) = self.inst(key) else { return };
        let state = inst.state;
        let main = inst.pid(ProcessType::Main);
        if state != State::Spawned || main <= 0 || inst.goal == Goal::Stop {
            return;
        }
        inst.readiness.deadline = None;
        log!(sys, Level::Info, "{key} main process ({main}) is ready");
        let next = self.next_state(key);
        self.change_state(sys, key, next);
    }

    /// `MAINPID=`: follow another process of the job as its main process.
    fn set_main_pid(&mut self, sys: &mut dyn Sys, key: &JobKey, pid: i32) {
        let Some(inst) = self.inst(key) else { return };
        let old = inst.pid(ProcessType::Main);
        if old == pid || old <= 0 {
            return;
        }
        inst.pids.insert(ProcessType::Main, pid);
        self.pids.remove(&old);
        self.pids.insert(pid, (key.clone(), ProcessType::Main));
        sys.watch_process(pid);
        log!(
            sys,
            Level::Info,
            "{key} main process ({old}) became new process ({pid})"
        );
    }

    /// When a reload that has begun must be over: `notify timeout` or
    /// [`RELOAD_BOUND_SECS`] from now.
    fn reload_bound(&self, key: &JobKey) -> u64 {
        let secs = self
            .class_of(key)
            .and_then(|c| c.rare.notify_timeout)
            .unwrap_or(RELOAD_BOUND_SECS);
        self.now_ms.saturating_add(secs.saturating_mul(1000))
    }

    /// The reload signal went to an `expect notify` instance's main
    /// process: `waiter` is answered once the job says `READY=1`, or at
    /// once if it does not say `RELOADING=1` within [`RELOAD_GRACE_MS`]
    /// (extensions.md §7).
    pub(super) fn reload_sent(&mut self, key: &JobKey, waiter: u64) {
        let deadline = if self.instance(key).is_some_and(|i| i.readiness.reloading) {
            self.reload_bound(key)
        } else {
            self.now_ms.saturating_add(RELOAD_GRACE_MS)
        };
        let Some(inst) = self.inst(key) else { return };
        inst.readiness.reload_waiters.push(waiter);
        let earlier = inst.readiness.reload_deadline.filter(|d| *d < deadline);
        inst.readiness.reload_deadline = Some(earlier.unwrap_or(deadline));
        self.timed.insert(key.clone());
    }

    /// Answer the callers waiting for a reload of `key`: done, or the
    /// reload did not finish (`why`, logged).
    pub(super) fn reload_done(&mut self, sys: &mut dyn Sys, key: &JobKey, why: Option<&str>) {
        let Some(inst) = self.inst(key) else { return };
        inst.readiness.reload_deadline = None;
        let waiters = std::mem::take(&mut inst.readiness.reload_waiters);
        if waiters.is_empty() {
            return;
        }
        if let Some(why) = why {
            sys.log(Level::Warn, format!("{key} main process {why}"));
        }
        for token in waiters {
            let reply = match why {
                None => Reply::Ok,
                Some(_) => Reply::Failed(EngineError::ReloadUnfinished(key.to_string())),
            };
            sys.reply(token, reply);
        }
    }

    /// Answer the reload's callers when its grace period or bound is
    /// over.
    fn reload_timer(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        let now = self.now_ms;
        let Some(inst) = self.inst(key) else { return };
        if inst.readiness.reload_deadline.is_none_or(|d| d > now) {
            return;
        }
        if !inst.readiness.reloading {
            // No RELOADING=1 in the grace period: a job that does not
            // bracket its reloads.
            self.reload_done(sys, key, None);
            return;
        }
        let secs = self
            .class_of(key)
            .and_then(|c| c.rare.notify_timeout)
            .unwrap_or(RELOAD_BOUND_SECS);
        let why = format!("not ready after reloading for {secs} seconds");
        self.reload_done(sys, key, Some(&why));
    }

    /// Fire `notify timeout` if it is due: the job has not said
    /// `READY=1` in time and fails as its main process would, through its
    /// kill sequence.
    pub(super) fn readiness_timer(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        self.reload_timer(sys, key);
        let now = self.now_ms;
        let Some(inst) = self.inst(key) else { return };
        if inst.readiness.deadline.is_none_or(|d| d > now) {
            return;
        }
        inst.readiness.deadline = None;
        let main = inst.pid(ProcessType::Main);
        if inst.state != State::Spawned || main <= 0 {
            return;
        }
        let secs = self
            .class_of(key)
            .and_then(|c| c.rare.notify_timeout)
            .unwrap_or(0);
        sys.log(
            Level::Warn,
            format!("{key} main process ({main}) not ready after {secs} seconds"),
        );
        self.fail(sys, key, Some(ProcessType::Main), -1);
        self.leave_spawned(sys, key);
    }

    /// Stop an `expect notify` instance that waits in `spawned`: unlike
    /// the other `expect` modes, a goal of stop does not wait for a sign
    /// that may never come.
    pub(super) fn leave_spawned(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        self.change_goal(sys, key, Goal::Stop);
        if self
            .instance(key)
            .is_some_and(|i| i.state == State::Spawned && i.goal == Goal::Stop)
        {
            let next = self.next_state(key);
            self.change_state(sys, key, next);
        }
    }

    /// The readiness deadline of an instance, for the timer list.
    pub(super) fn readiness_deadline(inst: &super::Instance) -> Option<u64> {
        match (inst.readiness.deadline, inst.readiness.reload_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_messages_parse() {
        let m = NotifyMessage::parse(b"READY=1\nSTATUS=Accepting connections\nMAINPID=42\n");
        assert!(m.ready);
        assert_eq!(m.status.as_deref(), Some("Accepting connections"));
        assert_eq!(m.main_pid, Some(42));
        let m = NotifyMessage::parse(b"READY=0\nMAINPID=1\nMAINPID=x\nERRNO=2\nX_OTHER=1");
        assert!(!m.ready);
        assert_eq!(m.main_pid, None);
        assert_eq!(m.errno, Some(2));
        let long = format!("STATUS={}", "é".repeat(STATUS_MAX));
        let m = NotifyMessage::parse(long.as_bytes());
        assert!(m.status.is_some_and(|s| s.len() <= STATUS_MAX));
        assert_eq!(NotifyMessage::parse(b"\xff\xfe"), NotifyMessage::default());
    }
}
