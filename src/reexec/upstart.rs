//! Import of Upstart's stateful re-exec payload (reexec.md §4).
//!
//! Upstart 1.6 to 1.13 serialise their whole runtime state as one JSON
//! text. This module turns such a text into outset's engine state. It runs
//! in PID 1, so nothing here may panic on input: every access to the JSON
//! is checked, and malformed data is an [`ImportError`].
//!
//! Leniency follows the versions: keys that older releases did not write
//! (`reload_signal`, `apparmor_switch`, `cgroups`, `conf_sources`,
//! `job_environment`, `process_data`, trees as strings before 1.9, five
//! process slots before the security process existed, …) take the
//! defaults Upstart itself uses; keys present with the wrong type, unknown
//! enumerator names and dangling references are errors. Unknown keys are
//! ignored.
//!
//! Chroot sessions (session index ≥ 1) are not restored — Upstart skips
//! them too — but they are counted, and the events their objects held are
//! released so that they can finish.

use super::tree::{Map, Value};
use compact_str::CompactString;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Display};
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

use crate::config::{
    parse_job, CgroupController, CgroupName, CgroupSetting, ClassDefaults, ConfSource, Console,
    EventExpr, Expect, JobClass, Operator, Process, ProcessType, RLimit, Resource, SourceKind,
    RLIM_INFINITY,
};
use crate::env;
use crate::event::{EventId, EventTree, NodeKind, Progress};
use crate::job::{
    ClassChange, Engine, EngineOptions, Event, EventWaiter, Goal, Held, Instance, JobKey, Slot,
    State, Trace,
};

mod stream;
pub use stream::ReadError;
pub(super) use stream::{import_from, Streamed};

/// Why a payload could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportError {
    #[error("state data is not valid JSON: {0}")]
    Json(String),
    #[error("{at}: missing key \"{key}\"")]
    MissingKey { at: String, key: String },
    #[error("{at}: wrong type: expected {expected}, found {found}")]
    WrongType {
        at: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{at}: bad value \"{value}\": expected one of {expected}")]
    BadEnum {
        at: String,
        value: String,
        expected: String,
    },
    #[error("{at}: {reason}")]
    BadValue { at: String, reason: String },
}

/// What the payload held and what became of it. The first group counts the
/// payload as it is (so that it can be compared with the JSON); the others
/// say what was restored, skipped or dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Chroot sessions listed (`sessions`).
    pub sessions: usize,
    /// Entries of `conf_sources`, of every session.
    pub conf_sources: usize,
    /// Conf files listed under all `conf_sources`.
    pub conf_files: usize,
    /// Entries of `job_classes`, of every session.
    pub job_classes: usize,
    /// Instances (`jobs`) across all classes.
    pub jobs: usize,
    /// Entries of `events`.
    pub events: usize,
    /// Blocked entries in events' and instances' `blocking` lists.
    pub blocked: usize,

    /// Sources not restored: chroot sessions and `CONF_DIR` sources (which
    /// never hold jobs).
    pub skipped_sources: usize,
    /// Classes of chroot sessions, and their instances.
    pub skipped_classes: usize,
    pub skipped_jobs: usize,
    /// Events of chroot sessions.
    pub skipped_events: usize,
    /// Blocked entries restored.
    pub blocked_restored: usize,
    /// Blocked entries dropped: D-Bus method callers (their connections do
    /// not survive the exec) and references to objects not restored.
    pub blocked_dropped: usize,
    /// Event holds taken away from events' `blockers` because the holder
    /// was not restored (chroot classes, class `stop on` trees).
    pub released_holds: usize,
    /// Global job environment present in the payload (1.11+).
    pub job_env_present: bool,
    /// Spawns whose status pipe is still open (1.13).
    pub spawns: usize,
    /// Live job logs handed over.
    pub logs: usize,
    /// Kill timers restored / dropped (a timer for a process other than
    /// main cannot be expressed).
    pub kill_timers: usize,
    pub dropped_kill_timers: usize,
    /// Resource limits set on a resource outset's `limit` has no name for.
    pub dropped_limits: usize,
    /// Holds counted in restored events' `blockers` that no restored tree
    /// leaf or instance accounts for (payloads before 1.9 lose tree
    /// values). `blockers` is kept verbatim (reexec.md §4.3), so such an
    /// event stays in `handling` until something releases it.
    pub unheld_blockers: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sessions {}, sources {} ({} skipped), conf files {}, classes {} ({} skipped), \
             jobs {} ({} skipped), events {} ({} skipped), blocked {} ({} restored, {} dropped), \
             released holds {}, spawns {}, logs {}, kill timers {} ({} dropped), \
             dropped limits {}, unheld blockers {}, job environment {}",
            self.sessions,
            self.conf_sources,
            self.skipped_sources,
            self.conf_files,
            self.job_classes,
            self.skipped_classes,
            self.jobs,
            self.skipped_jobs,
            self.events,
            self.skipped_events,
            self.blocked,
            self.blocked_restored,
            self.blocked_dropped,
            self.released_holds,
            self.spawns,
            self.logs,
            self.kill_timers,
            self.dropped_kill_timers,
            self.dropped_limits,
            self.unheld_blockers,
            if self.job_env_present {
                "present"
            } else {
                "absent"
            },
        )
    }
}

/// A job process's output log that Upstart was feeding when it exec'd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedLog {
    pub job: JobKey,
    pub process: ProcessType,
    /// Log file path.
    pub path: String,
    /// The pty master the process writes to.
    pub pty_fd: i32,
    /// The open log file, if any.
    pub file_fd: Option<i32>,
    pub uid: u32,
    /// Output not yet written to the file.
    pub unflushed: Vec<u8>,
    pub detached: bool,
    pub remote_closed: bool,
    pub open_errno: i32,
}

/// A script still to be written to its shell once the spawn reports
/// success (the shell reads it from `shell_fd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingScript {
    pub job: JobKey,
    pub process: ProcessType,
    pub shell_fd: i32,
    pub script: String,
}

/// The engine state rebuilt from an Upstart payload, plus what the daemon
/// needs around it.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Classes, instances and events; the pid index and event numbering are
    /// already rebuilt (`Engine::reindex`). `init_env` is left empty.
    pub engine: Engine,
    /// Configuration sources of the default session.
    pub sources: Vec<ConfSource>,
    /// Global job environment (empty if the payload had none; see
    /// `summary.job_env_present`).
    pub job_env: Vec<String>,
    /// Upstart passes its log level on the command line, not in the
    /// payload: always `None`.
    pub log_priority: Option<String>,
    pub cgroup_manager: Option<String>,
    /// `control_bus_address` (user mode: the D-Bus session bus address).
    pub bus_address: Option<String>,
    /// Spawns in flight: (status pipe read end, instance, process).
    pub spawns: Vec<(i32, JobKey, ProcessType)>,
    pub scripts: Vec<PendingScript>,
    pub logs: Vec<ImportedLog>,
    /// Inherited descriptors the payload names that nothing here takes
    /// over (instances' `fds`, files of events not restored, pipes of
    /// spawns whose process is gone); the caller should close them.
    pub stray_fds: Vec<i32>,
    pub summary: ImportSummary,
}

/// Read an Upstart re-exec payload.
pub fn import(json: &str) -> Result<Imported, ImportError> {
    import_at(json, monotonic_ms())
}

/// CLOCK_MONOTONIC in milliseconds, the clock of `kill_deadline`.
fn monotonic_ms() -> Option<u64> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    let secs = u64::try_from(ts.tv_sec()).ok()?;
    let nanos = u64::try_from(ts.tv_nsec()).ok()?;
    Some(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))
}

fn import_at(json: &str, now_ms: Option<u64>) -> Result<Imported, ImportError> {
    let mut de = serde_json::Deserializer::from_str(json);
    stream::import_from(&mut de, now_ms, &mut |_, _, _| Ok(()))
        .map(|s| s.imported)
        .map_err(ImportError::from)
}

impl Importer {
    fn new(now_ms: Option<u64>) -> Self {
        Importer {
            now_ms,
            summary: ImportSummary::default(),
            events: Vec::new(),
            slots: BTreeMap::new(),
            spawns: Vec::new(),
            scripts: Vec::new(),
            logs: Vec::new(),
            stray_fds: Vec::new(),
        }
    }

    /// What job classes need before they can be imported: the events
    /// (their trees and instances name events by index) and the
    /// configuration sources (which name their files).
    fn prepare(&mut self, top: &Obj<'_>) -> Result<Conf, ImportError> {
        // Their blocking lists once the jobs exist (`finish`).
        let events = top.array("events")?;
        let events_at = top.base("events");
        for (i, e) in events.iter().enumerate() {
            let e = Obj::element(e, &events_at, i)?;
            let ev = self.event(&e, i)?;
            self.events.push(ev);
        }
        self.summary.events = events.len();
        self.conf_sources(top)
    }

    /// One entry of `job_classes`, at index `i`. Its instances'
    /// environment lists are moved out of it.
    fn class_at(&mut self, c: &mut Value, i: usize, conf: &Conf) -> Result<(), ImportError> {
        let lists = take_lists(c);
        let c = Obj::element(c, &Base::Static("job_classes"), i)?;
        self.summary.job_classes += 1;
        self.class(&c, conf, lists)
    }

    /// The rest of the top level, once every class is in, and the engine.
    fn finish(mut self, top: &Obj<'_>, conf: Conf) -> Result<Imported, ImportError> {
        // Sessions: only counted.
        for s in top.objects("sessions")? {
            s.opt_str("chroot")?;
            s.opt_str("conf_path")?;
            self.summary.sessions += 1;
        }
        let bus_address = top.opt_str("control_bus_address")?.map(str::to_string);
        let cgroup_manager = top.opt_str("cgroup_manager_address")?.map(str::to_string);
        // The global job environment (1.11+).
        let job_env = match top.get("job_environment") {
            Some(_) => {
                self.summary.job_env_present = true;
                env_table(top.strings("job_environment")?)
            }
            None => Vec::new(),
        };
        // Who waits for which event.
        let events_at = top.base("events");
        for (i, e) in top.array("events")?.iter().enumerate() {
            let e = Obj::element(e, &events_at, i)?;
            self.event_blocking(&e, i)?;
        }

        let mut engine = Engine::new(
            EngineOptions {
                cgroup_manager: cgroup_manager.clone(),
                ..EngineOptions::default()
            },
            job_env.clone(),
            Vec::new(),
        );
        engine.slots = std::mem::take(&mut self.slots);
        engine.events = self.events.drain(..).flatten().collect();
        let in_flight: Vec<(i32, JobKey, ProcessType)> = self
            .spawns
            .iter()
            .filter_map(|(_, key, process)| {
                let pid = engine.instance(key)?.pid(*process);
                (pid > 0).then(|| (pid, key.clone(), *process))
            })
            .collect();
        engine.reindex(&in_flight);
        self.summary.unheld_blockers = unheld_blockers(&engine);
        self.summary.spawns = self.spawns.len();
        self.summary.logs = self.logs.len();

        Ok(Imported {
            engine,
            sources: conf.sources,
            job_env,
            log_priority: None,
            cgroup_manager,
            bus_address,
            spawns: self.spawns,
            scripts: self.scripts,
            logs: self.logs,
            stray_fds: self.stray_fds,
            summary: self.summary,
        })
    }
}

/// One job class object in the payload's layout, on its own (no events,
/// no instances): how outset hands over a class that waits to replace a
/// running one.
pub(super) fn class_from_json(v: &Value, at: &str) -> Result<JobClass, ImportError> {
    let mut imp = Importer::new(None);
    let conf = Conf {
        sources: Vec::new(),
        files: BTreeSet::new(),
        linked: BTreeMap::new(),
    };
    let c = Obj::new(v, at.to_string())?;
    imp.class(&c, &conf, Vec::new())?;
    let class = imp.slots.into_values().next().map(|s| s.class);
    class
        .map(Arc::unwrap_or_clone)
        .ok_or_else(|| bad(&at, "not a class of the default session"))
}

/// Sum over events of `blockers` beyond the holds the engine can see.
fn unheld_blockers(engine: &Engine) -> usize {
    let mut holds: BTreeMap<EventId, usize> = BTreeMap::new();
    for slot in engine.slots.values() {
        let trees = slot
            .start_on
            .iter()
            .chain(slot.instances.values().filter_map(|i| i.stop_on.as_ref()));
        for id in trees.flat_map(EventTree::held) {
            *holds.entry(id).or_default() += 1;
        }
        for inst in slot.instances.values() {
            for held in &inst.blocking {
                if let Held::Event(id) = held {
                    *holds.entry(*id).or_default() += 1;
                }
            }
        }
    }
    engine
        .events
        .iter()
        .map(|e| {
            let blockers = usize::try_from(e.blockers).unwrap_or(usize::MAX);
            blockers.saturating_sub(holds.get(&e.id).copied().unwrap_or(0))
        })
        .sum()
}

// ----------------------------------------------------------------------
// Checked access to the JSON

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong(at: &dyn Display, expected: &'static str, found: &Value) -> ImportError {
    ImportError::WrongType {
        at: display_at(at),
        expected,
        found: kind_of(found),
    }
}

fn bad(at: &dyn Display, reason: impl Into<String>) -> ImportError {
    ImportError::BadValue {
        at: display_at(at),
        reason: reason.into(),
    }
}

// Where a value sits is spelled out only when a message needs it: the
// happy path of a large payload must not format a path per value read.

fn display_at(at: &dyn Display) -> String {
    let at = at.to_string();
    if at.is_empty() {
        "state".to_string()
    } else {
        at
    }
}

/// Element `i` of the array at `at`.
#[derive(Clone, Copy)]
struct Indexed<'a>(&'a dyn Display, usize);

impl Display for Indexed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

fn index_at(at: &dyn Display, i: usize) -> Indexed<'_> {
    Indexed(at, i)
}

/// Where an object sits: a path, and its index when it is an element of
/// an array (the elements share the array's path).
#[derive(Clone)]
struct Loc {
    base: Base,
    index: Option<usize>,
}

/// A path in the payload. Made of its parent's place and a key, and
/// spelled out only when a message needs it: the happy path of a large
/// payload formats nothing.
#[derive(Clone)]
enum Base {
    Text(Arc<str>),
    Static(&'static str),
    /// Member `key` of the object at the place given.
    Member(Arc<(Loc, CompactString)>),
}

impl Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base::Text(t) => f.write_str(t),
            Base::Static(t) => f.write_str(t),
            Base::Member(m) => Field {
                obj: &m.0,
                key: &m.1,
            }
            .fmt(f),
        }
    }
}

impl Loc {
    fn is_root(&self) -> bool {
        let empty = match &self.base {
            Base::Text(t) => t.is_empty(),
            Base::Static(t) => t.is_empty(),
            Base::Member(_) => false,
        };
        empty && self.index.is_none()
    }
}

impl Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.base),
            None => self.base.fmt(f),
        }
    }
}

/// Member `key` of the object at `obj`.
#[derive(Clone, Copy)]
struct Field<'a> {
    obj: &'a Loc,
    key: &'a str,
}

impl Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.obj.is_root() {
            f.write_str(self.key)
        } else {
            write!(f, "{}.{}", self.obj, self.key)
        }
    }
}

fn int_of(v: &Value, at: &dyn Display) -> Result<i64, ImportError> {
    v.as_i64().ok_or_else(|| wrong(at, "integer", v))
}

fn narrow<T: TryFrom<i64>>(n: i64, at: &dyn Display) -> Result<T, ImportError> {
    T::try_from(n).map_err(|_| bad(at, format!("{n} is out of range")))
}

fn str_of<'a>(v: &'a Value, at: &dyn Display) -> Result<&'a str, ImportError> {
    v.as_str().ok_or_else(|| wrong(at, "string", v))
}

fn enum_of<T: Copy>(name: &str, at: &dyn Display, table: &[(&str, T)]) -> Result<T, ImportError> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| ImportError::BadEnum {
            at: display_at(at),
            value: name.to_string(),
            expected: table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })
}

/// A JSON object and where it sits in the payload (for messages).
struct Obj<'a> {
    map: &'a Map,
    at: Loc,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, at: impl Display) -> Result<Self, ImportError> {
        let at = Loc {
            base: Base::Text(at.to_string().into()),
            index: None,
        };
        Self::at_loc(v, at)
    }

    /// The top level of a payload.
    fn top(map: &'a Map) -> Self {
        Obj {
            map,
            at: Loc {
                base: Base::Static(""),
                index: None,
            },
        }
    }

    /// Element `index` of the array at `base`.
    fn element(v: &'a Value, base: &Base, index: usize) -> Result<Self, ImportError> {
        let at = Loc {
            base: base.clone(),
            index: Some(index),
        };
        Self::at_loc(v, at)
    }

    fn at_loc(v: &'a Value, at: Loc) -> Result<Self, ImportError> {
        match v {
            Value::Object(map) => Ok(Obj { map, at }),
            other => Err(wrong(&at, "object", other)),
        }
    }

    fn at<'k>(&'k self, key: &'k str) -> Field<'k> {
        Field { obj: &self.at, key }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn req(&self, key: &str) -> Result<&'a Value, ImportError> {
        self.get(key).ok_or_else(|| ImportError::MissingKey {
            at: display_at(&self.at),
            key: key.to_string(),
        })
    }

    fn obj(&self, key: &str) -> Result<Obj<'a>, ImportError> {
        let at = Loc {
            base: self.base(key),
            index: None,
        };
        Obj::at_loc(self.req(key)?, at)
    }

    fn req_str(&self, key: &str) -> Result<&'a str, ImportError> {
        str_of(self.req(key)?, &self.at(key))
    }

    /// Absent or null is `None`.
    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ImportError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => str_of(v, &self.at(key)).map(Some),
        }
    }

    fn req_int(&self, key: &str) -> Result<i64, ImportError> {
        int_of(self.req(key)?, &self.at(key))
    }

    fn opt_int(&self, key: &str, default: i64) -> Result<i64, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => int_of(v, &self.at(key)),
        }
    }

    /// An integer of a narrower type, range-checked.
    fn opt_num<T: TryFrom<i64>>(&self, key: &str, default: i64) -> Result<T, ImportError> {
        narrow(self.opt_int(key, default)?, &self.at(key))
    }

    /// Upstart writes booleans as 0/1; JSON booleans are accepted too.
    fn opt_bool(&self, key: &str, default: bool) -> Result<bool, ImportError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => int_of(v, &self.at(key)).map(|n| n != 0),
        }
    }

    /// Absent is empty.
    fn array(&self, key: &str) -> Result<&'a [Value], ImportError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(wrong(&self.at(key), "array", v)),
        }
    }

    fn req_array(&self, key: &str) -> Result<&'a [Value], ImportError> {
        match self.req(key)? {
            Value::Array(a) => Ok(a),
            v => Err(wrong(&self.at(key), "array", v)),
        }
    }

    /// An array of strings; absent is empty.
    fn strings(&self, key: &str) -> Result<Vec<String>, ImportError> {
        let at = self.at(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| str_of(v, &index_at(&at, i)).map(str::to_string))
            .collect()
    }

    fn ints(&self, key: &str) -> Result<Vec<i64>, ImportError> {
        let at = self.at(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| int_of(v, &index_at(&at, i)))
            .collect()
    }

    /// Each element of an array as an object.
    /// The path of member `key`, to share among its elements.
    fn base(&self, key: &str) -> Base {
        Base::Member(Arc::new((self.at.clone(), key.into())))
    }

    fn objects(&self, key: &str) -> Result<Vec<Obj<'a>>, ImportError> {
        let base = self.base(key);
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| Obj::element(v, &base, i))
            .collect()
    }
}

/// An instance's environment lists, moved out of the payload: they are
/// most of it, and copying them was most of an import's work.
#[derive(Default)]
struct Lists {
    env: Option<Vec<String>>,
    start_env: Option<Vec<String>>,
    stop_env: Option<Vec<String>>,
}

/// Take the environment lists out of each instance of class `c`, by
/// position in its `jobs`. Only arrays of strings are taken: anything else
/// stays for the import to report.
fn take_lists(c: &mut Value) -> Vec<Lists> {
    let Some(Value::Array(jobs)) = c.get_mut("jobs") else {
        return Vec::new();
    };
    jobs.iter_mut()
        .map(|j| Lists {
            env: take_strings(j, "env"),
            start_env: take_strings(j, "start_env"),
            stop_env: take_strings(j, "stop_env"),
        })
        .collect()
}

fn take_strings(j: &mut Value, key: &str) -> Option<Vec<String>> {
    let Some(Value::Array(items)) = j.get_mut(key) else {
        return None;
    };
    if !items.iter().all(Value::is_string) {
        return None;
    }
    let strings = std::mem::take(items)
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
        .collect();
    Some(strings)
}

/// An environment list with Upstart's replace-on-add semantics.
fn env_table(entries: Vec<String>) -> Vec<String> {
    // Usually every key is there once and the list is already the table
    // (a payload carries one list per instance: avoid the quadratic path).
    let mut keys: Vec<&str> = entries.iter().map(|e| env::key_of(e)).collect();
    keys.sort_unstable();
    if keys.windows(2).all(|w| matches!(w, [a, b] if a != b)) {
        return entries;
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        env::set(&mut out, e);
    }
    out
}

/// `//etc/init` → `/etc/init` (Upstart joins a root of `/` with `/etc`).
fn normalise_path(path: &str) -> String {
    let rest = path.trim_start_matches('/');
    if rest.len() + 1 < path.len() {
        format!("/{rest}")
    } else {
        path.to_string()
    }
}

// ----------------------------------------------------------------------
// Enumerator names

pub(super) const GOALS: &[(&str, Goal)] = &[
    ("JOB_STOP", Goal::Stop),
    ("JOB_START", Goal::Start),
    ("JOB_RESPAWN", Goal::Respawn),
];

pub(super) const STATES: &[(&str, State)] = &[
    ("JOB_WAITING", State::Waiting),
    ("JOB_STARTING", State::Starting),
    ("JOB_SECURITY_SPAWNING", State::SecuritySpawning),
    ("JOB_SECURITY", State::Security),
    ("JOB_PRE_STARTING", State::PreStarting),
    ("JOB_PRE_START", State::PreStart),
    ("JOB_SPAWNING", State::Spawning),
    ("JOB_SPAWNED", State::Spawned),
    ("JOB_POST_STARTING", State::PostStarting),
    ("JOB_POST_START", State::PostStart),
    ("JOB_RUNNING", State::Running),
    ("JOB_PRE_STOPPING", State::PreStopping),
    ("JOB_PRE_STOP", State::PreStop),
    ("JOB_STOPPING", State::Stopping),
    ("JOB_KILLED", State::Killed),
    ("JOB_POST_STOPPING", State::PostStopping),
    ("JOB_POST_STOP", State::PostStop),
];

pub(super) const PROGRESS: &[(&str, Progress)] = &[
    ("EVENT_PENDING", Progress::Pending),
    ("EVENT_HANDLING", Progress::Handling),
    ("EVENT_FINISHED", Progress::Finished),
];

pub(super) const PROCESSES: &[(&str, Option<ProcessType>)] = &[
    ("PROCESS_MAIN", Some(ProcessType::Main)),
    ("PROCESS_PRE_START", Some(ProcessType::PreStart)),
    ("PROCESS_POST_START", Some(ProcessType::PostStart)),
    ("PROCESS_PRE_STOP", Some(ProcessType::PreStop)),
    ("PROCESS_POST_STOP", Some(ProcessType::PostStop)),
    ("PROCESS_SECURITY", Some(ProcessType::Security)),
    ("PROCESS_INVALID", None),
];

pub(super) const EXPECTS: &[(&str, Expect)] = &[
    ("EXPECT_NONE", Expect::None),
    ("EXPECT_STOP", Expect::Stop),
    ("EXPECT_DAEMON", Expect::Daemon),
    ("EXPECT_FORK", Expect::Fork),
];

pub(super) const CONSOLES: &[(&str, Console)] = &[
    ("CONSOLE_NONE", Console::None),
    ("CONSOLE_OUTPUT", Console::Output),
    ("CONSOLE_OWNER", Console::Owner),
    ("CONSOLE_LOG", Console::Log),
];

pub(super) const TRACES: &[(&str, Trace)] = &[
    ("TRACE_NONE", Trace::None),
    ("TRACE_NEW", Trace::New),
    ("TRACE_NEW_CHILD", Trace::NewChild),
    ("TRACE_NORMAL", Trace::Normal),
];

/// `CONF_DIR` sources hold configuration files, never jobs: not restored.
const SOURCE_TYPES: &[(&str, Option<SourceKind>)] = &[
    ("CONF_FILE", Some(SourceKind::File)),
    ("CONF_DIR", None),
    ("CONF_JOB_DIR", Some(SourceKind::Dir)),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpType {
    Or,
    And,
    Match,
}

const OP_TYPES: &[(&str, OpType)] = &[
    ("EVENT_OR", OpType::Or),
    ("EVENT_AND", OpType::And),
    ("EVENT_MATCH", OpType::Match),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockedType {
    Job,
    Event,
    /// A pending D-Bus method call.
    Method,
}

const BLOCKED_TYPES: &[(&str, BlockedType)] = &[
    ("BLOCKED_JOB", BlockedType::Job),
    ("BLOCKED_EVENT", BlockedType::Event),
    ("BLOCKED_EMIT_METHOD", BlockedType::Method),
    ("BLOCKED_JOB_START_METHOD", BlockedType::Method),
    ("BLOCKED_JOB_STOP_METHOD", BlockedType::Method),
    ("BLOCKED_JOB_RESTART_METHOD", BlockedType::Method),
    ("BLOCKED_INSTANCE_START_METHOD", BlockedType::Method),
    ("BLOCKED_INSTANCE_STOP_METHOD", BlockedType::Method),
    ("BLOCKED_INSTANCE_RESTART_METHOD", BlockedType::Method),
];

/// `limits` entries by index, with the C library's numbering of this
/// architecture (the payload comes from the same machine).
pub(super) fn resource_at(index: usize) -> Option<Resource> {
    let table = [
        (libc::RLIMIT_AS as usize, Resource::As),
        (libc::RLIMIT_CORE as usize, Resource::Core),
        (libc::RLIMIT_CPU as usize, Resource::Cpu),
        (libc::RLIMIT_DATA as usize, Resource::Data),
        (libc::RLIMIT_FSIZE as usize, Resource::Fsize),
        (libc::RLIMIT_MEMLOCK as usize, Resource::Memlock),
        (libc::RLIMIT_MSGQUEUE as usize, Resource::Msgqueue),
        (libc::RLIMIT_NICE as usize, Resource::Nice),
        (libc::RLIMIT_NOFILE as usize, Resource::Nofile),
        (libc::RLIMIT_NPROC as usize, Resource::Nproc),
        (libc::RLIMIT_RSS as usize, Resource::Rss),
        (libc::RLIMIT_RTPRIO as usize, Resource::Rtprio),
        (libc::RLIMIT_SIGPENDING as usize, Resource::Sigpending),
        (libc::RLIMIT_STACK as usize, Resource::Stack),
    ];
    table.iter().find(|(i, _)| *i == index).map(|(_, r)| *r)
}

/// `RLIM_NLIMITS` on Linux.
pub(super) const MAX_LIMITS: usize = 16;

/// The deepest `start on`/`stop on` tree accepted (as the job-file parser).
const MAX_DEPTH: usize = 1000;

/// Upstart's "nice not set".
pub(super) const NICE_UNSET: i64 = -21;

// ----------------------------------------------------------------------
// The import proper

/// Default-session configuration: the sources and their files.
struct Conf {
    sources: Vec<ConfSource>,
    /// Paths of the files of default-session sources.
    files: BTreeSet<String>,
    /// Class name → the first file the payload links to it.
    linked: BTreeMap<String, String>,
}

impl Conf {
    /// The `.conf` file of a class: the file named `DIR/NAME.conf` in the
    /// first job directory that has one, else the file the payload links to
    /// the class, else none (payloads before 1.9 list no sources).
    fn path_of(&self, name: &str) -> String {
        for src in self.sources.iter().filter(|s| s.kind == SourceKind::Dir) {
            let dir = src.path.to_string_lossy();
            let want = format!("{}/{name}.conf", dir.trim_end_matches('/'));
            if self.files.contains(&want) {
                return want;
            }
        }
        self.linked.get(name).cloned().unwrap_or_default()
    }
}

struct Importer {
    now_ms: Option<u64>,
    summary: ImportSummary,
    /// By payload index; `None` for events of chroot sessions.
    events: Vec<Option<Event>>,
    slots: BTreeMap<crate::job::ClassName, Slot>,
    spawns: Vec<(i32, JobKey, ProcessType)>,
    scripts: Vec<PendingScript>,
    logs: Vec<ImportedLog>,
    stray_fds: Vec<i32>,
}

/// A tree as read: the expression and its runtime form.
struct Tree {
    expr: EventExpr,
    tree: EventTree,
}

impl Importer {
    fn event(&mut self, e: &Obj<'_>, index: usize) -> Result<Option<Event>, ImportError> {
        let name = e.req_str("name")?.to_string();
        let env = e.strings("env")?;
        let fd = e.opt_num::<i32>("fd", -1)?;
        let session = e.opt_int("session", 0)?;
        if session < 0 {
            return Err(bad(&e.at("session"), "negative session index"));
        }
        let progress = enum_of(e.req_str("progress")?, &e.at("progress"), PROGRESS)?;
        let failed = e.opt_bool("failed", false)?;
        let blockers = e.opt_num::<u32>("blockers", 0)?;
        if session != 0 {
            self.summary.skipped_events += 1;
            if fd >= 0 {
                self.stray_fds.push(fd);
            }
            return Ok(None);
        }
        let id = u64::try_from(index).map_or(EventId::MAX, |i| i.saturating_add(1));
        Ok(Some(Event {
            id,
            name,
            env,
            progress,
            failed,
            blockers,
            blocking: Vec::new(),
            fd: (fd >= 0).then_some(fd),
        }))
    }

    /// An event index as found in the payload: the restored event's id, or
    /// `None` if that event was not restored. Out of range is an error.
    fn event_ref(&self, v: &Value, at: &dyn Display) -> Result<Option<EventId>, ImportError> {
        let n = int_of(v, at)?;
        let slot = usize::try_from(n).ok().and_then(|i| self.events.get(i));
        match slot {
            Some(ev) => Ok(ev.as_ref().map(|e| e.id)),
            None => Err(bad(
                at,
                format!(
                    "event index {n} out of range ({} events)",
                    self.events.len()
                ),
            )),
        }
    }

    /// Take one hold off an event whose holder is not restored.
    fn release_index(&mut self, index: i64) {
        let ev = usize::try_from(index)
            .ok()
            .and_then(|i| self.events.get_mut(i))
            .and_then(Option::as_mut);
        if let Some(ev) = ev {
            ev.blockers = ev.blockers.saturating_sub(1);
            self.summary.released_holds += 1;
        }
    }

    fn release_id(&mut self, id: EventId) {
        if let Some(index) = id.checked_sub(1).and_then(|i| i64::try_from(i).ok()) {
            self.release_index(index);
        }
    }

    fn conf_sources(&mut self, top: &Obj<'_>) -> Result<Conf, ImportError> {
        let mut conf = Conf {
            sources: Vec::new(),
            files: BTreeSet::new(),
            linked: BTreeMap::new(),
        };
        for s in top.objects("conf_sources")? {
            self.summary.conf_sources += 1;
            let session = s.opt_int("session", 0)?;
            if session < 0 {
                return Err(bad(&s.at("session"), "negative session index"));
            }
            let path = normalise_path(s.req_str("path")?);
            let kind = enum_of(s.req_str("type")?, &s.at("type"), SOURCE_TYPES)?;
            let mut files = Vec::new();
            for f in s.objects("conf_files")? {
                self.summary.conf_files += 1;
                let fpath = normalise_path(f.req_str("path")?);
                let class = match f.get("job_class") {
                    None | Some(Value::Null) => None,
                    Some(_) => {
                        let jc = f.obj("job_class")?;
                        let name = jc.req_str("name")?;
                        (jc.opt_int("session", 0)? == 0).then(|| name.to_string())
                    }
                };
                files.push((fpath, class));
            }
            match kind {
                Some(kind) if session == 0 => {
                    conf.sources.push(ConfSource {
                        path: PathBuf::from(path),
                        kind,
                    });
                    for (path, class) in files {
                        if let Some(class) = class {
                            conf.linked.entry(class).or_insert_with(|| path.clone());
                        }
                        conf.files.insert(path);
                    }
                }
                _ => self.summary.skipped_sources += 1,
            }
        }
        Ok(conf)
    }

    /// Class `c`; `lists` are its instances' environment lists where they
    /// were taken out of it already (see [`take_lists`]).
    fn class(&mut self, c: &Obj<'_>, conf: &Conf, lists: Vec<Lists>) -> Result<(), ImportError> {
        let session = c.req_int("session")?;
        if session < 0 {
            return Err(bad(&c.at("session"), "negative session index"));
        }
        let jobs = c.req_array("jobs")?;
        self.summary.jobs += jobs.len();
        if session != 0 {
            self.summary.skipped_classes += 1;
            self.summary.skipped_jobs += jobs.len();
            self.release_skipped_class(c, jobs);
            return Ok(());
        }

        let name = c.req_str("name")?;
        if name.is_empty() {
            return Err(bad(&c.at("name"), "empty job class name"));
        }
        if self.slots.contains_key(name) {
            return Err(bad(
                &c.at("name"),
                format!("job class \"{name}\" appears twice"),
            ));
        }
        let mut class = JobClass::new(name, &conf.path_of(name), &ClassDefaults::default());
        class.instance = c.opt_str("instance")?.unwrap_or_default().to_string();
        class.rare.description = c.opt_str("description")?.map(str::to_string);
        class.rare.author = c.opt_str("author")?.map(str::to_string);
        class.rare.version = c.opt_str("version")?.map(str::to_string);
        class.rare.usage = c.opt_str("usage")?.map(str::to_string);
        class.env = c.strings("env")?;
        class.rare.export = c.strings("export")?;
        class.rare.emits = c.strings("emits")?;

        let start_on = self.condition(c, "start_on", "start")?;
        let stop_on = self.condition(c, "stop_on", "stop")?;
        // The class's `stop on` is only a template: events its leaves hold
        // (none in practice) can never be released by anyone.
        if let Some(t) = &stop_on {
            let held: Vec<EventId> = t.tree.held().collect();
            for id in held {
                self.release_id(id);
            }
        }
        class.start_on = start_on.as_ref().map(|t| t.expr.clone());
        class.stop_on = stop_on.map(|t| t.expr);

        let processes = c.objects("process")?;
        if processes.len() > ProcessType::ALL.len() {
            return Err(bad(
                &c.at("process"),
                format!("{} process slots (at most 6)", processes.len()),
            ));
        }
        for (p, kind) in processes.iter().zip(ProcessType::ALL) {
            if let Some(command) = p.opt_str("command")? {
                class.processes.insert(
                    kind,
                    Process {
                        script: p.opt_bool("script", false)?,
                        command: command.to_string(),
                        line: 0,
                    },
                );
            }
        }

        class.expect = match c.opt_str("expect")? {
            Some(s) => enum_of(s, &c.at("expect"), EXPECTS)?,
            None => Expect::None,
        };
        class.task = c.opt_bool("task", false)?;
        class.kill_timeout = c.opt_int("kill_timeout", 5)?;
        class.kill_signal = c.opt_num("kill_signal", 15)?;
        class.reload_signal = c.opt_num("reload_signal", 1)?;
        class.respawn = c.opt_bool("respawn", false)?;
        class.respawn_limit = c.opt_num("respawn_limit", 10)?;
        class.respawn_interval = c.opt_int("respawn_interval", 5)?;
        class.normal_exit = c
            .ints("normalexit")?
            .into_iter()
            .map(|n| narrow(n, &c.at("normalexit")))
            .collect::<Result<_, _>>()?;
        class.console = match c.opt_str("console")? {
            Some(s) => enum_of(s, &c.at("console"), CONSOLES)?,
            None => Console::Log,
        };
        class.umask = c.opt_num("umask", 0o022)?;
        let nice = c.opt_int("nice", NICE_UNSET)?;
        class.rare.nice = match nice {
            NICE_UNSET => None,
            -20..=19 => Some(narrow(nice, &c.at("nice"))?),
            _ => return Err(bad(&c.at("nice"), format!("nice value {nice}"))),
        };
        class.rare.oom_score_adj = c.opt_num("oom_score_adj", 0)?;
        self.limits(c, &mut class)?;
        class.rare.chroot = c.opt_str("chroot")?.map(str::to_string);
        class.rare.chdir = c.opt_str("chdir")?.map(str::to_string);
        class.rare.setuid = c.opt_str("setuid")?.map(str::to_string);
        class.rare.setgid = c.opt_str("setgid")?.map(str::to_string);
        class.rare.apparmor_switch = c.opt_str("apparmor_switch")?.map(str::to_string);
        class.debug = c.opt_bool("debug", false)?;
        class.rare.exit_container_on_failure = match c.opt_int("exit_container_on_failure", -2)? {
            -2 => None,
            code => Some(
                u8::try_from(code).map_or(crate::config::ContainerExit::JobStatus, |c| {
                    crate::config::ContainerExit::Code(c)
                }),
            ),
        };
        class.rare.cgroups = cgroups(c)?;
        let deleted = c.opt_bool("deleted", false)?;
        let cgmanager_wait = c.opt_bool("cgmanager_wait", false)?;

        let mut instances = BTreeMap::new();
        let jobs_at = c.base("jobs");
        let mut lists = lists.into_iter();
        for (i, j) in jobs.iter().enumerate() {
            let j = Obj::element(j, &jobs_at, i)?;
            let inst = self.instance(&j, &class, lists.next().unwrap_or_default())?;
            if instances.contains_key(inst.name.as_str()) {
                return Err(bad(
                    &j.at("name"),
                    format!("instance \"{}\" appears twice", inst.name),
                ));
            }
            instances.insert(inst.name.as_str().into(), inst);
        }

        self.slots.insert(
            Arc::clone(&class.name).into(),
            Slot {
                class: Arc::new(class),
                start_on: start_on.map(|t| t.tree),
                instances,
                // A class whose file is gone goes with its last instance.
                pending: deleted.then_some(ClassChange::Delete),
                cgmanager_wait,
            },
        );
        Ok(())
    }

    /// A chroot-session class is not restored; the events its trees and
    /// instances held are released so that they can finish.
    fn release_skipped_class(&mut self, c: &Obj<'_>, jobs: &[Value]) {
        fn held_in(v: Option<&Value>) -> Vec<i64> {
            let Some(Value::Array(nodes)) = v else {
                return Vec::new();
            };
            nodes
                .iter()
                .filter_map(|n| n.get("event").and_then(Value::as_i64))
                .collect()
        }
        let mut held = held_in(c.get("start_on"));
        held.extend(held_in(c.get("stop_on")));
        for j in jobs {
            held.extend(held_in(j.get("stop_on")));
            if let Some(Value::Array(blocking)) = j.get("blocking") {
                for b in blocking {
                    if b.get("type").and_then(Value::as_str) == Some("BLOCKED_EVENT") {
                        held.extend(
                            b.get("data")
                                .and_then(|d| d.get("index"))
                                .and_then(Value::as_i64),
                        );
                    }
                }
                self.summary.blocked += blocking.len();
                self.summary.blocked_dropped += blocking.len();
            }
        }
        for index in held {
            self.release_index(index);
        }
    }

    fn limits(&mut self, c: &Obj<'_>, class: &mut JobClass) -> Result<(), ImportError> {
        let limits = c.objects("limits")?;
        if limits.len() > MAX_LIMITS {
            return Err(bad(
                &c.at("limits"),
                format!("{} entries (at most {MAX_LIMITS})", limits.len()),
            ));
        }
        for (i, l) in limits.iter().enumerate() {
            let soft = rlim(l, "rlim_cur")?;
            let hard = rlim(l, "rlim_max")?;
            if soft == 0 && hard == 0 {
                continue; // placeholder: not set
            }
            match resource_at(i) {
                Some(r) => {
                    class.rare.limits.insert(r, RLimit { soft, hard });
                }
                None => self.summary.dropped_limits += 1,
            }
        }
        Ok(())
    }

    /// `start_on`/`stop_on` of a class: a post-order operator list (1.9+),
    /// a collapsed expression string (1.8), or absent.
    fn condition(&self, o: &Obj<'_>, key: &str, stanza: &str) -> Result<Option<Tree>, ImportError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(nodes)) => self.operators(nodes, &o.base(key)),
            Some(Value::String(text)) => Ok(parse_condition(text, stanza, &o.at(key))?.map(|e| {
                let tree = EventTree::new(&e);
                Tree { expr: e, tree }
            })),
            Some(v) => Err(wrong(&o.at(key), "array or string", v)),
        }
    }

    /// Rebuild a tree from its post-order list, keeping each leaf's value
    /// and held event.
    fn operators(&self, nodes: &[Value], at: &Base) -> Result<Option<Tree>, ImportError> {
        // (expression, height) of each pending subtree.
        let mut stack: Vec<(EventExpr, usize)> = Vec::new();
        // (value, held event) of each node, in post-order.
        let mut leaves: Vec<(bool, Option<EventId>)> = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let n = Obj::element(n, at, i)?;
            let kind = enum_of(n.req_str("type")?, &n.at("type"), OP_TYPES)?;
            let mut value = n.opt_bool("value", false)?;
            match kind {
                OpType::Match => {
                    let event = n.req_str("name")?.to_string();
                    let args = n.strings("env")?;
                    let held = match n.get("event") {
                        None | Some(Value::Null) => None,
                        Some(v) => match self.event_ref(v, &n.at("event"))? {
                            Some(id) => Some(id),
                            // The event was not restored (chroot session).
                            None => {
                                value = false;
                                None
                            }
                        },
                    };
                    leaves.push((value, held));
                    stack.push((EventExpr::Match { event, args }, 1));
                }
                OpType::And | OpType::Or => {
                    if n.get("event").is_some_and(|v| !v.is_null()) {
                        return Err(bad(&n.at("event"), "an operator node cannot hold an event"));
                    }
                    let (Some((right, rh)), Some((left, lh))) = (stack.pop(), stack.pop()) else {
                        return Err(bad(&n.at, "operator without two operands"));
                    };
                    let height = 1 + lh.max(rh);
                    if height > MAX_DEPTH {
                        return Err(bad(&n.at, format!("tree deeper than {MAX_DEPTH}")));
                    }
                    let op = if kind == OpType::And {
                        Operator::And
                    } else {
                        Operator::Or
                    };
                    leaves.push((value, None));
                    stack.push((
                        EventExpr::Op {
                            op,
                            left: Box::new(left),
                            right: Box::new(right),
                        },
                        height,
                    ));
                }
            }
        }
        let expr = match (stack.pop(), stack.is_empty()) {
            (None, _) => return Ok(None),
            (Some((expr, _)), true) => expr,
            (Some(_), false) => {
                return Err(bad(at, "operands left over: not a single tree"));
            }
        };
        let mut tree = EventTree::new(&expr);
        if tree.nodes.len() != leaves.len() {
            return Err(bad(at, "tree does not match its node list"));
        }
        for (node, (value, event)) in tree.nodes.iter_mut().zip(leaves) {
            if matches!(node.kind, NodeKind::Match { .. }) {
                node.value = value;
                node.event = event;
            }
        }
        // Operator values follow from their operands (children come first).
        for i in 0..tree.nodes.len() {
            let operands = match tree.nodes.get(i).map(|n| &n.kind) {
                Some(NodeKind::And(l, r)) => Some((true, *l, *r)),
                Some(NodeKind::Or(l, r)) => Some((false, *l, *r)),
                _ => None,
            };
            if let Some((and, l, r)) = operands {
                let lv = tree.nodes.get(l).is_some_and(|n| n.value);
                let rv = tree.nodes.get(r).is_some_and(|n| n.value);
                if let Some(node) = tree.nodes.get_mut(i) {
                    node.value = if and { lv && rv } else { lv || rv };
                }
            }
        }
        Ok(Some(Tree { expr, tree }))
    }

    fn instance(
        &mut self,
        j: &Obj<'_>,
        class: &JobClass,
        lists: Lists,
    ) -> Result<Instance, ImportError> {
        let name = j.req_str("name")?;
        let key = JobKey::new(&class.name, name);
        let class_stop = || class.stop_on.as_ref().map(EventTree::new);
        let stop_on = match j.get("stop_on") {
            // Not written (1.6) or empty: the instance's copy of the class's.
            None | Some(Value::Null) => class_stop(),
            Some(Value::String(s)) if s.trim().is_empty() => class_stop(),
            Some(_) => self.condition(j, "stop_on", "stop")?.map(|t| t.tree),
        };
        let mut inst = Instance::new(name, stop_on);
        inst.goal = enum_of(j.req_str("goal")?, &j.at("goal"), GOALS)?;
        inst.state = enum_of(j.req_str("state")?, &j.at("state"), STATES)?;
        let list = |taken: Option<Vec<String>>, key| taken.map_or_else(|| j.strings(key), Ok);
        inst.env = env_table(list(lists.env, "env")?);
        let start_env = env_table(list(lists.start_env, "start_env")?);
        inst.start_env = (!start_env.is_empty()).then_some(start_env);
        let stop_env = env_table(list(lists.stop_env, "stop_env")?);
        inst.stop_env = (!stop_env.is_empty()).then_some(stop_env);

        for fd in j.ints("fds")? {
            self.stray_fds.push(narrow(fd, &j.at("fds"))?);
        }

        let pids = j.req_array("pid")?;
        if pids.len() != ProcessType::ALL.len() && pids.len() + 1 != ProcessType::ALL.len() {
            return Err(bad(
                &j.at("pid"),
                format!("{} entries (expected 5 or 6)", pids.len()),
            ));
        }
        let pids_at = j.at("pid");
        for (i, (v, kind)) in pids.iter().zip(ProcessType::ALL).enumerate() {
            let at = index_at(&pids_at, i);
            let pid: i32 = narrow(int_of(v, &at)?, &at)?;
            if pid < 0 {
                return Err(bad(&at, format!("negative pid {pid}")));
            }
            if pid > 0 {
                inst.pids.insert(kind, pid);
            }
        }

        if let Some(v) = j.get("blocker") {
            if !v.is_null() {
                inst.blocker = self.event_ref(v, &j.at("blocker"))?;
            }
        }
        let blocking_at = j.at("blocking");
        for (i, b) in j.objects("blocking")?.iter().enumerate() {
            self.summary.blocked += 1;
            let at = index_at(&blocking_at, i);
            match self.blocked(b, &at)? {
                Blocked::Event(id) => {
                    inst.blocking.push(Held::Event(id));
                    self.summary.blocked_restored += 1;
                }
                Blocked::Job(..) | Blocked::Dropped => self.summary.blocked_dropped += 1,
            }
        }

        let kill_process = match j.opt_str("kill_process")? {
            Some(s) => enum_of(s, &j.at("kill_process"), PROCESSES)?,
            None => None,
        };
        if j.get("kill_timer").is_some() {
            let kt = j.obj("kill_timer")?;
            let timeout = kt.req_int("timeout")?;
            let due = kt.req_int("due")?;
            if timeout < 0 {
                return Err(bad(&kt.at("timeout"), "negative timeout"));
            }
            if kill_process == Some(ProcessType::Main) {
                // `due` is CLOCK_MONOTONIC seconds, which survives execve.
                // A due time further away than the whole timeout cannot be
                // right; it is cut back to a full timeout from now.
                let due_ms = u64::try_from(due).unwrap_or(0).saturating_mul(1000);
                let timeout_ms = u64::try_from(timeout).unwrap_or(0).saturating_mul(1000);
                inst.kill_deadline = Some(match self.now_ms {
                    Some(now) => due_ms.min(now.saturating_add(timeout_ms)),
                    None => due_ms,
                });
                self.summary.kill_timers += 1;
            } else {
                self.summary.dropped_kill_timers += 1;
            }
        }

        inst.failed = j.opt_bool("failed", false)?;
        inst.failed_process = match j.opt_str("failed_process")? {
            Some(s) => enum_of(s, &j.at("failed_process"), PROCESSES)?,
            None => None,
        };
        inst.exit_status = j.opt_num("exit_status", 0)?;
        inst.respawn_time = j.opt_num("respawn_time", 0)?;
        inst.respawn_count = j.opt_num("respawn_count", 0)?;
        inst.trace_forks = j.opt_num("trace_forks", 0)?;
        inst.trace = match j.opt_str("trace_state")? {
            Some(s) => enum_of(s, &j.at("trace_state"), TRACES)?,
            None => Trace::None,
        };

        self.logs_of(j, &key)?;
        self.process_data(j, &key, &inst)?;
        Ok(inst)
    }

    fn logs_of(&mut self, j: &Obj<'_>, key: &JobKey) -> Result<(), ImportError> {
        let logs = j.objects("log")?;
        if logs.len() > ProcessType::ALL.len() {
            return Err(bad(
                &j.at("log"),
                format!("{} entries (at most 6)", logs.len()),
            ));
        }
        for (l, process) in logs.iter().zip(ProcessType::ALL) {
            let Some(path) = l.opt_str("path")? else {
                continue; // placeholder
            };
            let pty_fd: i32 = l.opt_num("io_watch_fd", -1)?;
            if pty_fd < 0 {
                return Err(bad(&l.at("io_watch_fd"), "a live log needs its pty"));
            }
            let file_fd: i32 = l.opt_num("fd", -1)?;
            let uid = match l.opt_int("uid", 0)? {
                -1 => u32::MAX,
                n => narrow(n, &l.at("uid"))?,
            };
            let unflushed = match l.opt_str("unflushed")? {
                Some(hex) => from_hex(hex).ok_or_else(|| {
                    bad(&l.at("unflushed"), "not an even-length hexadecimal string")
                })?,
                None => Vec::new(),
            };
            self.logs.push(ImportedLog {
                job: key.clone(),
                process,
                path: path.to_string(),
                pty_fd,
                file_fd: (file_fd >= 0).then_some(file_fd),
                uid,
                unflushed,
                detached: l.opt_bool("detached", false)?,
                remote_closed: l.opt_bool("remote_closed", false)?,
                open_errno: l.opt_num("open_errno", 0)?,
            });
        }
        Ok(())
    }

    /// Spawns whose status pipe was still open (reexec.md §4.6).
    fn process_data(
        &mut self,
        j: &Obj<'_>,
        key: &JobKey,
        inst: &Instance,
    ) -> Result<(), ImportError> {
        let entries = j.array("process_data")?;
        if entries.len() > ProcessType::ALL.len() {
            return Err(bad(
                &j.at("process_data"),
                format!("{} entries (at most 6)", entries.len()),
            ));
        }
        // Mostly all null: the path is made only when needed.
        let mut data_at = None;
        for (i, v) in entries.iter().enumerate() {
            if v.is_null() {
                continue;
            }
            let base = data_at.get_or_insert_with(|| j.base("process_data"));
            let d = Obj::element(v, base, i)?;
            let at = d.at("process");
            let Some(process) = enum_of(d.req_str("process")?, &at, PROCESSES)? else {
                return Err(bad(&at, "a spawn needs a real process"));
            };
            let fd: i32 = narrow(d.req_int("job_process_fd")?, &d.at("job_process_fd"))?;
            if fd < 0 {
                return Err(bad(&d.at("job_process_fd"), format!("bad descriptor {fd}")));
            }
            let script = d.opt_str("script")?;
            let shell_fd: i32 = d.opt_num("shell_fd", -1)?;
            d.opt_int("status", 0)?;
            if !d.opt_bool("valid", true)? {
                // Already handled: only the descriptors are left.
                self.stray_fds.push(fd);
                if shell_fd >= 0 {
                    self.stray_fds.push(shell_fd);
                }
                continue;
            }
            if inst.pid(process) <= 0 {
                // The process it reports on is gone.
                self.stray_fds.push(fd);
                if shell_fd >= 0 {
                    self.stray_fds.push(shell_fd);
                }
                continue;
            }
            self.spawns.push((fd, key.clone(), process));
            if shell_fd >= 0 {
                match script {
                    Some(script) => self.scripts.push(PendingScript {
                        job: key.clone(),
                        process,
                        shell_fd,
                        script: script.to_string(),
                    }),
                    None => self.stray_fds.push(shell_fd),
                }
            }
        }
        Ok(())
    }

    /// One `Blocked` entry. Entries Upstart itself could not resolve are
    /// dropped as Upstart does; unknown types are errors.
    fn blocked(&self, b: &Obj<'_>, at: &dyn Display) -> Result<Blocked, ImportError> {
        let kind = enum_of(b.req_str("type")?, &b.at("type"), BLOCKED_TYPES)?;
        match kind {
            BlockedType::Method => Ok(Blocked::Dropped),
            BlockedType::Event => {
                let data = b.obj("data")?;
                let index = data.req_int("index")?;
                let found = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.events.get(i))
                    .and_then(Option::as_ref)
                    .map(|e| e.id);
                Ok(found.map_or(Blocked::Dropped, Blocked::Event))
            }
            BlockedType::Job => {
                let data = b.obj("data")?;
                let class = data.req_str("class")?;
                let name = data.req_str("name")?;
                let session = data.opt_int("session", 0)?;
                if session < 0 {
                    return Err(bad(at, "negative session index"));
                }
                if session != 0 {
                    return Ok(Blocked::Dropped);
                }
                Ok(Blocked::Job(JobKey::new(class, name)))
            }
        }
    }

    /// An event's `blocking` list: the instances waiting for it.
    fn event_blocking(&mut self, e: &Obj<'_>, index: usize) -> Result<(), ImportError> {
        let entries = e.objects("blocking")?;
        // The waiters of an event not restored are dropped with it.
        let restored = self.events.get(index).is_some_and(Option::is_some);
        let mut waiters = Vec::new();
        let blocking_at = e.at("blocking");
        for (i, b) in entries.iter().enumerate() {
            self.summary.blocked += 1;
            let at = index_at(&blocking_at, i);
            let waiter = match self.blocked(b, &at)? {
                Blocked::Job(key) if restored => {
                    let exists = self.slots.get(key.job.as_str()).is_some_and(|s| {
                        s.instances
                            .contains_key(crate::job::NameKey::new(&key.instance))
                    });
                    exists.then_some(EventWaiter::Job(key))
                }
                Blocked::Job(_) | Blocked::Event(_) | Blocked::Dropped => None,
            };
            match waiter {
                Some(w) => {
                    waiters.push(w);
                    self.summary.blocked_restored += 1;
                }
                None => self.summary.blocked_dropped += 1,
            }
        }
        if let Some(ev) = self.events.get_mut(index).and_then(Option::as_mut) {
            ev.blocking = waiters;
        }
        Ok(())
    }
}

enum Blocked {
    Job(JobKey),
    Event(EventId),
    Dropped,
}

/// A collapsed `start on`/`stop on` expression as 1.8 wrote it.
fn parse_condition(
    text: &str,
    stanza: &str,
    at: &dyn Display,
) -> Result<Option<EventExpr>, ImportError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.contains(['\n', '\r']) {
        return Err(bad(at, "expression spans lines"));
    }
    let parsed = parse_job(
        "state",
        "state",
        &format!("{stanza} on {text}\n"),
        &ClassDefaults::default(),
    )
    .map_err(|e| bad(at, format!("cannot parse \"{text}\": {e}")))?;
    Ok(if stanza == "start" {
        parsed.start_on
    } else {
        parsed.stop_on
    })
}

/// An `rlim_t`: unsigned, or −1 for `RLIM_INFINITY` as json-c writes it.
fn rlim(l: &Obj<'_>, key: &str) -> Result<u64, ImportError> {
    let v = l.req(key)?;
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    match v.as_i64() {
        Some(-1) => Ok(RLIM_INFINITY),
        Some(n) => Err(bad(&l.at(key), format!("negative limit {n}"))),
        None => Err(wrong(&l.at(key), "integer", v)),
    }
}

fn cgroups(c: &Obj<'_>) -> Result<Vec<CgroupController>, ImportError> {
    let mut out = Vec::new();
    for g in c.objects("cgroups")? {
        let mut names = Vec::new();
        for n in g.objects("names")? {
            let mut settings = Vec::new();
            for s in n.objects("settings")? {
                settings.push(CgroupSetting {
                    key: s.req_str("key")?.to_string(),
                    value: s.req_str("value")?.to_string(),
                });
            }
            // `expanded` is recomputed by the child.
            n.opt_str("expanded")?;
            names.push(CgroupName {
                name: n.req_str("name")?.to_string(),
                settings,
            });
        }
        out.push(CgroupController {
            controller: g.req_str("controller")?.to_string(),
            names,
        });
    }
    Ok(out)
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A small but complete 1.13-style payload.
    fn payload() -> Value {
        serde_json::from_str(
            r#"{
            "sessions": [],
            "events": [
                { "session": 0, "name": "runlevel", "env": ["RUNLEVEL=2", "PREVLEVEL=N"],
                  "fd": -1, "progress": "EVENT_HANDLING", "failed": 0, "blockers": 1 },
                { "session": 0, "name": "starting", "env": ["JOB=foo", "INSTANCE="],
                  "fd": -1, "progress": "EVENT_HANDLING", "failed": 0, "blockers": 0,
                  "blocking": [
                      { "type": "BLOCKED_JOB", "data": { "class": "foo", "name": "", "session": 0 } },
                      { "type": "BLOCKED_EMIT_METHOD", "data": { "msg-data": "00", "msg-id": 1, "msg-connection": 0 } }
                  ] }
            ],
            "control_bus_address": null,
            "cgroup_manager_address": "unix:path=/sys/fs/cgroup/cgmanager/sock",
            "job_environment": ["PATH=/bin", "TERM=linux", "TERM=vt100"],
            "conf_sources": [
                { "session": 0, "path": "//etc/init.conf", "type": "CONF_FILE", "flag": 1, "conf_files": [] },
                { "session": 0, "path": "//etc/init", "type": "CONF_JOB_DIR", "flag": 1,
                  "conf_files": [ { "path": "//etc/init/foo.conf", "conf_source": 1, "flag": 1,
                                    "job_class": { "name": "foo", "session": 0 } } ] }
            ],
            "job_classes": [ {
                "session": 0, "name": "foo", "path": "/com/ubuntu/Upstart/jobs/foo",
                "instance": "", "description": "Foo", "author": null, "version": null, "usage": null,
                "env": [], "export": [], "emits": ["bar"],
                "start_on": [
                    { "type": "EVENT_MATCH", "value": 1, "name": "runlevel", "env": ["[2345]"], "event": 0 },
                    { "type": "EVENT_MATCH", "value": 0, "name": "net-up" },
                    { "type": "EVENT_AND", "value": 0 }
                ],
                "stop_on": [ { "type": "EVENT_MATCH", "value": 0, "name": "runlevel", "env": ["[016]"] } ],
                "process": [ { "script": 0, "command": "/bin/foo" }, { "script": 1, "command": "echo pre\n" },
                             { "script": 0, "command": null }, { "script": 0, "command": null },
                             { "script": 0, "command": null }, { "script": 0, "command": null } ],
                "expect": "EXPECT_FORK", "task": 0, "kill_timeout": 7, "kill_signal": 15, "reload_signal": 1,
                "respawn": 1, "respawn_limit": 10, "respawn_interval": 5, "normalexit": [0, 3840],
                "console": "CONSOLE_OUTPUT", "umask": 18, "nice": 5, "oom_score_adj": 0,
                "limits": [ {"rlim_cur": 0, "rlim_max": 0}, {"rlim_cur": 0, "rlim_max": 0},
                            {"rlim_cur": 0, "rlim_max": 0}, {"rlim_cur": 0, "rlim_max": 0},
                            {"rlim_cur": 0, "rlim_max": 0}, {"rlim_cur": 0, "rlim_max": 0},
                            {"rlim_cur": 0, "rlim_max": 0}, {"rlim_cur": 1024, "rlim_max": -1} ],
                "chroot": null, "chdir": "/srv", "setuid": null, "setgid": null,
                "deleted": 0, "debug": 0, "apparmor_switch": null, "cgmanager_wait": 0,
                "cgroups": [ { "controller": "cpu", "names": [ { "name": "$UPSTART_CGROUP", "expanded": null,
                               "settings": [ { "key": "shares", "value": "512" } ] } ] } ],
                "jobs": [ {
                    "name": "", "path": "/com/ubuntu/Upstart/jobs/foo/_",
                    "goal": "JOB_STOP", "state": "JOB_KILLED",
                    "env": ["A=1"], "start_env": [], "stop_env": ["X=y"],
                    "fds": [], "pid": [100, 0, 0, 0, 0, 0], "blocker": 1,
                    "blocking": [ { "type": "BLOCKED_EVENT", "data": { "index": 0 } } ],
                    "kill_timer": { "timeout": 7, "due": 1000 },
                    "kill_process": "PROCESS_MAIN", "failed": 0, "failed_process": "PROCESS_INVALID",
                    "exit_status": 0, "respawn_time": 12, "respawn_count": 1,
                    "trace_forks": 2, "trace_state": "TRACE_NORMAL",
                    "log": [ { "fd": -1, "io_watch_fd": 12, "path": "/var/log/upstart/foo.log", "uid": 0,
                               "unflushed": "68656c6c6f", "detached": 0, "remote_closed": 0, "open_errno": 0 },
                             { "path": null }, { "path": null }, { "path": null }, { "path": null }, { "path": null } ],
                    "process_data": [ { "process": "PROCESS_MAIN", "script": null, "shell_fd": -1,
                                        "job_process_fd": 9, "status": 0, "valid": 1 },
                                      null, null, null, null, null ]
                } ]
            } ]
        }"#,
        )
        .expect("payload")
    }

    fn run(v: &Value) -> Result<Imported, ImportError> {
        import_at(&v.to_string(), Some(1_002_000))
    }

    /// Edit the payload at a JSON pointer.
    fn with(edit: impl FnOnce(&mut Value)) -> Result<Imported, ImportError> {
        let mut v = payload();
        edit(&mut v);
        run(&v)
    }

    fn at<'a>(v: &'a mut Value, pointer: &str) -> &'a mut Value {
        v.pointer_mut(pointer).expect("pointer")
    }

    fn remove(v: &mut Value, pointer: &str, key: &str) {
        at(v, pointer).as_object_mut().expect("object").remove(key);
    }

    #[test]
    fn reexec_payload_maps_onto_the_engine() {
        let imp = run(&payload()).expect("import");
        let s = &imp.summary;
        assert_eq!(
            (s.job_classes, s.jobs, s.events, s.conf_sources),
            (1, 1, 2, 2)
        );
        assert_eq!(
            (s.blocked, s.blocked_restored, s.blocked_dropped),
            (3, 2, 1)
        );
        assert_eq!(imp.job_env, ["PATH=/bin", "TERM=vt100"]);
        assert_eq!(
            imp.engine.options.cgroup_manager.as_deref(),
            Some("unix:path=/sys/fs/cgroup/cgmanager/sock")
        );
        assert_eq!(imp.sources[1].path, PathBuf::from("/etc/init"));
        assert_eq!(imp.sources[1].kind, SourceKind::Dir);

        let slot = &imp.engine.slots["foo"];
        let c = &slot.class;
        assert_eq!(c.path, "/etc/init/foo.conf");
        assert_eq!(
            c.start_on.as_ref().map(|e| e.to_string()).as_deref(),
            Some("(runlevel [2345] and net-up)")
        );
        assert_eq!(
            c.stop_on.as_ref().map(|e| e.to_string()).as_deref(),
            Some("runlevel [016]")
        );
        assert_eq!(c.processes.len(), 2);
        assert!(c
            .processes
            .get(&ProcessType::PreStart)
            .is_some_and(|p| p.script));
        assert_eq!(c.expect, Expect::Fork);
        assert_eq!(c.console, Console::Output);
        assert_eq!((c.umask, c.rare.nice, c.kill_timeout), (0o22, Some(5), 7));
        assert_eq!(c.normal_exit, [0, 3840]);
        assert_eq!(
            c.rare.limits.get(&Resource::Nofile),
            Some(&RLimit {
                soft: 1024,
                hard: RLIM_INFINITY
            })
        );
        assert_eq!(c.rare.cgroups[0].names[0].settings[0].value, "512");
        let tree = slot.start_on.as_ref().expect("tree");
        assert!(tree.nodes[0].value);
        assert_eq!(tree.nodes[0].event, Some(1));
        assert!(!tree.value());

        let inst = &slot.instances[""];
        assert_eq!((inst.goal, inst.state), (Goal::Stop, State::Killed));
        assert_eq!(inst.pid(ProcessType::Main), 100);
        assert_eq!(inst.start_env, None);
        assert_eq!(inst.stop_env.as_deref(), Some(&["X=y".to_string()][..]));
        assert_eq!(inst.blocker, Some(2));
        assert_eq!(inst.blocking, [Held::Event(1)]);
        assert_eq!(inst.kill_deadline, Some(1_000_000));
        assert_eq!((inst.trace, inst.trace_forks), (Trace::Normal, 2));
        assert_eq!(inst.stop_on.as_ref().map(|t| t.nodes.len()), Some(1));

        assert_eq!(imp.engine.events.len(), 2);
        assert_eq!(
            imp.engine.events[1].blocking,
            [EventWaiter::Job(JobKey::new("foo", ""))]
        );
        assert_eq!(imp.spawns, [(9, JobKey::new("foo", ""), ProcessType::Main)]);
        assert!(imp.engine.spawn_pending(100));
        assert_eq!(imp.logs.len(), 1);
        assert_eq!(imp.logs[0].unflushed, b"hello");
        assert_eq!(imp.logs[0].pty_fd, 12);
    }

    #[test]
    fn reexec_missing_keys_are_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "job_classes", "job_classes"),
            ("/job_classes/0", "name", "name"),
            ("/job_classes/0", "jobs", "jobs"),
            ("/job_classes/0/jobs/0", "goal", "goal"),
            ("/job_classes/0/jobs/0", "pid", "pid"),
            ("/events/0", "progress", "progress"),
            ("/conf_sources/1", "type", "type"),
            ("/job_classes/0/start_on/1", "name", "name"),
            ("/job_classes/0/jobs/0/kill_timer", "due", "due"),
        ];
        for (pointer, key, want) in cases {
            let err = with(|v| remove(v, pointer, key)).expect_err(key);
            match &err {
                ImportError::MissingKey { key, .. } => assert_eq!(key, want),
                other => panic!("{pointer}/{key}: {other}"),
            }
        }
        let err = with(|v| remove(v, "/job_classes/0/jobs/0", "state")).expect_err("state");
        assert_eq!(
            err.to_string(),
            "job_classes[0].jobs[0]: missing key \"state\""
        );
    }

    #[test]
    fn reexec_wrong_types_are_errors() {
        let cases: &[(&str, Value)] = &[
            ("/job_classes", serde_json::json!({})),
            ("/job_classes/0/name", serde_json::json!(3)),
            ("/job_classes/0/env", serde_json::json!("A=1")),
            ("/job_classes/0/emits/0", Value::Null),
            ("/job_classes/0/task", serde_json::json!("no")),
            ("/job_classes/0/start_on", serde_json::json!(7)),
            ("/job_classes/0/jobs/0/pid/0", serde_json::json!(1.5)),
            ("/job_classes/0/jobs/0/env", serde_json::json!("A=1")),
            ("/job_classes/0/jobs/0/stop_env/0", serde_json::json!(5)),
            ("/job_classes/0/jobs/0/log/0", serde_json::json!([])),
            ("/events/0", serde_json::json!("event")),
            ("/events/0/blockers", serde_json::json!(true)),
            ("/sessions", serde_json::json!(null)),
        ];
        for (pointer, value) in cases {
            let err = with(|v| *at(v, pointer) = value.clone()).expect_err(pointer);
            assert!(
                matches!(err, ImportError::WrongType { .. }),
                "{pointer}: {err}"
            );
        }
        let err = with(|v| *at(v, "/job_classes/0/name") = serde_json::json!(3)).expect_err("name");
        assert_eq!(
            err.to_string(),
            "job_classes[0].name: wrong type: expected string, found number"
        );
        assert!(matches!(
            run(&serde_json::json!([])),
            Err(ImportError::WrongType { .. })
        ));
        assert!(matches!(import_at("{", None), Err(ImportError::Json(_))));
        assert!(matches!(import_at("", None), Err(ImportError::Json(_))));
    }

    #[test]
    fn reexec_bad_values_are_errors() {
        let enums: &[(&str, &str)] = &[
            ("/job_classes/0/jobs/0/goal", "JOB_MAYBE"),
            ("/job_classes/0/jobs/0/state", "running"),
            ("/job_classes/0/expect", "EXPECT_SPLIT"),
            ("/job_classes/0/console", "CONSOLE_TTY"),
            ("/job_classes/0/start_on/2/type", "EVENT_XOR"),
            ("/events/0/progress", "EVENT_DONE"),
            ("/events/1/blocking/0/type", "BLOCKED_THING"),
            ("/conf_sources/0/type", "CONF_SOMETHING"),
            (
                "/job_classes/0/jobs/0/process_data/0/process",
                "PROCESS_OTHER",
            ),
        ];
        for (pointer, value) in enums {
            let err = with(|v| *at(v, pointer) = serde_json::json!(value)).expect_err(pointer);
            assert!(
                matches!(err, ImportError::BadEnum { .. }),
                "{pointer}: {err}"
            );
        }
        let err = with(|v| *at(v, "/job_classes/0/jobs/0/goal") = serde_json::json!("JOB_MAYBE"))
            .expect_err("goal");
        assert!(err.to_string().starts_with(
            "job_classes[0].jobs[0].goal: bad value \"JOB_MAYBE\": expected one of JOB_STOP,"
        ));

        let values: &[(&str, Value)] = &[
            ("/job_classes/0/jobs/0/blocker", serde_json::json!(2)),
            ("/job_classes/0/start_on/0/event", serde_json::json!(-1)),
            ("/job_classes/0/jobs/0/pid", serde_json::json!([1, 2, 3])),
            ("/job_classes/0/jobs/0/pid/0", serde_json::json!(-5)),
            (
                "/job_classes/0/jobs/0/pid/0",
                serde_json::json!(1_i64 << 40),
            ),
            ("/job_classes/0/jobs/0/respawn_time", serde_json::json!(-1)),
            ("/job_classes/0/nice", serde_json::json!(40)),
            ("/job_classes/0/umask", serde_json::json!(-1)),
            (
                "/job_classes/0/limits/0",
                serde_json::json!({"rlim_cur": -2, "rlim_max": 0}),
            ),
            (
                "/job_classes/0/jobs/0/log/0/unflushed",
                serde_json::json!("abc"),
            ),
            (
                "/job_classes/0/jobs/0/process_data/0/job_process_fd",
                serde_json::json!(-1),
            ),
            (
                "/job_classes/0/process/6",
                serde_json::json!({"script": 0, "command": null}),
            ),
            (
                "/job_classes/0/stop_on",
                serde_json::json!("runlevel [016] and"),
            ),
            ("/job_classes/0/stop_on", serde_json::json!("a\nexec b")),
            ("/events/0/session", serde_json::json!(-1)),
        ];
        for (pointer, value) in values {
            let err = with(|v| {
                if let Some(slot) = v.pointer_mut(pointer) {
                    *slot = value.clone();
                } else if let Some((parent, _)) = pointer.rsplit_once('/') {
                    at(v, parent)
                        .as_array_mut()
                        .expect("array")
                        .push(value.clone());
                }
            })
            .expect_err(pointer);
            assert!(
                matches!(err, ImportError::BadValue { .. }),
                "{pointer}: {err}"
            );
        }
    }

    #[test]
    fn reexec_malformed_trees_are_errors() {
        let trees: &[Value] = &[
            serde_json::json!([{ "type": "EVENT_AND", "value": 0 }]),
            serde_json::json!([{ "type": "EVENT_MATCH", "name": "a" }, { "type": "EVENT_OR" }]),
            serde_json::json!([{ "type": "EVENT_MATCH", "name": "a" }, { "type": "EVENT_MATCH", "name": "b" }]),
            serde_json::json!([{ "type": "EVENT_MATCH", "name": "a" }, { "type": "EVENT_MATCH", "name": "b" },
                               { "type": "EVENT_AND", "event": 0 }]),
        ];
        for t in trees {
            let err = with(|v| *at(v, "/job_classes/0/start_on") = t.clone()).expect_err("tree");
            assert!(matches!(err, ImportError::BadValue { .. }), "{t}: {err}");
        }
        // A degenerate chain deeper than any job file: refused, not a crash.
        let mut chain = vec![serde_json::json!({ "type": "EVENT_MATCH", "name": "a" })];
        for _ in 0..5000 {
            chain.push(serde_json::json!({ "type": "EVENT_MATCH", "name": "a" }));
            chain.push(serde_json::json!({ "type": "EVENT_OR" }));
        }
        let err =
            with(|v| *at(v, "/job_classes/0/start_on") = Value::Array(chain)).expect_err("deep");
        assert!(err.to_string().contains("deeper"), "{err}");
    }

    #[test]
    fn reexec_extra_keys_are_ignored() {
        // outset's own extras (and anything else Upstart does not know).
        let imp = with(|v| {
            v["outset"] = serde_json::json!({ "engine": {} });
            v["job_classes"][0]["outset"] = serde_json::json!({ "path": 3 });
            v["job_classes"][0]["jobs"][0]["outset"] = serde_json::json!(null);
        })
        .expect("import");
        assert_eq!(imp.summary.jobs, 1);
        // A bare `outset` object is not a payload.
        assert!(matches!(
            import_at(r#"{"outset": {"engine": {}}}"#, None),
            Err(ImportError::MissingKey { .. })
        ));
    }

    #[test]
    fn reexec_old_formats_are_read_leniently() {
        // 1.8: trees as strings, five process slots, no newer keys.
        let imp = with(|v| {
            let c = at(v, "/job_classes/0");
            c["start_on"] = serde_json::json!("(filesystem and started dbus)");
            c["stop_on"] = serde_json::json!("runlevel [!2345]");
            c["process"].as_array_mut().expect("process").pop();
            let c = c.as_object_mut().expect("class");
            for key in [
                "reload_signal",
                "apparmor_switch",
                "cgroups",
                "cgmanager_wait",
            ] {
                c.remove(key);
            }
            let j = at(v, "/job_classes/0/jobs/0");
            j["pid"].as_array_mut().expect("pid").pop();
            j["log"].as_array_mut().expect("log").pop();
            let j = j.as_object_mut().expect("job");
            for key in ["stop_on", "process_data", "kill_timer", "blocker"] {
                j.remove(key);
            }
            let top = v.as_object_mut().expect("top");
            for key in [
                "conf_sources",
                "job_environment",
                "cgroup_manager_address",
                "control_bus_address",
            ] {
                top.remove(key);
            }
        })
        .expect("import");
        let slot = &imp.engine.slots["foo"];
        assert_eq!(
            slot.class
                .start_on
                .as_ref()
                .map(|e| e.to_string())
                .as_deref(),
            Some("(filesystem and started dbus)")
        );
        assert_eq!(slot.class.reload_signal, 1);
        assert_eq!(slot.class.path, "");
        // The instance gets its own copy of the class's `stop on`.
        let inst = &slot.instances[""];
        assert_eq!(
            inst.stop_on,
            Some(EventTree::new(slot.class.stop_on.as_ref().expect("stop")))
        );
        assert!(!imp.summary.job_env_present);
        assert!(imp.sources.is_empty());
        assert!(imp.spawns.is_empty());
    }

    #[test]
    fn reexec_chroot_sessions_are_skipped_and_release_their_holds() {
        let imp = with(|v| {
            v["sessions"] = serde_json::json!([{ "chroot": "/mnt", "conf_path": "/mnt/etc/init" }]);
            let mut chroot = v["job_classes"][0].clone();
            chroot["session"] = serde_json::json!(1);
            v["job_classes"]
                .as_array_mut()
                .expect("classes")
                .push(chroot);
            // Event 0 is held by both classes' start_on and by both instances.
            v["events"][0]["blockers"] = serde_json::json!(4);
        })
        .expect("import");
        let s = &imp.summary;
        assert_eq!((s.sessions, s.job_classes, s.skipped_classes), (1, 2, 1));
        assert_eq!((s.jobs, s.skipped_jobs), (2, 1));
        assert_eq!(s.released_holds, 2);
        assert_eq!(imp.engine.events[0].blockers, 2);
        assert_eq!(imp.engine.slots.len(), 1);
    }

    #[test]
    fn reexec_kill_deadline_is_bounded_by_the_timeout() {
        let imp = with(|v| {
            at(v, "/job_classes/0/jobs/0/kill_timer")["due"] = serde_json::json!(1_000_000)
        })
        .expect("import");
        // now (1002 s) + 7 s timeout.
        assert_eq!(
            imp.engine.slots["foo"].instances[""].kill_deadline,
            Some(1_009_000)
        );
        let imp = with(|v| {
            at(v, "/job_classes/0/jobs/0")["kill_process"] = serde_json::json!("PROCESS_PRE_STOP")
        })
        .expect("import");
        assert_eq!(imp.engine.slots["foo"].instances[""].kill_deadline, None);
        assert_eq!(imp.summary.dropped_kill_timers, 1);
    }

    #[test]
    fn reexec_hex_and_paths() {
        assert_eq!(from_hex("00ff7F"), Some(vec![0, 255, 127]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
        assert_eq!(normalise_path("//etc/init"), "/etc/init");
        assert_eq!(normalise_path("/etc/init"), "/etc/init");
        assert_eq!(normalise_path("etc"), "etc");
    }
}
