//! What cgroup hierarchies are mounted (/proc/self/mountinfo) and where a
//! process sits in each (/proc/PID/cgroup).

use std::path::PathBuf;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `None` for cgroup v2; for v1 the hierarchy's controllers as the
    /// kernel names them in /proc/PID/cgroup (`cpu`, `name=systemd`, …).
    pub v1: Option<Vec<String>>,
    /// Where it is mounted.
    pub dir: PathBuf,
    /// Which cgroup of the hierarchy the mount shows (mountinfo's root).
    pub root: String,
}

/// Mount options of a v1 cgroup mount that are not controllers.
const V1_OPTIONS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
    "all",
];

/// Every cgroup mount in a mountinfo text, first mount of each hierarchy
/// only (bind mounts of the same hierarchy are skipped).
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for e in crate::mountinfo::entries(text) {
        let v1 = match e.fstype {
            "cgroup2" => None,
            "cgroup" => {
                let mut ctrls: Vec<String> = e
                    .super_options
                    .split(',')
                    .filter(|o| !V1_OPTIONS.contains(o))
                    .filter(|o| !o.contains('=') || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                ctrls.sort();
                Some(ctrls)
            }
            _ => continue,
        };
        let mount = Mount {
            v1,
            dir: PathBuf::from(e.mount_point),
            root: e.root,
        };
        if mounts.iter().any(|m| m.v1 == mount.v1) {
            continue;
        }
        mounts.push(mount);
    }
    mounts
}

/// One line of /proc/PID/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Sorted controller list; empty for the v2 line.
    pub controllers: Vec<String>,
    /// Path within the hierarchy, starting with `/`.
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let mut controllers: Vec<String> = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            controllers.sort();
            Some(Membership {
                controllers,
                path: path.to_string(),
            })
        })
        .collect()
}

/// The cgroup of `mount`'s hierarchy in a parsed /proc/PID/cgroup.
pub fn path_in<'a>(mount: &Mount, memberships: &'a [Membership]) -> Option<&'a str> {
    let want: &[String] = match &mount.v1 {
        Some(c) => c,
        None => &[],
    };
    memberships
        .iter()
        .find(|m| m.controllers == want)
        .map(|m| m.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:32 /sub /mnt/my\\040mem rw - cgroup cgroup rw,memory
";

    #[test]
    fn mounts_of_a_hybrid_layout() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].v1, Some(vec!["cpu".into(), "cpuacct".into()]));
        assert_eq!(m[0].dir, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[1].v1, Some(vec!["memory".into()]));
        assert_eq!(m[2].v1, Some(vec!["name=systemd".into()]));
        assert_eq!(m[3].v1, None);
        assert_eq!(m[3].root, "/");
    }

    #[test]
    fn escaped_mount_points() {
        let m = parse_mountinfo("50 23 0:32 /sub /mnt/my\\040mem rw - cgroup2 none rw\n");
        assert_eq!(m[0].dir, PathBuf::from("/mnt/my mem"));
        assert_eq!(m[0].root, "/sub");
    }

    #[test]
    fn memberships() {
        let p = parse_proc_cgroup("9:name=systemd:/\n4:memory:/a/b\n2:cpuacct,cpu:/c:d\n0::/u\n");
        let m = parse_mountinfo(HYBRID);
        assert_eq!(path_in(&m[0], &p), Some("/c:d"));
        assert_eq!(path_in(&m[1], &p), Some("/a/b"));
        assert_eq!(path_in(&m[2], &p), Some("/"));
        assert_eq!(path_in(&m[3], &p), Some("/u"));
    }
}
