//! What the engine asks of the outside world. The daemon implements it with
//! real processes; tests use a recording fake.

use std::sync::Arc;

use nix::errno::Errno;

use crate::config::{JobClass, ProcessType};

use super::error::{EngineError, SpawnError};
use super::JobKey;

/// Daemon log priorities (pid1.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Message,
    Warn,
    Error,
    Fatal,
}

/// Everything needed to start one process of one instance.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub job: JobKey,
    pub process: ProcessType,
    pub class: Arc<JobClass>,
    /// The instance's environment, lent by the engine for the spawn (it
    /// is not copied: a session init's environment is dozens of entries).
    pub env: Vec<String>,
    /// Entries set over `env`, in order, as `env::set` would: the stop
    /// environment, `UPSTART_JOB`, `UPSTART_INSTANCE`, and so on. See
    /// [`SpawnRequest::env_entries`] for the complete environment.
    pub env_set: Vec<String>,
    /// Follow forks with ptrace (`expect fork|daemon`).
    pub trace: bool,
    /// The cgroup manager's address when the class needs cgroups: the
    /// process is then set up by the spawn helper.
    pub cgroup_manager: Option<String>,
}

impl SpawnRequest {
    /// The complete process environment, borrowed: `env` with each entry
    /// of `env_set` in the place of the entry of the same key (the last
    /// one set wins), the others after it, in the order first set.
    pub fn env_entries(&self) -> Vec<&str> {
        use crate::env::key_of;
        // Each key set, once, with the last entry set for it, in the order
        // first set: a handful, against the tens of the environment, so
        // each key is split out once, not once per comparison.
        let mut set: Vec<(&str, &str, bool)> = Vec::with_capacity(self.env_set.len());
        for e in &self.env_set {
            let key = key_of(e);
            match set.iter_mut().find(|(k, ..)| *k == key) {
                Some(slot) => slot.1 = e,
                None => set.push((key, e, false)),
            }
        }
        // The first bytes of the keys set: an entry starting otherwise (most
        // of them) needs no splitting at all.
        let mut firsts = [false; 256];
        for (k, ..) in &set {
            if let Some(seen) = k
                .bytes()
                .next()
                .and_then(|b| firsts.get_mut(usize::from(b)))
            {
                *seen = true;
            }
        }
        let mut out: Vec<&str> = Vec::with_capacity(self.env.len() + set.len());
        for e in &self.env {
            let maybe_set = e
                .bytes()
                .next()
                .is_none_or(|b| firsts.get(usize::from(b)).copied().unwrap_or(true));
            if !maybe_set {
                out.push(e);
                continue;
            }
            let key = key_of(e);
            match set.iter_mut().find(|(k, ..)| *k == key) {
                Some((_, value, used)) => {
                    *used = true;
                    out.push(value);
                }
                None => out.push(e),
            }
        }
        out.extend(set.iter().filter(|(.., used)| !used).map(|(_, e, _)| *e));
        out
    }

    /// The complete process environment, as a table of its own.
    pub fn full_env(&self) -> Vec<String> {
        self.env_entries().into_iter().map(str::to_string).collect()
    }

    /// A variable of the complete environment.
    pub fn env_get(&self, key: &str) -> Option<&str> {
        match self
            .env_set
            .iter()
            .rev()
            .find(|e| crate::env::key_of(e) == key)
        {
            Some(e) => e.split_once('=').map(|(_, v)| v),
            None => crate::env::get(&self.env, key),
        }
    }
}

/// A change the engine makes that others may observe (a job or instance
/// added or removed, a goal or state changed, a failure, an emitted
/// event), in the engine's terms. The daemon hands each to the control
/// plane as a `control::Change`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    JobAdded(String),
    JobRemoved(String),
    InstanceAdded(JobKey),
    InstanceRemoved(JobKey),
    GoalChanged(JobKey, &'static str),
    StateChanged(JobKey, &'static str),
    Failed(JobKey, i32),
    EventEmitted(String, Vec<String>),
}

/// The answer to a caller waiting on a job or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// [`EngineError::JobFailed`] or [`EngineError::EventFailed`].
    Failed(EngineError),
}

pub trait Sys {
    /// Start a process; returns its pid. An error means nothing was started
    /// (the reference retries such failures).
    fn spawn(&mut self, req: &SpawnRequest) -> Result<i32, SpawnError>;
    /// Send `signal` to the process group led by `pid` (or to `pid` alone
    /// when `group` is false).
    fn kill(&mut self, pid: i32, signal: i32, group: bool) -> Result<(), Errno>;
    fn log(&mut self, level: Level, message: String);
    /// Whether a message at `level` would be written at all: the engine
    /// builds the frequent ones (every state change) only if so.
    fn logs(&self, _level: Level) -> bool {
        true
    }
    /// Report a [`Change`] (for the control plane's objects and signals).
    fn changed(&mut self, _change: Change) {}
    /// ptrace requests for `expect fork|daemon`. A `Sys` that cannot
    /// trace answers `ENOSYS`.
    fn ptrace_setoptions(&mut self, _pid: i32, _follow: bool) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    fn ptrace_cont(&mut self, _pid: i32, _signal: i32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    fn ptrace_detach(&mut self, _pid: i32) -> Result<(), Errno> {
        Err(Errno::ENOSYS)
    }
    /// The pid of the child a traced process just forked.
    fn ptrace_new_child(&mut self, _pid: i32) -> Result<i32, Errno> {
        Err(Errno::ENOSYS)
    }
    /// Learn of the end of `pid`, a process the engine now follows that
    /// may not be init's child (`MAINPID=` of `expect notify`).
    fn watch_process(&mut self, _pid: i32) {}
    fn reply(&mut self, _token: u64, _reply: Reply) {}
    /// Is AppArmor usable (process-spawning.md §9)? Asked each time a
    /// `security` process would run, as the reference does.
    fn apparmor_available(&mut self) -> bool {
        false
    }
    /// An event that carried a file has finished: close the file.
    fn release_fd(&mut self, _fd: i32) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_job, ClassDefaults};

    fn request(env: &[&str], set: &[&str]) -> SpawnRequest {
        SpawnRequest {
            job: JobKey::new("j", ""),
            process: crate::config::ProcessType::Main,
            class: Arc::new(
                parse_job("j", "j.conf", "exec true\n", &ClassDefaults::default()).expect("parse"),
            ),
            env: env.iter().map(|e| e.to_string()).collect(),
            env_set: set.iter().map(|e| e.to_string()).collect(),
            trace: false,
            cgroup_manager: None,
        }
    }

    #[test]
    fn the_set_entries_land_where_env_set_puts_them() {
        let cases: [(&[&str], &[&str]); 4] = [
            (&["A=1", "B=2", "C=3"], &["B=x", "D=4"]),
            (&["A=1", "B"], &["B=y", "B=z", "E=5", "E=6"]),
            (&[], &["UPSTART_JOB=j", "UPSTART_INSTANCE="]),
            (&["PATH=/bin", "UPSTART_JOB=old"], &["UPSTART_JOB=j"]),
        ];
        for (env, set) in cases {
            let req = request(env, set);
            let mut want: Vec<String> = env.iter().map(|e| e.to_string()).collect();
            for e in set {
                crate::env::set(&mut want, e.to_string());
            }
            assert_eq!(req.full_env(), want, "{env:?} {set:?}");
            for e in &want {
                let (key, value) = e.split_once('=').unwrap_or((e, ""));
                if e.contains('=') {
                    assert_eq!(req.env_get(key), Some(value), "{key}");
                }
            }
        }
        assert_eq!(request(&["A=1"], &[]).env_get("B"), None);
    }
}
