//! The manager's operations, one function per D-Bus method, free of
//! D-Bus: resolve the hierarchies, find the caller's base cgroup, check
//! authorisation, act on the filesystem.

use std::path::PathBuf;

use super::auth::Caller;
use super::error::{CgError, Result};
use super::fsops;
use super::layout::{self, Layout, Target};
use super::path::{common_ancestor, file_name, relative_to, RelPath};
use super::reaper::{self, Shared as SharedReaper};

/// State shared by every connection.
pub struct Service {
    pub layout: Layout,
    pub reaper: SharedReaper,
    pub log: slog::Logger,
}

/// Where paths are taken from: the caller's cgroup, or the manager's own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Caller,
    Manager,
}

/// One cgroup a call acts on.
struct Resolved {
    target: Target,
    /// Path within the hierarchy.
    cgroup: String,
    dir: PathBuf,
    /// The base it is relative to, within the hierarchy.
    base: String,
}

fn check_pid(pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(CgError::invalid(format!("bad pid {pid}")));
    }
    Ok(())
}

impl Service {
    fn base_pid(caller: &Caller, base: Base) -> i32 {
        match base {
            Base::Caller => caller.pid,
            Base::Manager => 0,
        }
    }

    /// Resolve `controller` and `path` into cgroups, one per hierarchy.
    fn resolve(
        &self,
        caller: &Caller,
        controller: &str,
        path: &RelPath,
        base: Base,
    ) -> Result<Vec<Resolved>> {
        let members = layout::memberships(Self::base_pid(caller, base))?;
        self.layout
            .resolve(controller)?
            .into_iter()
            .map(|target| {
                let base = target.cgroup_of(&members)?;
                let cgroup = path.under(&base);
                let dir = target.dir(&cgroup)?;
                Ok(Resolved {
                    target,
                    cgroup,
                    dir,
                    base,
                })
            })
            .collect()
    }

    fn resolve_one(
        &self,
        caller: &Caller,
        controller: &str,
        path: &RelPath,
        base: Base,
    ) -> Result<Resolved> {
        let mut all = self.resolve(caller, controller, path, base)?;
        match (all.pop(), all.is_empty()) {
            (Some(one), true) => Ok(one),
            _ => Err(CgError::invalid(format!(
                "controller {controller:?} spans several hierarchies; name one controller"
            ))),
        }
    }

    fn existing(r: &Resolved) -> Result<()> {
        if r.dir.is_dir() {
            Ok(())
        } else {
            Err(CgError::NotFound(format!(
                "cgroup {} does not exist in hierarchy {}",
                r.cgroup,
                r.target.name()
            )))
        }
    }

    pub fn create(&self, caller: &Caller, controller: &str, path: &str) -> Result<i32> {
        let rel = RelPath::relative(path)?;
        if rel.is_base() {
            return Err(CgError::invalid("Create needs a cgroup below the caller's"));
        }
        // Every check in every hierarchy first: a refused call changes
        // nothing anywhere.
        let mut work = Vec::new();
        for r in self.resolve(caller, controller, &rel, Base::Caller)? {
            let base_dir = r.target.dir(&r.base)?;
            let mut levels = Vec::new();
            let mut dir = base_dir.clone();
            for part in rel.parts() {
                dir = dir.join(part);
                levels.push(dir.clone());
            }
            // The deepest existing level decides who may create below it.
            let deepest = levels
                .iter()
                .rev()
                .find(|d| d.is_dir())
                .unwrap_or(&base_dir);
            caller.require_owner(deepest)?;
            let plan = if r.target.is_v2() {
                fsops::plan_v2(&r.target, &r.cgroup)?
            } else {
                Vec::new()
            };
            Self::require_plan(caller, &plan)?;
            work.push((r, levels, plan));
        }
        let mut all_existed = true;
        for (r, levels, plan) in work {
            let mut reaper = reaper::lock(&self.reaper);
            let (existed, created) = fsops::make_dirs(&levels)?;
            for d in &created {
                reaper.created(d);
            }
            drop(reaper);
            if let Err(e) = fsops::apply_v2(&plan) {
                // Leave no cgroup behind from a Create that failed.
                for d in created.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
                return Err(e);
            }
            // Only now: on v2, enabling a controller in the parent is
            // what makes its files in the new cgroup (as the manager's).
            if !caller.is_root() {
                for d in &created {
                    fsops::chown_all(d, caller.uid, caller.gid)?;
                }
            }
            slog::debug!(
                self.log,
                "uid {} created {} in {} (existed: {existed})",
                caller.uid,
                r.cgroup,
                r.target.name()
            );
            all_existed &= existed;
        }
        Ok(if all_existed { 1 } else { -1 })
    }

    /// A caller other than root may enable controllers only where the
    /// kernel would let them: in the `cgroup.subtree_control` files they
    /// may write (those of cgroups still to be made will be theirs).
    fn require_plan(caller: &Caller, plan: &[fsops::Enable]) -> Result<()> {
        for e in plan.iter().filter(|e| e.control.exists()) {
            caller.require_write(&e.control)?;
        }
        Ok(())
    }

    pub fn chown(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        uid: i32,
        gid: i32,
    ) -> Result<()> {
        let rel = RelPath::relative(path)?;
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(CgError::invalid(format!("bad uid/gid {uid}/{gid}")));
        };
        if !caller.is_root() && (uid != caller.uid || gid != caller.gid) {
            return Err(CgError::denied(format!(
                "uid {} may chown cgroups only to itself ({}:{})",
                caller.uid, caller.uid, caller.gid
            )));
        }
        let all = self.resolve(caller, controller, &rel, Base::Caller)?;
        for r in &all {
            Self::existing(r)?;
            caller.require_owner(&r.dir)?;
        }
        for r in &all {
            fsops::chown_cgroup(&r.dir, uid, gid)?;
        }
        Ok(())
    }

    pub fn chmod(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        file: &str,
        mode: i32,
    ) -> Result<()> {
        let rel = RelPath::relative(path)?;
        let mode = u32::try_from(mode)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| CgError::invalid(format!("bad mode {mode}")))?;
        let mut targets = Vec::new();
        for r in self.resolve(caller, controller, &rel, Base::Caller)? {
            Self::existing(&r)?;
            let target = if file.is_empty() {
                r.dir.clone()
            } else {
                r.dir.join(file_name(file)?)
            };
            caller.require_owner(&target)?;
            targets.push(target);
        }
        for target in &targets {
            fsops::chmod(target, mode)?;
        }
        Ok(())
    }

    pub fn move_pid(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        pid: i32,
        base: Base,
    ) -> Result<()> {
        check_pid(pid)?;
        let rel = match base {
            Base::Caller => RelPath::relative(path)?,
            Base::Manager => RelPath::absolute(path)?,
        };
        caller.require_may_move(pid)?;
        let all = self.resolve(caller, controller, &rel, base)?;
        for r in &all {
            Self::existing(r)?;
        }
        if !caller.is_root() {
            let own = layout::memberships(caller.pid)?;
            let victim = layout::memberships(pid)?;
            for r in &all {
                Self::require_movable(caller, r, &own, &victim, pid)?;
            }
        }
        for r in &all {
            let mut reaper = reaper::lock(&self.reaper);
            fsops::move_pid(&r.dir, pid)?;
            reaper.entered(&r.dir);
            drop(reaper);
            slog::debug!(
                self.log,
                "uid {} moved {pid} to {} in {}",
                caller.uid,
                r.cgroup,
                r.target.name()
            );
        }
        Ok(())
    }

    /// What a caller other than root needs to move `pid` to `r`: the
    /// process must be in the caller's own cgroup or below it (whichever
    /// base the destination was named from); the caller must be able to
    /// write the destination's `cgroup.procs`; and on v2, as the kernel
    /// requires, also that of the common ancestor of the process's
    /// cgroup and the destination.
    fn require_movable(
        caller: &Caller,
        r: &Resolved,
        own: &[super::mounts::Membership],
        victim: &[super::mounts::Membership],
        pid: i32,
    ) -> Result<()> {
        let own = r.target.cgroup_of(own)?;
        let from = r.target.cgroup_of(victim)?;
        if relative_to(&from, &own).is_none() {
            return Err(CgError::denied(format!(
                "uid {} may not move process {pid}: it is in {from}, outside the caller's \
                 cgroup {own} in {}",
                caller.uid,
                r.target.name()
            )));
        }
        caller.require_write(&r.dir.join("cgroup.procs"))?;
        if r.target.is_v2() {
            let common = common_ancestor(&from, &r.cgroup);
            caller.require_write(&r.target.dir(&common)?.join("cgroup.procs"))?;
        }
        Ok(())
    }

    pub fn set_value(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let rel = RelPath::relative(path)?;
        let key = file_name(key)?;
        let r = self.resolve_one(caller, controller, &rel, Base::Caller)?;
        Self::existing(&r)?;
        let plan = if r.target.is_v2() && !rel.is_base() {
            fsops::plan_v2(&r.target, &r.cgroup)?
        } else {
            Vec::new()
        };
        let (file, value) = fsops::translate_set(&r.target, key, value)?;
        let file = r.dir.join(file);
        // Checked before anything changes. A file that only enabling
        // the controller makes will be the owner's of the cgroup's own
        // knobs (fsops::apply_v2): theirs to write, or root's alone.
        Self::require_plan(caller, &plan)?;
        if file.exists() || plan.is_empty() {
            caller.require_write(&file)?;
        } else {
            caller.require_write(&r.dir.join("cgroup.max.depth"))?;
        }
        fsops::apply_v2(&plan)?;
        caller.require_write(&file)?;
        fsops::write_file(&file, &value)
    }

    pub fn get_value(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        key: &str,
    ) -> Result<String> {
        let rel = RelPath::relative(path)?;
        let key = file_name(key)?;
        let r = self.resolve_one(caller, controller, &rel, Base::Caller)?;
        Self::existing(&r)?;
        let (file, _) = fsops::translate_set(&r.target, key, "THAWED")?;
        caller.require_read(&r.dir.join(file))?;
        fsops::get_value(&r.target, &r.dir, key)
    }

    /// Removal needs the cgroup and its parent to be the caller's.
    fn require_removable(caller: &Caller, r: &Resolved) -> Result<()> {
        caller.require_owner(&r.dir)?;
        if let Some(parent) = r.dir.parent() {
            caller.require_owner(parent)?;
        }
        Ok(())
    }

    pub fn remove(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        recursive: bool,
    ) -> Result<i32> {
        let rel = RelPath::relative(path)?;
        if rel.is_base() {
            return Err(CgError::invalid(
                "the caller's own cgroup cannot be removed",
            ));
        }
        let mut existed = false;
        let all: Vec<Resolved> = self
            .resolve(caller, controller, &rel, Base::Caller)?
            .into_iter()
            .filter(|r| r.dir.is_dir())
            .collect();
        for r in &all {
            Self::require_removable(caller, r)?;
        }
        for r in all {
            let mut reaper = reaper::lock(&self.reaper);
            fsops::remove(&r.dir, recursive)?;
            reaper.forget(&r.dir);
            existed = true;
        }
        Ok(if existed { 1 } else { -1 })
    }

    pub fn remove_on_empty(&self, caller: &Caller, controller: &str, path: &str) -> Result<()> {
        let rel = RelPath::relative(path)?;
        if rel.is_base() {
            return Err(CgError::invalid(
                "the caller's own cgroup cannot be removed",
            ));
        }
        let all = self.resolve(caller, controller, &rel, Base::Caller)?;
        for r in &all {
            Self::existing(r)?;
            Self::require_removable(caller, r)?;
        }
        for r in &all {
            reaper::lock(&self.reaper).register(&r.dir, r.target.is_v2());
        }
        Ok(())
    }

    /// Mark a subtree remove-on-empty and remove what is empty already.
    pub fn prune(&self, caller: &Caller, controller: &str, path: &str) -> Result<()> {
        let rel = RelPath::relative(path)?;
        // The whole subtree in every hierarchy is checked before any of
        // it is marked.
        let mut work = Vec::new();
        for r in self.resolve(caller, controller, &rel, Base::Caller)? {
            Self::existing(&r)?;
            if !rel.is_base() {
                Self::require_removable(caller, &r)?;
            }
            let mut subtree = Vec::new();
            let mut stack = vec![r.dir.clone()];
            while let Some(dir) = stack.pop() {
                for child in fsops::children(&dir)? {
                    let child = dir.join(child);
                    caller.require_owner(&child)?;
                    subtree.push(child.clone());
                    stack.push(child);
                }
            }
            if !rel.is_base() {
                subtree.push(r.dir.clone());
            }
            work.push((r.target.is_v2(), subtree));
        }
        for (v2, subtree) in work {
            let mut reaper = reaper::lock(&self.reaper);
            for dir in &subtree {
                reaper.register(dir, v2);
                reaper.entered(dir);
            }
            reaper.sweep();
        }
        Ok(())
    }

    pub fn get_tasks(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
        recursive: bool,
    ) -> Result<Vec<i32>> {
        let rel = RelPath::relative(path)?;
        let r = self.resolve_one(caller, controller, &rel, Base::Caller)?;
        Self::existing(&r)?;
        caller.require_read(&r.dir.join("cgroup.procs"))?;
        if recursive {
            fsops::procs_recursive(&r.dir)
        } else {
            fsops::procs(&r.dir)
        }
    }

    pub fn list_children(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
    ) -> Result<Vec<String>> {
        let rel = RelPath::relative(path)?;
        let r = self.resolve_one(caller, controller, &rel, Base::Caller)?;
        Self::existing(&r)?;
        caller.require_read(&r.dir)?;
        fsops::children(&r.dir)
    }

    pub fn list_keys(
        &self,
        caller: &Caller,
        controller: &str,
        path: &str,
    ) -> Result<Vec<(String, u32, u32, u32)>> {
        let rel = RelPath::relative(path)?;
        let r = self.resolve_one(caller, controller, &rel, Base::Caller)?;
        Self::existing(&r)?;
        caller.require_read(&r.dir)?;
        fsops::list_keys(&r.dir)
    }

    /// The cgroup of `pid`, relative to the base (`/` is the base).
    pub fn get_pid_cgroup(
        &self,
        caller: &Caller,
        controller: &str,
        pid: i32,
        base: Base,
    ) -> Result<String> {
        check_pid(pid)?;
        let target = self.layout.resolve_one(controller)?;
        let base_cg = target.cgroup_of(&layout::memberships(Self::base_pid(caller, base))?)?;
        let cg = target.cgroup_of(&layout::memberships(pid)?)?;
        relative_to(&cg, &base_cg).ok_or_else(|| {
            CgError::denied(format!(
                "process {pid} is in {cg}, outside {} of the {}",
                base_cg,
                match base {
                    Base::Caller => "caller",
                    Base::Manager => "manager",
                }
            ))
        })
    }

    pub fn list_controllers(&self) -> Vec<String> {
        self.layout.controllers()
    }
}
