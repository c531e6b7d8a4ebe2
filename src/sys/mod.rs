//! The system calls the daemon makes about processes and descriptors,
//! behind one trait ([`Syscall`]): [`LinuxSyscall`] makes them, and in
//! unit tests a recording fake stands in for the kernel, so the loop's
//! orderings (an exit seen before a status pipe closes, `EAGAIN` from
//! `clone`, a pid reused) can be played without processes.
//!
//! The trait is for the parent side only. The vfork child
//! (`spawn/child.rs`) and the exec'd spawn helper stay raw: between clone
//! and exec nothing may allocate or lock, and a trait object is no help
//! there. What remains raw elsewhere is listed in docs/ARCHITECTURE.md.
//!
//! Every wait is `WNOHANG`: PID 1's loop never blocks (principle 1).

mod linux;

#[cfg(test)]
pub mod fake;

pub use linux::LinuxSyscall;

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

pub use nix::errno::Errno;

use crate::spawn::Prepared;

/// Whose state change `wait` asks about.
#[derive(Debug, Clone, Copy)]
pub enum WaitFor<'a> {
    /// Any child (`P_ALL`).
    Any,
    /// The process a pidfd refers to (`P_PIDFD`).
    Process(BorrowedFd<'a>),
}

/// Which changes `wait` reports besides exits, and whether it reaps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitFlags {
    /// Also report stops and ptrace traps (`WSTOPPED`).
    pub stops: bool,
    /// Leave the child a zombie, to be reaped later (`WNOWAIT`).
    pub keep: bool,
}

/// What happened to a child (`siginfo_t`'s `si_code` and `si_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Exited with this status (`CLD_EXITED`).
    Exited(i32),
    /// Killed by this signal, with or without a core (`CLD_KILLED`,
    /// `CLD_DUMPED`).
    Killed(i32),
    /// Stopped by this signal (`CLD_STOPPED`).
    Stopped(i32),
    /// A ptrace stop: the signal in the low byte, a ptrace event above it
    /// (`CLD_TRAPPED`).
    Trapped(i32),
    /// Continued, or anything else the kernel may add.
    Other,
}

/// One child's state change, as `wait` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildEvent {
    pub pid: i32,
    pub state: ChildState,
}

/// The kernel, as far as the daemon's parent side speaks to it. Errors are
/// the call's errno.
pub trait Syscall {
    /// This process's pid.
    fn getpid(&self) -> i32;
    /// This process's process group.
    fn getpgrp(&self) -> i32;
    /// The process group of `pid`.
    fn getpgid(&self, pid: i32) -> Result<i32, Errno>;
    /// kill(2): `pid` may be negative (a group) or -1 (every process).
    fn kill(&self, pid: i32, signal: i32) -> Result<(), Errno>;
    /// Start the child `prepared` describes (`spawn::fork_child`): its pid.
    fn spawn(&self, prepared: &Prepared) -> Result<i32, Errno>;
    /// waitid(2) with `WEXITED | WNOHANG`: `None` when no child has
    /// changed state, `ECHILD` when there is no child to wait for.
    fn wait(&self, of: WaitFor<'_>, flags: WaitFlags) -> Result<Option<ChildEvent>, Errno>;
    /// A close-on-exec, non-blocking pidfd for `pid`.
    fn pidfd_open(&self, pid: i32) -> Result<OwnedFd, Errno>;
    /// pidfd_send_signal(2) with no siginfo (as kill(2) would send it).
    fn pidfd_send_signal(&self, fd: BorrowedFd<'_>, signal: i32, flags: u32) -> Result<(), Errno>;
    /// `PTRACE_SETOPTIONS`.
    fn ptrace_setoptions(&self, pid: i32, options: i32) -> Result<(), Errno>;
    /// `PTRACE_CONT`, delivering `signal` (0 for none).
    fn ptrace_cont(&self, pid: i32, signal: i32) -> Result<(), Errno>;
    /// `PTRACE_DETACH`.
    fn ptrace_detach(&self, pid: i32) -> Result<(), Errno>;
    /// `PTRACE_GETEVENTMSG`: for a fork event, the new child's pid.
    fn ptrace_geteventmsg(&self, pid: i32) -> Result<u64, Errno>;
    /// Set or clear `FD_CLOEXEC` (descriptors handed over or inherited
    /// across exec are known by number only).
    fn set_cloexec(&self, fd: RawFd, on: bool) -> Result<(), Errno>;
    /// Add `O_NONBLOCK`.
    fn set_nonblocking(&self, fd: RawFd) -> Result<(), Errno>;
    /// `PR_SET_CHILD_SUBREAPER`: orphans of our descendants come to us.
    fn set_child_subreaper(&self) -> Result<(), Errno>;
    /// `PR_GET_CHILD_SUBREAPER`: whether they do.
    fn is_child_subreaper(&self) -> Result<bool, Errno>;
}
