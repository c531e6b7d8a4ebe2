//! What this mount namespace's cgroup layout offers a test: where cgroup2
//! is mounted, which controllers sit on mounted v1 hierarchies, and a
//! controller with a limit to set (`Limit`), chosen from those. So one
//! test runs on a hybrid layout (v1 controllers beside a cgroup2 mount)
//! and where cgroup2 is the only cgroup file system (scripts/v2-only.sh),
//! even on a kernel whose controllers are all held by v1 hierarchies but
//! one (hugetlb, here).

use std::path::{Path, PathBuf};

/// The mounts of this mount namespace: (mount point, type, super options).
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
            let (left, right) = line.split_once(" - ")?;
            let dir = left.split_whitespace().nth(4)?;
            let mut f = right.split_whitespace();
            let (kind, _, opts) = (f.next()?, f.next()?, f.next()?);
            kind.starts_with("cgroup")
                .then(|| (PathBuf::from(dir), kind.to_string(), opts.to_string()))
        })
        .collect()
}

/// Where the first cgroup2 hierarchy is mounted.
pub fn v2_mount() -> Option<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .find_map(|(dir, kind, _)| (kind == "cgroup2").then_some(dir))
}

/// Where a v1 hierarchy holding `controller` is mounted.
pub fn v1_mount(controller: &str) -> Option<PathBuf> {
    cgroup_mounts().into_iter().find_map(|(dir, kind, opts)| {
        (kind == "cgroup" && opts.split(',').any(|o| o == controller)).then_some(dir)
    })
}

/// Whether `controller` is on a v1 hierarchy mounted here.
pub fn is_v1(controller: &str) -> bool {
    v1_mount(controller).is_some()
}

/// Where `controller`'s hierarchy is mounted: its v1 hierarchy, else the
/// cgroup2 one.
pub fn mount_of(controller: &str) -> Option<PathBuf> {
    v1_mount(controller).or_else(v2_mount)
}

/// Whether the cgroup2 hierarchy mounted here offers `controller`.
pub fn v2_offers(controller: &str) -> bool {
    v2_mount().is_some_and(|m| v2_controllers(&m).iter().any(|c| c == controller))
}

fn v2_controllers(mount: &Path) -> Vec<String> {
    std::fs::read_to_string(mount.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Make the cgroup `dir` of `controller`'s hierarchy, missing parents
/// too, as the manager would: on cgroup2 with the controller enabled in
/// the `cgroup.subtree_control` of every ancestor from the mount down (a
/// non-root one must hold no process).
pub fn make_cgroup(controller: &str, dir: &Path) {
    let mount = mount_of(controller).expect("the controller's hierarchy");
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(&mount))
        .collect();
    chain.reverse();
    for cg in chain {
        std::fs::create_dir_all(cg).unwrap_or_else(|e| panic!("{}: {e}", cg.display()));
        if is_v1(controller) {
            continue;
        }
        let control = cg.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            if let Err(e) = std::fs::write(&control, format!("+{controller}")) {
                panic!("enable {controller} in {}: {e}", control.display());
            }
        }
    }
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
}

/// Whether the kernel has `controller` bound to a v1 hierarchy, mounted
/// here or not (/proc/cgroups: a hierarchy number other than 0). Such a
/// controller is never offered by cgroup2.
pub fn bound_to_v1(controller: &str) -> bool {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&controller) && f.get(1).is_some_and(|h| *h != "0")
        })
}

/// A controller to place processes in, with a limit to set and read back.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub controller: &'static str,
    /// The limit's key as a `cgroup` stanza names it (the file name
    /// without `CONTROLLER.`); v1 and v2 name some limits differently.
    pub key: &'static str,
    /// Two values the kernel keeps as written.
    pub values: [&'static str; 2],
}

impl Limit {
    /// The limit's file name, as the manager's SetValue names it.
    pub fn file(&self) -> String {
        format!("{}.{}", self.controller, self.key)
    }

    /// Among `preferred`, else pids, memory and hugetlb, the first this
    /// layout offers: on a mounted v1 hierarchy or in the cgroup2 one.
    pub fn offered(preferred: &[&str]) -> Limit {
        Self::choose(preferred, |c| is_v1(c) || v2_offers(c), is_v1)
    }

    /// As `offered`, from what a fresh cgroup2 mount offers (v1 mounts
    /// aside).
    pub fn in_v2(preferred: &[&str]) -> Limit {
        Self::choose(preferred, v2_offers, |_| false)
    }

    fn choose(
        preferred: &[&str],
        offers: impl Fn(&str) -> bool,
        v1: impl Fn(&str) -> bool,
    ) -> Limit {
        preferred
            .iter()
            .chain(&["pids", "memory", "hugetlb"])
            .filter(|c| offers(c))
            .find_map(|c| Self::of(c, v1(c)))
            .unwrap_or_else(|| {
                panic!(
                    "no pids, memory or hugetlb controller in this cgroup layout \
                     (v1 mounts: {:?}; cgroup2 at {:?} offers {:?})",
                    cgroup_mounts(),
                    v2_mount(),
                    v2_mount().map(|m| v2_controllers(&m)).unwrap_or_default()
                )
            })
    }

    fn of(controller: &str, v1: bool) -> Option<Limit> {
        let (controller, key, values) = match (controller, v1) {
            ("pids", _) => ("pids", "max", ["7", "17"]),
            ("memory", true) => ("memory", "limit_in_bytes", ["104857600", "67108864"]),
            ("memory", false) => ("memory", "max", ["104857600", "67108864"]),
            // Limits of 2 MB pages, where the machine has them.
            ("hugetlb", _) if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() => {
                return None
            }
            ("hugetlb", true) => ("hugetlb", "2MB.limit_in_bytes", ["4194304", "8388608"]),
            ("hugetlb", false) => ("hugetlb", "2MB.max", ["4194304", "8388608"]),
            _ => return None,
        };
        Some(Limit {
            controller,
            key,
            values,
        })
    }
}
