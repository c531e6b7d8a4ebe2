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

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use outset::config::{system_sources, user_sources, ClassDefaults, Console};
use outset::daemon::{Daemon, DaemonConfig};
use outset::job::Level;
use outset::pid1::Mode;

/// `outset run`: a command inside a supervised, torn-down-afterwards set
/// of jobs.
#[path = "outset/run.rs"]
mod run;

#[derive(Parser, Debug)]
#[command(
    name = "outset",
    version,
    about = "Upstart-compatible job supervisor",
    ignore_errors = true
)]
struct Args {
    /// Run as a session init for the current user.
    #[arg(long)]
    user: bool,
    /// Replace the default job directories (repeatable).
    #[arg(long, value_name = "DIR")]
    confdir: Vec<PathBuf>,
    /// Add a job directory before the defaults (repeatable).
    #[arg(long, value_name = "DIR")]
    prepend_confdir: Vec<PathBuf>,
    /// Add a job directory after the defaults (repeatable).
    #[arg(long, value_name = "DIR")]
    append_confdir: Vec<PathBuf>,
    /// Directory for `console log` output.
    #[arg(long, value_name = "DIR")]
    logdir: Option<PathBuf>,
    /// `console log` output to standard output as `JOB: LINE` (the default
    /// in a container without `--logdir`).
    #[arg(long)]
    log_to_stdout: bool,
    /// Disable job logging (`console log` acts as `console none`).
    #[arg(long)]
    no_log: bool,
    /// Do not emit the initial event.
    #[arg(long)]
    no_startup_event: bool,
    /// Emit NAME instead of `startup`.
    #[arg(long, value_name = "NAME")]
    startup_event: Option<String>,
    /// Default `console` for jobs without one (none, output, owner, log).
    #[arg(long, value_name = "VALUE")]
    default_console: Option<String>,
    /// User mode: do not copy outset's environment and umask into jobs.
    #[arg(long)]
    no_inherit_env: bool,
    /// Never connect to a message bus.
    #[arg(long)]
    no_dbus: bool,
    /// Ignore `cgroup` stanzas.
    #[arg(long)]
    no_cgroups: bool,
    /// PID 1 of a container: SIGTERM stops every job and exits.
    #[arg(long)]
    container: bool,
    /// PID 1 of a machine even inside a PID namespace or a container.
    #[arg(long)]
    machine: bool,
    /// Log goal and state changes and events.
    #[arg(short, long)]
    verbose: bool,
    /// Log everything; also honour the `debug` stanza.
    #[arg(long)]
    debug: bool,
    /// Log errors only.
    #[arg(short, long)]
    quiet: bool,
    /// This image was re-exec'd (no startup event).
    #[arg(long)]
    restart: bool,
    /// Read the previous image's state from FD.
    #[arg(long, value_name = "FD")]
    state_fd: Option<i32>,
}

/// Options that take a value.
const VALUED: &[&str] = &[
    "--state-fd",
    "--confdir",
    "--prepend-confdir",
    "--append-confdir",
    "--logdir",
    "--startup-event",
    "--default-console",
];
/// Options that are plain flags.
const FLAGS: &[&str] = &[
    "--restart",
    "--user",
    "--no-log",
    "--log-to-stdout",
    "--no-startup-event",
    "--no-inherit-env",
    "--no-dbus",
    "--no-cgroups",
    "--container",
    "--machine",
    "-v",
    "--verbose",
    "--debug",
    "-q",
    "--quiet",
    "--help",
    "-h",
    "--version",
    "-V",
];

impl Args {
    /// The log priority the verbosity options ask for.
    fn log_level(&self) -> Level {
        if self.debug {
            Level::Debug
        } else if self.verbose {
            Level::Info
        } else if self.quiet {
            Level::Error
        } else {
            Level::Message
        }
    }

    /// The event emitted at startup, unless `--no-startup-event`.
    fn startup_event(&self) -> Option<String> {
        if self.no_startup_event {
            None
        } else {
            Some(
                self.startup_event
                    .clone()
                    .unwrap_or_else(|| "startup".to_string()),
            )
        }
    }
}

/// Jobs get outset's own `PATH` and `TERM`, whatever else they inherit;
/// the directory of outset's executable ends their `PATH`, so that jobs
/// find `initctl` and outset's other tools wherever they are installed.
fn pass_path_and_term(job_env: &mut Vec<String>) {
    let path = std::env::var("PATH").unwrap_or_else(|_| outset::boot::DEFAULT_PATH.to_string());
    let path = match own_directory() {
        Some(dir) => outset::env::path_ending_with(&path, &dir),
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

/// Keep only the options outset knows: the kernel passes init every
/// parameter it did not use itself (`splash`, `quiet=1`, …), and those
/// must be ignored, not stop the parsing.
fn known_args(raw: impl Iterator<Item = String>) -> Vec<String> {
    let mut raw = raw.peekable();
    let mut out: Vec<String> = raw.next().into_iter().collect();
    while let Some(arg) = raw.next() {
        let name = arg.split('=').next().unwrap_or_default();
        if VALUED.contains(&name) {
            if arg.contains('=') {
                out.push(arg);
            } else if let Some(value) = raw.next() {
                out.push(arg);
                out.push(value);
            }
        } else if FLAGS.contains(&arg.as_str()) {
            out.push(arg);
        }
    }
    out
}

fn fatal(msg: &str) -> ExitCode {
    eprintln!("init: {msg}");
    ExitCode::from(1)
}

/// The directory for job logs, created if needed (user mode: 0700).
fn logdir(args: &Args) -> Result<PathBuf, String> {
    if !args.user {
        if let Some(dir) = std::env::var_os("UPSTART_LOGDIR") {
            return Ok(PathBuf::from(dir));
        }
        return Ok(args
            .logdir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/log/upstart")));
    }
    let dir = match &args.logdir {
        Some(d) => d.clone(),
        None => match std::env::var("XDG_CACHE_HOME")
            .ok()
            .filter(|d| d.starts_with('/'))
        {
            Some(d) => PathBuf::from(d).join("upstart"),
            None => match std::env::var("HOME").ok().filter(|h| h.starts_with('/')) {
                Some(h) => PathBuf::from(h).join(".cache/upstart"),
                None => return Err("Unable to determine log directory: HOME is not set".into()),
            },
        },
    };
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    Ok(dir)
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
    let args = Args::parse_from(known_args(argv.clone().into_iter()));
    let console = match args.default_console.as_deref() {
        None => Console::Log,
        Some(v) => match Console::from_keyword(v) {
            Some(c) => c,
            None => return fatal(&format!("invalid console type specified: {v}")),
        },
    };
    let is_pid1 = std::process::id() == 1;
    // SAFETY: getuid has no preconditions.
    if !args.user && unsafe { libc::getuid() } != 0 {
        return fatal("Need to be root");
    }
    if !args.user && !is_pid1 {
        return fatal("Not being executed as init (use --user to run a session init)");
    }
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
    let logdir = match logdir(&args) {
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
    // PID 1 only: machine or container, and why (logged once the daemon
    // has its logger).
    let (container, why) = if is_pid1 && !args.user {
        let (container, reason) =
            outset::pid1::detect::Clues::gather(args.container, args.machine).decide();
        (
            container,
            Some(outset::pid1::detect::describe(container, &reason)),
        )
    } else {
        (false, None)
    };
    let machine = is_pid1 && !args.user && !container;
    if is_pid1 && !args.user {
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
    if is_pid1 && !args.user && !machine {
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
