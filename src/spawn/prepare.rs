//! Building a [`Prepared`] child plan from a spawn request, in the parent.

use std::ffi::CString;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::child::{cloexec_pipe, open_pty, status_pipe, CStrBlock, HelperLaunch, Prepared};
use super::command::build_command;
use super::helper::{CgroupPlan, HelperPlan, HELPER_FLAG};
use crate::config::{Console, JobClass, ProcessType, Resource};
use crate::job::SpawnRequest;

/// Daemon-wide settings that shape every spawn.
#[derive(Debug, Clone, Default)]
pub struct SpawnSettings {
    pub user_mode: bool,
    pub no_log: bool,
    /// `--debug`: honour the `debug` stanza.
    pub debug: bool,
    /// outset's own executable (`O_PATH`), for the spawn helper; opened
    /// the first time a job needs it.
    pub self_exe: Option<Arc<OwnedFd>>,
    /// Run mode: outset's controlling terminal. A process that inherits
    /// outset's stdio (the command) joins that terminal's session as its
    /// foreground process group, instead of a session of its own.
    pub terminal: Option<RawFd>,
}

/// Open outset's own executable for the spawn helper.
pub fn open_self_exe() -> std::io::Result<OwnedFd> {
    // SAFETY: open of a constant path; the result is checked.
    let fd = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just opened, owned by nobody else.
    // Numbered 10 or above: the child puts the script pipe on fd 9.
    high_fd(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A close-on-exec duplicate numbered 10 or above, out of the way of the
/// standard descriptors and the script's fd 9 (the spawn helper is told
/// the numbers before the child rearranges its descriptors).
fn high_fd(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor we own; the result is checked.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Does this spawn go through the spawn helper? Everything that may block
/// or needs library code does: the cgroup manager's calls, the user and
/// group lookups, and `chroot` and `chdir` (a directory on a hung network
/// mount). A process without any of them (and the `security` process,
/// which skips those steps, unless it needs cgroups) is set up by the
/// child alone, for the cost of a plain exec.
pub fn needs_helper(req: &SpawnRequest) -> bool {
    let class = &req.class;
    req.cgroup_manager.is_some()
        || (req.process != ProcessType::Security
            && (class.rare.setuid.is_some()
                || class.rare.setgid.is_some()
                || class.rare.chroot.is_some()
                || class.rare.chdir.is_some()))
}

/// Is `process` the class's last defined process type, in the order main,
/// pre-start, post-start, pre-stop, post-stop, security? Its spawn asks
/// the manager to remove the cgroups once empty (cgroups.md §4 step 3).
pub fn is_last_process(class: &JobClass, process: ProcessType) -> bool {
    ProcessType::ALL
        .iter()
        .rev()
        .find(|t| class.process(**t).is_some())
        == Some(&process)
}

/// Write the helper's plan into a memory file, positioned at its start.
fn plan_file(plan: &HelperPlan) -> std::io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(c"outset-spawn", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    serde_json::to_writer(&mut file, plan)?;
    file.flush()?;
    file.rewind()?;
    high_fd(OwnedFd::from(file))
}

/// What the parent keeps of a spawn besides the pid.
pub struct Spawned {
    pub prepared: Prepared,
    pub status_read: OwnedFd,
    /// Script text and the write end of its pipe.
    pub script: Option<(String, OwnedFd)>,
    /// pty master of a `console log` process.
    pub log_master: Option<OwnedFd>,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `s` without its NUL bytes (a copy only when it has some: every
/// argument and environment entry of every spawn passes through here).
fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).unwrap_or_default()
    })
}

/// Where `execvp` would look for `name` with the job's PATH, in order:
/// the name itself when it holds a `/`, else each PATH directory joined
/// with it. Built in init before the clone; the child tries them (init
/// itself never looks at a job's PATH directories: one on a hung network
/// mount would hold it up).
pub fn exe_candidates(name: &str, path: Option<&str>) -> Vec<CString> {
    if name.contains('/') {
        return vec![cstring(name)];
    }
    path.unwrap_or(DEFAULT_PATH)
        .split(':')
        .map(|dir| {
            let dir = if dir.is_empty() { "." } else { dir };
            cstring(&format!("{dir}/{name}"))
        })
        .collect()
}

/// `execvp`'s search against the job's PATH, done in the spawn helper
/// (after its `chroot` and `chdir`). A name that is not found is left as
/// is: exec then fails with ENOENT and is reported as usual.
pub fn resolve_exe(name: &str, path: Option<&str>) -> String {
    if name.contains('/') {
        return name.to_string();
    }
    for dir in path.unwrap_or(DEFAULT_PATH).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return candidate.display().to_string();
            }
        }
    }
    name.to_string()
}

fn rlimit_number(r: Resource) -> i32 {
    match r {
        Resource::Cpu => 0,
        Resource::Fsize => 1,
        Resource::Data => 2,
        Resource::Stack => 3,
        Resource::Core => 4,
        Resource::Rss => 5,
        Resource::Nproc => 6,
        Resource::Nofile => 7,
        Resource::Memlock => 8,
        Resource::As => 9,
        Resource::Sigpending => 11,
        Resource::Msgqueue => 12,
        Resource::Nice => 13,
        Resource::Rtprio => 14,
    }
}

/// No pty could be opened for a `console log` process; the caller falls
/// back to `console none` (process-spawning.md §3.1 step 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PtyUnavailable(pub std::io::Error);

impl PtyUnavailable {
    /// Whether a spawn failed for want of a pty.
    pub fn caused(e: &std::io::Error) -> bool {
        e.get_ref().is_some_and(|i| i.is::<PtyUnavailable>())
    }
}

/// Build the plan for one spawn: pipes, pty, argv, environment, attributes.
pub fn prepare(req: &SpawnRequest, settings: &SpawnSettings) -> std::io::Result<Spawned> {
    let class = &req.class;
    let def = class
        .process(req.process)
        .ok_or_else(|| std::io::Error::other("no such process"))?;
    let cmd = build_command(&def.command, def.script);
    let (status_read, status_write) = status_pipe()?;
    let helped = needs_helper(req);
    let status_write = if helped {
        high_fd(status_write)?
    } else {
        status_write
    };
    let (script_read, script) = match cmd.script {
        Some(text) => {
            let (r, w) = cloexec_pipe()?;
            (Some(r), Some((text, w)))
        }
        None => (None, None),
    };
    let mut console = class.console;
    if console == Console::Log && settings.no_log {
        console = Console::None;
    }
    let (log_master, log_slave) = if console == Console::Log {
        let (m, s) = open_pty().map_err(|e| std::io::Error::other(PtyUnavailable(e)))?;
        (Some(m), Some(s))
    } else {
        (None, None)
    };
    let argv0 = cmd.argv.first().cloned().unwrap_or_default();
    // The helper searches PATH itself, inside the job's root; the child of
    // a plain job tries the candidates.
    let exe_candidates = if helped {
        Vec::new()
    } else {
        exe_candidates(&argv0, req.env_get("PATH"))
    };
    let exe = argv0;
    let minimal = req.process == ProcessType::Security;
    // Step 8: decided here, written by the child (or the helper).
    let apparmor = match (&class.rare.apparmor_switch, req.process) {
        (Some(profile), ProcessType::Main) if super::apparmor::available() => {
            Some(super::apparmor::exec_request(profile, &req.full_env()))
        }
        _ => None,
    };
    let chdir = match (&class.rare.chdir, settings.user_mode) {
        (Some(d), _) => Some(cstring(d)),
        (None, false) => Some(cstring("/")),
        (None, true) => None,
    };
    let mut limits: Vec<(i32, u64, u64)> = class
        .rare
        .limits
        .iter()
        .map(|(r, l)| (rlimit_number(*r), l.soft, l.hard))
        .collect();
    // Init raised its own descriptor limit; a job gets the one init was
    // started with unless its class sets one.
    if let Some((soft, hard)) = super::nofile::job_limit() {
        let nofile = rlimit_number(Resource::Nofile);
        if !limits.iter().any(|l| l.0 == nofile) {
            limits.push((nofile, soft, hard));
        }
    }
    limits.sort_by_key(|l| l.0);
    let helper = match helped {
        true => {
            let exe_fd = settings
                .self_exe
                .as_ref()
                .ok_or_else(|| std::io::Error::other("own executable not available"))?;
            let plan = HelperPlan {
                exe: exe.clone(),
                argv: cmd.argv.clone(),
                envp: req.full_env(),
                apparmor: apparmor.as_ref().map(|a| {
                    a.as_ref()
                        .map(|c| c.to_string_lossy().into_owned())
                        .map_err(|e| *e)
                }),
                minimal,
                limits: limits.clone(),
                umask: class.umask,
                nice: class.rare.nice,
                oom_score: (class.rare.oom_score_adj != 0)
                    .then(|| format!("{}\n", class.rare.oom_score_adj)),
                chroot: class.rare.chroot.clone(),
                chdir: chdir.as_ref().map(|c| c.to_string_lossy().into_owned()),
                setuid: class.rare.setuid.clone(),
                setgid: class.rare.setgid.clone(),
                script_fd: script_read.is_some(),
                trace: req.trace,
                debug_stop: class.debug && settings.debug,
                cgroups: req.cgroup_manager.as_ref().map(|address| CgroupPlan {
                    address: address.clone(),
                    controllers: class.rare.cgroups.clone(),
                    from_root: !settings.user_mode,
                    clear: is_last_process(class, req.process),
                }),
            };
            let plan = plan_file(&plan)?;
            let argv = vec![
                cstring("outset"),
                cstring(HELPER_FLAG),
                cstring(&plan.as_raw_fd().to_string()),
                cstring(&status_write.as_raw_fd().to_string()),
            ];
            Some(HelperLaunch {
                exe: exe_fd.as_raw_fd(),
                plan,
                argv,
            })
        }
        false => None,
    };
    let prepared = Prepared {
        helper,
        exe: exe_candidates,
        argv: CStrBlock::new(&cmd.argv),
        envp: CStrBlock::new(&req.env_entries()),
        console,
        log_slave,
        script_read,
        status_write,
        apparmor,
        minimal,
        limits,
        umask: class.umask,
        nice: class.rare.nice,
        oom_score: (class.rare.oom_score_adj != 0)
            .then(|| cstring(&format!("{}\n", class.rare.oom_score_adj))),
        chdir,
        trace: req.trace,
        debug_stop: class.debug && settings.debug,
        fork: false,
        foreground_of: settings.terminal.filter(|_| console == Console::Inherit),
    };
    Ok(Spawned {
        prepared,
        status_read,
        script,
        log_master,
    })
}

/// `LOGDIR/JOB[-INSTANCE].log`, with `/` in either name mapped to `_`.
pub fn log_path(logdir: &Path, job: &str, instance: &str) -> PathBuf {
    let job = job.replace('/', "_");
    let name = if instance.is_empty() {
        format!("{job}.log")
    } else {
        format!("{job}-{}.log", instance.replace('/', "_"))
    };
    logdir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names() {
        assert_eq!(
            log_path(Path::new("/l"), "foo", ""),
            PathBuf::from("/l/foo.log")
        );
        assert_eq!(
            log_path(Path::new("/l"), "foo/bar", "wib/ble"),
            PathBuf::from("/l/foo_bar-wib_ble.log")
        );
    }

    #[test]
    fn nul_bytes_are_dropped() {
        assert_eq!(cstring("a=b").as_bytes(), b"a=b");
        assert_eq!(cstring("a\0=\0b").as_bytes(), b"a=b");
        assert_eq!(cstring("").as_bytes(), b"");
    }

    #[test]
    fn exe_candidates_follow_path_in_order() {
        let c = |v: Vec<CString>| -> Vec<String> {
            v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
        };
        assert_eq!(c(exe_candidates("/bin/x", Some("/a"))), ["/bin/x"]);
        assert_eq!(c(exe_candidates("./x", None)), ["./x"]);
        assert_eq!(
            c(exe_candidates("sh", Some("/nonexistent::/bin"))),
            ["/nonexistent/sh", "./sh", "/bin/sh"]
        );
        assert_eq!(
            c(exe_candidates("x", None)).len(),
            DEFAULT_PATH.split(':').count()
        );
    }

    #[test]
    fn exe_search() {
        assert_eq!(resolve_exe("/bin/x", None), "/bin/x");
        assert_eq!(resolve_exe("sh", Some("/nonexistent:/bin")), "/bin/sh");
        assert_eq!(
            resolve_exe("no-such-prog-xyz", Some("/bin")),
            "no-such-prog-xyz"
        );
    }

    #[test]
    fn only_jobs_that_need_it_go_through_the_helper() {
        use crate::config::{parse_job, ClassDefaults};
        use crate::job::JobKey;
        let req = |text: &str, process: ProcessType, manager: Option<&str>| SpawnRequest {
            job: JobKey {
                job: "j".into(),
                instance: String::new(),
            },
            process,
            class: Arc::new(
                parse_job("j", "j.conf", text, &ClassDefaults::default()).expect("parse"),
            ),
            env: Vec::new(),
            env_set: Vec::new(),
            trace: false,
            cgroup_manager: manager.map(str::to_string),
        };
        let main = ProcessType::Main;
        let plain = "exec /bin/true\numask 027\nnice 5\nlimit nofile 10 20\n";
        assert!(!needs_helper(&req(plain, main, None)));
        for stanza in ["setuid u", "setgid g", "chroot /c", "chdir /d"] {
            let text = format!("{stanza}\nexec /bin/true\n");
            assert!(needs_helper(&req(&text, main, None)), "{stanza}");
            // The security process skips those steps.
            assert!(
                !needs_helper(&req(&text, ProcessType::Security, None)),
                "{stanza}"
            );
        }
        assert!(needs_helper(&req(plain, main, Some("unix:abstract=m"))));
        assert!(needs_helper(&req(
            plain,
            ProcessType::Security,
            Some("unix:abstract=m")
        )));
    }

    #[test]
    fn removal_on_empty_is_asked_by_the_last_process_type() {
        use crate::config::{parse_job, ClassDefaults};
        let class =
            |text: &str| parse_job("j", "j.conf", text, &ClassDefaults::default()).expect("parse");
        let main_only = class("exec /bin/true\n");
        assert!(is_last_process(&main_only, ProcessType::Main));
        // pre-start comes after main in the order: its spawn asks.
        let pre = class("pre-start exec /bin/true\nexec /bin/true\n");
        assert!(is_last_process(&pre, ProcessType::PreStart));
        assert!(!is_last_process(&pre, ProcessType::Main));
        let post = class("exec /bin/true\npost-stop exec /bin/true\npre-start exec /bin/true\n");
        assert!(is_last_process(&post, ProcessType::PostStop));
        assert!(!is_last_process(&post, ProcessType::PreStart));
    }
}
