//! Operations on the cgroup filesystems. Everything here acts as the
//! manager (root); authorisation happens before.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::{CgError, Result};
use super::layout::Target;

/// Files a delegated cgroup's owner needs (cgroup v1 `tasks`, v2
/// delegation per the kernel's cgroup-v2 document).
const DELEGATE_FILES: &[&str] = &[
    "tasks",
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
];

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Write `value` to a cgroup file in one write(2), as the kernel wants.
pub fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| CgError::io(format!("opening {}", show(path)), e))?;
    f.write_all(value.as_bytes())
        .map_err(|e| CgError::io(format!("writing {value:?} to {}", show(path)), e))
}

pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgError::io(format!("reading {}", show(path)), e))
}

/// The processes listed in a cgroup's `cgroup.procs`.
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    Ok(read_file(&dir.join("cgroup.procs"))?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Names of the child cgroups of a cgroup, sorted.
pub fn children(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| CgError::io(format!("listing {}", show(dir)), e))?;
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Processes of a cgroup and all its descendants.
pub fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut out = procs(dir)?;
    for child in children(dir)? {
        // A child removed meanwhile simply has no processes.
        match procs_recursive(&dir.join(&child)) {
            Ok(p) => out.extend(p),
            Err(CgError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Whether a cgroup has processes anywhere in its subtree, or children.
pub fn in_use(dir: &Path, v2: bool) -> bool {
    if !children(dir).map(|c| c.is_empty()).unwrap_or(true) {
        return true;
    }
    if v2 {
        if let Ok(events) = std::fs::read_to_string(dir.join("cgroup.events")) {
            return events.lines().any(|l| l == "populated 1");
        }
    }
    !procs(dir).map(|p| p.is_empty()).unwrap_or(true)
}

/// Make the cgroup dirs `levels` (outermost first) that are missing.
/// Returns whether the last one already existed and the dirs created.
pub fn make_dirs(levels: &[PathBuf]) -> Result<(bool, Vec<PathBuf>)> {
    let mut created = Vec::new();
    for dir in levels {
        match std::fs::create_dir(dir) {
            Ok(()) => created.push(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgError::io(format!("creating cgroup {}", show(dir)), e)),
        }
    }
    Ok((created.is_empty(), created))
}

fn chown_path(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| CgError::io(format!("chown {}", show(path)), e))
}

/// Delegate a cgroup: its directory and the files needed to manage
/// membership and children.
pub fn chown_cgroup(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    chown_path(dir, uid, gid)?;
    for f in DELEGATE_FILES {
        let p = dir.join(f);
        if p.exists() {
            chown_path(&p, uid, gid)?;
        }
    }
    Ok(())
}

/// Give a new cgroup, all its files included, to the user who made it.
pub fn chown_all(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    chown_path(dir, uid, gid)?;
    let entries =
        std::fs::read_dir(dir).map_err(|e| CgError::io(format!("listing {}", show(dir)), e))?;
    for entry in entries.flatten() {
        chown_path(&entry.path(), uid, gid)?;
    }
    Ok(())
}

pub fn chmod(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| CgError::io(format!("chmod {}", show(path)), e))
}

pub fn move_pid(dir: &Path, pid: i32) -> Result<()> {
    write_file(&dir.join("cgroup.procs"), &pid.to_string())
}

/// Remove a cgroup (its empty descendants first when `recursive`).
pub fn remove(dir: &Path, recursive: bool) -> Result<()> {
    if recursive {
        for child in children(dir)? {
            remove(&dir.join(child), true)?;
        }
    }
    let mut tries = 0;
    loop {
        let e = match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let busy = matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY));
        if !busy {
            return Err(CgError::io(format!("removing cgroup {}", show(dir)), e));
        }
        let why = if !children(dir)?.is_empty() {
            "it has child cgroups"
        } else if !procs(dir)?.is_empty() {
            "it still has processes"
        } else if tries < 50 {
            // v1 takes a moment to let go of a child just removed; its
            // parent answers EBUSY meanwhile.
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        } else {
            "it is busy"
        };
        return Err(CgError::Io {
            what: format!("removing cgroup {}: {why}", show(dir)),
            source: e,
        });
    }
}

/// Whether a v2 cgroup directory is the real root of the hierarchy (the
/// root alone may hold processes and enable controllers).
fn is_v2_root(dir: &Path) -> bool {
    !dir.join("cgroup.type").exists()
}

/// One `+CONTROLLER` write to an ancestor's `cgroup.subtree_control`.
#[derive(Debug)]
pub struct Enable {
    /// The ancestor's `cgroup.subtree_control`.
    pub control: PathBuf,
    pub ctrl: String,
}

/// The writes to `cgroup.subtree_control` of the cgroups from the
/// mounted root down to the parent of `cgroup` that make
/// `target.enable` reach it, checked but not made (so that a caller's
/// right to make them can be checked first). Ancestors that do not exist
/// yet (a `Create` is about to make them) are planned without checks. A
/// cgroup that has processes of its own (other than the root) is never
/// given controllers: v2 forbids it, and the manager will not move
/// anyone out behind their back.
pub fn plan_v2(target: &Target, cgroup: &str) -> Result<Vec<Enable>> {
    let mut plan = Vec::new();
    if target.enable.is_empty() {
        return Ok(plan);
    }
    let root = target.mount.root.trim_end_matches('/');
    let Some(rest) = super::path::relative_to(cgroup, &target.mount.root) else {
        return Err(CgError::NotFound(format!(
            "cgroup {cgroup} is outside the mounted hierarchy"
        )));
    };
    let top = target.dir(if root.is_empty() { "/" } else { root })?;
    let mut ancestors = vec![top.clone()];
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let mut dir = top;
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        dir = dir.join(part);
        ancestors.push(dir.clone());
    }
    for ctrl in &target.enable {
        // Once one ancestor lacks the controller, every one below it does.
        let mut missing = false;
        for a in &ancestors {
            let control = a.join("cgroup.subtree_control");
            if !a.is_dir() {
                plan.push(Enable {
                    control,
                    ctrl: ctrl.clone(),
                });
                continue;
            }
            if !missing {
                if read_file(&control)?.split_whitespace().any(|c| c == ctrl) {
                    continue;
                }
                let available = read_file(&a.join("cgroup.controllers"))?;
                if !available.split_whitespace().any(|c| c == ctrl) {
                    return Err(CgError::UnknownController(format!(
                        "controller {ctrl} is not available in {}",
                        show(a)
                    )));
                }
                missing = true;
            }
            if !is_v2_root(a) && !procs(a)?.is_empty() {
                return Err(CgError::Io {
                    what: format!(
                        "cannot enable {ctrl} below {}: that cgroup has processes of its own \
                         (cgroup v2 allows controllers only below cgroups without processes)",
                        show(a)
                    ),
                    source: std::io::Error::from_raw_os_error(libc::EBUSY),
                });
            }
            plan.push(Enable {
                control,
                ctrl: ctrl.clone(),
            });
        }
    }
    Ok(plan)
}

/// Make the writes of a plan, top down.
pub fn apply_v2(plan: &[Enable]) -> Result<()> {
    for e in plan {
        write_file(&e.control, &format!("+{}", e.ctrl))?;
        if let Some(parent) = e.control.parent() {
            give_controller_files(parent, &e.ctrl)?;
        }
    }
    Ok(())
}

/// Enabling a controller in `parent` makes its files in every child as
/// the manager's (root's). Give each child's to the owner of that child's
/// own knobs (`cgroup.max.depth`, never delegated): the user who made the
/// child keeps all of it, while a cgroup only delegated keeps root's.
fn give_controller_files(parent: &Path, ctrl: &str) -> Result<()> {
    let prefix = format!("{ctrl}.");
    for child in children(parent)? {
        let dir = parent.join(child);
        // A child removed meanwhile has nothing to give.
        let Ok(knobs) = std::fs::metadata(dir.join("cgroup.max.depth")) else {
            continue;
        };
        if knobs.uid() == 0 && knobs.gid() == 0 {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                match chown_path(&entry.path(), knobs.uid(), knobs.gid()) {
                    Ok(()) | Err(CgError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// The file and value a key/value pair really means on this hierarchy:
/// on v2 the freezer is `cgroup.freeze`.
pub fn translate_set(target: &Target, key: &str, value: &str) -> Result<(String, String)> {
    if target.is_v2() && key == "freezer.state" {
        let v = match value.trim() {
            "FROZEN" => "1",
            "THAWED" => "0",
            other => {
                return Err(CgError::invalid(format!(
                    "freezer.state must be FROZEN or THAWED, not {other:?}"
                )))
            }
        };
        return Ok(("cgroup.freeze".into(), v.into()));
    }
    Ok((key.into(), value.into()))
}

/// Read a key, mapping `freezer.state` onto v2's freezer.
pub fn get_value(target: &Target, dir: &Path, key: &str) -> Result<String> {
    if target.is_v2() && key == "freezer.state" {
        let events = read_file(&dir.join("cgroup.events"))?;
        let frozen = events.lines().any(|l| l == "frozen 1");
        let want = read_file(&dir.join("cgroup.freeze"))?.trim() == "1";
        return Ok(match (want, frozen) {
            (_, true) => "FROZEN",
            (true, false) => "FREEZING",
            (false, false) => "THAWED",
        }
        .into());
    }
    let text = read_file(&dir.join(key))?;
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

/// Name, owner, group and mode of every file of a cgroup.
pub fn list_keys(dir: &Path) -> Result<Vec<(String, u32, u32, u32)>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| CgError::io(format!("listing {}", show(dir)), e))?;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777,
            ));
        }
    }
    out.sort();
    Ok(out)
}
