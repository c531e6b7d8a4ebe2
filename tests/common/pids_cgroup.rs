//! A pids cgroup of the test's own, on whichever layout the host has:
//! cgroup v1's `pids` hierarchy when it is mounted, else the pids
//! controller of the cgroup2 hierarchy. Where only cgroup2 is mounted but
//! the kernel has the pids controller bound to a v1 hierarchy (so cgroup2
//! cannot offer it), that hierarchy is mounted for the test at a directory
//! of its own. `OUTSET_TEST_PIDS_CGROUP=v1|v2` forces one; a host without
//! the forced (or any) one fails the test.

use std::path::{Path, PathBuf};

use super::cgroup_layout::{bound_to_v1, make_cgroup, v2_mount, v2_offers};

pub struct PidsCgroup {
    /// The cgroup made for the test (holds `pids.max`, `pids.current`).
    pub dir: PathBuf,
    /// Where its processes go back to before it is removed.
    home: PathBuf,
    /// The v1 hierarchy mounted for the test, unmounted after.
    mounted: Option<PathBuf>,
}

const V1: &str = "/sys/fs/cgroup/pids";

impl PidsCgroup {
    pub fn new() -> PidsCgroup {
        let name = format!("outset-test-{}", std::process::id());
        match std::env::var("OUTSET_TEST_PIDS_CGROUP").ok().as_deref() {
            Some("v1") => Self::v1(&name, Path::new(V1)),
            Some("v2") => Self::v2(&name),
            Some(other) => panic!("OUTSET_TEST_PIDS_CGROUP={other}: expected v1 or v2"),
            None if Path::new(V1).join("cgroup.procs").exists() => Self::v1(&name, Path::new(V1)),
            None if !v2_offers("pids") && bound_to_v1("pids") => Self::v1_mounted(&name),
            None => Self::v2(&name),
        }
    }

    fn v1(name: &str, root: &Path) -> PidsCgroup {
        assert!(
            root.join("cgroup.procs").exists(),
            "no cgroup v1 pids hierarchy at {}",
            root.display()
        );
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("create pids cgroup");
        PidsCgroup {
            dir,
            home: root.to_path_buf(),
            mounted: None,
        }
    }

    /// The kernel's v1 pids hierarchy, mounted where this process's mount
    /// namespace shows none.
    fn v1_mounted(name: &str) -> PidsCgroup {
        let at = std::env::temp_dir().join(format!("{name}-pids"));
        std::fs::create_dir_all(&at).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "cgroup", "-o", "pids", "outset-test"])
            .arg(&at)
            .status()
            .expect("mount");
        assert!(status.success(), "mount the v1 pids hierarchy: {status}");
        let mut cg = Self::v1(name, &at);
        cg.mounted = Some(at);
        cg
    }

    /// A sibling of the test's own cgroup2 (or a child of the root when
    /// the test is in the root), with `+pids` enabled from the root down
    /// to its parent: a non-root parent must hold no process, so the test's
    /// own cgroup (which does) is never the parent.
    fn v2(name: &str) -> PidsCgroup {
        let mount = v2_mount().expect("no cgroup2 mount in /proc/self/mountinfo");
        let own_rel = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            })
            .expect("no cgroup2 entry in /proc/self/cgroup");
        let own = mount.join(own_rel.trim_start_matches('/'));
        let parent = if own == mount {
            mount.clone()
        } else {
            own.parent().map(Path::to_path_buf).unwrap_or(mount.clone())
        };
        let offered = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        assert!(
            offered.split_whitespace().any(|c| c == "pids"),
            "the cgroup2 hierarchy at {} offers no pids controller (it offers: {}); \
             is pids bound to a cgroup v1 hierarchy?",
            mount.display(),
            offered.trim()
        );
        let dir = parent.join(name);
        make_cgroup("pids", &dir);
        assert!(
            dir.join("pids.max").exists(),
            "{} has no pids.max",
            dir.display()
        );
        PidsCgroup {
            dir,
            home: own,
            mounted: None,
        }
    }

    /// Move `pid` into the cgroup.
    pub fn enter(&self, pid: i32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");
    }

    /// Leave no room for one task more than the cgroup holds now.
    pub fn fill(&self) {
        let current = std::fs::read_to_string(self.dir.join("pids.current")).expect("pids.current");
        std::fs::write(self.dir.join("pids.max"), current.trim()).expect("pids.max");
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Only an empty cgroup can go: anything left goes back home.
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for p in procs.lines() {
                let _ = std::fs::write(self.home.join("cgroup.procs"), p);
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(at) = &self.mounted {
            let _ = std::process::Command::new("umount").arg(at).status();
            let _ = std::fs::remove_dir(at);
        }
    }
}
