//! `RemoveOnEmpty`: cgroups to remove once they have been in use and are
//! empty again (cgmanager's notify-on-release semantics). A cgroup that
//! is empty when registered waits until something has been in it, so the
//! usual Create → RemoveOnEmpty → MovePid sequence never loses its cgroup.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::fsops;

#[derive(Debug)]
struct Entry {
    dir: PathBuf,
    v2: bool,
    /// Processes or children have been seen in it since registration.
    used: bool,
}

/// The registered cgroups. Its lock also orders cgroup creation, moves
/// and removal against the sweeper, so a sweep never removes a cgroup
/// between a client's Create and its MovePid.
#[derive(Debug, Default)]
pub struct Reaper {
    entries: Vec<Entry>,
}

pub type Shared = Arc<Mutex<Reaper>>;

/// Lock, ignoring poisoning (the data stays consistent per entry).
pub fn lock(r: &Shared) -> MutexGuard<'_, Reaper> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reaper {
    pub fn register(&mut self, dir: &Path, v2: bool) {
        let used = fsops::in_use(dir, v2);
        match self.entries.iter_mut().find(|e| e.dir == dir) {
            Some(e) => e.used = used,
            None => self.entries.push(Entry {
                dir: dir.to_path_buf(),
                v2,
                used,
            }),
        }
    }

    /// A cgroup was (re)created: it starts unused again.
    pub fn created(&mut self, dir: &Path) {
        for e in self.entries.iter_mut().filter(|e| e.dir == dir) {
            e.used = false;
        }
    }

    /// A process was moved into `dir`: it and its ancestors are in use.
    pub fn entered(&mut self, dir: &Path) {
        for e in self.entries.iter_mut().filter(|e| dir.starts_with(&e.dir)) {
            e.used = true;
        }
    }

    pub fn forget(&mut self, dir: &Path) {
        self.entries.retain(|e| !e.dir.starts_with(dir));
    }

    /// One pass: remove every used cgroup that is empty now, deepest
    /// first so that a parent emptied by its child's removal goes too.
    pub fn sweep(&mut self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(e.dir.components().count()));
        let mut keep = Vec::new();
        for mut e in std::mem::take(&mut self.entries) {
            if !e.dir.is_dir() {
                continue;
            }
            if fsops::in_use(&e.dir, e.v2) {
                e.used = true;
                keep.push(e);
                continue;
            }
            if e.used && std::fs::remove_dir(&e.dir).is_ok() {
                removed.push(e.dir);
                continue;
            }
            keep.push(e);
        }
        self.entries = keep;
        removed
    }
}

/// Sweep every `interval` for ever, logging removals.
pub fn spawn(reaper: Shared, interval: Duration, log: slog::Logger) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            for dir in lock(&reaper).sweep() {
                slog::debug!(log, "removed empty cgroup {}", dir.display());
            }
        })
        .map(|_| ())
}
