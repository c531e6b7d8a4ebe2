//! Who is calling (SO_PEERCRED) and what they may do (extensions.md §1):
//! root anything; other users only cgroups chowned to them (judged by the
//! owner and mode of the cgroup's files, as a delegated cgroupfs would),
//! and only their own processes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::{CgError, Result};

/// The peer of a connection, as the kernel saw it at connect time.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the caller's uid/gid grant `want` (an `rwx` bit triple: 4,
    /// 2, 1) on `path`.
    fn may(&self, path: &Path, want: u32) -> Result<bool> {
        if self.is_root() {
            return Ok(true);
        }
        let meta =
            std::fs::metadata(path).map_err(|e| CgError::io(format!("{}", path.display()), e))?;
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid {
            mode >> 6
        } else if meta.gid() == self.gid {
            mode >> 3
        } else {
            mode
        };
        Ok(bits & want == want)
    }

    pub fn require_write(&self, path: &Path) -> Result<()> {
        if self.may(path, 2)? {
            Ok(())
        } else {
            Err(self.refused(path, "write"))
        }
    }

    pub fn require_read(&self, path: &Path) -> Result<()> {
        if self.may(path, 4)? {
            Ok(())
        } else {
            Err(self.refused(path, "read"))
        }
    }

    /// The caller must own `path` (a cgroup directory chowned to them).
    pub fn require_owner(&self, path: &Path) -> Result<()> {
        if self.is_root() {
            return Ok(());
        }
        let meta =
            std::fs::metadata(path).map_err(|e| CgError::io(format!("{}", path.display()), e))?;
        if meta.uid() == self.uid {
            Ok(())
        } else {
            Err(CgError::denied(format!(
                "uid {} does not own cgroup {} (only root and the user it was chowned to may change it)",
                self.uid,
                path.display()
            )))
        }
    }

    fn refused(&self, path: &Path, what: &str) -> CgError {
        CgError::denied(format!(
            "uid {} may not {what} {} (only root and the user it was chowned to may)",
            self.uid,
            path.display()
        ))
    }

    /// Non-root callers may move only processes whose real or saved uid
    /// is theirs: the kernel's own rule for writing a pid to
    /// `cgroup.procs` (the writer's effective uid, which is what
    /// SO_PEERCRED reports, against the target's real or saved uid).
    pub fn require_may_move(&self, pid: i32) -> Result<()> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| CgError::io(format!("process {pid}"), e))?;
        if self.is_root() {
            return Ok(());
        }
        let uids: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // The Uid: line lists real, effective, saved and filesystem uids.
        let (real, saved) = (uids.first(), uids.get(2));
        if real == Some(&self.uid) || saved == Some(&self.uid) {
            Ok(())
        } else {
            Err(CgError::denied(format!(
                "uid {} may not move process {pid}: it belongs to another user",
                self.uid
            )))
        }
    }
}
