//! The typed model of a parsed job file (Upstart's "job class").

use super::expr::EventExpr;
pub use super::process_table::ProcessTable;
pub use super::rare::{Rare, RareStanzas};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How a job's standard streams are wired (process-spawning.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Console {
    None,
    #[default]
    Log,
    Output,
    Owner,
    /// Keep init's own standard descriptors. Not a job-file keyword: only
    /// the `run` job of `outset run` uses it, to give the command the
    /// caller's stdin, stdout and stderr.
    Inherit,
}

impl Console {
    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "none" => Console::None,
            "log" => Console::Log,
            "output" => Console::Output,
            "owner" => Console::Owner,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Console::None => "none",
            Console::Log => "log",
            Console::Output => "output",
            Console::Owner => "owner",
            Console::Inherit => "inherit",
        }
    }
}

/// How the main process tells init it is ready (`expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    None,
    Stop,
    Daemon,
    Fork,
    /// outset's own: the main process says `READY=1` on the sd_notify
    /// socket (extensions.md §7).
    Notify,
}

impl Expect {
    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "none" => Expect::None,
            "stop" => Expect::Stop,
            "daemon" => Expect::Daemon,
            "fork" => Expect::Fork,
            "notify" => Expect::Notify,
            _ => return None,
        })
    }
}

/// The six process slots of a job, in Upstart's index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessType {
    Main,
    PreStart,
    PostStart,
    PreStop,
    PostStop,
    Security,
}

impl ProcessType {
    pub const ALL: [ProcessType; 6] = [
        ProcessType::Main,
        ProcessType::PreStart,
        ProcessType::PostStart,
        ProcessType::PreStop,
        ProcessType::PostStop,
        ProcessType::Security,
    ];

    /// The name Upstart uses in messages and D-Bus (`main`, `pre-start`, …).
    pub fn name(self) -> &'static str {
        match self {
            ProcessType::Main => "main",
            ProcessType::PreStart => "pre-start",
            ProcessType::PostStart => "post-start",
            ProcessType::PreStop => "pre-stop",
            ProcessType::PostStop => "post-stop",
            ProcessType::Security => "security",
        }
    }

    /// The stanza prefix that introduces this process in a job file.
    pub fn from_stanza(word: &str) -> Option<Self> {
        Some(match word {
            "pre-start" => ProcessType::PreStart,
            "post-start" => ProcessType::PostStart,
            "pre-stop" => ProcessType::PreStop,
            "post-stop" => ProcessType::PostStop,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One process definition: a command line or a shell script body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// True for a `script … end script` block, false for `exec`.
    pub script: bool,
    /// The raw command text or the script body (indentation removed).
    pub command: String,
    /// Line of the stanza that defined it (for tools such as init-checkconf).
    #[serde(default)]
    pub line: usize,
}

/// Resources accepted by the `limit` stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Sigpending,
    Stack,
}

impl Resource {
    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word {
            "as" => Resource::As,
            "core" => Resource::Core,
            "cpu" => Resource::Cpu,
            "data" => Resource::Data,
            "fsize" => Resource::Fsize,
            "memlock" => Resource::Memlock,
            "msgqueue" => Resource::Msgqueue,
            "nice" => Resource::Nice,
            "nofile" => Resource::Nofile,
            "nproc" => Resource::Nproc,
            "rss" => Resource::Rss,
            "rtprio" => Resource::Rtprio,
            "sigpending" => Resource::Sigpending,
            "stack" => Resource::Stack,
            _ => return None,
        })
    }
}

/// `RLIM_INFINITY`, what `unlimited` stands for.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// Soft and hard value of one `limit` stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Defaults that depend on how the daemon runs, not on the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassDefaults {
    /// `--default-console`, else `log`.
    pub console: Console,
    /// 022, or init's own umask in user mode.
    pub umask: u32,
}

impl Default for ClassDefaults {
    fn default() -> Self {
        ClassDefaults {
            console: Console::Log,
            umask: 0o022,
        }
    }
}

/// `exit-container-on-failure [CODE]` (an outset extension): when the
/// job fails, a container's init stops and exits with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerExit {
    /// The job's own status: its exit status, or 128+N for signal N.
    JobStatus,
    /// This status.
    Code(u8),
}

/// Everything one job file (plus its override) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobClass {
    /// Job name (path relative to its source, `.conf` removed). Shared
    /// with every table that names the class (the engine's, the control
    /// side's copy, the event index), which hold it instead of a copy.
    pub name: Arc<str>,
    /// The `.conf` file it came from.
    pub path: String,

    /// Instance-name template; empty for a single-instance job.
    pub instance: String,
    pub start_on: Option<EventExpr>,
    pub stop_on: Option<EventExpr>,

    /// `KEY=VALUE` or bare `KEY` entries, in file order.
    pub env: Vec<String>,

    pub processes: ProcessTable,

    pub task: bool,
    pub respawn: bool,
    /// Respawns allowed per interval; 0 means unlimited.
    pub respawn_limit: i32,
    /// Respawn window in seconds; 0 means unlimited.
    pub respawn_interval: i64,
    /// Exit statuses, and signals stored as `signum << 8`.
    pub normal_exit: Vec<i32>,
    pub expect: Expect,
    pub kill_timeout: i64,
    pub kill_signal: i32,
    pub reload_signal: i32,

    pub console: Console,
    pub umask: u32,
    pub debug: bool,
    /// Documentation, process set-up and the rest that most classes
    /// leave unset (rare.rs).
    pub rare: Rare,
}

impl JobClass {
    /// A class with every default, before any stanza is applied.
    pub fn new(name: &str, path: &str, defaults: &ClassDefaults) -> Self {
        JobClass {
            name: Arc::from(name),
            path: path.to_string(),
            instance: String::new(),
            start_on: None,
            stop_on: None,
            env: Vec::new(),
            processes: ProcessTable::new(),
            task: false,
            respawn: false,
            respawn_limit: 10,
            respawn_interval: 5,
            normal_exit: Vec::new(),
            expect: Expect::None,
            kill_timeout: 5,
            kill_signal: 15,
            reload_signal: 1,
            console: defaults.console,
            umask: defaults.umask,
            debug: false,
            rare: Rare::default(),
        }
    }

    pub fn process(&self, kind: ProcessType) -> Option<&Process> {
        self.processes.get(&kind)
    }
}
