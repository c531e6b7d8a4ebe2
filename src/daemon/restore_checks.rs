//! What a restored state may name (a previous image's or Upstart's
//! payload is input like any other): processes that really are init's to
//! supervise, and log files inside the log directory.

use std::path::{Component, Path, PathBuf};

use super::Daemon;
use crate::config::ProcessType;
use crate::job::{ExitStatus, JobKey, Level};

/// Why init (process `own_pid`) cannot supervise `pid`, if it cannot: only its own children
/// (its tracees count: they report to it) can be waited for, and only
/// those can be signalled without hitting a stranger, or init itself.
fn not_supervisable(pid: i32, own_pid: i32) -> Option<&'static str> {
    if pid == own_pid {
        return Some("is init itself");
    }
    if pid == 1 {
        return Some("is process 1");
    }
    // SAFETY: waitid fills the zeroed siginfo we own; WNOWAIT leaves any
    // state change to be collected by the loop.
    let rc = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags)
    };
    let errno = std::io::Error::last_os_error().raw_os_error();
    (rc < 0 && errno == Some(libc::ECHILD)).then_some("is not a child of init")
}

impl Daemon {
    /// Processes named by a restored state that init cannot supervise are
    /// lost: each is treated as having exited (its job moves on), and is
    /// never signalled. Done before anything else can act on them.
    pub(super) fn drop_lost_processes(&mut self) {
        let named: Vec<(JobKey, ProcessType, i32)> = self
            .engine
            .slots
            .iter()
            .flat_map(|(job, slot)| {
                slot.instances.iter().flat_map(move |(name, inst)| {
                    inst.pids
                        .iter()
                        .filter(|(_, pid)| **pid > 0)
                        .map(move |(process, pid)| (JobKey::new(job, name), *process, *pid))
                })
            })
            .collect();
        let own_pid = nix::unistd::getpid().as_raw();
        for (key, process, pid) in named {
            let Some(why) = not_supervisable(pid, own_pid) else {
                continue;
            };
            self.log(
                Level::Warn,
                &format!(
                    "{key} {} process ({pid}) {why}: treating it as exited",
                    process.name()
                ),
            );
            if self.engine.spawn_pending(pid) {
                match self.world.drain_status(pid) {
                    Some(outcome) => self.apply(outcome),
                    None => self.engine.spawn_ok(&mut self.world, pid),
                }
            }
            self.world.process_ended(pid);
            self.engine
                .child_exited(&mut self.world, pid, ExitStatus::Exited(0));
        }
    }

    /// Whether a restored state may name `path` as a job's log file: a
    /// `.log` file directly in the log directory, as init names them.
    pub(super) fn is_log_file(&self, path: &Path) -> bool {
        path.parent() == Some(self.config.logdir.as_path())
            && matches!(path.components().next_back(), Some(Component::Normal(_)))
            && path.extension().is_some_and(|e| e == "log")
    }

    /// The file a restored live log of `pid` writes to: the one the state
    /// names if it may, else the log file of `owner`, the instance the
    /// process belongs to (or none: its output is then not kept).
    pub(super) fn restored_log_path(
        &mut self,
        pid: i32,
        named: PathBuf,
        owner: Option<&JobKey>,
    ) -> Option<PathBuf> {
        if self.is_log_file(&named) {
            return Some(named);
        }
        self.log(
            Level::Warn,
            &format!(
                "Ignoring log file {} the state names for process {pid}: not a file of the log directory",
                named.display()
            ),
        );
        owner.map(|k| crate::spawn::log_path(&self.config.logdir, &k.job, &k.instance))
    }

    /// The instance a process of the restored engine belongs to.
    pub(super) fn owner_of(&self, pid: i32) -> Option<JobKey> {
        self.engine.slots.iter().find_map(|(job, slot)| {
            slot.instances
                .iter()
                .find(|(_, i)| i.pids.values().any(|p| *p == pid))
                .map(|(name, _)| JobKey::new(job, name))
        })
    }

    /// Whether output held for `path` by a restored state may be kept.
    pub(super) fn keeps_held_output(&mut self, path: &Path) -> bool {
        let ok = self.is_log_file(path);
        if !ok {
            self.log(
                Level::Warn,
                &format!(
                    "Ignoring output held for {}: not a file of the log directory",
                    path.display()
                ),
            );
        }
        ok
    }
}
