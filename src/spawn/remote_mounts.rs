//! Which paths lie on file systems that can hang: network file systems,
//! FUSE (its daemon may never answer) and autofs (its mount may never come).
//!
//! A plain job's child runs on init's memory and init waits until its exec
//! is done (`CLONE_VFORK`), so an exec whose path lookup waits on a dead
//! server would hold init up. Init asks this table, which it keeps from its
//! own `/proc/self/mountinfo` (a read of the kernel's memory, never of a
//! disk), whether any path the child will try is on such a mount; if so,
//! the child is forked instead and init does not wait for it. The table is
//! read again only when the kernel says the mounts changed (`POLLPRI` on
//! the open file), one `poll` per spawn.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

/// File system types whose lookups can wait on something outside this
/// machine's memory and disks.
const MAY_HANG: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "afs",
    "coda",
    "ceph",
    "glusterfs",
    "lustre",
    "gfs2",
    "ocfs2",
    "orangefs",
    "beegfs",
    "gpfs",
    "9p",
    "virtiofs",
    "davfs",
    "fuse",
    "fuseblk",
    "autofs",
];

/// Whether a file system type is one whose lookups may hang.
pub fn may_hang_type(fstype: &str) -> bool {
    let base = fstype.split('.').next().unwrap_or(fstype);
    MAY_HANG.contains(&base)
}

/// Init's mount table, as far as spawning needs it.
#[derive(Debug, Default)]
pub struct RemoteMounts {
    /// `/proc/self/mountinfo`, open; `None` until it can be opened (no
    /// `/proc` yet early in boot, when nothing remote is mounted either).
    file: Option<File>,
    /// Every mount point, in mountinfo's order, and whether its file
    /// system may hang. Empty while no mount may hang.
    mounts: Vec<(String, bool)>,
}

impl RemoteMounts {
    /// The table of `text` (a mountinfo text), for tests and for `refresh`.
    pub fn from_text(text: &str) -> Self {
        let mut mounts: Vec<(String, bool)> = crate::mountinfo::entries(text)
            .map(|e| (e.mount_point, may_hang_type(e.fstype)))
            .collect();
        if !mounts.iter().any(|(_, hang)| *hang) {
            mounts.clear();
        }
        RemoteMounts { file: None, mounts }
    }

    /// Bring the table up to date: open the file the first time, and read
    /// it again when the kernel reports a change.
    pub fn refresh(&mut self) {
        let changed = match &self.file {
            Some(f) => {
                let mut pfd = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLPRI,
                    revents: 0,
                };
                // SAFETY: poll on one pollfd we own, without waiting.
                let n = unsafe { libc::poll(&mut pfd, 1, 0) };
                n > 0 && pfd.revents & (libc::POLLPRI | libc::POLLERR) != 0
            }
            None => match File::open("/proc/self/mountinfo") {
                Ok(f) => {
                    self.file = Some(f);
                    true
                }
                Err(_) => false,
            },
        };
        if !changed {
            return;
        }
        let Some(mut f) = self.file.as_ref() else {
            return;
        };
        // The whole table again, from its start.
        let mut text = String::new();
        if std::io::Seek::rewind(&mut f).is_ok() && f.read_to_string(&mut text).is_ok() {
            self.mounts = RemoteMounts::from_text(&text).mounts;
        }
    }

    /// Whether `path` (absolute) lies on a mount that may hang: the
    /// deepest, last-mounted mount point that contains it decides.
    pub fn holds(&self, path: &[u8]) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (point, hang) in &self.mounts {
            let p = point.as_bytes();
            let inside = p == b"/"
                || (path.starts_with(p) && matches!(path.get(p.len()), None | Some(b'/')));
            if inside && best.is_none_or(|(len, _)| p.len() >= len) {
                best = Some((p.len(), *hang));
            }
        }
        best.is_some_and(|(_, hang)| hang)
    }

    /// Whether any of `paths` lies on a mount that may hang. A relative
    /// path is looked up from init's directory, `/` in system mode; it is
    /// taken as `/`-relative here.
    pub fn holds_any<'a>(&self, paths: impl IntoIterator<Item = &'a [u8]>) -> bool {
        if self.mounts.is_empty() {
            return false;
        }
        paths.into_iter().any(|p| {
            if p.first() == Some(&b'/') {
                self.holds(p)
            } else {
                let mut abs = Vec::with_capacity(p.len() + 1);
                abs.push(b'/');
                abs.extend_from_slice(p);
                self.holds(&abs)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /home rw - nfs4 srv:/home rw
31 30 0:41 / /home/local rw - tmpfs tmpfs rw
32 22 0:42 / /mnt/sshfs rw - fuse.sshfs me@host: rw
33 22 0:43 / /net rw - autofs auto.net rw
34 22 0:44 / /srv rw - ext4 /dev/sdb1 rw
35 34 0:45 / /srv rw - nfs srv:/srv rw
";

    #[test]
    fn paths_on_mounts_that_may_hang() {
        let t = RemoteMounts::from_text(TABLE);
        assert!(!t.holds(b"/bin/true"));
        assert!(t.holds(b"/home"));
        assert!(t.holds(b"/home/me/bin/tool"));
        assert!(
            !t.holds(b"/homework/tool"),
            "a name prefix is not a directory"
        );
        assert!(!t.holds(b"/home/local/bin/x"), "a local mount inside");
        assert!(t.holds(b"/mnt/sshfs/x"));
        assert!(t.holds(b"/net/host/x"), "autofs");
        assert!(
            t.holds(b"/srv/x"),
            "the last mount on a point hides the others"
        );
    }

    #[test]
    fn candidates_of_a_path_search() {
        let t = RemoteMounts::from_text(TABLE);
        assert!(!t.holds_any([&b"/usr/bin/x"[..], b"/bin/x"]));
        assert!(t.holds_any([&b"/usr/bin/x"[..], b"/home/me/bin/x"]));
        assert!(t.holds_any([&b"home/me/x"[..]]), "relative to /");
        assert!(!t.holds_any([]));
    }

    #[test]
    fn a_table_without_such_mounts_is_empty() {
        let t = RemoteMounts::from_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
        assert!(t.mounts.is_empty());
        assert!(!t.holds_any([&b"/x"[..]]));
    }

    #[test]
    fn types() {
        for t in [
            "nfs",
            "nfs4",
            "fuse",
            "fuse.sshfs",
            "fuseblk",
            "cifs",
            "autofs",
            "9p",
        ] {
            assert!(may_hang_type(t), "{t}");
        }
        for t in [
            "ext4", "xfs", "tmpfs", "proc", "overlay", "btrfs", "squashfs",
        ] {
            assert!(!may_hang_type(t), "{t}");
        }
    }

    #[test]
    fn the_live_table_reads() {
        let mut t = RemoteMounts::default();
        t.refresh();
        assert!(t.file.is_some());
        // Nothing changed since: a second refresh reads nothing.
        t.refresh();
    }
}
