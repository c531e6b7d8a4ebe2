//! Step 3 of the system stop: signal every process that is left. PID 1
//! (of a machine or a PID namespace) uses `kill(-1)`; anything else may
//! only touch its own descendants, found through `/proc`.

use std::collections::{HashMap, HashSet};

use crate::sys::{Errno, Syscall, WaitFlags, WaitFor};

/// Whether `kill(-1)` is ours to use: only PID 1 may signal "everything".
fn is_pid1(sys: &dyn Syscall) -> bool {
    sys.getpid() == 1
}

/// Every live process's children, by parent links in `/proc`.
fn children_map() -> HashMap<i32, Vec<i32>> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in pids() {
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    children
}

/// The descendants of `root` in `children`.
fn below(children: &HashMap<i32, Vec<i32>>, root: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if seen.insert(c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// Every live descendant of `root` (by parent links in `/proc`).
pub fn descendants(root: i32) -> Vec<i32> {
    below(&children_map(), root)
}

/// Our descendants that are neither one of `keep` nor below one of them
/// (run mode: what the command left behind, `keep` being the jobs'
/// processes).
pub fn descendants_outside(sys: &dyn Syscall, keep: &[i32]) -> Vec<i32> {
    let children = children_map();
    let mut kept: HashSet<i32> = keep.iter().copied().collect();
    for &root in keep {
        kept.extend(below(&children, root));
    }
    below(&children, sys.getpid())
        .into_iter()
        .filter(|p| !kept.contains(p))
        .collect()
}

/// Send `sig` (and SIGCONT after SIGTERM, so that a stopped process acts
/// on it) to each of `pids`.
fn signal_each(sys: &dyn Syscall, pids: &[i32], sig: i32) {
    for &pid in pids {
        let _ = sys.kill(pid, sig);
        if sig == libc::SIGTERM {
            let _ = sys.kill(pid, libc::SIGCONT);
        }
    }
}

/// Send `sig` to every descendant outside `keep`'s trees; returns how
/// many.
pub fn signal_outside(sys: &dyn Syscall, sig: i32, keep: &[i32]) -> usize {
    let list = descendants_outside(sys, keep);
    signal_each(sys, &list, sig);
    list.len()
}

/// Whether any descendant is left outside `keep`'s trees (cheaply "no"
/// when we see every exit and have no child at all).
pub fn any_left_outside(sys: &dyn Syscall, keep: &[i32]) -> bool {
    if sees_every_exit(sys) && !any_child(sys) {
        return false;
    }
    !descendants_outside(sys, keep).is_empty()
}

/// Whether the end of every process we may have to wait for reaches us
/// as a SIGCHLD: as PID 1 or a child subreaper, each descendant is
/// re-parented to us when its parent ends, so "no child" is "no
/// descendant", and the last one to end is our child.
pub fn sees_every_exit(sys: &dyn Syscall) -> bool {
    is_pid1(sys) || sys.is_child_subreaper().unwrap_or(false)
}

/// Whether we have any child, exited or not.
fn any_child(sys: &dyn Syscall) -> bool {
    // WNOWAIT leaves the child for the normal reaping.
    let look = WaitFlags {
        stops: true,
        keep: true,
    };
    !matches!(sys.wait(WaitFor::Any, look), Err(Errno::ECHILD))
}

/// Every pid listed in `/proc` (empty when it cannot be read).
pub fn pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// The parent pid from `/proc/PID/stat` (the field after the `)` that
/// closes the command name, which may itself contain spaces or parens).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Send `sig` to every remaining process: `kill(-1)` as PID 1, else each
/// descendant of this process. Returns how many were signalled (as PID 1:
/// whether any was).
pub fn signal_all(sys: &dyn Syscall, sig: i32) -> usize {
    if is_pid1(sys) {
        // As PID 1, -1 means every other process in our PID namespace.
        return usize::from(sys.kill(-1, sig).is_ok());
    }
    let list = descendants(sys.getpid());
    signal_each(sys, &list, sig);
    list.len()
}

/// Is any process (other than us) still left? When every exit reaches
/// us (PID 1, subreaper), "no child at all" answers it; otherwise look
/// for descendants.
pub fn any_left(sys: &dyn Syscall) -> bool {
    if sees_every_exit(sys) {
        return any_child(sys);
    }
    !descendants(sys.getpid()).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{Call, FakeSyscall};

    #[test]
    fn pid1_signals_everything_with_one_call() {
        let fake = FakeSyscall::new(1);
        assert_eq!(signal_all(&fake, libc::SIGTERM), 1);
        assert_eq!(fake.calls(), [Call::Kill(-1, libc::SIGTERM)]);
        // No child at all: nothing is left.
        assert!(!any_left(&fake));
    }

    #[test]
    fn elsewhere_only_descendants_are_signalled() {
        // No process in /proc has this parent.
        let fake = FakeSyscall::new(i32::MAX);
        assert_eq!(signal_all(&fake, libc::SIGKILL), 0);
        assert!(fake.calls().is_empty());
        assert!(!any_left(&fake));
    }

    #[test]
    fn finds_grandchildren() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & wait"])
            .spawn()
            .expect("sh");
        let me = std::process::id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let found = loop {
            let d = descendants(me);
            if d.len() >= 2 || std::time::Instant::now() > deadline {
                break d;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        assert!(found.len() >= 2, "{found:?}");
        for p in found {
            // SAFETY: kill(2) on our own descendants.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        let _ = child.wait();
    }
}
