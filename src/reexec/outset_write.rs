//! Writing outset's own payload (see [`super::outset`] for its layout)
//! straight from the engine's structures.
//!
//! Nothing is copied into a `serde_json::Value` on the way: each object
//! is a borrowed view that writes its members. The text is the one a
//! `Value` of the same payload gives (members sorted by key, as
//! serde_json's `Map` keeps them), which [`super::export`] relies on and
//! the tests compare.

use serde::ser::{Error as _, Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

use super::outset::{ExportInput, EXTRA_KEY};
use super::upstart::{
    resource_at, CONSOLES, EXPECTS, GOALS, MAX_LIMITS, NICE_UNSET, PROCESSES, PROGRESS, STATES,
    TRACES,
};
use crate::config::{
    CgroupController, CgroupName, CgroupSetting, ConfSource, ContainerExit, Expect, JobClass,
    ProcessType, SourceKind, RLIM_INFINITY,
};
use crate::control::paths::{instance_path, job_path};
use crate::event::{EventId, EventTree, Node, NodeKind};
use crate::job::{ClassChange, Event, EventWaiter, Held, Instance, Readiness, Slot};

fn name_of<T: Copy + PartialEq>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("", |(n, _)| *n)
}

fn process_name(p: Option<ProcessType>) -> &'static str {
    name_of(PROCESSES, p)
}

/// Upstart writes booleans as 0 and 1.
fn flag(b: bool) -> u8 {
    u8::from(b)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The members of one JSON object, which must be put in key order (debug
/// builds check it).
struct Members<M> {
    map: M,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<M: SerializeMap> Members<M> {
    fn put<V: Serialize + ?Sized>(&mut self, key: &'static str, value: &V) -> Result<(), M::Error> {
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.last < key, "{key} written after {}", self.last);
            self.last = key;
        }
        self.map.serialize_entry(key, value)
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.map.end()
    }
}

fn members<S: Serializer>(s: S) -> Result<Members<S::SerializeMap>, S::Error> {
    Ok(Members {
        map: s.serialize_map(None)?,
        #[cfg(debug_assertions)]
        last: "",
    })
}

/// A JSON array of what `items` gives, each time it is written.
struct List<F>(F);

impl<F, I> Serialize for List<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

/// An empty JSON array.
const NOTHING: [u8; 0] = [];

/// Event id → its index in the payload's `events`.
struct Indexes(BTreeMap<EventId, usize>);

impl Indexes {
    fn get(&self, id: EventId) -> Option<usize> {
        self.0.get(&id).copied()
    }
}

/// A payload ready to be written. Written, it is the same text as
/// [`super::export`] gives; the classes, most of it, are written from
/// where they are, so the first bytes go out at once and the text is never
/// held whole.
pub struct Payload<'a> {
    input: &'a ExportInput<'a>,
    idx: Indexes,
    spawning: BTreeMap<i32, ProcessType>,
    /// `engine.options` as a value: written with its members sorted, as
    /// everything else.
    options: Value,
    /// How an instance's untouched readiness is written (most are).
    idle_readiness: Value,
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
        Payload {
            input,
            idx,
            spawning,
            options: serde_json::to_value(&engine.options).unwrap_or(Value::Null),
            idle_readiness: serde_json::to_value(Readiness::default()).unwrap_or(Value::Null),
        }
    }
}

impl Serialize for Payload<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let engine = self.input.engine;
        let mut m = members(s)?;
        m.put("cgroup_manager_address", &engine.options.cgroup_manager)?;
        m.put(
            "conf_sources",
            &List(|| {
                self.input
                    .sources
                    .iter()
                    .enumerate()
                    .map(|(index, source)| SourceOut {
                        p: self,
                        index,
                        source,
                    })
            }),
        )?;
        m.put("control_bus_address", &self.input.bus_address)?;
        m.put(
            "events",
            &List(|| engine.events.iter().map(|event| EventOut { event })),
        )?;
        m.put(
            "job_classes",
            &List(|| {
                engine.slots.iter().map(|(name, slot)| ClassOut {
                    p: self,
                    class: &slot.class,
                    start_on: slot.start_on.as_ref(),
                    slot: Some((name, slot)),
                })
            }),
        )?;
        m.put("job_environment", &engine.global_env)?;
        m.put(EXTRA_KEY, &TopExtra(self))?;
        m.put("sessions", &NOTHING)?;
        m.end()
    }
}

/// The top level's `outset`: the engine's options and the daemon's state.
struct TopExtra<'p, 'a>(&'p Payload<'a>);

impl Serialize for TopExtra<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("daemon", &self.0.input.daemon)?;
        m.put("engine", &EngineExtra(self.0))?;
        m.end()
    }
}

struct EngineExtra<'p, 'a>(&'p Payload<'a>);

impl Serialize for EngineExtra<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("no_respawn", &self.0.input.engine.no_respawn)?;
        m.put("options", &self.0.options)?;
        m.end()
    }
}

struct SourceOut<'p, 'a> {
    p: &'p Payload<'a>,
    index: usize,
    source: &'p ConfSource,
}

impl Serialize for SourceOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dir = self.source.kind == SourceKind::Dir;
        let mut m = members(s)?;
        m.put(
            "conf_files",
            &List(|| {
                self.p
                    .input
                    .engine
                    .slots
                    .iter()
                    .filter(move |(_, slot)| {
                        dir && !slot.class.path.is_empty()
                            && std::path::Path::new(&slot.class.path).starts_with(&self.source.path)
                    })
                    .map(|(name, slot)| ConfFileOut {
                        index: self.index,
                        name,
                        path: &slot.class.path,
                    })
            }),
        )?;
        m.put("flag", &1)?;
        m.put("path", &self.source.path.to_string_lossy())?;
        m.put("session", &0)?;
        m.put("type", if dir { "CONF_JOB_DIR" } else { "CONF_FILE" })?;
        m.end()
    }
}

struct ConfFileOut<'p> {
    index: usize,
    name: &'p str,
    path: &'p str,
}

impl Serialize for ConfFileOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("conf_source", &self.index)?;
        m.put("flag", &1)?;
        m.put("job_class", &ClassRef { name: self.name })?;
        m.put("path", self.path)?;
        m.end()
    }
}

/// A class named in the default session.
struct ClassRef<'p> {
    name: &'p str,
}

impl Serialize for ClassRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("name", self.name)?;
        m.put("session", &0)?;
        m.end()
    }
}

struct EventOut<'p> {
    event: &'p Event,
}

impl Serialize for EventOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        // `EmitEvent(wait)` callers are not handed over (reexec.md §4.4).
        let jobs = || {
            e.blocking.iter().filter_map(|w| match w {
                EventWaiter::Job(k) => Some(Blocked::Job {
                    class: &k.job,
                    name: &k.instance,
                }),
                EventWaiter::Caller(_) => None,
            })
        };
        let mut m = members(s)?;
        m.put("blockers", &e.blockers)?;
        if jobs().next().is_some() {
            m.put("blocking", &List(jobs))?;
        }
        if !e.env.is_empty() {
            m.put("env", &e.env)?;
        }
        m.put("failed", &flag(e.failed))?;
        m.put("fd", &e.fd.unwrap_or(-1))?;
        m.put("name", &e.name)?;
        m.put(EXTRA_KEY, &EventExtra { id: e.id })?;
        m.put("progress", name_of(PROGRESS, e.progress))?;
        m.put("session", &0)?;
        m.end()
    }
}

struct EventExtra {
    id: EventId,
}

impl Serialize for EventExtra {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("id", &self.id)?;
        m.end()
    }
}

/// An entry of a `blocking` list.
enum Blocked<'p> {
    Job { class: &'p str, name: &'p str },
    Event(usize),
}

impl Serialize for Blocked<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        match self {
            Blocked::Job { class, name } => {
                m.put("data", &JobData { class, name })?;
                m.put("type", "BLOCKED_JOB")?;
            }
            Blocked::Event(index) => {
                m.put("data", &EventData { index: *index })?;
                m.put("type", "BLOCKED_EVENT")?;
            }
        }
        m.end()
    }
}

struct JobData<'p> {
    class: &'p str,
    name: &'p str,
}

impl Serialize for JobData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("class", self.class)?;
        m.put("name", self.name)?;
        m.put("session", &0)?;
        m.end()
    }
}

struct EventData {
    index: usize,
}

impl Serialize for EventData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("index", &self.index)?;
        m.end()
    }
}

/// A tree as Upstart's post-order operator list (nodes already are in
/// post-order), so however deep it is, the JSON nests only a few levels.
struct Operators<'p> {
    tree: &'p EventTree,
    idx: &'p Indexes,
}

impl Serialize for Operators<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.tree.nodes.iter().map(|node| NodeOut {
            node,
            idx: self.idx,
        }))
    }
}

struct NodeOut<'p> {
    node: &'p Node,
    idx: &'p Indexes,
}

impl Serialize for NodeOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.node;
        let mut m = members(s)?;
        let kind = match &n.kind {
            NodeKind::Match { name, args } => {
                m.put("env", args)?;
                if let Some(i) = n.event.and_then(|id| self.idx.get(id)) {
                    m.put("event", &i)?;
                }
                m.put("name", name)?;
                "EVENT_MATCH"
            }
            NodeKind::And(..) => "EVENT_AND",
            NodeKind::Or(..) => "EVENT_OR",
        };
        m.put("type", kind)?;
        m.put("value", &flag(n.value))?;
        m.end()
    }
}

/// A class in Upstart's layout: with its instances and state when it is
/// a registered one (`slot`), else alone (a replacement waiting in the
/// extras). `start_on` is the runtime tree when there is one, else the
/// expression's fresh tree.
struct ClassOut<'p, 'a> {
    p: &'p Payload<'a>,
    class: &'p JobClass,
    start_on: Option<&'p EventTree>,
    slot: Option<(&'p str, &'p Slot)>,
}

impl Serialize for ClassOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let class = self.class;
        let idx = &self.p.idx;
        let slot = self.slot.map(|(_, slot)| slot);
        let mut m = members(s)?;
        m.put("apparmor_switch", &class.rare.apparmor_switch)?;
        m.put("author", &class.rare.author)?;
        // Matched while the cgroup manager was unknown: start when it comes.
        m.put(
            "cgmanager_wait",
            &flag(slot.is_some_and(|s| s.cgmanager_wait)),
        )?;
        m.put(
            "cgroups",
            &List(|| {
                class
                    .rare
                    .cgroups
                    .iter()
                    .map(|controller| CgroupOut { controller })
            }),
        )?;
        m.put("chdir", &class.rare.chdir)?;
        m.put("chroot", &class.rare.chroot)?;
        m.put("console", name_of(CONSOLES, class.console))?;
        m.put("debug", &flag(class.debug))?;
        let deleted = slot.is_some_and(|s| matches!(s.pending, Some(ClassChange::Delete)));
        m.put("deleted", &flag(deleted))?;
        m.put("description", &class.rare.description)?;
        m.put("emits", &class.rare.emits)?;
        m.put("env", &class.env)?;
        // An extension: written only when set, so that other states stay
        // what Upstart writes. -1 stands for the job's own status.
        if let Some(exit) = class.rare.exit_container_on_failure {
            let code = match exit {
                ContainerExit::JobStatus => -1,
                ContainerExit::Code(c) => i64::from(c),
            };
            m.put("exit_container_on_failure", &code)?;
        }
        // Upstart has no `expect notify`: it reads EXPECT_NONE, and outset
        // the extras.
        let upstart_expect = match class.expect {
            Expect::Notify => Expect::None,
            other => other,
        };
        m.put("expect", name_of(EXPECTS, upstart_expect))?;
        m.put("export", &class.rare.export)?;
        m.put("instance", &class.instance)?;
        match self.slot {
            Some((job, slot)) => m.put(
                "jobs",
                &List(|| {
                    slot.instances.values().map(move |inst| InstanceOut {
                        p: self.p,
                        job,
                        slot,
                        inst,
                    })
                }),
            )?,
            None => m.put("jobs", &NOTHING)?,
        }
        m.put("kill_signal", &class.kill_signal)?;
        m.put("kill_timeout", &class.kill_timeout)?;
        m.put(
            "limits",
            &List(|| {
                (0..MAX_LIMITS)
                    .map(|i| {
                        let set = resource_at(i).and_then(|r| class.rare.limits.get(&r));
                        set.map_or((0, 0), |l| (l.soft, l.hard))
                    })
                    .map(|(soft, hard)| LimitOut { soft, hard })
            }),
        )?;
        m.put("name", &class.name)?;
        m.put("nice", &class.rare.nice.map_or(NICE_UNSET, i64::from))?;
        m.put("normalexit", &class.normal_exit)?;
        m.put("oom_score_adj", &class.rare.oom_score_adj)?;
        let pending = match slot.and_then(|s| s.pending.as_ref()) {
            Some(ClassChange::Replace(next)) => Some(&**next),
            _ => None,
        };
        m.put(
            EXTRA_KEY,
            &ClassExtra {
                p: self.p,
                class,
                pending,
            },
        )?;
        m.put("path", &job_path(&class.name))?;
        m.put(
            "process",
            &List(|| {
                ProcessType::ALL.iter().map(|p| {
                    let p = class.process(*p);
                    ProcessOut {
                        command: p.map(|p| p.command.as_str()),
                        script: p.is_some_and(|p| p.script),
                    }
                })
            }),
        )?;
        m.put("reload_signal", &class.reload_signal)?;
        m.put("respawn", &flag(class.respawn))?;
        m.put("respawn_interval", &class.respawn_interval)?;
        m.put("respawn_limit", &class.respawn_limit)?;
        m.put("session", &0)?;
        m.put("setgid", &class.rare.setgid)?;
        m.put("setuid", &class.rare.setuid)?;
        let fresh = match self.start_on {
            Some(_) => None,
            None => class.start_on.as_ref().map(EventTree::new),
        };
        if let Some(tree) = self.start_on.or(fresh.as_ref()) {
            m.put("start_on", &Operators { tree, idx })?;
        }
        if let Some(e) = &class.stop_on {
            let tree = EventTree::new(e);
            m.put("stop_on", &Operators { tree: &tree, idx })?;
        }
        m.put("task", &flag(class.task))?;
        m.put("umask", &class.umask)?;
        m.put("usage", &class.rare.usage)?;
        m.put("version", &class.rare.version)?;
        m.end()
    }
}

/// A class's `outset`: what Upstart's layout cannot say.
struct ClassExtra<'p, 'a> {
    p: &'p Payload<'a>,
    class: &'p JobClass,
    pending: Option<&'p JobClass>,
}

impl Serialize for ClassExtra<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let class = self.class;
        let mut m = members(s)?;
        if class.expect == Expect::Notify {
            m.put("expect", "notify")?;
        }
        m.put(
            "lines",
            &List(|| {
                ProcessType::ALL
                    .iter()
                    .map(|p| class.process(*p).map_or(0, |p| p.line))
            }),
        )?;
        if let Some(t) = class.rare.notify_timeout {
            m.put("notify_timeout", &t)?;
        }
        m.put("path", &class.path)?;
        if let Some(next) = self.pending {
            m.put(
                "pending",
                &ClassOut {
                    p: self.p,
                    class: next,
                    start_on: None,
                    slot: None,
                },
            )?;
        }
        m.end()
    }
}

struct ProcessOut<'p> {
    command: Option<&'p str>,
    script: bool,
}

impl Serialize for ProcessOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("command", &self.command)?;
        m.put("script", &flag(self.script))?;
        m.end()
    }
}

struct LimitOut {
    soft: u64,
    hard: u64,
}

/// json-c writes an rlim_t as a signed 64-bit number: RLIM_INFINITY is −1.
struct Rlim(u64);

impl Serialize for Rlim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == RLIM_INFINITY {
            s.serialize_i64(-1)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl Serialize for LimitOut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("rlim_cur", &Rlim(self.soft))?;
        m.put("rlim_max", &Rlim(self.hard))?;
        m.end()
    }
}

struct CgroupOut<'p> {
    controller: &'p CgroupController,
}

impl Serialize for CgroupOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("controller", &self.controller.controller)?;
        m.put(
            "names",
            &List(|| {
                self.controller
                    .names
                    .iter()
                    .map(|name| CgroupNameOut { name })
            }),
        )?;
        m.end()
    }
}

struct CgroupNameOut<'p> {
    name: &'p CgroupName,
}

impl Serialize for CgroupNameOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("expanded", &())?;
        m.put("name", &self.name.name)?;
        m.put(
            "settings",
            &List(|| {
                self.name
                    .settings
                    .iter()
                    .map(|setting| SettingOut { setting })
            }),
        )?;
        m.end()
    }
}

struct SettingOut<'p> {
    setting: &'p CgroupSetting,
}

impl Serialize for SettingOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("key", &self.setting.key)?;
        m.put("value", &self.setting.value)?;
        m.end()
    }
}

struct InstanceOut<'p, 'a> {
    p: &'p Payload<'a>,
    job: &'p str,
    slot: &'p Slot,
    inst: &'p Instance,
}

impl Serialize for InstanceOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let inst = self.inst;
        let idx = &self.p.idx;
        let mut m = members(s)?;
        if let Some(i) = inst.blocker.and_then(|id| idx.get(id)) {
            m.put("blocker", &i)?;
        }
        // Control callers waiting for this instance are not handed over:
        // their connections end with the exec (reexec.md §4.4).
        let blocking = || {
            inst.blocking
                .iter()
                .filter_map(|h| match h {
                    Held::Event(id) => idx.get(*id),
                    Held::Waiter { .. } => None,
                })
                .map(Blocked::Event)
        };
        if blocking().next().is_some() {
            m.put("blocking", &List(blocking))?;
        }
        m.put("env", &inst.env)?;
        m.put("exit_status", &inst.exit_status)?;
        m.put("failed", &flag(inst.failed))?;
        m.put("failed_process", process_name(inst.failed_process))?;
        m.put("fds", &NOTHING)?;
        m.put("goal", name_of(GOALS, inst.goal))?;
        match inst.kill_deadline {
            Some(deadline) => {
                m.put("kill_process", process_name(Some(ProcessType::Main)))?;
                m.put(
                    "kill_timer",
                    &KillTimer {
                        due: deadline.div_ceil(1000),
                        timeout: self.slot.class.kill_timeout.max(0),
                    },
                )?;
            }
            None => m.put("kill_process", process_name(None))?,
        }
        m.put(
            "log",
            &List(|| ProcessType::ALL.iter().map(|p| self.log(*p))),
        )?;
        m.put("name", &inst.name)?;
        let readiness = if inst.readiness == Readiness::default() {
            None
        } else {
            Some(serde_json::to_value(&inst.readiness).map_err(S::Error::custom)?)
        };
        m.put(
            EXTRA_KEY,
            &InstanceExtra {
                inst,
                readiness: readiness.as_ref().unwrap_or(&self.p.idle_readiness),
            },
        )?;
        m.put("path", &instance_path(self.job, &inst.name))?;
        m.put(
            "pid",
            &List(|| ProcessType::ALL.iter().map(|p| inst.pid(*p))),
        )?;
        m.put(
            "process_data",
            &List(|| ProcessType::ALL.iter().map(|p| self.spawn(*p))),
        )?;
        m.put("respawn_count", &inst.respawn_count)?;
        m.put("respawn_time", &inst.respawn_time)?;
        // The environment lists are most of a payload.
        m.put("start_env", inst.start_env.as_deref().unwrap_or_default())?;
        m.put("state", name_of(STATES, inst.state))?;
        m.put("stop_env", inst.stop_env.as_deref().unwrap_or_default())?;
        if let Some(tree) = &inst.stop_on {
            m.put("stop_on", &Operators { tree, idx })?;
        }
        m.put("trace_forks", &inst.trace_forks)?;
        m.put("trace_state", name_of(TRACES, inst.trace))?;
        m.end()
    }
}

impl InstanceOut<'_, '_> {
    /// The live log of process `p`, if init feeds one.
    fn log(&self, p: ProcessType) -> LogOut<'_> {
        let pid = self.inst.pid(p);
        let handover = self.p.input.handover;
        LogOut {
            live: (pid > 0).then(|| handover.logs.get(&pid)).flatten(),
            uid: handover.uid,
        }
    }

    /// The spawn of process `p` if it is in flight (its status pipe open).
    fn spawn(&self, p: ProcessType) -> Option<SpawnOut<'_>> {
        let pid = self.inst.pid(p);
        let handover = self.p.input.handover;
        let status = (pid > 0 && self.p.spawning.get(&pid) == Some(&p))
            .then(|| handover.status.get(&pid))
            .flatten()?;
        let script = handover.scripts.get(&pid);
        Some(SpawnOut {
            process: p,
            status_fd: *status,
            script: script.map(|(text, _)| text.as_str()),
            shell_fd: script.map_or(-1, |(_, fd)| *fd),
        })
    }
}

struct KillTimer {
    due: u64,
    timeout: i64,
}

impl Serialize for KillTimer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("due", &self.due)?;
        m.put("timeout", &self.timeout)?;
        m.end()
    }
}

/// An instance's `outset`: the deadline to the millisecond, whether an
/// empty `start_env`/`stop_env` was set or absent, and its readiness.
struct InstanceExtra<'p> {
    inst: &'p Instance,
    readiness: &'p Value,
}

impl Serialize for InstanceExtra<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("kill_deadline_ms", &self.inst.kill_deadline)?;
        m.put("readiness", self.readiness)?;
        m.put("start_env_set", &flag(self.inst.start_env.is_some()))?;
        m.put("stop_env_set", &flag(self.inst.stop_env.is_some()))?;
        m.end()
    }
}

struct LogOut<'p> {
    live: Option<&'p super::LiveLog>,
    uid: u32,
}

impl Serialize for LogOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        match self.live {
            Some(l) => {
                m.put("detached", &0)?;
                m.put("fd", &-1)?;
                m.put("io_watch_fd", &l.pty_fd)?;
                m.put("open_errno", &0)?;
                m.put("path", &l.path)?;
                m.put("remote_closed", &0)?;
                m.put("uid", &self.uid)?;
                if !l.unflushed.is_empty() {
                    m.put("unflushed", &hex(&l.unflushed))?;
                }
            }
            None => m.put("path", &())?,
        }
        m.end()
    }
}

struct SpawnOut<'p> {
    process: ProcessType,
    status_fd: i32,
    script: Option<&'p str>,
    shell_fd: i32,
}

impl Serialize for SpawnOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = members(s)?;
        m.put("job_process_fd", &self.status_fd)?;
        m.put("process", process_name(Some(self.process)))?;
        m.put("script", &self.script)?;
        m.put("shell_fd", &self.shell_fd)?;
        m.put("status", &0)?;
        m.put("valid", &1)?;
        m.end()
    }
}
