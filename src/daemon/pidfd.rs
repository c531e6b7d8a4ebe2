//! Process file descriptors: a handle on one process that stays bound to
//! it after it dies, so a pid the kernel has since given to another
//! process is never signalled by mistake.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Send to the process group led by the process (Linux 6.9).
const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;

/// A pidfd for `pid`. Only race-free while `pid` cannot be reaped by
/// anyone else: our own unreaped child, or a tracee stopped by us.
pub fn open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Descriptors must not leak into jobs.
    // SAFETY: fcntl on our own fd.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(fd)
}

fn send(fd: &OwnedFd, signal: i32, flags: libc::c_uint) -> Result<(), i32> {
    // SAFETY: pidfd_send_signal with a null siginfo (as kill(2) would).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            flags,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// Signal the process `fd` refers to, or with `group` its process group
/// (`pid` is the same process, for the group lookup). ESRCH once the
/// process has died, whatever now holds its pid.
pub fn kill(fd: &OwnedFd, pid: i32, signal: i32, group: bool) -> Result<(), i32> {
    if !group {
        return send(fd, signal, 0);
    }
    // Still ours? (This also pins down `pid` for the lookups below.)
    send(fd, 0, 0)?;
    // SAFETY: plain syscalls.
    let (pgid, own) = unsafe { (libc::getpgid(pid), libc::getpgrp()) };
    // Never our own group (a process that has not left it) and never
    // group 1: that would signal init itself, or as PID 1 every process.
    if pgid <= 1 || pgid == own {
        return send(fd, signal, 0);
    }
    if pgid == pid {
        // The usual case, a group leader: one race-free call where the
        // kernel has it, else kill(2).
        match send(fd, signal, PIDFD_SIGNAL_PROCESS_GROUP) {
            Err(libc::EINVAL) => {}
            other => return other,
        }
    }
    // SAFETY: kill(2).
    if unsafe { libc::kill(-pgid, signal) } < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

/// The process has exited and it is not our child (so waitid will never
/// report it): someone else reaped it or will.
pub fn gone_elsewhere(fd: &OwnedFd) -> bool {
    // SAFETY: waitid on a pidfd; the zeroed siginfo is ours.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if rc == 0 {
            // Our child: exited (reaped by the loop) or still running.
            return false;
        }
        // ECHILD: not our child. Readable then means it has exited.
        std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
    }
}
