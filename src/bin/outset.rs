//! outset: the init daemon (system mode as PID 1, or a session init with
//! `--user`).

// PID 1: see the crate-level lints of the library.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use outset::config::{system_sources, user_sources, ClassDefaults, Console};
use outset::daemon::{Daemon, DaemonConfig};
use outset::pid1::Mode;

/// `outset run --ipc-ns --net-ns`: private IPC and network.
#[path = "outset/isolate.rs"]
mod isolate;
/// `outset run`: a command inside a supervised, torn-down-afterwards set
/// of jobs.
#[path = "outset/run.rs"]
mod run;
/// `outset run`'s controlling terminal, lent to the command.
#[path = "outset/terminal.rs"]
mod terminal;

/// Options, parsed strictly or (as the real PID 1) tolerantly.
#[path = "outset/cli.rs"]
mod cli;

/// The job log directory: chosen, created, checked and locked.
#[path = "outset/logdir.rs"]
mod logdir;

/// `init 2` outside PID 1 becomes `telinit 2`.
#[path = "outset/telinit.rs"]
mod telinit;

use cli::Args;

/// Jobs get outset's own `PATH` and `TERM`, whatever else they inherit;
/// the directory of outset's executable comes first in their `PATH`, so
/// that jobs find outset's `initctl`, `telinit` and other tools wherever
/// they are installed, before another init's tools of the same names.
fn pass_path_and_term(job_env: &mut Vec<String>) {
    let path = std::env::var("PATH").unwrap_or_else(|_| outset::boot::DEFAULT_PATH.to_string());
    let path = match own_directory() {
        Some(dir) => outset::env::path_starting_with(&path, &dir),
        None => path,
    };
    outset::env::set(job_env, format!("PATH={path}"));
    if let Ok(v) = std::env::var("TERM") {
        outset::env::set(job_env, format!("TERM={v}"));
    }
}

/// The directory outset's executable was started from.
fn own_directory() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.to_str()?;
    // A `:` would split it in two in PATH.
    (!dir.contains(':')).then(|| dir.to_string())
}

/// A command-line mistake, reported the way clap reports its own (exit 2).
fn usage_error(msg: &str) -> ExitCode {
    use clap::CommandFactory;
    let _ = Args::command()
        .error(clap::error::ErrorKind::UnknownArgument, msg)
        .print();
    ExitCode::from(2)
}

fn fatal(msg: &str) -> ExitCode {
    eprintln!("init: {msg}");
    ExitCode::from(1)
}

/// The log directory, created and checked (a warning names the reason it
/// cannot be used), and locked: a warning names another init already
/// writing to it. The lock must be kept open for as long as outset runs.
fn prepare_logdir(args: &Args, boot: bool) -> Result<(PathBuf, Option<File>), String> {
    let (dir, mode) = logdir::choose(args)?;
    if let Err(why) = logdir::prepare(&dir, mode, boot) {
        eprintln!(
            "init: Unable to use log directory {}: {why}; job output will be lost",
            dir.display()
        );
        return Ok((dir, None));
    }
    let (lock, holder) = logdir::lock(&dir);
    match holder {
        Some(pid) if pid > 0 => eprintln!(
            "init: Another init (pid {pid}) writes job logs to {}; their lines will interleave",
            dir.display()
        ),
        Some(_) => eprintln!(
            "init: Another init writes job logs to {}; their lines will interleave",
            dir.display()
        ),
        None => {}
    }
    Ok((dir, lock))
}

/// Warn about job directories named on the command line that do not
/// exist (the default ones often do not, and need no word).
fn warn_missing_confdirs(args: &Args) {
    let given = args
        .prepend_confdir
        .iter()
        .chain(&args.confdir)
        .chain(&args.append_confdir);
    for dir in given.filter(|d| !d.exists()) {
        eprintln!(
            "init: {}: Unable to load configuration: No such file or directory",
            dir.display()
        );
    }
}

fn main() -> ExitCode {
    // A job's child exec'd us to finish its setup (never returns). PID 1
    // is never the helper, whatever the kernel passes it.
    let mut raw = std::env::args();
    if raw.nth(1).as_deref() == Some(outset::spawn::helper::HELPER_FLAG) && std::process::id() != 1
    {
        outset::spawn::helper::main(&raw.collect::<Vec<_>>());
    }
    // Before anything else opens a descriptor: what did we inherit?
    let inherited_fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("run") {
        return run::main(argv, inherited_fds);
    }
    let is_pid1 = std::process::id() == 1;
    let mut args = if is_pid1 {
        cli::parse_tolerant(&argv)
    } else {
        cli::parse_strict(&argv)
    };
    if let Ok(cwd) = std::env::current_dir() {
        args.resolve_paths(&cwd);
    }
    // As Upstart's init: the environment can ask for the test mode too.
    if !args.user && std::env::var_os("UPSTART_USE_SESSION_BUS").is_some() {
        args.session = true;
    }
    let console = match args.default_console.as_deref() {
        None => Console::Log,
        Some(v) => match Console::from_keyword(v) {
            Some(c) => c,
            None => return fatal(&format!("invalid console type specified: {v}")),
        },
    };
    if args.user && !args.runlevel.is_empty() {
        return usage_error(&format!(
            "unexpected argument '{}': a session init takes no runlevel",
            args.runlevel.join(" ")
        ));
    }
    if args.user && args.session {
        return usage_error("--session and --user cannot be combined");
    }
    // Upstart's test mode: a system init that is neither root nor PID 1.
    let system = !args.user && !args.session;
    if system && !nix::unistd::getuid().is_root() {
        return fatal("Need to be root");
    }
    if system && !is_pid1 {
        if !args.runlevel.is_empty() {
            telinit::hand_off(&argv);
        }
        return fatal("Not being executed as init (use --user to run a session init)");
    }
    warn_missing_confdirs(&args);
    let sources = if args.user {
        let getenv = |k: &str| std::env::var(k).ok();
        match user_sources(
            &args.prepend_confdir,
            &args.confdir,
            &args.append_confdir,
            &getenv,
        ) {
            Ok(s) => s,
            Err(e) => return fatal(&e.to_string()),
        }
    } else {
        let env_confdir = std::env::var("UPSTART_CONFDIR").ok();
        system_sources(
            &args.prepend_confdir,
            &args.confdir,
            &args.append_confdir,
            env_confdir.as_deref(),
        )
    };
    let system_pid1 = system && is_pid1;
    // PID 1 only: machine or container, and why (logged once the daemon
    // has its logger).
    let (container, why) = if system_pid1 {
        let (container, reason) =
            outset::pid1::detect::Clues::gather(args.container, args.machine).decide();
        (
            container,
            Some(outset::pid1::detect::describe(container, &reason)),
        )
    } else {
        (false, None)
    };
    let machine = system_pid1 && !container;
    // Kept open (and so locked) until outset exits or re-execs.
    let (logdir, _logdir_lock) = match prepare_logdir(&args, machine) {
        Ok(d) => d,
        Err(e) => return fatal(&e),
    };

    // SAFETY: umask is a plain syscall; reading it means setting it back.
    let initial_umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    };
    let mut job_env: Vec<String> = Vec::new();
    if system_pid1 {
        let opts = outset::boot::BootOptions {
            container: !machine,
            restart: args.restart,
        };
        match outset::boot::pid1_setup(opts) {
            Ok(warnings) => warnings.iter().for_each(|w| eprintln!("init: {w}")),
            Err(e) => return fatal(&e.to_string()),
        }
    }
    if args.user && !args.no_inherit_env {
        job_env.extend(std::env::vars().map(|(k, v)| format!("{k}={v}")));
    }
    pass_path_and_term(&mut job_env);
    if system_pid1 && !machine {
        // Jobs can tell they run in a container, as with LXC and systemd.
        let engine = std::env::var("container").unwrap_or_else(|_| "outset".to_string());
        outset::env::set(&mut job_env, format!("container={engine}"));
    }
    let umask = if args.user && !args.no_inherit_env {
        initial_umask
    } else {
        0o022
    };
    let log_level = args.log_level();
    let startup_event = args.startup_event();
    let config = DaemonConfig {
        sources,
        defaults: ClassDefaults { console, umask },
        logdir,
        user_mode: args.user,
        no_log: args.no_log,
        debug: args.debug,
        startup_event,
        log_level,
        job_env,
        no_cgroups: args.no_cgroups,
        // As PID 1 outside a container, SIGTERM asks for a re-exec.
        mode: if args.user {
            Mode::User
        } else if args.session {
            Mode::Session
        } else if container {
            Mode::Container
        } else {
            Mode::Machine
        },
        run: None,
        control_name: None,
        kmsg: machine,
        no_dbus: args.no_dbus,
        argv,
        restart: args.restart,
        state_fd: args.state_fd,
        write_state_file: args.write_state_file
            || std::env::var_os("UPSTART_WRITE_STATEFILE").is_some(),
        inherited_fds,
    };
    let mut daemon = match Daemon::new(config) {
        Ok(d) => d,
        Err(e) => return fatal(&e.to_string()),
    };
    // In a container, `docker logs` and `kubectl logs` show PID 1's
    // standard output: job output goes there unless a directory was named.
    let logdir_named = args.logdir.is_some() || std::env::var_os("UPSTART_LOGDIR").is_some();
    if args.log_to_stdout || (is_pid1 && !args.user && container && !logdir_named) {
        daemon.log_to_stdout();
    }
    // Said once per boot: a re-exec'd image keeps the mode it was given.
    if let Some(why) = why.filter(|_| !args.restart) {
        daemon.announce(&why);
    }
    if machine {
        // From here on messages go to the kernel log; the console stays
        // free for jobs (pid1.md §2 step 5.15).
        if let Err(e) = outset::boot::stdio_to_null() {
            return fatal(&format!("Unable to setup standard file descriptors: {e}"));
        }
    }
    ExitCode::from(daemon.run() as u8)
}
