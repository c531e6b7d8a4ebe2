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

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::tree::{Map as TreeMap, Value as TreeValue};

pub use super::outset_write::Payload;
use super::upstart::{class_from_json, import_from, ImportError, Imported, ReadError, Streamed};
use crate::config::{ConfSource, Expect, JobClass, ProcessType};
use crate::event::{EventId, EventTree};
use crate::job::{ClassChange, Engine, EngineOptions, Held, Readiness, Slot};
use serde::Deserialize;

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

/// The whole state as one JSON value in Upstart 1.13's layout: the text
/// a [`Payload`] writes, as a value.
pub fn export(input: &ExportInput<'_>) -> Value {
    serde_json::to_value(Payload::new(input)).unwrap_or(Value::Null)
}

/// Read a payload. `Ok(None)`: not outset's own (no top-level `outset`),
/// so a plain Upstart payload for [`super::import`].
pub fn read(json: &str) -> Result<Option<Restored>, ImportError> {
    let mut de = serde_json::Deserializer::from_str(json);
    read_from(&mut de).map_err(ImportError::from)
}

/// [`read`] from any source of JSON text; each class is imported as soon
/// as it has been parsed (see `upstart::stream`).
pub fn read_from<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
) -> Result<Option<Restored>, ReadError> {
    let Streamed {
        mut imported,
        mut rest,
    } = import_from(de, None, &mut class_extras)?;
    let Some(extra) = rest.remove(EXTRA_KEY) else {
        return Ok(None);
    };
    let engine = &mut imported.engine;
    let at = |what: &str| format!("{EXTRA_KEY}.{what}");
    let ext = extra.get("engine").ok_or_else(|| ImportError::MissingKey {
        at: EXTRA_KEY.into(),
        key: "engine".into(),
    })?;
    if let Some(o) = ext.get("options") {
        engine.options =
            EngineOptions::deserialize(o.to_json()).map_err(|e| ImportError::BadValue {
                at: at("engine.options"),
                reason: e.to_string(),
            })?;
    }
    engine.no_respawn = ext.get("no_respawn").and_then(TreeValue::as_bool) == Some(true);
    keep_event_ids(&rest, &mut imported.engine);
    let daemon = match extra {
        TreeValue::Object(mut o) => o.remove("daemon").map_or(Value::Null, |d| d.to_json()),
        _ => Value::Null,
    };
    Ok(Some(Restored { imported, daemon }))
}

/// A class's and its instances' extras, applied as the class is imported.
fn class_extras(
    c: &TreeValue,
    ci: usize,
    slots: &mut BTreeMap<crate::job::ClassName, Slot>,
) -> Result<(), ImportError> {
    let Some(name) = c.get("name").and_then(TreeValue::as_str) else {
        return Ok(());
    };
    let Some(slot) = slots.get_mut(name) else {
        return Ok(());
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
        .and_then(TreeValue::as_array)
        .map_or(&[][..], Vec::as_slice);
    for j in jobs {
        let (Some(iname), Some(x)) = (j.get("name").and_then(TreeValue::as_str), j.get(EXTRA_KEY))
        else {
            continue;
        };
        let Some(inst) = slot.instances.get_mut(iname) else {
            continue;
        };
        inst.kill_deadline = x.get("kill_deadline_ms").and_then(TreeValue::as_u64);
        if x.get("start_env_set").and_then(TreeValue::as_i64) == Some(1) {
            inst.start_env.get_or_insert_with(Vec::new);
        }
        if x.get("stop_env_set").and_then(TreeValue::as_i64) == Some(1) {
            inst.stop_env.get_or_insert_with(Vec::new);
        }
        if let Some(r) = x.get("readiness").filter(|r| !r.is_null()) {
            inst.readiness =
                Readiness::deserialize(r.to_json()).map_err(|e| ImportError::BadValue {
                    at: format!("{at}.jobs.{iname}.readiness"),
                    reason: e.to_string(),
                })?;
        }
    }
    Ok(())
}

/// The importer numbers events by position; outset's own ids (kept under
/// each event's extras) are put back so that they stay the same across a
/// re-exec.
fn keep_event_ids(top: &TreeMap, engine: &mut Engine) {
    let events = top
        .get("events")
        .and_then(TreeValue::as_array)
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

fn apply_class_extras(class: &mut JobClass, x: &TreeValue) {
    if x.get("expect").and_then(TreeValue::as_str) == Some("notify") {
        class.expect = Expect::Notify;
    }
    class.rare.notify_timeout = x.get("notify_timeout").and_then(TreeValue::as_u64);
    if let Some(path) = x.get("path").and_then(TreeValue::as_str) {
        class.path = path.to_string();
    }
    if let Some(lines) = x.get("lines").and_then(TreeValue::as_array) {
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
    use serde_json::json;

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
