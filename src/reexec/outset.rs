//! outset's own re-exec payload (reexec.md §4, extensions.md §5).
//!
//! The payload is Upstart 1.13's JSON layout — `sessions`, `events`,
//! `job_classes` with their `jobs`, `conf_sources`, `job_environment` … —
//! so Upstart's reader (and [`super::import`]) sees every class, instance,
//! pid, event and spawn in flight. What that layout cannot say sits under
//! extra keys named `outset`, which Upstart ignores:
//!
//! * top level: the engine's options and the daemon's own state (pipes
//!   being written, partial status records, held logs, …), opaque here;
//! * in a class: the file it came from, the line of each process, and a
//!   replacement class waiting for the last instance to stop;
//! * in a job: the kill deadline to the millisecond and whether an empty
//!   `start_env`/`stop_env` was set or absent.
//!
//! Event trees are written as Upstart's flat post-order operator lists, so
//! however deep a `start on` expression is, the JSON nests only a few
//! levels and reads back within serde_json's recursion limit.
//!
//! Reading goes through the Upstart importer, then applies the extras:
//! one reader for both, so what outset restores is exactly what an
//! Upstart-shaped reader sees plus the extras.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::upstart::{
    class_from_json, import_root, resource_at, ImportError, Imported, CONSOLES, EXPECTS, GOALS,
    MAX_LIMITS, NICE_UNSET, PROCESSES, PROGRESS, STATES, TRACES,
};
use crate::config::{ConfSource, Expect, JobClass, ProcessType, SourceKind, RLIM_INFINITY};
use crate::control::paths::{instance_path, job_path};
use crate::event::{EventId, EventTree, NodeKind};
use crate::job::{ClassChange, Engine, EngineOptions, EventWaiter, Held, Instance};

/// The key of outset-only data, at the top level and in classes and jobs.
pub const EXTRA_KEY: &str = "outset";

/// A live job log: the pty master outset reads and where the output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLog {
    pub pty_fd: i32,
    pub path: String,
    /// Output read but not yet written to the file.
    pub unflushed: Vec<u8>,
}

/// The daemon's descriptors that the Upstart layout names, by pid.
#[derive(Debug, Clone, Default)]
pub struct Handover {
    /// Read end of the status pipe of each spawn in flight.
    pub status: BTreeMap<i32, i32>,
    /// Script text and the write end of its pipe, not sent yet.
    pub scripts: BTreeMap<i32, (String, i32)>,
    pub logs: BTreeMap<i32, LiveLog>,
    /// Owner of the log files.
    pub uid: u32,
}

/// What goes into one payload.
pub struct ExportInput<'a> {
    pub engine: &'a Engine,
    pub sources: &'a [ConfSource],
    pub handover: &'a Handover,
    /// The daemon's own state, stored verbatim under `outset.daemon`.
    pub daemon: Value,
    /// A session init's notified bus (Upstart's `control_bus_address`).
    pub bus_address: Option<&'a str>,
}

/// An own payload read back.
#[derive(Debug)]
pub struct Restored {
    pub imported: Imported,
    /// `outset.daemon` as written.
    pub daemon: Value,
}

fn name_of<T: Copy + PartialEq>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("", |(n, _)| *n)
}

fn process_name(p: Option<ProcessType>) -> &'static str {
    name_of(PROCESSES, p)
}

fn flag(b: bool) -> Value {
    Value::from(u8::from(b))
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Event id → its index in the payload's `events`.
struct Indexes(BTreeMap<EventId, usize>);

impl Indexes {
    fn get(&self, id: EventId) -> Option<usize> {
        self.0.get(&id).copied()
    }
}

/// A tree as Upstart's post-order operator list (nodes already are in
/// post-order).
fn operators(tree: &EventTree, idx: &Indexes) -> Value {
    let nodes = tree
        .nodes
        .iter()
        .map(|n| {
            let mut o = Map::new();
            match &n.kind {
                NodeKind::Match { name, args } => {
                    o.insert("type".into(), "EVENT_MATCH".into());
                    o.insert("value".into(), flag(n.value));
                    o.insert("name".into(), name.clone().into());
                    o.insert("env".into(), args.clone().into());
                    if let Some(i) = n.event.and_then(|id| idx.get(id)) {
                        o.insert("event".into(), i.into());
                    }
                }
                NodeKind::And(..) => {
                    o.insert("type".into(), "EVENT_AND".into());
                    o.insert("value".into(), flag(n.value));
                }
                NodeKind::Or(..) => {
                    o.insert("type".into(), "EVENT_OR".into());
                    o.insert("value".into(), flag(n.value));
                }
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(nodes)
}

/// A class in Upstart's layout, without instances. `start_on` is the
/// runtime tree when there is one (registered classes), else the
/// expression's fresh tree.
fn class_json(class: &JobClass, start_on: Option<&EventTree>, idx: &Indexes) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("session".into(), 0.into());
    c.insert("name".into(), class.name.to_string().into());
    c.insert("path".into(), job_path(&class.name).into());
    c.insert("instance".into(), class.instance.clone().into());
    c.insert("jobs".into(), Value::Array(Vec::new()));
    c.insert("description".into(), class.rare.description.clone().into());
    c.insert("author".into(), class.rare.author.clone().into());
    c.insert("version".into(), class.rare.version.clone().into());
    c.insert("usage".into(), class.rare.usage.clone().into());
    c.insert("env".into(), class.env.clone().into());
    c.insert("export".into(), class.rare.export.clone().into());
    c.insert("emits".into(), class.rare.emits.clone().into());
    let fresh = class.start_on.as_ref().map(EventTree::new);
    if let Some(t) = start_on.or(fresh.as_ref()) {
        c.insert("start_on".into(), operators(t, idx));
    }
    if let Some(e) = &class.stop_on {
        c.insert("stop_on".into(), operators(&EventTree::new(e), idx));
    }
    let process: Vec<Value> = ProcessType::ALL
        .iter()
        .map(|p| match class.process(*p) {
            Some(p) => json!({ "script": flag(p.script), "command": p.command }),
            None => json!({ "script": 0, "command": null }),
        })
        .collect();
    c.insert("process".into(), process.into());
    // Upstart has no `expect notify`: it reads EXPECT_NONE, and outset
    // the extras below.
    let upstart_expect = match class.expect {
        Expect::Notify => Expect::None,
        other => other,
    };
    c.insert("expect".into(), name_of(EXPECTS, upstart_expect).into());
    c.insert("task".into(), flag(class.task));
    c.insert("kill_timeout".into(), class.kill_timeout.into());
    c.insert("kill_signal".into(), class.kill_signal.into());
    c.insert("reload_signal".into(), class.reload_signal.into());
    c.insert("respawn".into(), flag(class.respawn));
    c.insert("respawn_limit".into(), class.respawn_limit.into());
    c.insert("respawn_interval".into(), class.respawn_interval.into());
    c.insert("normalexit".into(), class.normal_exit.clone().into());
    c.insert("console".into(), name_of(CONSOLES, class.console).into());
    c.insert("umask".into(), class.umask.into());
    c.insert(
        "nice".into(),
        class.rare.nice.map_or(NICE_UNSET, i64::from).into(),
    );
    c.insert("oom_score_adj".into(), class.rare.oom_score_adj.into());
    // json-c writes an rlim_t as a signed 64-bit number: RLIM_INFINITY is −1.
    let rlim = |v: u64| -> Value {
        if v == RLIM_INFINITY {
            Value::from(-1)
        } else {
            Value::from(v)
        }
    };
    let limits: Vec<Value> = (0..MAX_LIMITS)
        .map(|i| {
            let set = resource_at(i).and_then(|r| class.rare.limits.get(&r));
            match set {
                Some(l) => json!({ "rlim_cur": rlim(l.soft), "rlim_max": rlim(l.hard) }),
                None => json!({ "rlim_cur": 0, "rlim_max": 0 }),
            }
        })
        .collect();
    c.insert("limits".into(), limits.into());
    c.insert("chroot".into(), class.rare.chroot.clone().into());
    c.insert("chdir".into(), class.rare.chdir.clone().into());
    c.insert("setuid".into(), class.rare.setuid.clone().into());
    c.insert("setgid".into(), class.rare.setgid.clone().into());
    c.insert("deleted".into(), 0.into());
    c.insert("debug".into(), flag(class.debug));
    // An extension: written only when set, so that other states stay
    // what Upstart writes. -1 stands for the job's own status.
    if let Some(exit) = class.rare.exit_container_on_failure {
        let code = match exit {
            crate::config::ContainerExit::JobStatus => -1,
            crate::config::ContainerExit::Code(c) => i64::from(c),
        };
        c.insert("exit_container_on_failure".into(), code.into());
    }
    c.insert(
        "apparmor_switch".into(),
        class.rare.apparmor_switch.clone().into(),
    );
    c.insert("cgmanager_wait".into(), 0.into());
    let cgroups: Vec<Value> = class
        .rare
        .cgroups
        .iter()
        .map(|g| {
            let names: Vec<Value> = g
                .names
                .iter()
                .map(|n| {
                    let settings: Vec<Value> = n
                        .settings
                        .iter()
                        .map(|s| json!({ "key": s.key, "value": s.value }))
                        .collect();
                    json!({ "name": n.name, "expanded": null, "settings": settings })
                })
                .collect();
            json!({ "controller": g.controller, "names": names })
        })
        .collect();
    c.insert("cgroups".into(), cgroups.into());
    let lines: Vec<Value> = ProcessType::ALL
        .iter()
        .map(|p| class.process(*p).map_or(0, |p| p.line).into())
        .collect();
    let mut extra = json!({ "path": class.path, "lines": lines });
    if let Some(o) = extra.as_object_mut() {
        if class.expect == Expect::Notify {
            o.insert("expect".into(), "notify".into());
        }
        if let Some(t) = class.rare.notify_timeout {
            o.insert("notify_timeout".into(), t.into());
        }
    }
    c.insert(EXTRA_KEY.into(), extra);
    c
}

fn instance_parts<'a>(
    job: &str,
    inst: &'a Instance,
    engine: &Engine,
    spawning: &BTreeMap<i32, ProcessType>,
    handover: &Handover,
    idx: &Indexes,
) -> Spliced<'a> {
    let mut j = Map::new();
    j.insert("name".into(), inst.name.clone().into());
    j.insert("path".into(), instance_path(job, &inst.name).into());
    j.insert("goal".into(), name_of(GOALS, inst.goal).into());
    j.insert("state".into(), name_of(STATES, inst.state).into());
    // The environment lists are most of a payload: written from where
    // they are, not copied.
    let lists = vec![
        ("env", Extra::Strings(&inst.env)),
        (
            "start_env",
            Extra::Strings(inst.start_env.as_deref().unwrap_or_default()),
        ),
        (
            "stop_env",
            Extra::Strings(inst.stop_env.as_deref().unwrap_or_default()),
        ),
    ];
    if let Some(t) = &inst.stop_on {
        j.insert("stop_on".into(), operators(t, idx));
    }
    j.insert("fds".into(), Value::Array(Vec::new()));
    let pids: Vec<Value> = ProcessType::ALL
        .iter()
        .map(|p| inst.pid(*p).into())
        .collect();
    j.insert("pid".into(), pids.into());
    if let Some(i) = inst.blocker.and_then(|id| idx.get(id)) {
        j.insert("blocker".into(), i.into());
    }
    // Control callers waiting for this instance are not handed over: their
    // connections end with the exec (reexec.md §4.4).
    let blocking: Vec<Value> = inst
        .blocking
        .iter()
        .filter_map(|h| match h {
            Held::Event(id) => idx.get(*id),
            Held::Waiter { .. } => None,
        })
        .map(|i| json!({ "type": "BLOCKED_EVENT", "data": { "index": i } }))
        .collect();
    if !blocking.is_empty() {
        j.insert("blocking".into(), blocking.into());
    }
    if let Some(deadline) = inst.kill_deadline {
        let class_timeout = engine
            .slots
            .get(job)
            .map_or(5, |s| s.class.kill_timeout.max(0));
        j.insert(
            "kill_timer".into(),
            json!({ "timeout": class_timeout, "due": deadline.div_ceil(1000) }),
        );
        j.insert(
            "kill_process".into(),
            process_name(Some(ProcessType::Main)).into(),
        );
    } else {
        j.insert("kill_process".into(), process_name(None).into());
    }
    j.insert("failed".into(), flag(inst.failed));
    j.insert(
        "failed_process".into(),
        process_name(inst.failed_process).into(),
    );
    j.insert("exit_status".into(), inst.exit_status.into());
    j.insert("respawn_time".into(), inst.respawn_time.into());
    j.insert("respawn_count".into(), inst.respawn_count.into());
    j.insert("trace_forks".into(), inst.trace_forks.into());
    j.insert("trace_state".into(), name_of(TRACES, inst.trace).into());

    let mut logs = Vec::new();
    let mut data = Vec::new();
    for p in ProcessType::ALL {
        let pid = inst.pid(p);
        let log = (pid > 0).then(|| handover.logs.get(&pid)).flatten();
        logs.push(match log {
            Some(l) => {
                let mut o = json!({
                    "fd": -1, "io_watch_fd": l.pty_fd, "path": l.path, "uid": handover.uid,
                    "detached": 0, "remote_closed": 0, "open_errno": 0,
                });
                if let Some(obj) = o.as_object_mut().filter(|_| !l.unflushed.is_empty()) {
                    obj.insert("unflushed".into(), hex(&l.unflushed).into());
                }
                o
            }
            None => json!({ "path": null }),
        });
        let status = (pid > 0 && spawning.get(&pid) == Some(&p))
            .then(|| handover.status.get(&pid))
            .flatten();
        data.push(match status {
            Some(fd) => {
                let (script, shell_fd) = match handover.scripts.get(&pid) {
                    Some((text, fd)) => (Value::from(text.clone()), *fd),
                    None => (Value::Null, -1),
                };
                json!({
                    "process": process_name(Some(p)), "script": script, "shell_fd": shell_fd,
                    "job_process_fd": fd, "status": 0, "valid": 1,
                })
            }
            None => Value::Null,
        });
    }
    j.insert("log".into(), logs.into());
    j.insert("process_data".into(), data.into());
    j.insert(
        EXTRA_KEY.into(),
        json!({
            "kill_deadline_ms": inst.kill_deadline,
            "start_env_set": flag(inst.start_env.is_some()),
            "stop_env_set": flag(inst.stop_env.is_some()),
            "readiness": inst.readiness,
        }),
    );
    Spliced {
        rest: j,
        extras: lists,
    }
}

/// A JSON object whose largest members are written from where they are
/// instead of being copied into a `Value` first. Members come out in the
/// order of a `Value` object (sorted), so the text is the same either way.
pub struct Spliced<'a> {
    rest: Map<String, Value>,
    /// Sorted by key; no key also in `rest`.
    extras: Vec<(&'static str, Extra<'a>)>,
}

pub enum Extra<'a> {
    Strings(&'a [String]),
    Objects(Vec<Spliced<'a>>),
}

impl Spliced<'_> {
    fn into_value(self) -> Value {
        let mut map = self.rest;
        for (k, v) in self.extras {
            map.insert(k.into(), v.into_value());
        }
        Value::Object(map)
    }
}

impl Extra<'_> {
    fn into_value(self) -> Value {
        match self {
            Extra::Strings(list) => list.to_vec().into(),
            Extra::Objects(list) => {
                Value::Array(list.into_iter().map(Spliced::into_value).collect())
            }
        }
    }
}

impl serde::Serialize for Extra<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Extra::Strings(list) => s.collect_seq(list.iter()),
            Extra::Objects(list) => s.collect_seq(list.iter()),
        }
    }
}

impl serde::Serialize for Spliced<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_spliced(s, &self.rest, &self.extras)
    }
}

/// The object `rest` with `extras` (sorted by key, none of them in
/// `rest`) written among its members in the order a `Value` object keeps
/// them (sorted).
fn serialize_spliced<S: serde::Serializer, E: serde::Serialize>(
    s: S,
    rest: &Map<String, Value>,
    extras: &[(&str, E)],
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(rest.len() + extras.len()))?;
    let mut extras = extras.iter().peekable();
    for (k, v) in rest {
        while let Some((ek, ev)) = extras.next_if(|(ek, _)| *ek < k.as_str()) {
            map.serialize_entry(ek, ev)?;
        }
        map.serialize_entry(k, v)?;
    }
    for (ek, ev) in extras {
        map.serialize_entry(ek, ev)?;
    }
    map.end()
}

/// The whole state as one JSON value in Upstart 1.13's layout.
pub fn export(input: &ExportInput<'_>) -> Value {
    let payload = Payload::new(input);
    let classes = payload.classes().map(Spliced::into_value).collect();
    let mut root = payload.rest;
    root.insert("job_classes".into(), Value::Array(classes));
    Value::Object(root)
}

/// A payload ready to be written: everything but the job classes is built
/// (it is small); each class is built as it is written and dropped, so the
/// first bytes go out at once and the whole text is never held twice.
/// Written, it is the same text as [`export`] gives.
pub struct Payload<'a> {
    input: &'a ExportInput<'a>,
    idx: Indexes,
    spawning: BTreeMap<i32, ProcessType>,
    /// The top level without `job_classes`.
    rest: Map<String, Value>,
}

impl<'a> Payload<'a> {
    pub fn new(input: &'a ExportInput<'a>) -> Self {
        let engine = input.engine;
        let idx = Indexes(
            engine
                .events
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id, i))
                .collect(),
        );
        let spawning = engine
            .spawns_in_flight()
            .into_iter()
            .map(|(pid, _, p)| (pid, p))
            .collect();
        let rest = top_level(input);
        Payload {
            input,
            idx,
            spawning,
            rest,
        }
    }

    /// Each class with its instances, built on demand.
    fn classes(&self) -> impl Iterator<Item = Spliced<'a>> + '_ {
        let engine = self.input.engine;
        engine.slots.iter().map(move |(name, slot)| {
            let idx = &self.idx;
            let mut c = class_json(&slot.class, slot.start_on.as_ref(), idx);
            c.remove("jobs");
            // Matched while the cgroup manager was unknown: start when it comes.
            c.insert("cgmanager_wait".into(), flag(slot.cgmanager_wait));
            let jobs: Vec<Spliced<'a>> = slot
                .instances
                .values()
                .map(|i| instance_parts(name, i, engine, &self.spawning, self.input.handover, idx))
                .collect();
            match &slot.pending {
                Some(ClassChange::Delete) => {
                    c.insert("deleted".into(), 1.into());
                }
                Some(ClassChange::Replace(next)) => {
                    let pending = Value::Object(class_json(next, None, idx));
                    if let Some(Value::Object(extra)) = c.get_mut(EXTRA_KEY) {
                        extra.insert("pending".into(), pending);
                    }
                }
                None => {}
            }
            Spliced {
                rest: c,
                extras: vec![("jobs", Extra::Objects(jobs))],
            }
        })
    }
}

/// The classes as a JSON array written element by element.
struct Classes<'p, 'a>(&'p Payload<'a>);

impl serde::Serialize for Classes<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.classes())
    }
}

impl serde::Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_spliced(s, &self.rest, &[("job_classes", Classes(self))])
    }
}

/// The top level of a payload, all but `job_classes`.
fn top_level(input: &ExportInput<'_>) -> Map<String, Value> {
    let engine = input.engine;
    let events: Vec<Value> = engine
        .events
        .iter()
        .map(|e| {
            let mut o = Map::new();
            o.insert("session".into(), 0.into());
            o.insert("name".into(), e.name.clone().into());
            if !e.env.is_empty() {
                o.insert("env".into(), e.env.clone().into());
            }
            o.insert("fd".into(), e.fd.unwrap_or(-1).into());
            o.insert("progress".into(), name_of(PROGRESS, e.progress).into());
            o.insert("failed".into(), flag(e.failed));
            o.insert("blockers".into(), e.blockers.into());
            // `EmitEvent(wait)` callers are not handed over (§4.4).
            let blocking: Vec<Value> = e
                .blocking
                .iter()
                .filter_map(|w| match w {
                    EventWaiter::Job(k) => Some(json!({
                        "type": "BLOCKED_JOB",
                        "data": { "class": k.job, "session": 0, "name": k.instance },
                    })),
                    EventWaiter::Caller(_) => None,
                })
                .collect();
            if !blocking.is_empty() {
                o.insert("blocking".into(), blocking.into());
            }
            o.insert(EXTRA_KEY.into(), json!({ "id": e.id }));
            Value::Object(o)
        })
        .collect();

    let sources: Vec<Value> = input
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let files: Vec<Value> = match s.kind {
                SourceKind::Dir => engine
                    .slots
                    .iter()
                    .filter(|(_, slot)| {
                        !slot.class.path.is_empty()
                            && std::path::Path::new(&slot.class.path).starts_with(&s.path)
                    })
                    .map(|(name, slot)| {
                        json!({
                            "path": slot.class.path, "conf_source": i, "flag": 1,
                            "job_class": { "name": name, "session": 0 },
                        })
                    })
                    .collect(),
                SourceKind::File => Vec::new(),
            };
            let mut source = json!({
                "session": 0,
                "path": s.path.to_string_lossy(),
                "type": if s.kind == SourceKind::Dir { "CONF_JOB_DIR" } else { "CONF_FILE" },
                "flag": 1,
            });
            if let Value::Object(o) = &mut source {
                o.insert("conf_files".into(), Value::Array(files));
            }
            source
        })
        .collect();

    // Built by moving the parts in: `json!` would copy every class and
    // event once more (it serializes each value it is given).
    let mut root = Map::new();
    root.insert("sessions".into(), Value::Array(Vec::new()));
    root.insert("events".into(), Value::Array(events));
    root.insert(
        "control_bus_address".into(),
        input.bus_address.map(String::from).into(),
    );
    root.insert(
        "cgroup_manager_address".into(),
        engine.options.cgroup_manager.clone().into(),
    );
    root.insert("job_environment".into(), engine.global_env.clone().into());
    root.insert("conf_sources".into(), Value::Array(sources));
    root.insert(
        EXTRA_KEY.into(),
        json!({
            "engine": { "options": engine.options, "no_respawn": engine.no_respawn },
            "daemon": input.daemon,
        }),
    );
    root
}

/// Read a payload. `Ok(None)`: not outset's own (no top-level `outset`),
/// so a plain Upstart payload for [`super::import`].
pub fn read(json: &str) -> Result<Option<Restored>, ImportError> {
    let root: Value = serde_json::from_str(json).map_err(|e| ImportError::Json(e.to_string()))?;
    read_value(root)
}

/// [`read`] of a payload parsed already.
pub fn read_value(root: Value) -> Result<Option<Restored>, ImportError> {
    let Some(extra) = root.get(EXTRA_KEY) else {
        return Ok(None);
    };
    let mut imported = import_root(&root, None)?;
    let engine = &mut imported.engine;
    let at = |what: &str| format!("{EXTRA_KEY}.{what}");
    let ext = extra.get("engine").ok_or_else(|| ImportError::MissingKey {
        at: EXTRA_KEY.into(),
        key: "engine".into(),
    })?;
    if let Some(o) = ext.get("options") {
        engine.options = serde_json::from_value::<EngineOptions>(o.clone()).map_err(|e| {
            ImportError::BadValue {
                at: at("engine.options"),
                reason: e.to_string(),
            }
        })?;
    }
    engine.no_respawn = ext.get("no_respawn").and_then(Value::as_bool) == Some(true);

    let classes = root
        .get("job_classes")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (ci, c) in classes.iter().enumerate() {
        let Some(name) = c.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(slot) = engine.slots.get_mut(name) else {
            continue;
        };
        let at = format!("job_classes[{ci}].{EXTRA_KEY}");
        if let Some(x) = c.get(EXTRA_KEY) {
            apply_class_extras(Arc::make_mut(&mut slot.class), x);
            if let Some(p) = x.get("pending").filter(|p| !p.is_null()) {
                let mut next = class_from_json(p, &format!("{at}.pending"))?;
                if let Some(px) = p.get(EXTRA_KEY) {
                    apply_class_extras(&mut next, px);
                }
                slot.pending = Some(ClassChange::Replace(Arc::new(next)));
            }
        }
        let jobs = c
            .get("jobs")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for j in jobs {
            let (Some(iname), Some(x)) = (j.get("name").and_then(Value::as_str), j.get(EXTRA_KEY))
            else {
                continue;
            };
            let Some(inst) = slot.instances.get_mut(iname) else {
                continue;
            };
            inst.kill_deadline = x.get("kill_deadline_ms").and_then(Value::as_u64);
            if x.get("start_env_set").and_then(Value::as_i64) == Some(1) {
                inst.start_env.get_or_insert_with(Vec::new);
            }
            if x.get("stop_env_set").and_then(Value::as_i64) == Some(1) {
                inst.stop_env.get_or_insert_with(Vec::new);
            }
            if let Some(r) = x.get("readiness").filter(|r| !r.is_null()) {
                inst.readiness =
                    serde_json::from_value(r.clone()).map_err(|e| ImportError::BadValue {
                        at: format!("{at}.jobs.{iname}.readiness"),
                        reason: e.to_string(),
                    })?;
            }
        }
    }
    keep_event_ids(&root, &mut imported.engine);
    let daemon = extra.get("daemon").cloned().unwrap_or(Value::Null);
    free_elsewhere(root);
    Ok(Some(Restored { imported, daemon }))
}

/// Free a large parsed payload on a thread of its own: taking the tree
/// apart costs about as much as building it, and nothing waits for it.
fn free_elsewhere(root: Value) {
    // Should no thread start, the closure and the tree go here and now.
    let _ = std::thread::Builder::new()
        .name("state-free".into())
        .spawn(move || drop(root));
}

/// The importer numbers events by position; outset's own ids (kept under
/// each event's extras) are put back so that they stay the same across a
/// re-exec.
fn keep_event_ids(root: &Value, engine: &mut Engine) {
    let events = root
        .get("events")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let map: BTreeMap<EventId, EventId> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let id = e.get(EXTRA_KEY)?.get("id")?.as_u64()?;
            Some((u64::try_from(i).ok()?.saturating_add(1), id))
        })
        .collect();
    // Ids must stay unique, or references would merge.
    let unique: std::collections::BTreeSet<EventId> = map.values().copied().collect();
    if map.is_empty() || unique.len() != map.len() {
        return;
    }
    let to = |id: &mut EventId| {
        if let Some(n) = map.get(id) {
            *id = *n;
        }
    };
    let tree = |t: &mut EventTree| {
        for n in &mut t.nodes {
            if let Some(id) = n.event.as_mut() {
                to(id);
            }
        }
    };
    for e in &mut engine.events {
        to(&mut e.id);
    }
    for slot in engine.slots.values_mut() {
        if let Some(t) = slot.start_on.as_mut() {
            tree(t);
        }
        for inst in slot.instances.values_mut() {
            if let Some(t) = inst.stop_on.as_mut() {
                tree(t);
            }
            if let Some(id) = inst.blocker.as_mut() {
                to(id);
            }
            for h in &mut inst.blocking {
                if let Held::Event(id) = h {
                    to(id);
                }
            }
        }
    }
    let spawns = engine.spawns_in_flight();
    engine.reindex(&spawns);
}

fn apply_class_extras(class: &mut JobClass, x: &Value) {
    if x.get("expect").and_then(Value::as_str) == Some("notify") {
        class.expect = Expect::Notify;
    }
    class.rare.notify_timeout = x.get("notify_timeout").and_then(Value::as_u64);
    if let Some(path) = x.get("path").and_then(Value::as_str) {
        class.path = path.to_string();
    }
    if let Some(lines) = x.get("lines").and_then(Value::as_array) {
        for (p, line) in ProcessType::ALL.iter().zip(lines) {
            if let (Some(proc_), Some(n)) = (class.processes.get_mut(p), line.as_u64()) {
                proc_.line = usize::try_from(n).unwrap_or(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_job, ClassDefaults};
    use crate::job::{JobKey, Level, SpawnError, SpawnRequest, State, Sys};

    /// Spawns succeed with made-up pids; nothing else happens.
    struct FakeSys {
        next_pid: i32,
    }

    impl Sys for FakeSys {
        fn spawn(&mut self, _req: &SpawnRequest) -> Result<i32, SpawnError> {
            self.next_pid += 1;
            Ok(self.next_pid)
        }
        fn kill(&mut self, _pid: i32, _signal: i32, _group: bool) -> Result<(), nix::errno::Errno> {
            Ok(())
        }
        fn log(&mut self, _level: Level, _message: String) {}
    }

    fn class(name: &str, text: &str) -> JobClass {
        let mut c = parse_job(
            name,
            &format!("/etc/init/{name}.conf"),
            text,
            &ClassDefaults::default(),
        )
        .expect("job");
        c.path = format!("/etc/init/{name}.conf");
        c
    }

    fn deep_or(n: usize) -> String {
        let words: Vec<String> = (0..n).map(|i| format!("e{i}")).collect();
        words.join(" or ")
    }

    /// An engine with a bit of everything: running and killed instances,
    /// a spawn in flight, held events, a blocked `starting`, a pending
    /// replacement class and a very deep `start on`.
    fn busy_engine() -> (Engine, Handover) {
        let mut sys = FakeSys { next_pid: 100 };
        let mut e = Engine::new(
            EngineOptions {
                user_mode: true,
                cgroup_manager: Some("unix:path=/x".into()),
                ..EngineOptions::default()
            },
            vec!["PATH=/bin".into()],
            Vec::new(),
        );
        e.set_classes(
            &mut sys,
            vec![
                class("svc", "exec sleep 1\nlimit nofile 10 unlimited\nnice 3\n"),
                class("multi", "instance $N\nexec sleep 1\n"),
                class("both", "start on alpha and beta\nexec sleep 1\n"),
                class(
                    "deep",
                    &format!("start on go and ({})\nexec sleep 1\n", deep_or(400)),
                ),
                class("gate", "start on starting blocked\ntask\nexec sleep 1\n"),
                class("blocked", "exec sleep 1\n"),
                class("stubborn", "kill timeout 7\nexec sleep 1\n"),
            ],
        );
        e.set_time(5_000);
        e.start_job(&mut sys, "svc", Vec::new(), None).expect("svc");
        for n in 0..3 {
            e.start_job(&mut sys, "multi", vec![format!("N={n}")], None)
                .expect("multi");
        }
        e.start_job(&mut sys, "stubborn", Vec::new(), None)
            .expect("stubborn");
        e.start_job(&mut sys, "blocked", Vec::new(), None)
            .expect("blocked");
        e.emit("alpha", Vec::new());
        e.emit("go", vec!["X=1".into()]);
        e.run_queue(&mut sys);
        // Every spawn but svc's reports success.
        let svc = e
            .instance(&JobKey::new("svc", ""))
            .expect("svc")
            .pid(ProcessType::Main);
        for (pid, ..) in e.spawns_in_flight() {
            if pid != svc {
                e.spawn_ok(&mut sys, pid);
            }
        }
        e.run_queue(&mut sys);
        e.stop_job(&mut sys, "stubborn", Vec::new(), None)
            .expect("stop");
        e.run_queue(&mut sys);
        // Everything spawned so far is still in flight in the fake.
        let mut handover = Handover {
            uid: 1000,
            ..Handover::default()
        };
        for (pid, _, _) in e.spawns_in_flight() {
            handover.status.insert(pid, pid + 1000);
        }
        // One in-flight spawn with a script and a live log.
        let (pid, ..) = e.spawns_in_flight()[0].clone();
        handover.scripts.insert(pid, ("echo hi\n".into(), 77));
        handover.logs.insert(
            pid,
            LiveLog {
                pty_fd: 78,
                path: "/var/log/x.log".into(),
                unflushed: b"out".to_vec(),
            },
        );
        // A replacement waiting for svc's instance to stop.
        e.set_classes(
            &mut sys,
            e.slots
                .values()
                .map(|s| {
                    let mut c = (*s.class).clone();
                    if &*c.name == "svc" {
                        c.rare.description = Some("new".into());
                    }
                    c
                })
                .collect(),
        );
        (e, handover)
    }

    fn roundtrip(e: &Engine, h: &Handover) -> (Value, Restored) {
        let v = export(&ExportInput {
            engine: e,
            sources: &[ConfSource::dir("/etc/init")],
            handover: h,
            daemon: json!({ "anything": [1, 2] }),
            bus_address: Some("unix:path=/run/user/1000/bus"),
        });
        let text = serde_json::to_string(&v).expect("text");
        let back = read(&text).expect("read").expect("own payload");
        (v, back)
    }

    #[test]
    fn reexec_own_payload_reads_back_whole() {
        let (e, h) = busy_engine();
        // The fixture really covers the cases.
        let inst = |j: &str, i: &str| e.instance(&JobKey::new(j, i)).expect(j).clone();
        assert_eq!(inst("stubborn", "").state, State::Killed);
        assert!(inst("stubborn", "").kill_deadline.is_some());
        assert_eq!(inst("blocked", "").state, State::Starting);
        assert!(
            e.slots["deep"]
                .start_on
                .as_ref()
                .expect("tree")
                .held()
                .count()
                == 1
        );
        assert!(matches!(
            e.slots["svc"].pending,
            Some(ClassChange::Replace(_))
        ));
        assert!(!e.spawns_in_flight().is_empty());

        let (v, back) = roundtrip(&e, &h);
        let got = &back.imported.engine;
        assert_eq!(
            got.slots.keys().collect::<Vec<_>>(),
            e.slots.keys().collect::<Vec<_>>()
        );
        for (name, slot) in &e.slots {
            let other = &got.slots[name];
            assert!(other.class == slot.class, "{name}: class");
            assert!(other.pending == slot.pending, "{name}: pending");
            assert!(other.start_on == slot.start_on, "{name}: start on");
            assert_eq!(other.instances, slot.instances, "{name}");
        }
        assert_eq!(got.events, e.events);
        assert_eq!(got.global_env, e.global_env);
        assert_eq!(got.options, e.options);
        assert_eq!(got.spawns_in_flight(), e.spawns_in_flight());
        assert_eq!(back.daemon, json!({ "anything": [1, 2] }));
        assert_eq!(
            back.imported.bus_address.as_deref(),
            Some("unix:path=/run/user/1000/bus")
        );
        // Writing what was read gives the same text.
        let (v2, _) = roundtrip(got, &h);
        assert_eq!(v, v2);
        // The Upstart view: spawns, scripts and logs where Upstart keeps them.
        assert_eq!(back.imported.spawns.len(), h.status.len());
        assert_eq!(back.imported.scripts.len(), 1);
        assert_eq!(back.imported.logs.len(), 1);
        assert_eq!(back.imported.logs[0].unflushed, b"out");
    }

    #[test]
    fn reexec_payload_written_as_it_is_built_is_the_same_text() {
        let (e, h) = busy_engine();
        let input = ExportInput {
            engine: &e,
            sources: &[ConfSource::dir("/etc/init")],
            handover: &h,
            daemon: json!({ "anything": [1, 2] }),
            bus_address: None,
        };
        let streamed = serde_json::to_string(&Payload::new(&input)).expect("streamed");
        let whole = serde_json::to_string(&export(&input)).expect("whole");
        assert!(streamed.contains("\"jobs\":[{"), "{streamed}");
        assert!(streamed.contains("\"env\":["), "{streamed}");
        let at = streamed
            .bytes()
            .zip(whole.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        assert_eq!(
            streamed,
            whole,
            "differs at {at}: {}",
            &streamed[at.saturating_sub(200)..]
        );
    }

    #[test]
    fn reexec_deep_trees_stay_flat_in_the_json() {
        let (e, h) = busy_engine();
        let (v, _) = roundtrip(&e, &h);
        fn depth(v: &Value) -> usize {
            match v {
                Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        // Far below serde_json's recursion limit of 128.
        assert!(depth(&v) < 16, "depth {}", depth(&v));
        assert!(serde_json::from_str::<Value>(&v.to_string()).is_ok());
    }

    #[test]
    fn reexec_upstart_payload_is_not_taken_for_an_own_one() {
        let v = json!({ "sessions": [], "events": [], "job_classes": [] });
        assert!(read(&v.to_string()).expect("read").is_none());
        assert!(read("{").is_err());
    }
}
