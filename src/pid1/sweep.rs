//! Step 3 of the system stop: signal every process that is left. PID 1
//! (of a machine or a PID namespace) uses `kill(-1)`; anything else may
//! only touch its own descendants, found through `/proc`.

use std::collections::{HashMap, HashSet};

/// Whether `kill(-1)` is ours to use: only PID 1 may signal "everything".
fn is_pid1() -> bool {
    std::process::id() == 1
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
pub fn descendants_outside(keep: &[i32]) -> Vec<i32> {
    let children = children_map();
    let mut kept: HashSet<i32> = keep.iter().copied().collect();
    for &root in keep {
        kept.extend(below(&children, root));
    }
    below(&children, std::process::id() as i32)
        .into_iter()
        .filter(|p| !kept.contains(p))
        .collect()
}

/// Send `sig` (and SIGCONT after SIGTERM, so that a stopped process acts
/// on it) to each of `pids`.
fn signal_each(pids: &[i32], sig: i32) {
    for &pid in pids {
        // SAFETY: kill(2) on a descendant's pid.
        unsafe { libc::kill(pid, sig) };
        if sig == libc::SIGTERM {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// Send `sig` to every descendant outside `keep`'s trees; returns how
/// many.
pub fn signal_outside(sig: i32, keep: &[i32]) -> usize {
    let list = descendants_outside(keep);
    signal_each(&list, sig);
    list.len()
}

/// Whether any descendant is left outside `keep`'s trees (cheaply "no"
/// when we see every exit and have no child at all).
pub fn any_left_outside(keep: &[i32]) -> bool {
    if sees_every_exit() && !any_child() {
        return false;
    }
    !descendants_outside(keep).is_empty()
}

/// Whether the end of every process we may have to wait for reaches us
/// as a SIGCHLD: as PID 1 or a child subreaper, each descendant is
/// re-parented to us when its parent ends, so "no child" is "no
/// descendant", and the last one to end is our child.
pub fn sees_every_exit() -> bool {
    if is_pid1() {
        return true;
    }
    let mut on: libc::c_int = 0;
    // SAFETY: PR_GET_CHILD_SUBREAPER writes one int to the pointer given.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_CHILD_SUBREAPER,
            &mut on as *mut libc::c_int,
            0,
            0,
            0,
        )
    };
    r == 0 && on != 0
}

/// Whether we have any child, exited or not.
fn any_child() -> bool {
    // SAFETY: waitid fills a zeroed siginfo we own; WNOWAIT leaves the
    // child for the normal reaping.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::WSTOPPED;
        let r = libc::waitid(libc::P_ALL, 0, &mut info, flags);
        !(r < 0 && nix::errno::Errno::last() == nix::errno::Errno::ECHILD)
    }
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
pub fn signal_all(sig: i32) -> usize {
    if is_pid1() {
        // SAFETY: kill(2); as PID 1 -1 means every other process in our
        // PID namespace.
        return usize::from(unsafe { libc::kill(-1, sig) } == 0);
    }
    let list = descendants(std::process::id() as i32);
    signal_each(&list, sig);
    list.len()
}

/// Is any process (other than us) still left? When every exit reaches
/// us (PID 1, subreaper), "no child at all" answers it; otherwise look
/// for descendants.
pub fn any_left() -> bool {
    if sees_every_exit() {
        return any_child();
    }
    !descendants(std::process::id() as i32).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

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
