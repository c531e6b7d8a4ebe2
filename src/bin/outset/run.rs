//! `outset run [DAEMON-OPTIONS] [--pid-ns] [--ipc-ns] [--net-ns]
//! [--settle-timeout SECS] [--require JOB]... [--show-logs-on-failure]
//! -- COMMAND [ARG]...` (extensions.md §3): parse, optionally move into
//! new namespaces, then run the daemon in run mode.

use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use outset::config::{user_sources, ClassDefaults, Console};
use outset::daemon::{Daemon, DaemonConfig, RunSpec};
use outset::pid1::signals::FORWARDED;
use outset::pid1::Mode;

const DEFAULT_SETTLE: Duration = Duration::from_secs(60);

const USAGE: &str = "Usage: outset run [DAEMON-OPTIONS] [--pid-ns] [--ipc-ns] [--net-ns] \
     [--settle-timeout SECS] [--require JOB]... [--show-logs-on-failure] -- COMMAND [ARG]...";

fn usage(msg: &str) -> ExitCode {
    eprintln!("outset run: {msg}");
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("outset run: {msg}");
    ExitCode::from(1)
}

fn settle_timeout(text: &str) -> Option<Duration> {
    let secs: f64 = text.parse().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

pub fn main(argv: Vec<String>, inherited_fds: Vec<i32>) -> ExitCode {
    let argv0 = argv
        .first()
        .cloned()
        .unwrap_or_else(|| "outset".to_string());
    let rest = argv.get(2..).unwrap_or_default();
    if matches!(rest.first().map(String::as_str), Some("--help" | "-h")) {
        println!("{USAGE}");
        println!(
            "Run COMMAND once the jobs have settled, with this terminal's stdio; then stop\n\
             every job, kill what is left and exit with COMMAND's status (124 if the jobs\n\
             did not settle, 125 if a job failed or a --require'd job was not running\n\
             before COMMAND). DAEMON-OPTIONS are those of outset(8). See init(8)."
        );
        return ExitCode::SUCCESS;
    }
    let mut halves = rest.splitn(2, |a| a == "--");
    let (Some(opts), Some(command)) = (halves.next(), halves.next()) else {
        return usage("missing `--` before the command");
    };
    if command.is_empty() {
        return usage("missing command after `--`");
    }
    let mut pid_ns = false;
    let mut ipc_ns = false;
    let mut net_ns = false;
    let mut settle = DEFAULT_SETTLE;
    let mut required = Vec::new();
    let mut show_logs_on_failure = false;
    let mut daemon_opts = vec![argv0.clone()];
    let mut it = opts.iter();
    while let Some(opt) = it.next() {
        if opt == "--pid-ns" {
            pid_ns = true;
        } else if opt == "--ipc-ns" {
            ipc_ns = true;
        } else if opt == "--net-ns" {
            net_ns = true;
        } else if opt == "--show-logs-on-failure" {
            show_logs_on_failure = true;
        } else if let Some(job) = opt
            .strip_prefix("--require=")
            .map(str::to_string)
            .or_else(|| (opt == "--require").then(|| it.next().cloned().unwrap_or_default()))
        {
            if job.is_empty() {
                return usage("--require needs a job name");
            }
            required.push(job);
        } else if let Some(value) = opt
            .strip_prefix("--settle-timeout=")
            .map(str::to_string)
            .or_else(|| (opt == "--settle-timeout").then(|| it.next().cloned().unwrap_or_default()))
        {
            match settle_timeout(&value) {
                Some(d) => settle = d,
                None => return usage(&format!("invalid settle timeout: {value}")),
            }
        } else if opt == "--user" || opt.starts_with("--container") {
            return usage(&format!("{opt} does not apply to run mode"));
        } else {
            daemon_opts.push(opt.clone());
        }
    }
    let mut args = super::cli::parse_strict(&daemon_opts);
    if let Ok(cwd) = std::env::current_dir() {
        args.resolve_paths(&cwd);
    }
    // Run mode is a session init around one command: configuration from
    // --confdir (or the XDG locations), the caller's environment.
    args.user = true;
    let console = match args.default_console.as_deref() {
        None => Console::Log,
        Some(v) => match Console::from_keyword(v) {
            Some(c) => c,
            None => return fail(&format!("invalid console type specified: {v}")),
        },
    };
    let getenv = |k: &str| std::env::var(k).ok();
    let sources = match user_sources(
        &args.prepend_confdir,
        &args.confdir,
        &args.append_confdir,
        &getenv,
    ) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    // Kept open (and so locked) until the run ends.
    let (logdir, _logdir_lock) = match super::prepare_logdir(&args, false) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let uid = nix::unistd::getuid();
    let outer_pid = std::process::id();
    // Namespaces are root's (as a container engine's would be); say so
    // rather than let unshare(2) answer EPERM.
    for (asked, opt) in [
        (pid_ns, "--pid-ns"),
        (ipc_ns, "--ipc-ns"),
        (net_ns, "--net-ns"),
    ] {
        if asked && !nix::unistd::geteuid().is_root() {
            return fail(&format!("{opt} needs root"));
        }
    }
    if let Err(e) = super::isolate::isolate(ipc_ns, net_ns) {
        return fail(&e);
    }
    let terminal = super::terminal::Terminal::open();
    let mut control_name = None;
    if pid_ns {
        match enter_pid_namespace() {
            Ok(None) => {}
            Ok(Some(code)) => {
                // Outside: group ids mean here what they meant before.
                if let Some(t) = &terminal {
                    t.restore();
                }
                return code;
            }
            Err(e) => return fail(&e),
        }
        // Inside, every run is PID 1: name the socket after the outer pid.
        control_name = Some(format!("/com/ubuntu/upstart-session/{uid}/{outer_pid}"));
    }

    // SAFETY: reading the umask means setting it back.
    let umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    };
    let mut job_env: Vec<String> = Vec::new();
    if !args.no_inherit_env {
        job_env.extend(std::env::vars().map(|(k, v)| format!("{k}={v}")));
    }
    super::pass_path_and_term(&mut job_env);
    let log_level = args.log_level();
    let startup_event = args.startup_event();
    let config = DaemonConfig {
        sources,
        defaults: ClassDefaults {
            console,
            umask: if args.no_inherit_env { 0o022 } else { umask },
        },
        logdir,
        user_mode: true,
        no_log: args.no_log,
        debug: args.debug,
        startup_event,
        log_level,
        job_env,
        no_cgroups: args.no_cgroups,
        mode: Mode::Run,
        run: Some(RunSpec {
            command: command.to_vec(),
            settle_timeout: settle,
            required,
            show_logs_on_failure,
            terminal: terminal.as_ref().map(|t| t.fd()),
        }),
        control_name,
        kmsg: false,
        no_dbus: true,
        argv,
        restart: false,
        state_fd: None,
        write_state_file: false,
        inherited_fds,
    };
    let mut daemon = match Daemon::new(config) {
        Ok(d) => d,
        Err(e) => return fail(&e.to_string()),
    };
    let status = daemon.run().clamp(0, 255) as u8;
    // Inside a PID namespace the outer process gives it back.
    if let (Some(t), false) = (&terminal, pid_ns) {
        t.restore();
    }
    ExitCode::from(status)
}

/// New PID and mount namespaces: the parent stays outside, passes the
/// run-mode signals on and exits with the child's status; the child
/// (PID 1 inside) mounts a fresh `/proc` and returns `Ok(None)`.
fn enter_pid_namespace() -> Result<Option<ExitCode>, String> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unable to create PID and mount namespaces: {}", e.desc()))?;
    // Mounts made here must not show up outside.
    super::isolate::make_mounts_private()?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    for sig in FORWARDED {
        mask.add(sig);
    }
    mask.thread_block()
        .map_err(|e| format!("unable to block signals: {}", e.desc()))?;
    // SAFETY: still single-threaded: nothing has started a thread yet.
    match unsafe { fork() }.map_err(|e| format!("unable to fork: {}", e.desc()))? {
        ForkResult::Child => {
            // If the outside process dies, the namespace goes with it.
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>)
                .map_err(|e| format!("unable to mount /proc: {}", e.desc()))?;
            Ok(None)
        }
        ForkResult::Parent { child } => Ok(Some(wait_outside(child, &mask))),
    }
}

/// Outside the namespace: forward signals to its PID 1 until it ends.
fn wait_outside(child: Pid, mask: &SigSet) -> ExitCode {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return ExitCode::from(code as u8),
            Ok(WaitStatus::Signaled(_, sig, _)) => return ExitCode::from(128 + sig as u8),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("outset run: {}", e.desc());
                return ExitCode::from(1);
            }
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(child, sig);
            }
            Err(_) => {}
        }
    }
}
