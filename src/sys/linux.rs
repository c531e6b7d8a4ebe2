//! The real system calls. Where nix has a safe wrapper that takes what
//! the daemon has (any signal number, a bare descriptor number), it is
//! used; the rest are raw, each `unsafe` block here and nowhere else.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::{ChildEvent, ChildState, Syscall, WaitFlags, WaitFor};
use crate::spawn::Prepared;

/// The kernel itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

/// A raw call's result: the errno when it returned a negative value.
fn check(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

impl Syscall for LinuxSyscall {
    fn getpid(&self) -> i32 {
        nix::unistd::getpid().as_raw()
    }

    fn getpgrp(&self) -> i32 {
        nix::unistd::getpgrp().as_raw()
    }

    fn getpgid(&self, pid: i32) -> Result<i32, Errno> {
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid))).map(|p| p.as_raw())
    }

    fn kill(&self, pid: i32, signal: i32) -> Result<(), Errno> {
        // nix's kill takes only the signals it names; a job may ask for a
        // real-time one.
        // SAFETY: kill(2) with integer arguments.
        check(unsafe { libc::kill(pid, signal) }.into()).map(drop)
    }

    fn spawn(&self, prepared: &Prepared) -> Result<i32, Errno> {
        // SAFETY: between clone and exec the child uses only `prepared`,
        // built before the call, its own stack and errno (see
        // `fork_child`).
        unsafe { crate::spawn::fork_child(prepared) }.map_err(Errno::from_raw)
    }

    fn wait(&self, of: WaitFor<'_>, flags: WaitFlags) -> Result<Option<ChildEvent>, Errno> {
        // Raw waitid: nix's does not tell a plain stop from a ptrace trap.
        let (idtype, id) = match of {
            WaitFor::Any => (libc::P_ALL, 0),
            WaitFor::Process(fd) => (libc::P_PIDFD, fd.as_raw_fd() as libc::id_t),
        };
        let mut options = libc::WEXITED | libc::WNOHANG;
        if flags.stops {
            options |= libc::WSTOPPED;
        }
        if flags.keep {
            options |= libc::WNOWAIT;
        }
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid fills the siginfo we own.
        check(unsafe { libc::waitid(idtype, id, &mut info, options) }.into())?;
        // SAFETY: after a successful waitid the child fields are set (all
        // zero when WNOHANG found nothing).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let state = match info.si_code {
            libc::CLD_EXITED => ChildState::Exited(status),
            libc::CLD_KILLED | libc::CLD_DUMPED => ChildState::Killed(status),
            libc::CLD_STOPPED => ChildState::Stopped(status),
            libc::CLD_TRAPPED => ChildState::Trapped(status),
            _ => ChildState::Other,
        };
        Ok(Some(ChildEvent { pid, state }))
    }

    fn pidfd_open(&self, pid: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) })?;
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // Descriptors must not leak into jobs.
        self.set_cloexec(fd.as_raw_fd(), true)?;
        Ok(fd)
    }

    fn pidfd_send_signal(&self, fd: BorrowedFd<'_>, signal: i32, flags: u32) -> Result<(), Errno> {
        // SAFETY: pidfd_send_signal with a null siginfo (as kill(2) would).
        check(unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                flags,
            )
        })
        .map(drop)
    }

    fn ptrace_setoptions(&self, pid: i32, options: i32) -> Result<(), Errno> {
        // SAFETY: ptrace on a tracee of ours, integer arguments.
        check(unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as libc::c_long) })
            .map(drop)
    }

    fn ptrace_cont(&self, pid: i32, signal: i32) -> Result<(), Errno> {
        // nix's cont takes only the signals it names.
        // SAFETY: as above.
        check(unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, signal as libc::c_long) }).map(drop)
    }

    fn ptrace_detach(&self, pid: i32) -> Result<(), Errno> {
        // SAFETY: as above.
        check(unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) }).map(drop)
    }

    fn ptrace_geteventmsg(&self, pid: i32) -> Result<u64, Errno> {
        let mut msg: libc::c_ulong = 0;
        // SAFETY: GETEVENTMSG writes one c_ulong into `msg`.
        check(unsafe {
            libc::ptrace(
                libc::PTRACE_GETEVENTMSG,
                pid,
                0,
                &mut msg as *mut libc::c_ulong,
            )
        })?;
        Ok(msg)
    }

    fn set_cloexec(&self, fd: RawFd, on: bool) -> Result<(), Errno> {
        let flags = if on { libc::FD_CLOEXEC } else { 0 };
        // SAFETY: fcntl on a descriptor number; a stale one gives EBADF.
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }.into()).map(drop)
    }

    fn set_nonblocking(&self, fd: RawFd) -> Result<(), Errno> {
        // SAFETY: as above.
        let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }.into())?;
        // SAFETY: as above.
        check(
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags as libc::c_int | libc::O_NONBLOCK) }
                .into(),
        )
        .map(drop)
    }

    fn set_child_subreaper(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_child_subreaper(true)
    }

    fn is_child_subreaper(&self) -> Result<bool, Errno> {
        nix::sys::prctl::get_child_subreaper()
    }
}
