//! The mounted hierarchies and how controller names map onto them
//! (extensions.md §1): v1 hierarchies carry their own controllers, the v2
//! tree carries the rest.

use std::path::{Path, PathBuf};

use super::error::{CgError, Result};
use super::mounts::{self, Membership, Mount};

/// Controllers the v2 tree can carry, by their v2 names.
const V2_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuset", "io", "pids", "hugetlb", "rdma", "misc",
];

/// One hierarchy a call acts on, with what it needs there.
#[derive(Debug, Clone)]
pub struct Target {
    pub mount: Mount,
    /// v2 only: controllers to enable in the ancestors' subtree_control.
    pub enable: Vec<String>,
    /// v2 only: `freezer` was asked for (cgroup.freeze).
    pub freezer: bool,
}

impl Target {
    pub fn is_v2(&self) -> bool {
        self.mount.v1.is_none()
    }

    /// The directory of a cgroup (a hierarchy path) under this mount.
    pub fn dir(&self, cgroup: &str) -> Result<PathBuf> {
        let rel = super::path::relative_to(cgroup, &self.mount.root).ok_or_else(|| {
            CgError::NotFound(format!(
                "cgroup {cgroup} is outside the mounted part ({}) of its hierarchy",
                self.mount.root
            ))
        })?;
        let rel = rel.trim_start_matches('/');
        Ok(if rel.is_empty() {
            self.mount.dir.clone()
        } else {
            self.mount.dir.join(rel)
        })
    }

    /// The cgroup of a process in this hierarchy.
    pub fn cgroup_of(&self, memberships: &[Membership]) -> Result<String> {
        mounts::path_in(&self.mount, memberships)
            .map(str::to_string)
            .ok_or_else(|| CgError::NotFound("process is in no cgroup of this hierarchy".into()))
    }

    /// A short name for messages.
    pub fn name(&self) -> String {
        match &self.mount.v1 {
            Some(c) => c.join(","),
            None => "unified".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub mounts: Vec<Mount>,
}

impl Layout {
    /// The hierarchies mounted in our mount namespace.
    pub fn discover() -> std::io::Result<Layout> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")?;
        Ok(Layout {
            mounts: mounts::parse_mountinfo(&text),
        })
    }

    fn v1_with(&self, ctrl: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .find(|m| m.v1.as_ref().is_some_and(|c| c.iter().any(|x| x == ctrl)))
    }

    fn v2(&self) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.v1.is_none())
    }

    /// Controllers the v2 tree offers at its mounted root.
    fn v2_available(mount: &Mount) -> Vec<String> {
        std::fs::read_to_string(mount.dir.join("cgroup.controllers"))
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Which hierarchies a controller list (`memory`, `cpu,pids`, `all`,
    /// `name=systemd`) means.
    pub fn resolve(&self, spec: &str) -> Result<Vec<Target>> {
        if spec.is_empty() {
            return Err(CgError::invalid("empty controller name"));
        }
        let mut targets: Vec<Target> = Vec::new();
        let mut add = |mount: &Mount, enable: Option<String>, freezer: bool| {
            let i = match targets.iter().position(|t| t.mount == *mount) {
                Some(i) => i,
                None => {
                    targets.push(Target {
                        mount: mount.clone(),
                        enable: Vec::new(),
                        freezer: false,
                    });
                    targets.len() - 1
                }
            };
            if let Some(t) = targets.get_mut(i) {
                if let Some(c) = enable {
                    if !t.enable.contains(&c) {
                        t.enable.push(c);
                    }
                }
                t.freezer |= freezer;
            }
        };
        for name in spec.split(',') {
            if name == "all" {
                for m in &self.mounts {
                    add(m, None, false);
                }
                continue;
            }
            if name.is_empty() {
                return Err(CgError::invalid(format!("bad controller list {spec:?}")));
            }
            // v1 first: a controller bound to a v1 hierarchy is not on v2.
            let v1_name = if name == "io" { "blkio" } else { name };
            if let Some(m) = self.v1_with(v1_name) {
                add(m, None, false);
                continue;
            }
            if !name.starts_with("name=") {
                if let Some(m) = self.v2() {
                    match name {
                        "freezer" => {
                            add(m, None, true);
                            continue;
                        }
                        "devices" => {
                            return Err(CgError::NotSupported(
                                "the devices controller is not available on cgroup v2 \
                                 (it needs eBPF programs, which this manager does not load)"
                                    .into(),
                            ))
                        }
                        _ => {}
                    }
                    let v2_name = match name {
                        "blkio" => "io",
                        "cpuacct" => "cpu",
                        other => other,
                    };
                    if V2_CONTROLLERS.contains(&v2_name) {
                        if !Self::v2_available(m).iter().any(|c| c == v2_name) {
                            return Err(CgError::UnknownController(format!(
                                "controller {name} is not available in the cgroup v2 tree at {}",
                                m.dir.display()
                            )));
                        }
                        add(m, Some(v2_name.to_string()), false);
                        continue;
                    }
                }
                // A named v1 hierarchy may be given without `name=`.
                if let Some(m) = self.v1_with(&format!("name={name}")) {
                    add(m, None, false);
                    continue;
                }
            }
            return Err(CgError::UnknownController(format!(
                "unknown controller {name:?}: no mounted hierarchy carries it"
            )));
        }
        Ok(targets)
    }

    /// Exactly one hierarchy (for calls on one file or one listing).
    pub fn resolve_one(&self, spec: &str) -> Result<Target> {
        let mut t = self.resolve(spec)?;
        match (t.pop(), t.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(CgError::invalid(format!(
                "controller {spec:?} spans several hierarchies; name one controller"
            ))),
        }
    }

    /// Every controller name a client may use, in mount order.
    pub fn controllers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.mounts {
            match &m.v1 {
                Some(c) => out.extend(c.iter().cloned()),
                None => {
                    for c in Self::v2_available(m) {
                        let bound = if c == "io" { "blkio" } else { c.as_str() };
                        if self.v1_with(bound).is_none() && !out.contains(&c) {
                            out.push(c);
                        }
                    }
                    if self.v1_with("freezer").is_none() {
                        out.push("freezer".into());
                    }
                }
            }
        }
        out
    }
}

/// Read a process's /proc/PID/cgroup.
pub fn memberships(pid: i32) -> Result<Vec<Membership>> {
    let path = if pid == 0 {
        Path::new("/proc/self/cgroup").to_path_buf()
    } else {
        PathBuf::from(format!("/proc/{pid}/cgroup"))
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CgError::io(format!("process {pid}: reading its cgroups"), e))?;
    Ok(mounts::parse_proc_cgroup(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            mounts: mounts::parse_mountinfo(
                "1 0 0:1 / /cg/cpu rw - cgroup cgroup rw,cpu,cpuacct\n\
                 2 0 0:2 / /cg/blkio rw - cgroup cgroup rw,blkio\n\
                 3 0 0:3 / /cg/systemd rw - cgroup cgroup rw,name=systemd\n\
                 4 0 0:4 / /nonexistent/unified rw - cgroup2 cgroup2 rw\n",
            ),
        }
    }

    #[test]
    fn v1_first_and_aliases() {
        let l = layout();
        let t = l.resolve("cpuacct,cpu").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name(), "cpu,cpuacct");
        assert_eq!(l.resolve_one("io").unwrap().name(), "blkio");
        assert_eq!(l.resolve_one("systemd").unwrap().name(), "name=systemd");
        assert_eq!(
            l.resolve_one("name=systemd").unwrap().name(),
            "name=systemd"
        );
        assert_eq!(l.resolve("all").unwrap().len(), 4);
    }

    #[test]
    fn v2_rules() {
        let l = layout();
        let f = l.resolve_one("freezer").unwrap();
        assert!(f.is_v2() && f.freezer);
        assert!(matches!(
            l.resolve("devices"),
            Err(CgError::NotSupported(_))
        ));
        // memory is a v2 controller, but this tree offers none.
        assert!(matches!(
            l.resolve("memory"),
            Err(CgError::UnknownController(_))
        ));
        assert!(matches!(
            l.resolve("bogus"),
            Err(CgError::UnknownController(_))
        ));
        assert!(l.resolve("").is_err());
        assert!(l.resolve("cpu,").is_err());
    }

    #[test]
    fn dirs_under_the_mount_root() {
        let mut t = layout().resolve_one("cpu").unwrap();
        assert_eq!(t.dir("/a/b").unwrap(), PathBuf::from("/cg/cpu/a/b"));
        assert_eq!(t.dir("/").unwrap(), PathBuf::from("/cg/cpu"));
        t.mount.root = "/sub".into();
        assert_eq!(t.dir("/sub/x").unwrap(), PathBuf::from("/cg/cpu/x"));
        assert!(t.dir("/other").is_err());
    }
}
