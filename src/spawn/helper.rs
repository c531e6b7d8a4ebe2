//! The spawn helper: a mode of the outset binary that a job's child execs
//! first when the process needs work that may block or that library code
//! must do (ARCHITECTURE principle 4): `cgroup` stanzas (D-Bus calls to the
//! manager), `setuid` / `setgid` (name-service lookups), `chroot` and a
//! `chdir` stanza (a directory on a hung mount). It is an ordinary
//! process, so it may allocate, use zbus, read /etc/passwd or ask a name
//! service, and block, without ever holding init up. It performs the rest
//! of the child's setup (process-spawning.md §3.2 steps 8–14) from a plan
//! built by init, makes the manager calls of cgroups.md §4, and execs the
//! job. Failures go back on the status pipe as the usual typed record.
//!
//! Command line: `outset --spawn-helper PLAN-FD STATUS-FD`. The plan is
//! JSON in a memory file; the status pipe stays open (close-on-exec) until
//! the job's own exec.

use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};

use super::child::Limit;
use super::identity::{lookup_identity, Identity};
use super::prepare::resolve_exe;
use super::record::{encode, ErrorType};
use crate::cgroup::client::{ManagerClient, ManagerError};
use crate::cgroup::path::targets;
use crate::cgroup::sequence::{self, Placed};
use crate::config::CgroupController;
use crate::env;

/// The first argument that selects the helper mode.
pub const HELPER_FLAG: &str = "--spawn-helper";

const SCRIPT_FD: RawFd = 9;

/// What the job's cgroups need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// D-Bus address of the manager.
    pub address: String,
    pub controllers: Vec<CgroupController>,
    /// System mode: escape to each controller's root before creating, so
    /// job cgroups are made under the root rather than under init's own.
    pub from_root: bool,
    /// This is the class's last process type: ask for removal-on-empty.
    pub clear: bool,
}

/// Steps 8–14 of the child, decided in init.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelperPlan {
    /// The program as the command names it: a name without a slash is
    /// searched for in the job's PATH here, after the `chroot`.
    pub exe: String,
    pub argv: Vec<String>,
    pub envp: Vec<String>,
    /// `apparmor switch` of a main process (step 8): `exec PROFILE\n` to
    /// write to `/proc/self/attr/exec`, or the errno to fail with.
    #[serde(default)]
    pub apparmor: Option<Result<String, i32>>,
    /// The `security` process: no limits, umask, … and no cgroup setup
    /// (only ever sent here for its cgroups).
    pub minimal: bool,
    pub limits: Vec<Limit>,
    pub umask: u32,
    pub nice: Option<i32>,
    pub oom_score: Option<String>,
    pub chroot: Option<String>,
    pub chdir: Option<String>,
    /// `setuid` / `setgid` names, looked up here (inside the chroot, as
    /// the reference does) rather than in init.
    pub setuid: Option<String>,
    pub setgid: Option<String>,
    /// fd 9 carries the script.
    pub script_fd: bool,
    pub trace: bool,
    pub debug_stop: bool,
    /// The job has `cgroup` stanzas and a manager to ask.
    pub cgroups: Option<CgroupPlan>,
}

/// A failed step: record type, argument, errno.
type Failure = (ErrorType, i32, i32);

fn os_errno(e: nix::errno::Errno) -> i32 {
    e as i32
}

fn cstring(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| (ErrorType::Alloc, 0, libc::EINVAL))
}

/// Say why a manager call failed on the job's standard error (its console
/// or log), since the status record only carries an errno.
fn complain(what: &str, e: &ManagerError) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "outset: {what}: {e}");
}

fn manager_failure(kind: ErrorType, what: &str, e: ManagerError) -> Failure {
    complain(what, &e);
    (kind, 0, e.errno())
}

/// Entry point: never returns.
pub fn main(args: &[String]) -> ! {
    let fd = |i: usize| args.get(i).and_then(|a| a.parse::<RawFd>().ok());
    let (Some(plan_fd), Some(status)) = (fd(0), fd(1)) else {
        eprintln!("outset: {HELPER_FLAG} is for init's own use");
        std::process::exit(2);
    };
    // SAFETY: fcntl on a descriptor init handed us.
    unsafe { libc::fcntl(status, libc::F_SETFD, libc::FD_CLOEXEC) };
    let plan = read_plan(plan_fd);
    let failure = match plan {
        Ok(plan) => run(&plan, status).err(),
        Err(f) => Some(f),
    };
    let (kind, arg, errnum) = failure.unwrap_or((ErrorType::Exec, 0, libc::EIO));
    let rec = encode(kind, arg, errnum);
    // SAFETY: writing our own buffer to the status pipe, then exiting.
    unsafe {
        libc::write(status, rec.as_ptr().cast(), rec.len());
        libc::_exit(255);
    }
}

fn read_plan(fd: RawFd) -> Result<HelperPlan, Failure> {
    // SAFETY: the plan descriptor was handed to us and is used only here.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| (ErrorType::Alloc, 0, e.raw_os_error().unwrap_or(libc::EIO)))?;
    serde_json::from_str(&text).map_err(|_| (ErrorType::Alloc, 0, libc::EINVAL))
}

/// The manager connection and the job's groups, found before the rest of
/// the setup.
struct Cgroups<'a> {
    plan: &'a CgroupPlan,
    manager: ManagerClient,
    placed: Vec<Placed>,
}

/// Connect to the manager (before any chroot, so its socket is reachable)
/// and locate the job's groups.
fn connect<'a>(plan: &'a CgroupPlan, envp: &[String], pid: i32) -> Result<Cgroups<'a>, Failure> {
    let manager = ManagerClient::connect(&plan.address).map_err(|e| {
        manager_failure(
            ErrorType::CgroupMgrConnect,
            "unable to connect to CGManager",
            e,
        )
    })?;
    let list = targets(&plan.controllers, envp).map_err(|e| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "outset: unable to setup cgroup: {e}");
        (ErrorType::CgroupSetup, 0, libc::EINVAL)
    })?;
    let placed = sequence::locate(&manager, list, plan.from_root, pid).map_err(setup_failure)?;
    Ok(Cgroups {
        plan,
        manager,
        placed,
    })
}

fn setup_failure(e: ManagerError) -> Failure {
    manager_failure(ErrorType::CgroupSetup, "unable to setup cgroup", e)
}

impl Cgroups<'_> {
    /// Create and configure the groups, hand them to the job's user, and
    /// mark them for removal after the class's last process type.
    fn set_up(&self, pid: i32, identity: Option<&Identity>) -> Result<(), Failure> {
        let current = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        sequence::setup(
            &self.manager,
            &self.placed,
            self.plan.from_root,
            pid,
            target_ids(identity),
            current,
        )
        .map_err(setup_failure)?;
        if self.plan.clear {
            sequence::clear(&self.manager, &self.placed).map_err(|e| {
                manager_failure(
                    ErrorType::CgroupClear,
                    "unable to mark cgroups for removal",
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Step 12: enter every group.
    fn enter(self, pid: i32) -> Result<(), Failure> {
        sequence::enter(&self.manager, &self.placed, pid)
            .map_err(|e| manager_failure(ErrorType::CgroupEnter, "unable to enter cgroup", e))
    }
}

fn run(plan: &HelperPlan, status: RawFd) -> Result<std::convert::Infallible, Failure> {
    // init's child arrives with every signal blocked; a stop request while
    // we wait on the manager or a name service must still be able to end us.
    unblock_signals();
    let pid = std::process::id() as i32;

    // Step 8 first, while /proc is where it was (before any chroot).
    if let Some(request) = &plan.apparmor {
        switch_profile(request)?;
    }

    let cgroups = match &plan.cgroups {
        Some(c) => Some(connect(c, &plan.envp, pid)?),
        None => None,
    };

    if !plan.minimal {
        let identity = process_attributes(plan)?;
        if let Some(c) = &cgroups {
            c.set_up(pid, identity.as_ref())?;
        }
        limits_and_identity(plan, identity.as_ref())?;
    }

    default_signals();
    if plan.debug_stop {
        // Step 11: init sees success, a debugger continues us.
        // SAFETY: closing our status pipe end and stopping ourselves.
        unsafe {
            libc::close(status);
            libc::raise(libc::SIGSTOP);
        }
    }

    if let Some(c) = cgroups {
        c.enter(pid)?;
    }

    // SAFETY: PTRACE_TRACEME takes no pointers.
    if plan.trace && unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } < 0 {
        return Err((ErrorType::Ptrace, 0, errno()));
    }
    exec(plan)
}

/// Confine the job's exec to come with the requested profile.
fn switch_profile(request: &Result<String, i32>) -> Result<(), Failure> {
    use std::io::Write;
    let text = request.as_ref().map_err(|e| (ErrorType::Security, 0, *e))?;
    let failed = |e: std::io::Error| {
        (
            ErrorType::Security,
            0,
            e.raw_os_error().unwrap_or(libc::EIO),
        )
    };
    let path = super::apparmor::EXEC_ATTR.to_string_lossy();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path.as_ref())
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The uid/gid the cgroups are handed to: the job's target identity, or
/// who we are now.
fn target_ids(id: Option<&Identity>) -> (u32, u32) {
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    (
        id.and_then(|i| i.uid).unwrap_or(euid),
        id.and_then(|i| i.gid).unwrap_or(egid),
    )
}

/// Steps 9.2–9.10: umask, priority, OOM score, chroot, chdir, the user and
/// group lookups (in the new root, as the reference does), the script fd's
/// owner. (Resource limits wait until the lookups and the manager calls
/// are done, so a tight `limit` cannot starve the helper.)
fn process_attributes(plan: &HelperPlan) -> Result<Option<Identity>, Failure> {
    // SAFETY: plain system calls on values we own.
    unsafe {
        libc::umask(plan.umask as libc::mode_t);
        if let Some(nice) = plan.nice {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) < 0 {
                return Err((ErrorType::Priority, 0, errno()));
            }
        }
    }
    if let Some(score) = &plan.oom_score {
        std::fs::write("/proc/self/oom_score_adj", score)
            .map_err(|e| (ErrorType::OomAdj, 0, e.raw_os_error().unwrap_or(libc::EIO)))?;
    }
    if let Some(root) = &plan.chroot {
        nix::unistd::chroot(root.as_str()).map_err(|e| (ErrorType::Chroot, 0, os_errno(e)))?;
    }
    if let Some(dir) = &plan.chdir {
        nix::unistd::chdir(dir.as_str()).map_err(|e| (ErrorType::Chdir, 0, os_errno(e)))?;
    }
    let identity = lookup_identity(plan.setuid.as_deref(), plan.setgid.as_deref())
        .map_err(|(kind, err)| (kind, 0, err))?;
    if let (Some(id), true) = (&identity, plan.script_fd) {
        let uid = id.uid.unwrap_or(u32::MAX);
        let gid = id.gid.unwrap_or(u32::MAX);
        // SAFETY: fchown on the inherited script descriptor.
        if unsafe { libc::fchown(SCRIPT_FD, uid, gid) } < 0 {
            return Err((ErrorType::Chown, 0, errno()));
        }
    }
    Ok(identity)
}

/// Steps 9.1 and 9.11–9.13: resource limits, supplementary groups, gid, uid.
fn limits_and_identity(plan: &HelperPlan, identity: Option<&Identity>) -> Result<(), Failure> {
    // SAFETY: plain system calls on values we own.
    unsafe {
        for &(res, soft, hard) in &plan.limits {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(res as _, &lim) < 0 {
                return Err((ErrorType::Rlimit, res, errno()));
            }
        }
        if let Some(id) = identity {
            if nix::unistd::geteuid().is_root()
                && libc::setgroups(id.groups.len(), id.groups.as_ptr()) < 0
            {
                return Err((ErrorType::Initgroups, 0, errno()));
            }
            if let Some(gid) = id.gid {
                if libc::setgid(gid) < 0 {
                    return Err((ErrorType::Setgid, 0, errno()));
                }
            }
            if let Some(uid) = id.uid {
                if libc::setuid(uid) < 0 {
                    return Err((ErrorType::Setuid, 0, errno()));
                }
            }
        }
    }
    Ok(())
}

fn unblock_signals() {
    // SAFETY: sigprocmask with a set we own.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Step 10: default dispositions (the Rust runtime ignores SIGPIPE, and
/// ignored signals stay ignored across exec) and an empty mask.
fn default_signals() {
    // SAFETY: resetting dispositions to the default takes no handlers.
    unsafe {
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
    unblock_signals();
}

/// Step 14, `execvp`'s search done in the job's root and directory.
fn exec(plan: &HelperPlan) -> Result<std::convert::Infallible, Failure> {
    let exe = cstring(&resolve_exe(&plan.exe, env::get(&plan.envp, "PATH")))?;
    let argv = plan
        .argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = plan
        .envp
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let err = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    Err((ErrorType::Exec, 0, os_errno(err)))
}
