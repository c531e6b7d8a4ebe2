//! Forking a job process. Everything the child needs is built before the
//! fork ([`Prepared`]); between fork and exec the child only makes
//! async-signal-safe system calls on that data and reports the first
//! failure as a status record (process-spawning.md §3.2, §4).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::record::{encode, ErrorType};
use crate::config::Console;

/// A resource limit to apply: `RLIMIT_*` number, soft, hard.
pub type Limit = (i32, u64, u64);

/// Everything the child does, decided in the parent.
pub struct Prepared {
    /// The paths to try, in order, as `execvp` would (see
    /// `exe_candidates`); empty when the helper runs the job.
    pub exe: Vec<CString>,
    pub argv: CStrBlock,
    pub envp: CStrBlock,
    pub console: Console,
    /// pty slave for `console log`.
    pub log_slave: Option<OwnedFd>,
    /// Read end of the script pipe, to become fd 9.
    pub script_read: Option<OwnedFd>,
    pub status_write: OwnedFd,
    /// `apparmor switch` of a main process where AppArmor is usable: what
    /// to write to `/proc/self/attr/exec`, or the errno to fail with.
    pub apparmor: Option<Result<CString, i32>>,
    /// Skip limits, umask, nice, oom and chdir (the `security` process).
    pub minimal: bool,
    pub limits: Vec<Limit>,
    pub umask: u32,
    pub nice: Option<i32>,
    /// Text to write to `/proc/self/oom_score_adj`.
    pub oom_score: Option<CString>,
    /// Only the default `/` of system mode: a `chdir` stanza, like
    /// `chroot`, `setuid` and `setgid`, sends the process through the
    /// helper (a directory on a hung mount must not hold init up).
    pub chdir: Option<CString>,
    pub trace: bool,
    pub debug_stop: bool,
    /// Fork (a copy of init) instead of sharing init's memory: init must
    /// not wait for this child's exec, because a path it tries lies on a
    /// file system that can hang (see `remote_mounts.rs`).
    pub fork: bool,
    /// Jobs with cgroup, chroot, chdir, setuid or setgid stanzas: after the
    /// descriptors and the session are set up, exec the spawn helper,
    /// which does the rest.
    pub helper: Option<HelperLaunch>,
    /// Instead of a new session, a new process group made the foreground
    /// group of this terminal (run mode's command; see `SpawnSettings`).
    pub foreground_of: Option<RawFd>,
}

/// Strings for exec, each NUL-terminated, one after another in one buffer:
/// a job's whole environment costs one allocation, not one per entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CStrBlock {
    bytes: Vec<u8>,
    /// Where each string starts in `bytes`.
    starts: Vec<usize>,
}

impl CStrBlock {
    /// The block of `items`; a NUL inside an item is dropped (exec could
    /// not pass it).
    pub fn new<S: AsRef<str>>(items: &[S]) -> Self {
        let total = items.iter().map(|s| s.as_ref().len() + 1).sum();
        let mut bytes = Vec::with_capacity(total);
        let mut starts = Vec::with_capacity(items.len());
        for item in items {
            starts.push(bytes.len());
            let item = item.as_ref().as_bytes();
            if item.contains(&0) {
                bytes.extend(item.iter().filter(|&&b| b != 0));
            } else {
                bytes.extend_from_slice(item);
            }
            bytes.push(0);
        }
        CStrBlock { bytes, starts }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &std::ffi::CStr> + '_ {
        self.starts.iter().filter_map(|&at| {
            self.bytes
                .get(at..)
                .and_then(|rest| std::ffi::CStr::from_bytes_until_nul(rest).ok())
        })
    }

    /// The array exec takes: a pointer to each string, then a null. Valid
    /// while the block is neither changed nor dropped.
    pub fn pointers(&self) -> Vec<*const libc::c_char> {
        let base = self.bytes.as_ptr();
        self.starts
            .iter()
            // SAFETY: every start is an offset inside `bytes`.
            .map(|&at| unsafe { base.add(at) }.cast::<libc::c_char>())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }
}

/// How to start the spawn helper (see `helper.rs`).
pub struct HelperLaunch {
    /// outset's own executable, opened `O_PATH` (valid inside any chroot).
    pub exe: RawFd,
    /// Memory file holding the plan; numbered 10 or above.
    pub plan: OwnedFd,
    /// `outset --spawn-helper PLAN-FD STATUS-FD`.
    pub argv: Vec<CString>,
}

const SCRIPT_FD: RawFd = 9;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// What the cloned child needs, passed through `clone`'s argument.
struct ChildArgs<'a> {
    prepared: &'a Prepared,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    helper_argv: &'a [*const libc::c_char],
    /// Signals to put back to their default action (see `altered_signals`).
    reset: &'a [libc::c_int],
}

/// The signals whose action in init is not the default, found once. The
/// child puts these back before exec (exec itself resets caught signals,
/// but ignored ones survive it: Rust ignores SIGPIPE, and init may have
/// been started with signals ignored). Resetting every signal instead took
/// some sixty system calls per spawn, all while init waited on the vfork.
/// outset never changes a signal's action once running (the loop reads
/// signals from a signalfd), so what holds at the first spawn holds for
/// the life of the process.
fn altered_signals() -> &'static [libc::c_int] {
    static ALTERED: std::sync::OnceLock<Vec<libc::c_int>> = std::sync::OnceLock::new();
    ALTERED.get_or_init(|| {
        (1..libc::SIGRTMAX())
            .filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP)
            .filter(|&sig| {
                // SAFETY: sigaction only reads the action into `old`.
                unsafe {
                    let mut old: libc::sigaction = std::mem::zeroed();
                    libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                        && old.sa_sigaction != libc::SIG_DFL
                }
            })
            .collect()
    })
}

/// Stack for the cloned child; it only runs until exec.
const CHILD_STACK: usize = 256 * 1024;

thread_local! {
    /// The child's stack, kept from one spawn to the next: the parent
    /// resumes only once its child has exec'd or ended (`CLONE_VFORK`), or
    /// the child has a copy of its own (fork), so one stack serves every
    /// spawn of a thread. Allocating it each time cost a quarter-megabyte
    /// allocation, and with it a consolidation of the allocator's free
    /// lists, per spawn.
    static CHILD_STACK_MEMORY: std::cell::Cell<Option<Box<[u8]>>> =
        const { std::cell::Cell::new(None) };
}

extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the ChildArgs on the parent's stack, which
    // stays alive because CLONE_VFORK suspends the parent until we exec or
    // exit.
    let args = unsafe { &*(arg as *const ChildArgs<'_>) };
    // SAFETY: see `child`.
    unsafe { child(args) }
}

/// Start the child and set it up. Returns its pid in the parent.
///
/// The child shares the parent's memory (`CLONE_VM | CLONE_VFORK`, like
/// vfork), so starting it costs the same however large init has grown; init
/// is suspended only until the child has exec'd or failed. A `debug` child
/// stops itself before exec and would keep init suspended, so it is forked;
/// so is a child whose exec may wait on a hung mount (`Prepared::fork`).
///
/// # Safety
/// Between clone and exec the child runs no allocator, takes no lock and
/// touches nothing but the prepared data, its own stack and errno.
pub unsafe fn fork_child(p: &Prepared) -> Result<i32, i32> {
    // Pointer arrays and the child's stack are built before the clone.
    let argv = p.argv.pointers();
    let envp = p.envp.pointers();
    let helper_argv: Vec<*const libc::c_char> = p
        .helper
        .iter()
        .flat_map(|h| h.argv.iter().map(|a| a.as_ptr()))
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut stack = CHILD_STACK_MEMORY
        .take()
        .unwrap_or_else(|| vec![0u8; CHILD_STACK].into_boxed_slice());
    let args = ChildArgs {
        prepared: p,
        argv: &argv,
        envp: &envp,
        helper_argv: &helper_argv,
        reset: altered_signals(),
    };
    let mut all: libc::sigset_t = std::mem::zeroed();
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
    let pid = if p.debug_stop || p.fork {
        let pid = libc::fork();
        if pid == 0 {
            child(&args);
        }
        pid
    } else {
        // The stack grows down: hand clone its top, 16-byte aligned.
        let top = (stack.as_mut_ptr().add(stack.len()) as usize) & !15;
        libc::clone(
            child_entry,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &args as *const ChildArgs<'_> as *mut libc::c_void,
        )
    };
    let err = errno();
    libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    CHILD_STACK_MEMORY.set(Some(stack));
    if pid < 0 {
        Err(err)
    } else {
        Ok(pid)
    }
}

/// Report a failure on the status pipe and exit 255.
///
/// # Safety
/// Only in the child between clone and exec: it ends the calling process
/// with `_exit`, which in the parent would take init down. `status` is the
/// child's end of the status pipe.
unsafe fn fail(status: RawFd, kind: ErrorType, arg: i32, errnum: i32) -> ! {
    let rec = encode(kind, arg, errnum);
    libc::write(status, rec.as_ptr().cast(), rec.len());
    libc::_exit(255);
}

/// Move `fd` off the fds 0–2 and 9 that the child is about to reuse.
///
/// # Safety
/// Only in the child between clone and exec (it may call [`fail`]);
/// `status` is the child's end of the status pipe.
unsafe fn move_off(fd: RawFd, status: RawFd) -> RawFd {
    if fd > 2 && fd != SCRIPT_FD {
        return fd;
    }
    let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
    if new < 0 {
        fail(status, ErrorType::Dup, 0, errno());
    }
    new
}

/// The child's whole life: set up what `args` describes, then exec (or
/// report the failure and exit).
///
/// # Safety
/// Only as a freshly cloned or forked child of [`fork_child`], on its own
/// stack, with `args` built by the parent before the clone. It never
/// returns, allocates or locks: the memory it shares with a suspended
/// parent must be left as it was found.
unsafe fn child(args: &ChildArgs<'_>) -> ! {
    let (p, argv, envp) = (args.prepared, args.argv, args.envp);
    // 1. Status pipe (close-on-exec) off the low fds.
    let mut status = p.status_write.as_raw_fd();
    status = move_off(status, status);
    libc::fcntl(status, libc::F_SETFD, libc::FD_CLOEXEC);

    let slave = p
        .log_slave
        .as_ref()
        .map(|s| move_off(s.as_raw_fd(), status));

    // 3. Script pipe onto fd 9 (dup2 clears close-on-exec there).
    if let Some(script) = &p.script_read {
        let fd = script.as_raw_fd();
        if fd != SCRIPT_FD && libc::dup2(fd, SCRIPT_FD) < 0 {
            fail(status, ErrorType::Dup, 0, errno());
        }
        if fd == SCRIPT_FD {
            libc::fcntl(SCRIPT_FD, libc::F_SETFD, 0);
        }
    }

    // 4. New session and process group; or, for run mode's command, a
    // new group in outset's session that takes the terminal (SIGTTOU is
    // blocked here, so a background group may).
    match p.foreground_of {
        Some(tty) => {
            libc::setpgid(0, 0);
            libc::tcsetpgrp(tty, libc::getpid());
        }
        None => {
            libc::setsid();
        }
    }

    // 6. Standard descriptors (`Inherit` keeps init's own).
    if p.console != Console::Inherit {
        for fd in 0..3 {
            libc::close(fd);
        }
    }
    let devnull = c"/dev/null";
    let console = c"/dev/console";
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    match p.console {
        Console::None | Console::Log => {
            if libc::open(devnull.as_ptr(), flags) < 0 {
                fail(status, ErrorType::Console, 0, errno());
            }
        }
        Console::Output => {
            if libc::open(console.as_ptr(), flags) < 0 && libc::open(devnull.as_ptr(), flags) < 0 {
                fail(status, ErrorType::Console, 0, errno());
            }
        }
        Console::Owner => {
            if libc::open(console.as_ptr(), flags) < 0 {
                fail(status, ErrorType::Console, 0, errno());
            }
            libc::ioctl(0, libc::TIOCSCTTY, 1);
        }
        Console::Inherit => {}
    }
    if p.console != Console::Inherit {
        libc::dup2(0, 1);
        libc::dup2(0, 2);
    }

    // 7. `console log`: stdout and stderr to the pty slave.
    if let Some(slave) = slave {
        if libc::dup2(slave, 1) < 0 || libc::dup2(slave, 2) < 0 {
            fail(status, ErrorType::Dup, 0, errno());
        }
        libc::close(slave);
    }

    // 8. `apparmor switch`: confine the exec to come. The helper's own
    // exec comes first, so with a helper the helper writes it.
    if p.helper.is_none() {
        match &p.apparmor {
            Some(Ok(request)) => switch_profile(request, status),
            Some(Err(errnum)) => fail(status, ErrorType::Security, 0, *errnum),
            None => {}
        }
    }

    // The helper does steps 8–14. It inherits the status
    // pipe (close-on-exec again in the helper) and the plan.
    if let Some(h) = &p.helper {
        libc::fcntl(status, libc::F_SETFD, 0);
        libc::fcntl(h.plan.as_raw_fd(), libc::F_SETFD, 0);
        let no_env: [*const libc::c_char; 1] = [std::ptr::null()];
        libc::syscall(
            libc::SYS_execveat,
            h.exe,
            c"".as_ptr(),
            args.helper_argv.as_ptr(),
            no_env.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
        fail(status, ErrorType::Exec, 0, errno());
    }

    // 9. Process attributes.
    if !p.minimal {
        for &(res, soft, hard) in &p.limits {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(res as _, &lim) < 0 {
                fail(status, ErrorType::Rlimit, res, errno());
            }
        }
        libc::umask(p.umask as libc::mode_t);
        if let Some(nice) = p.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) < 0 {
                fail(status, ErrorType::Priority, 0, errno());
            }
        }
        if let Some(score) = &p.oom_score {
            let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
            let bytes = score.as_bytes();
            if fd < 0 || libc::write(fd, bytes.as_ptr().cast(), bytes.len()) < 0 {
                fail(status, ErrorType::OomAdj, 0, errno());
            }
            libc::close(fd);
        }
        if let Some(dir) = &p.chdir {
            if libc::chdir(dir.as_ptr()) < 0 {
                fail(status, ErrorType::Chdir, 0, errno());
            }
        }
    }

    // 10. Default signal dispositions and an empty mask (Rust ignores
    // SIGPIPE, and ignored dispositions survive exec).
    for &sig in args.reset {
        libc::signal(sig, libc::SIG_DFL);
    }
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

    // 11. `debug`: report success, then wait for a debugger.
    if p.debug_stop {
        libc::close(status);
        close_cloexec_fds();
        libc::raise(libc::SIGSTOP);
    }

    // 13. Let init follow forks.
    if p.trace && libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
        fail(status, ErrorType::Ptrace, 0, errno());
    }

    // 14. Exec, searching as execvp does: a candidate that is missing or
    // not a directory is passed over, one that may not be executed is
    // remembered, anything else ends the search.
    let mut denied = false;
    let mut last = libc::ENOENT;
    for exe in &p.exe {
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        last = errno();
        match last {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            _ => break,
        }
    }
    let reported = if denied && matches!(last, libc::ENOENT | libc::ENOTDIR) {
        libc::EACCES
    } else {
        last
    };
    fail(status, ErrorType::Exec, 0, reported);
}

/// Ask for `request` (`exec PROFILE\n`) to confine this process from its
/// next exec on (process-spawning.md §3.2 step 8).
///
/// # Safety
/// Only in the child between clone and exec (it may call [`fail`]);
/// `status` is the child's end of the status pipe.
unsafe fn switch_profile(request: &CString, status: RawFd) {
    let fd = libc::open(
        super::apparmor::EXEC_ATTR.as_ptr(),
        libc::O_WRONLY | libc::O_CLOEXEC,
    );
    if fd < 0 {
        fail(status, ErrorType::Security, 0, errno());
    }
    let bytes = request.as_bytes();
    let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    if written < 0 {
        fail(status, ErrorType::Security, 0, errno());
    }
    if written as usize != bytes.len() {
        fail(status, ErrorType::Security, 0, libc::EIO);
    }
    if libc::close(fd) < 0 {
        fail(status, ErrorType::Security, 0, errno());
    }
}

/// Close now every descriptor that exec would close. A `debug` child may
/// wait before exec for as long as its debugger likes; meanwhile it must not
/// hold init's descriptors (a re-exec'd init could not bind its control
/// socket again while a copy of the old one is open). Syscalls only.
///
/// # Safety
/// Only in a forked child before exec: it closes descriptors that the
/// rest of the process may still own (`OwnedFd`s would then close numbers
/// that may have been reused).
unsafe fn close_cloexec_fds() {
    let mut lim: libc::rlimit = std::mem::zeroed();
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
        lim.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1024
    };
    for fd in 3..max {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
            libc::close(fd);
        }
    }
}

/// A pipe whose both ends are close-on-exec.
pub fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The status pipe of a spawn: close-on-exec, and non-blocking at both
/// ends from the start (init never waits on its end, and the child's one
/// record is far smaller than a pipe holds), which saves init two `fcntl`
/// calls per spawn.
pub fn status_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Open a pty pair for `console log`: the master (non-blocking) for init,
/// the slave for the child; both close-on-exec.
pub fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let err = std::io::Error::last_os_error;
    // SAFETY: plain libc calls on fds we own; ptsname_r writes into our buffer.
    unsafe {
        let master =
            libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK);
        if master < 0 {
            return Err(err());
        }
        let master = OwnedFd::from_raw_fd(master);
        if libc::grantpt(master.as_raw_fd()) < 0 || libc::unlockpt(master.as_raw_fd()) < 0 {
            return Err(err());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) != 0 {
            return Err(err());
        }
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(err());
        }
        Ok((master, OwnedFd::from_raw_fd(slave)))
    }
}

#[cfg(test)]
mod tests {
    use super::CStrBlock;

    #[test]
    fn a_block_holds_each_string_once_nul_terminated() {
        let b = CStrBlock::new(&["A=1", "", "PATH=/bin:/usr/bin"]);
        assert_eq!(b.len(), 3);
        let got: Vec<&str> = b.iter().map(|c| c.to_str().expect("utf-8")).collect();
        assert_eq!(got, ["A=1", "", "PATH=/bin:/usr/bin"]);
        let ptrs = b.pointers();
        assert_eq!(ptrs.len(), 4);
        assert!(ptrs[3].is_null());
        // SAFETY: the pointers point into `b`, which is alive.
        let third = unsafe { std::ffi::CStr::from_ptr(ptrs[2]) };
        assert_eq!(third.to_bytes(), b"PATH=/bin:/usr/bin");
    }

    #[test]
    fn a_nul_inside_a_string_is_dropped() {
        let b = CStrBlock::new(&["X=a\0b", "Y"]);
        let got: Vec<&[u8]> = b.iter().map(|c| c.to_bytes()).collect();
        assert_eq!(got, [&b"X=ab"[..], b"Y"]);
        assert!(CStrBlock::new::<&str>(&[]).pointers()[0].is_null());
    }
}
