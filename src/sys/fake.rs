//! A recording stand-in for the kernel, for unit tests of the loop: it
//! keeps a list of every call, hands out pids (or the errors a test
//! scripts), and reports exits only when the test says a process ended.
//!
//! Each spawned process is one incarnation: a pidfd stays bound to it, so
//! when a test gives its pid to a later spawn, signals through the old
//! pidfd fail with `ESRCH`, as the kernel's would. A spawn's status pipe
//! stays open (the fake keeps a copy of the child's end) until the test
//! says the process exec'd, failed to, or ended.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::{ChildEvent, ChildState, Errno, LinuxSyscall, Syscall, WaitFlags, WaitFor};
use crate::spawn::record::{encode, ErrorType};
use crate::spawn::Prepared;

/// One call, as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Spawn(Result<i32, Errno>),
    Kill(i32, i32),
    PidfdOpen(i32),
    /// Through a pidfd: the pid it was opened for, signal, flags.
    PidfdSignal(i32, i32, u32),
    PtraceSetoptions(i32, i32),
    PtraceCont(i32, i32),
    PtraceDetach(i32),
    PtraceGeteventmsg(i32),
    SetCloexec(RawFd, bool),
    SetNonblocking(RawFd),
    SetChildSubreaper,
}

/// One process the fake started.
struct Process {
    pid: i32,
    /// Its end of the status pipe, while it has neither exec'd nor ended.
    status: Option<OwnedFd>,
    exited: bool,
    reaped: bool,
}

#[derive(Default)]
struct Kernel {
    calls: Vec<Call>,
    pid: i32,
    next_pid: i32,
    /// Results for the next spawns, before pids are handed out in order.
    scripted: VecDeque<Result<i32, Errno>>,
    processes: Vec<Process>,
    /// Exits not yet reported by `wait`, oldest first (index into
    /// `processes`).
    exits: VecDeque<(usize, ChildState)>,
    /// Open pidfds: descriptor number to incarnation.
    pidfds: HashMap<RawFd, usize>,
    /// `set_child_subreaper` was called.
    subreaper: bool,
}

impl Kernel {
    /// The live (unreaped) incarnation holding `pid`.
    fn current(&self, pid: i32) -> Option<usize> {
        self.processes
            .iter()
            .rposition(|p| p.pid == pid && !p.reaped)
    }
}

/// Cloning shares the state: a test keeps one copy to script and inspect
/// while the daemon owns another.
#[derive(Clone)]
pub struct FakeSyscall(Rc<RefCell<Kernel>>);

impl FakeSyscall {
    /// A fake kernel in which we are `pid`; children get pids from 100.
    pub fn new(pid: i32) -> Self {
        FakeSyscall(Rc::new(RefCell::new(Kernel {
            pid,
            next_pid: 100,
            ..Kernel::default()
        })))
    }

    /// The next spawn returns this (a pid, or the error clone gave).
    pub fn script_spawn(&self, result: Result<i32, Errno>) {
        self.0.borrow_mut().scripted.push_back(result);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.0.borrow().calls.clone()
    }

    /// The process now holding `pid` exec'd: its status pipe closes empty.
    pub fn exec(&self, pid: i32) {
        let mut k = self.0.borrow_mut();
        if let Some(i) = k.current(pid) {
            k.processes[i].status = None;
        }
    }

    /// The process now holding `pid` failed to exec with `errno`: its
    /// record is written and the pipe closes (it exits 255 after, which
    /// the test reports with `exit`).
    pub fn exec_fails(&self, pid: i32, errno: i32) {
        let mut k = self.0.borrow_mut();
        if let Some(i) = k.current(pid) {
            if let Some(fd) = k.processes[i].status.take() {
                let rec = encode(ErrorType::Exec, 0, errno);
                nix::unistd::write(&fd, &rec).expect("status record");
            }
        }
    }

    /// The process now holding `pid` ended: whatever it held closes, and
    /// `wait` will report it.
    pub fn exit(&self, pid: i32, state: ChildState) {
        let mut k = self.0.borrow_mut();
        if let Some(i) = k.current(pid) {
            k.processes[i].status = None;
            k.processes[i].exited = true;
            k.exits.push_back((i, state));
        }
    }

    /// Processes started and not yet reaped.
    pub fn unreaped(&self) -> Vec<i32> {
        let k = self.0.borrow();
        k.processes
            .iter()
            .filter(|p| !p.reaped)
            .map(|p| p.pid)
            .collect()
    }
}

impl Syscall for FakeSyscall {
    fn getpid(&self) -> i32 {
        self.0.borrow().pid
    }

    fn getpgrp(&self) -> i32 {
        self.0.borrow().pid
    }

    /// Every job process leads its own group (the child calls setsid).
    fn getpgid(&self, pid: i32) -> Result<i32, Errno> {
        let k = self.0.borrow();
        k.current(pid).map(|_| pid).ok_or(Errno::ESRCH)
    }

    fn kill(&self, pid: i32, signal: i32) -> Result<(), Errno> {
        let mut k = self.0.borrow_mut();
        k.calls.push(Call::Kill(pid, signal));
        if pid != -1 && k.current(pid.abs()).is_none() {
            return Err(Errno::ESRCH);
        }
        Ok(())
    }

    fn spawn(&self, prepared: &Prepared) -> Result<i32, Errno> {
        let mut k = self.0.borrow_mut();
        let result = k.scripted.pop_front().unwrap_or_else(|| {
            k.next_pid += 1;
            Ok(k.next_pid - 1)
        });
        k.calls.push(Call::Spawn(result));
        let pid = result?;
        let status = prepared.status_write.try_clone().expect("dup status pipe");
        k.processes.push(Process {
            pid,
            status: Some(status),
            exited: false,
            reaped: false,
        });
        Ok(pid)
    }

    fn wait(&self, of: WaitFor<'_>, flags: WaitFlags) -> Result<Option<ChildEvent>, Errno> {
        let mut k = self.0.borrow_mut();
        match of {
            WaitFor::Any => {
                let Some(&(i, state)) = k.exits.front() else {
                    return if k.processes.iter().any(|p| !p.reaped) {
                        Ok(None)
                    } else {
                        Err(Errno::ECHILD)
                    };
                };
                let pid = k.processes[i].pid;
                if !flags.keep {
                    k.exits.pop_front();
                    k.processes[i].reaped = true;
                }
                Ok(Some(ChildEvent { pid, state }))
            }
            WaitFor::Process(fd) => {
                // Every process the fake knows is our child.
                let i = *k.pidfds.get(&fd.as_raw_fd()).ok_or(Errno::EBADF)?;
                if k.processes[i].reaped {
                    return Err(Errno::ECHILD);
                }
                Ok(None)
            }
        }
    }

    fn pidfd_open(&self, pid: i32) -> Result<OwnedFd, Errno> {
        let mut k = self.0.borrow_mut();
        k.calls.push(Call::PidfdOpen(pid));
        let i = k.current(pid).ok_or(Errno::ESRCH)?;
        let fd: OwnedFd = std::fs::File::open("/dev/null").expect("/dev/null").into();
        k.pidfds.insert(fd.as_raw_fd(), i);
        Ok(fd)
    }

    fn pidfd_send_signal(&self, fd: BorrowedFd<'_>, signal: i32, flags: u32) -> Result<(), Errno> {
        let mut k = self.0.borrow_mut();
        let i = *k.pidfds.get(&fd.as_raw_fd()).ok_or(Errno::EBADF)?;
        let pid = k.processes[i].pid;
        k.calls.push(Call::PidfdSignal(pid, signal, flags));
        if k.processes[i].exited {
            return Err(Errno::ESRCH);
        }
        Ok(())
    }

    fn ptrace_setoptions(&self, pid: i32, options: i32) -> Result<(), Errno> {
        self.0
            .borrow_mut()
            .calls
            .push(Call::PtraceSetoptions(pid, options));
        Ok(())
    }

    fn ptrace_cont(&self, pid: i32, signal: i32) -> Result<(), Errno> {
        self.0
            .borrow_mut()
            .calls
            .push(Call::PtraceCont(pid, signal));
        Ok(())
    }

    fn ptrace_detach(&self, pid: i32) -> Result<(), Errno> {
        self.0.borrow_mut().calls.push(Call::PtraceDetach(pid));
        Ok(())
    }

    fn ptrace_geteventmsg(&self, pid: i32) -> Result<u64, Errno> {
        self.0.borrow_mut().calls.push(Call::PtraceGeteventmsg(pid));
        Err(Errno::ESRCH)
    }

    // Descriptors are real even in tests: their flags are set for real.
    fn set_cloexec(&self, fd: RawFd, on: bool) -> Result<(), Errno> {
        self.0.borrow_mut().calls.push(Call::SetCloexec(fd, on));
        LinuxSyscall.set_cloexec(fd, on)
    }

    fn set_nonblocking(&self, fd: RawFd) -> Result<(), Errno> {
        self.0.borrow_mut().calls.push(Call::SetNonblocking(fd));
        LinuxSyscall.set_nonblocking(fd)
    }

    fn set_child_subreaper(&self) -> Result<(), Errno> {
        let mut k = self.0.borrow_mut();
        k.calls.push(Call::SetChildSubreaper);
        k.subreaper = true;
        Ok(())
    }

    fn is_child_subreaper(&self) -> Result<bool, Errno> {
        Ok(self.0.borrow().subreaper)
    }
}
