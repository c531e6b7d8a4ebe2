//! Process file descriptors: a handle on one process that stays bound to
//! it after it dies, so a pid the kernel has since given to another
//! process is never signalled by mistake.

use std::os::fd::{AsFd, OwnedFd};

use crate::sys::{Errno, Syscall, WaitFlags, WaitFor};

/// Send to the process group led by the process (Linux 6.9).
const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 1 << 2;

/// A pidfd for `pid`. Only race-free while `pid` cannot be reaped by
/// anyone else: our own unreaped child, or a tracee stopped by us.
pub fn open(sys: &dyn Syscall, pid: i32) -> Option<OwnedFd> {
    sys.pidfd_open(pid).ok()
}

fn send(sys: &dyn Syscall, fd: &OwnedFd, signal: i32, flags: u32) -> Result<(), i32> {
    sys.pidfd_send_signal(fd.as_fd(), signal, flags)
        .map_err(|e| e as i32)
}

/// Signal the process `fd` refers to, or with `group` its process group
/// (`pid` is the same process, for the group lookup). ESRCH once the
/// process has died, whatever now holds its pid.
pub fn kill(
    sys: &dyn Syscall,
    fd: &OwnedFd,
    pid: i32,
    signal: i32,
    group: bool,
) -> Result<(), i32> {
    if !group {
        return send(sys, fd, signal, 0);
    }
    // Still ours? (This also pins down `pid` for the lookups below.)
    send(sys, fd, 0, 0)?;
    let pgid = sys.getpgid(pid).unwrap_or(-1);
    // Never our own group (a process that has not left it) and never
    // group 1: that would signal init itself, or as PID 1 every process.
    if pgid <= 1 || pgid == sys.getpgrp() {
        return send(sys, fd, signal, 0);
    }
    if pgid == pid {
        // The usual case, a group leader: one race-free call where the
        // kernel has it, else kill(2).
        match send(sys, fd, signal, PIDFD_SIGNAL_PROCESS_GROUP) {
            Err(libc::EINVAL) => {}
            other => return other,
        }
    }
    sys.kill(-pgid, signal).map_err(|e| e as i32)
}

/// The process has exited and it is not our child (so waitid will never
/// report it): someone else reaped it or will.
pub fn gone_elsewhere(sys: &dyn Syscall, fd: &OwnedFd) -> bool {
    let keep = WaitFlags {
        stops: false,
        keep: true,
    };
    // Our child: exited (reaped by the loop) or still running. ECHILD:
    // not our child, and readable then means it has exited.
    matches!(
        sys.wait(WaitFor::Process(fd.as_fd()), keep),
        Err(Errno::ECHILD)
    )
}
