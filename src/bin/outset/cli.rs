//! The daemon's command line: strict everywhere except as the real PID 1,
//! where the kernel passes init every boot parameter it did not use.

use clap::{CommandFactory, FromArgMatches, Parser};
use std::path::{Path, PathBuf};

use outset::job::Level;

const RUN_HELP: &str = "\
Run mode:
  outset run [DAEMON-OPTIONS] [--pid-ns] [--settle-timeout SECS] -- COMMAND [ARG]...
      Start the jobs, run COMMAND once they have settled, stop everything
      and exit with COMMAND's status (see `outset run --help`).

Outside PID 1, `outset RUNLEVEL` (2, q, u, ...) is handed to telinit(8).";

#[derive(Parser, Debug)]
#[command(
    name = "outset",
    version,
    about = "Upstart-compatible job supervisor",
    // As libnih does: a flag given twice is simply set, a repeated
    // valued option keeps its last value.
    args_override_self = true,
    after_help = RUN_HELP
)]
pub struct Args {
    /// Run as a session init for the current user.
    #[arg(long)]
    pub user: bool,
    /// Replace the default job directories (repeatable).
    #[arg(long, value_name = "DIR")]
    pub confdir: Vec<PathBuf>,
    /// Add a job directory before the defaults (repeatable).
    #[arg(long, value_name = "DIR")]
    pub prepend_confdir: Vec<PathBuf>,
    /// Add a job directory after the defaults (repeatable).
    #[arg(long, value_name = "DIR")]
    pub append_confdir: Vec<PathBuf>,
    /// Directory for `console log` output (created if missing).
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
    /// `console log` output to standard output as `JOB: LINE` (the default
    /// in a container without `--logdir`).
    #[arg(long)]
    pub log_to_stdout: bool,
    /// Disable job logging (`console log` acts as `console none`).
    #[arg(long)]
    pub no_log: bool,
    /// Do not emit the initial event.
    #[arg(long)]
    pub no_startup_event: bool,
    /// Emit NAME instead of `startup`.
    #[arg(long, value_name = "NAME")]
    pub startup_event: Option<String>,
    /// Default `console` for jobs without one (none, output, owner, log).
    #[arg(long, value_name = "VALUE")]
    pub default_console: Option<String>,
    /// User mode: do not copy outset's environment and umask into jobs.
    #[arg(long)]
    pub no_inherit_env: bool,
    /// Never connect to a message bus.
    #[arg(long)]
    pub no_dbus: bool,
    /// Ignore `cgroup` stanzas.
    #[arg(long)]
    pub no_cgroups: bool,
    /// PID 1 of a container: SIGTERM stops every job and exits.
    #[arg(long)]
    pub container: bool,
    /// PID 1 of a machine even inside a PID namespace or a container.
    #[arg(long)]
    pub machine: bool,
    /// Log goal and state changes and events.
    #[arg(short, long)]
    pub verbose: bool,
    /// Log everything; also honour the `debug` stanza.
    #[arg(long)]
    pub debug: bool,
    /// Log errors only (`--error` is the same).
    #[arg(short, long, alias = "error")]
    pub quiet: bool,
    /// Keep the state received on each re-exec in LOGDIR/upstart.state.
    #[arg(long)]
    pub write_state_file: bool,
    /// Upstart's test mode: a system init, not PID 1, controlled over the
    /// D-Bus session bus; SIGTERM re-execs it.
    #[arg(long)]
    pub session: bool,
    /// Upstart's chroot sessions: not supported.
    #[arg(long, hide = true)]
    pub chroot_sessions: bool,
    /// This image was re-exec'd (no startup event).
    #[arg(long)]
    pub restart: bool,
    /// Read the previous image's state from FD.
    #[arg(long, value_name = "FD")]
    pub state_fd: Option<i32>,
    /// A runlevel request (`2`, `q`, `u`, ...), handed to telinit.
    #[arg(hide = true)]
    pub runlevel: Vec<String>,
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
/// Options that are plain flags. Not `--help` nor `--version`: printing
/// and exiting would end PID 1.
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
    "--error",
    "--write-state-file",
    "--session",
    "--chroot-sessions",
];

/// Keep only the options outset knows: the kernel passes init every
/// parameter it did not use itself (`splash`, `single`, …), and those
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

/// The command line of a process that is not PID 1: anything unknown or
/// malformed is refused with clap's usual error (exit 2).
pub fn parse_strict(argv: &[String]) -> Args {
    let args = Args::parse_from(argv);
    if let Some(why) = args.unsupported() {
        Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, why)
            .exit();
    }
    args
}

/// PID 1's command line: unknown words and bad values are dropped, and
/// nothing here may end the process.
pub fn parse_tolerant(argv: &[String]) -> Args {
    let known = known_args(argv.iter().cloned());
    let matches = Args::command()
        .ignore_errors(true)
        .try_get_matches_from(known);
    let args = matches
        .ok()
        .and_then(|m| Args::from_arg_matches(&m).ok())
        .unwrap_or_else(|| Args::parse_from([argv.first().cloned().unwrap_or_default()]));
    if let Some(why) = args.unsupported() {
        eprintln!("init: {why}; ignored");
    }
    args
}

impl Args {
    /// Why an option of Upstart's init that outset does not implement was
    /// given.
    pub fn unsupported(&self) -> Option<&'static str> {
        if self.chroot_sessions {
            Some("--chroot-sessions is not supported: outset does not implement chroot sessions")
        } else {
            None
        }
    }

    /// The log priority the verbosity options ask for.
    pub fn log_level(&self) -> Level {
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
    pub fn startup_event(&self) -> Option<String> {
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

    /// Make every path option absolute against `cwd`: PID 1 changes to
    /// `/` before it reads them.
    pub fn resolve_paths(&mut self, cwd: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        };
        self.confdir.iter_mut().for_each(abs);
        self.prepend_confdir.iter_mut().for_each(abs);
        self.append_confdir.iter_mut().for_each(abs);
        self.logdir.iter_mut().for_each(abs);
    }
}
