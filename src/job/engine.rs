//! The engine proper. Every public method is one input; effects go through
//! the [`Sys`] passed in. Nothing here reads a clock: callers pass `now`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::instance::{Held, Instance, Trace};
use super::interest::InterestCache;
use super::state::{Goal, State};
use super::sys::{Level, Notice, Reply, SpawnRequest, Sys};
use super::JobKey;
use crate::config::{expand, signal_name, Expect, JobClass, ProcessType};
use crate::env;
use crate::event::{EventId, EventRef, EventTree, Progress};

const SIGKILL: i32 = 9;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;
const SIGTRAP: i32 = 5;
const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_EXEC: i32 = 4;
const ESRCH: i32 = 3;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// Upstart's single number: the exit code, or `signal << 8`.
    pub fn raw(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => s << 8,
        }
    }
}

/// A queued event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub name: String,
    pub env: Vec<String>,
    pub progress: Progress,
    pub failed: bool,
    pub blockers: u32,
    pub blocking: Vec<EventWaiter>,
    /// A file descriptor the event carries (`EmitEventWithFile`).
    #[serde(default)]
    pub fd: Option<i32>,
}

/// Who waits for an event to finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventWaiter {
    /// An instance blocked in `starting` or `stopping`.
    Job(JobKey),
    /// An `EmitEvent(wait=true)` caller.
    Caller(u64),
}

/// A registered job name: its class, start condition and instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub class: Arc<JobClass>,
    pub start_on: Option<EventTree>,
    pub instances: BTreeMap<String, Instance>,
    /// A configuration change that waits for the last instance to go:
    /// `Some(Some(class))` replaces, `Some(None)` deletes.
    pub pending: Option<Option<Arc<JobClass>>>,
    /// The start condition matched events while the cgroup manager was
    /// unknown: start once its address arrives (cgroups.md §5).
    #[serde(default)]
    pub cgmanager_wait: bool,
}

impl Slot {
    fn new(class: Arc<JobClass>) -> Self {
        Slot {
            start_on: class.start_on.as_ref().map(EventTree::new),
            class,
            instances: BTreeMap::new(),
            pending: None,
            cgmanager_wait: false,
        }
    }
}

/// Settings that come from how the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EngineOptions {
    pub user_mode: bool,
    /// Private control address, exported to user-mode jobs.
    pub session_address: Option<String>,
    /// Is AppArmor usable (process-spawning.md §9)?
    pub apparmor: bool,
    /// `--no-cgroups`.
    pub no_cgroups: bool,
    /// The cgroup manager's address, once known.
    pub cgroup_manager: Option<String>,
    /// `NOTIFY_SOCKET` for `expect notify` main processes.
    #[serde(default)]
    pub notify_socket: Option<String>,
}

/// A spawn whose status pipe has not reported yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingSpawn {
    job: JobKey,
    process: ProcessType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Engine {
    pub slots: BTreeMap<String, Slot>,
    pub events: VecDeque<Event>,
    next_event: EventId,
    /// Global job environment table.
    pub global_env: Vec<String>,
    /// init's own environment, for bare `env KEY` stanzas.
    pub init_env: Vec<String>,
    pub options: EngineOptions,
    /// Respawning is disabled (session ending).
    pub no_respawn: bool,
    /// pid → owning instance and process type.
    pub(super) pids: BTreeMap<i32, (JobKey, ProcessType)>,
    /// pid → spawn whose status pipe is still open.
    spawns: BTreeMap<i32, PendingSpawn>,
    /// Monotonic time of the current input, in milliseconds.
    pub(super) now_ms: u64,
    /// A class held back for the cgroup manager during this event.
    #[serde(skip)]
    cgroup_wait_logged: bool,
    /// Event name → interested jobs; rebuilt when the classes change.
    #[serde(skip)]
    interest: InterestCache,
    /// Instances that may have a kill deadline (a superset: entries are
    /// dropped when their timer is looked at), so that finding the next
    /// deadline after every turn of the loop does not visit every class.
    #[serde(skip)]
    pub(super) timed: BTreeSet<JobKey>,
    /// Post-start processes killed because their main process ended: their
    /// end is expected, not a warning (post_start.rs).
    #[serde(skip)]
    pub(super) abandoned: BTreeSet<i32>,
}

/// What a control call's job name and environment resolve to.
struct Resolved {
    class: Arc<JobClass>,
    /// Class environment plus the caller's list.
    env: Vec<String>,
    /// The expanded instance name, or the expansion error's message.
    name: Result<String, String>,
}

/// Outcome of handling one class for an event.
enum Flow {
    Continue,
    /// Instance-name expansion failed: the reference abandons the event for
    /// every remaining class.
    Abort,
}

impl Engine {
    pub fn new(options: EngineOptions, global_env: Vec<String>, init_env: Vec<String>) -> Self {
        Engine {
            options,
            global_env,
            init_env,
            next_event: 1,
            ..Default::default()
        }
    }

    /// Does `job` need the cgroup manager? Only with `cgroup` stanzas, and
    /// never with `--no-cgroups` (cgroups.md §6).
    pub fn needs_cgroups(&self, job: &str) -> bool {
        !self.options.no_cgroups
            && self
                .slots
                .get(job)
                .is_some_and(|s| !s.class.cgroups.is_empty())
    }

    /// `NotifyCGroupManagerAddress`: the first address wins; classes whose
    /// start condition matched while waiting for it start now, without
    /// re-checking the whole condition (cgroups.md §2, §5).
    pub fn cgroup_manager_address(&mut self, sys: &mut dyn Sys, address: &str) {
        if self.options.no_cgroups || self.options.cgroup_manager.is_some() {
            return;
        }
        self.options.cgroup_manager = Some(address.to_string());
        let waiting: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.cgmanager_wait && s.start_on.is_some())
            .map(|(j, _)| j.clone())
            .collect();
        for job in waiting {
            self.induct(sys, &job);
            if let Some(slot) = self.slots.get_mut(&job) {
                slot.cgmanager_wait = false;
            }
        }
    }

    /// The error of a manual start while the manager is unknown.
    fn cgroup_start_check(&self, job: &str, display: &str) -> Result<(), (&'static str, String)> {
        if self.needs_cgroups(job) && self.options.cgroup_manager.is_none() {
            return Err((
                "com.ubuntu.Upstart0_6.Error.CGroupManagerNotAvailable",
                format!("Job cannot be started as cgroup manager not available: {display}"),
            ));
        }
        Ok(())
    }

    /// Rebuild the indexes derived from slots and events (pid owners, the
    /// next event number) after state was assembled from outside, such as
    /// an imported Upstart payload. Spawns in flight are given as
    /// (pid, job, process) for the status pipes that are still open.
    pub fn reindex(&mut self, spawns_in_flight: &[(i32, JobKey, ProcessType)]) {
        self.interest.clear();
        self.pids.clear();
        self.timed.clear();
        for (job, slot) in &self.slots {
            for (name, inst) in &slot.instances {
                if inst.kill_deadline.is_some() || inst.readiness.deadline.is_some() {
                    self.timed.insert(JobKey::new(job, name));
                }
                for (process, pid) in &inst.pids {
                    if *pid > 0 {
                        self.pids.insert(*pid, (JobKey::new(job, name), *process));
                    }
                }
            }
        }
        self.spawns = spawns_in_flight
            .iter()
            .map(|(pid, job, process)| {
                (
                    *pid,
                    PendingSpawn {
                        job: job.clone(),
                        process: *process,
                    },
                )
            })
            .collect();
        self.next_event = self
            .events
            .iter()
            .map(|e| e.id + 1)
            .max()
            .unwrap_or(1)
            .max(self.next_event);
    }

    pub fn set_time(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    pub fn instance(&self, key: &JobKey) -> Option<&Instance> {
        self.slots.get(&key.job)?.instances.get(&key.instance)
    }

    pub(super) fn inst(&mut self, key: &JobKey) -> Option<&mut Instance> {
        self.slots
            .get_mut(&key.job)?
            .instances
            .get_mut(&key.instance)
    }

    pub(super) fn class_of(&self, key: &JobKey) -> Option<Arc<JobClass>> {
        self.slots.get(&key.job).map(|s| s.class.clone())
    }

    /// Is any instance of any job alive?
    pub fn has_instances(&self) -> bool {
        self.slots.values().any(|s| !s.instances.is_empty())
    }

    /// Is a process of any job running?
    pub fn has_processes(&self) -> bool {
        !self.pids.is_empty()
    }

    /// Nothing queued and every instance at rest (`running` with goal start).
    pub fn settled(&self) -> bool {
        self.events.is_empty()
            && self.slots.values().all(|s| {
                s.instances
                    .values()
                    .all(|i| i.state == State::Running && i.goal == Goal::Start)
            })
    }

    // ------------------------------------------------------------------
    // Configuration

    /// Install the registered classes after a (re)load. Changed classes
    /// replace the old ones at once if they have no instances, else when
    /// the last instance is gone (job-config.md §3).
    pub fn set_classes(&mut self, sys: &mut dyn Sys, classes: Vec<JobClass>) {
        self.interest.clear();
        let mut incoming: BTreeMap<String, JobClass> =
            classes.into_iter().map(|c| (c.name.clone(), c)).collect();
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            match incoming.remove(&name) {
                Some(class) => {
                    let same = self.slots.get(&name).is_some_and(|s| *s.class == class);
                    if same {
                        if let Some(slot) = self.slots.get_mut(&name) {
                            slot.pending = None;
                        }
                    } else {
                        self.change_class(sys, &name, Some(Arc::new(class)));
                    }
                }
                None => self.change_class(sys, &name, None),
            }
        }
        for (name, class) in incoming {
            self.slots.insert(name.clone(), Slot::new(Arc::new(class)));
            sys.notice(Notice::JobAdded(name));
        }
    }

    fn change_class(&mut self, sys: &mut dyn Sys, name: &str, class: Option<Arc<JobClass>>) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        if !slot.instances.is_empty() {
            slot.pending = Some(class);
            return;
        }
        self.apply_class_change(sys, name, class);
    }

    fn apply_class_change(&mut self, sys: &mut dyn Sys, name: &str, class: Option<Arc<JobClass>>) {
        self.interest.clear();
        let Some(old) = self.slots.remove(name) else {
            return;
        };
        sys.notice(Notice::JobRemoved(name.to_string()));
        let held: Vec<EventId> = old
            .start_on
            .as_ref()
            .map(|t| t.held().collect())
            .unwrap_or_default();
        let Some(class) = class else {
            for id in held {
                self.release(id);
            }
            return;
        };
        let mut slot = Slot::new(class);
        // Partial start conditions carry over to the new definition.
        if let Some(tree) = slot.start_on.as_mut() {
            for id in &held {
                if let Some(ev) = self.event(*id) {
                    let r = EventRef {
                        id: ev.id,
                        name: &ev.name,
                        env: &ev.env,
                    };
                    let n = tree.offer(&r, &[]);
                    for _ in 0..n {
                        self.hold(*id);
                    }
                }
            }
        }
        for id in held {
            self.release(id);
        }
        self.slots.insert(name.to_string(), slot);
        sys.notice(Notice::JobAdded(name.to_string()));
    }

    // ------------------------------------------------------------------
    // Events

    /// Queue an event; returns its id.
    pub fn emit(&mut self, name: &str, env: Vec<String>) -> EventId {
        let id = self.next_event;
        self.next_event += 1;
        self.events.push_back(Event {
            id,
            name: name.to_string(),
            env,
            progress: Progress::Pending,
            failed: false,
            blockers: 0,
            blocking: Vec::new(),
            fd: None,
        });
        id
    }

    /// Attach an inheritable file descriptor to a queued event; it is
    /// released when the event finishes.
    pub fn attach_fd(&mut self, id: EventId, fd: i32) {
        if let Some(ev) = self.event_mut(id) {
            ev.fd = Some(fd);
        }
    }

    /// Emit an event whose finish is reported to `token` (EmitEvent with wait).
    pub fn emit_waiting(&mut self, name: &str, env: Vec<String>, token: u64) -> EventId {
        let id = self.emit(name, env);
        if let Some(ev) = self.event_mut(id) {
            ev.blocking.push(EventWaiter::Caller(token));
        }
        id
    }

    /// Where event `id` is in the queue. The queue is in id order when the
    /// engine built it (a binary search); state imported from elsewhere
    /// may not be (a scan).
    fn event_index(&self, id: EventId) -> Option<usize> {
        match self.events.binary_search_by_key(&id, |e| e.id) {
            Ok(i) => Some(i),
            Err(_) => self.events.iter().position(|e| e.id == id),
        }
    }

    fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(self.event_index(id)?)
    }

    fn event_mut(&mut self, id: EventId) -> Option<&mut Event> {
        let i = self.event_index(id)?;
        self.events.get_mut(i)
    }

    fn hold(&mut self, id: EventId) {
        if let Some(ev) = self.event_mut(id) {
            ev.blockers += 1;
        }
    }

    fn release(&mut self, id: EventId) {
        if let Some(ev) = self.event_mut(id) {
            ev.blockers = ev.blockers.saturating_sub(1);
        }
    }

    /// Drain the event queue (events-and-states.md §2.2).
    pub fn run_queue(&mut self, sys: &mut dyn Sys) {
        loop {
            let mut progressed = false;
            let mut i = 0;
            while let Some(ev) = self.events.get_mut(i) {
                if ev.progress == Progress::Pending {
                    ev.progress = Progress::Handling;
                    let id = ev.id;
                    self.handle_event(sys, id);
                    progressed = true;
                }
                // handle_event only appends, so index i is still this event.
                let Some(ev) = self.events.get_mut(i) else {
                    break;
                };
                if ev.progress == Progress::Handling {
                    if ev.blockers > 0 {
                        i += 1;
                        continue;
                    }
                    ev.progress = Progress::Finished;
                }
                if let Some(ev) = self.events.remove(i) {
                    self.finish_event(sys, ev);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn finish_event(&mut self, sys: &mut dyn Sys, ev: Event) {
        for waiter in &ev.blocking {
            match waiter {
                EventWaiter::Job(key) => {
                    if let Some(inst) = self.inst(key) {
                        inst.blocker = None;
                    }
                    let next = self.next_state(key);
                    self.change_state(sys, key, next);
                }
                EventWaiter::Caller(token) => sys.reply(
                    *token,
                    if ev.failed {
                        Reply::Failed("com.ubuntu.Upstart0_6.Error.EventFailed", "Event failed")
                    } else {
                        Reply::Ok
                    },
                ),
            }
        }
        if let Some(fd) = ev.fd {
            sys.release_fd(fd);
        }
        if ev.failed && !ev.name.ends_with("/failed") {
            self.emit(&format!("{}/failed", ev.name), ev.env.clone());
        }
        sys.notice(Notice::EventEmitted(ev.name, ev.env));
    }

    fn handle_event(&mut self, sys: &mut dyn Sys, id: EventId) {
        let Some(ev) = self.event_index(id).and_then(|i| self.events.get(i)) else {
            return;
        };
        log!(sys, Level::Info, "Handling {} event", ev.name);
        // Only the jobs whose conditions name the event (see Interest).
        let jobs = self.interest.jobs(&self.slots, &ev.name);
        self.cgroup_wait_logged = false;
        // Most events (a task's starting, started, stopping, stopped)
        // concern no class: nothing to copy for them.
        if !jobs.is_empty() {
            let (name, ev_env) = (ev.name.clone(), ev.env.clone());
            for job in jobs.iter() {
                if let Flow::Abort = self.handle_event_for(sys, job, id, &name, &ev_env) {
                    break;
                }
            }
        }
        if std::mem::take(&mut self.cgroup_wait_logged) {
            sys.log(
                Level::Debug,
                "Cannot start some jobs until cgroup manager available".to_string(),
            );
        }
    }

    fn handle_event_for(
        &mut self,
        sys: &mut dyn Sys,
        job: &str,
        id: EventId,
        name: &str,
        ev_env: &[String],
    ) -> Flow {
        let r = EventRef {
            id,
            name,
            env: ev_env,
        };
        // 1. Stop conditions of existing instances.
        let instances: Vec<String> = match self.slots.get(job) {
            Some(s) => s.instances.keys().cloned().collect(),
            None => return Flow::Continue,
        };
        for iname in instances {
            let key = JobKey::new(job, &iname);
            let Some(inst) = self.inst(&key) else {
                continue;
            };
            let inst_env = inst.env.clone();
            let Some(tree) = inst.stop_on.as_mut() else {
                continue;
            };
            let held = tree.offer(&r, &inst_env);
            let fired = tree.value();
            for _ in 0..held {
                self.hold(id);
            }
            if !fired {
                continue;
            }
            let Some(inst) = self.inst(&key) else {
                continue;
            };
            let goal = inst.goal;
            let contributing = inst
                .stop_on
                .as_ref()
                .map(|t| t.contributing())
                .unwrap_or_default();
            if goal != Goal::Stop {
                let stop_env = self.collect_env(Vec::new(), &contributing, "UPSTART_STOP_EVENTS");
                if let Some(inst) = self.inst(&key) {
                    inst.stop_env = Some(stop_env);
                }
                self.finished(sys, &key, false);
                for ev in &contributing {
                    self.hold(*ev);
                    if let Some(inst) = self.inst(&key) {
                        inst.blocking.push(Held::Event(*ev));
                    }
                }
                self.change_goal(sys, &key, Goal::Stop);
            }
            let released = self
                .inst(&key)
                .and_then(|i| i.stop_on.as_mut())
                .map(|t| t.reset())
                .unwrap_or_default();
            for ev in released {
                self.release(ev);
            }
        }

        // 2. Jobs with cgroup stanzas wait for the manager (cgroups.md §5).
        let needs_cgroups = self.needs_cgroups(job);
        let available = self.options.cgroup_manager.is_some();
        let Some(slot) = self.slots.get_mut(job) else {
            return Flow::Continue;
        };
        let Some(tree) = slot.start_on.as_mut() else {
            return Flow::Continue;
        };
        if needs_cgroups && !available {
            self.cgroup_wait_logged = true;
            if slot.cgmanager_wait {
                return Flow::Continue;
            }
            let held = tree.offer(&r, &[]);
            for _ in 0..held {
                self.hold(id);
            }
            if held > 0 {
                if let Some(slot) = self.slots.get_mut(job) {
                    slot.cgmanager_wait = true;
                }
            }
            return Flow::Continue;
        }
        if needs_cgroups && slot.cgmanager_wait {
            // Stale: the manager arrived without inducting this class.
            slot.cgmanager_wait = false;
            self.reset_start(job);
        }

        // 3. The start condition.
        let Some(tree) = self.slots.get_mut(job).and_then(|s| s.start_on.as_mut()) else {
            return Flow::Continue;
        };
        let held = tree.offer(&r, &[]);
        let fired = tree.value();
        for _ in 0..held {
            self.hold(id);
        }
        if fired {
            return self.induct(sys, job);
        }
        Flow::Continue
    }

    /// Append the environments of `events` to `base` and add `LISTVAR`.
    fn collect_env(&self, mut base: Vec<String>, events: &[EventId], listvar: &str) -> Vec<String> {
        let mut names = Vec::new();
        for id in events {
            if let Some(ev) = self.event(*id) {
                for entry in &ev.env {
                    env::set(&mut base, entry.clone());
                }
                names.push(ev.name.clone());
            }
        }
        env::set(&mut base, format!("{listvar}={}", names.join(" ")));
        if listvar == "UPSTART_EVENTS" {
            let fds: Vec<String> = events
                .iter()
                .filter_map(|id| self.event(*id)?.fd)
                .map(|fd| fd.to_string())
                .collect();
            if !fds.is_empty() {
                env::set(&mut base, format!("UPSTART_FDS={}", fds.join(" ")));
            }
        }
        base
    }

    /// The class environment: the global table, then the `env` stanzas.
    pub fn class_env(&self, class: &JobClass) -> Vec<String> {
        let mut out = self.global_env.clone();
        for entry in &class.env {
            if entry.contains('=') {
                env::set(&mut out, entry.clone());
            } else {
                match env::get(&self.init_env, entry) {
                    Some(v) => env::set(&mut out, format!("{entry}={v}")),
                    None => env::unset(&mut out, entry),
                }
            }
        }
        out
    }

    /// A satisfied start condition creates or restarts an instance (§5).
    fn induct(&mut self, sys: &mut dyn Sys, job: &str) -> Flow {
        let Some(slot) = self.slots.get(job) else {
            return Flow::Continue;
        };
        let class = slot.class.clone();
        let contributing = slot
            .start_on
            .as_ref()
            .map(|t| t.contributing())
            .unwrap_or_default();
        let start_env = self.collect_env(self.class_env(&class), &contributing, "UPSTART_EVENTS");
        let iname = match expand(&class.instance, &start_env) {
            Ok(n) => n,
            Err(e) => {
                sys.log(Level::Warn, format!("Failed to obtain {job} instance: {e}"));
                self.reset_start(job);
                return Flow::Abort;
            }
        };
        let key = JobKey::new(job, &iname);
        self.ensure_instance(sys, &key);
        if self.inst(&key).is_some_and(|i| i.goal != Goal::Start) {
            if let Some(inst) = self.inst(&key) {
                inst.start_env = Some(start_env);
            }
            self.finished(sys, &key, false);
            for ev in &contributing {
                self.hold(*ev);
                if let Some(inst) = self.inst(&key) {
                    inst.blocking.push(Held::Event(*ev));
                }
            }
            self.change_goal(sys, &key, Goal::Start);
        }
        self.reset_start(job);
        Flow::Continue
    }

    fn reset_start(&mut self, job: &str) {
        let released = self
            .slots
            .get_mut(job)
            .and_then(|s| s.start_on.as_mut())
            .map(|t| t.reset())
            .unwrap_or_default();
        for ev in released {
            self.release(ev);
        }
    }

    fn ensure_instance(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        let Some(slot) = self.slots.get_mut(&key.job) else {
            return;
        };
        if !slot.instances.contains_key(&key.instance) {
            let stop_on = slot.class.stop_on.as_ref().map(EventTree::new);
            slot.instances
                .insert(key.instance.clone(), Instance::new(&key.instance, stop_on));
            sys.notice(Notice::InstanceAdded(key.clone()));
        }
    }

    // ------------------------------------------------------------------
    // Goals and states

    pub(super) fn change_goal(&mut self, sys: &mut dyn Sys, key: &JobKey, goal: Goal) {
        let Some(inst) = self.inst(key) else { return };
        if inst.goal == goal {
            return;
        }
        let old = inst.goal;
        inst.goal = goal;
        let state = inst.state;
        log!(
            sys,
            Level::Info,
            "{key} goal changed from {} to {}",
            old.name(),
            goal.name()
        );
        sys.notice(Notice::GoalChanged(key.clone(), goal.name()));
        if (goal == Goal::Start && state == State::Waiting)
            || (goal == Goal::Stop && state == State::Running)
            || (goal == Goal::Stop && state == State::Spawned && self.expects_notify(key))
        {
            let next = self.next_state(key);
            self.change_state(sys, key, next);
        }
    }

    /// events-and-states.md §6.2. May turn goal `respawn` back into `start`.
    pub(super) fn next_state(&mut self, key: &JobKey) -> State {
        // One lookup for the class and the instance.
        let Some(slot) = self.slots.get_mut(&key.job) else {
            return State::Waiting;
        };
        match slot.instances.get_mut(&key.instance) {
            Some(inst) => Self::next_state_of(&slot.class, inst),
            None => State::Waiting,
        }
    }

    /// [`Engine::next_state`] of an instance at hand.
    fn next_state_of(class: &JobClass, inst: &mut Instance) -> State {
        let goal = inst.goal;
        use State::*;
        match (inst.state, goal) {
            (Waiting, Goal::Start) => Starting,
            (Waiting, _) => Waiting,
            (Starting, Goal::Stop) => Stopping,
            (Starting, _) => SecuritySpawning,
            (SecuritySpawning, Goal::Stop) => Stopping,
            (SecuritySpawning, _) => Security,
            (Security, Goal::Stop) => Stopping,
            (Security, _) => PreStarting,
            (PreStarting, Goal::Stop) => Stopping,
            (PreStarting, _) => PreStart,
            (PreStart, Goal::Stop) => Stopping,
            (PreStart, _) => Spawning,
            (Spawning, Goal::Stop) => Stopping,
            (Spawning, _) => Spawned,
            (Spawned, Goal::Stop) => Stopping,
            (Spawned, _) => PostStarting,
            (PostStarting, Goal::Stop) => Stopping,
            (PostStarting, _) => PostStart,
            (PostStart, Goal::Stop) => Stopping,
            (PostStart, Goal::Respawn) => {
                inst.goal = Goal::Start;
                Stopping
            }
            (PostStart, Goal::Start) => Running,
            (Running, Goal::Stop) => {
                let has_main = class.process(ProcessType::Main).is_some();
                if has_main && inst.pid(ProcessType::Main) > 0 {
                    PreStopping
                } else {
                    Stopping
                }
            }
            (Running, _) => Stopping,
            (PreStopping, _) => PreStop,
            (PreStop, Goal::Stop) => Stopping,
            (PreStop, Goal::Respawn) => {
                inst.goal = Goal::Start;
                Stopping
            }
            (PreStop, Goal::Start) => Running,
            (Stopping, _) => Killed,
            (Killed, _) => PostStopping,
            (PostStopping, _) => PostStop,
            (PostStop, Goal::Stop) => Waiting,
            (PostStop, _) => Starting,
        }
    }

    pub(super) fn change_state(&mut self, sys: &mut dyn Sys, key: &JobKey, target: State) {
        let mut next = Some(target);
        // Looked up once for the whole walk. Only the last step (back to
        // waiting, which removes the instance) can replace the class.
        let Some(class) = self.class_of(key) else {
            return;
        };
        loop {
            let Some(inst) = self.inst(key) else { return };
            // After the first step, the next state of the instance at hand.
            let target = match next.take() {
                Some(t) => t,
                None => Self::next_state_of(&class, inst),
            };
            if inst.state == target || inst.blocker.is_some() {
                return;
            }
            let old = inst.state;
            inst.state = target;
            log!(
                sys,
                Level::Info,
                "{key} state changed from {} to {}",
                old.name(),
                target.name()
            );
            sys.notice(Notice::StateChanged(key.clone(), target.name()));
            if !self.enter_state(sys, key, &class, old, target) {
                return;
            }
        }
    }

    /// The entry action of `state`; returns whether to continue to the next
    /// state at once.
    fn enter_state(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
        class: &JobClass,
        old: State,
        state: State,
    ) -> bool {
        let has = |p: ProcessType| class.process(p).is_some();
        let pid = |e: &Self, p: ProcessType| e.instance(key).map_or(0, |i| i.pid(p));
        match state {
            State::Starting => {
                if let Some(inst) = self.inst(key) {
                    if let Some(env) = inst.start_env.take() {
                        inst.env = env;
                    }
                    inst.stop_env = None;
                    inst.failed = false;
                    inst.failed_process = None;
                    inst.exit_status = 0;
                }
                self.emit_job_event(key, "starting", true);
                false
            }
            // Spawn states launch their process (the security process
            // only where AppArmor is usable) and go straight on.
            State::SecuritySpawning
            | State::PreStarting
            | State::Spawning
            | State::PostStarting
            | State::PreStopping
            | State::PostStopping => {
                if let Some(p) = state.process().filter(|p| has(*p)) {
                    if p != ProcessType::Security || self.options.apparmor {
                        self.spawn(sys, key, p);
                    }
                }
                true
            }
            // Waiting states: continue unless their process is alive.
            State::Security
            | State::PreStart
            | State::Spawned
            | State::PostStart
            | State::PreStop
            | State::PostStop => state.process().is_none_or(|p| pid(self, p) == 0),
            State::Running => {
                if old == State::PreStop {
                    if let Some(inst) = self.inst(key) {
                        inst.stop_env = None;
                    }
                    self.finished(sys, key, false);
                } else {
                    self.emit_job_event(key, "started", false);
                    if !class.task {
                        self.finished(sys, key, false);
                    }
                }
                false
            }
            State::Stopping => {
                self.emit_job_event(key, "stopping", true);
                false
            }
            State::Killed => {
                let main = pid(self, ProcessType::Main);
                if has(ProcessType::Main) && main > 0 {
                    self.kill_main(sys, key, class, main);
                    false
                } else {
                    true
                }
            }
            State::Waiting => {
                self.emit_job_event(key, "stopped", false);
                self.finished(sys, key, false);
                self.remove_instance(sys, key);
                false
            }
        }
    }

    fn remove_instance(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        let Some(slot) = self.slots.get_mut(&key.job) else {
            return;
        };
        let removed = slot.instances.remove(&key.instance);
        if slot.instances.is_empty() {
            // An emptied BTreeMap keeps its node (room for eleven
            // instances, nearly 3 kB): after a storm, that was most of
            // the heap. A new map allocates nothing.
            slot.instances = BTreeMap::new();
        }
        if let Some(inst) = removed {
            for id in inst
                .stop_on
                .iter()
                .flat_map(|t| t.held().collect::<Vec<_>>())
            {
                self.release(id);
            }
        }
        sys.notice(Notice::InstanceRemoved(key.clone()));
        let Some(slot) = self.slots.get_mut(&key.job) else {
            return;
        };
        if slot.instances.is_empty() {
            if let Some(change) = slot.pending.take() {
                self.apply_class_change(sys, &key.job, change);
            }
        }
    }

    /// The `starting`/`started`/`stopping`/`stopped` event of an instance.
    fn emit_job_event(&mut self, key: &JobKey, name: &str, blocking: bool) {
        let class = self.class_of(key);
        let Some(inst) = self.instance(key) else {
            return;
        };
        let mut ev_env = vec![
            format!("JOB={}", key.job),
            format!("INSTANCE={}", key.instance),
        ];
        if name == "stopping" || name == "stopped" {
            if inst.failed {
                ev_env.push("RESULT=failed".into());
                match inst.failed_process {
                    Some(p) if inst.exit_status != -1 => {
                        ev_env.push(format!("PROCESS={}", p.name()));
                        if inst.exit_status & !0xff != 0 {
                            let sig = inst.exit_status >> 8;
                            let sname = signal_name(sig).map_or(sig.to_string(), str::to_string);
                            ev_env.push(format!("EXIT_SIGNAL={sname}"));
                        } else {
                            ev_env.push(format!("EXIT_STATUS={}", inst.exit_status));
                        }
                    }
                    Some(p) => ev_env.push(format!("PROCESS={}", p.name())),
                    None => ev_env.push("PROCESS=respawn".into()),
                }
            } else {
                ev_env.push("RESULT=ok".into());
            }
        }
        if let Some(class) = class {
            for var in &class.export {
                if let Some(v) = env::get(&inst.env, var) {
                    env::add_if_absent(&mut ev_env, format!("{var}={v}"));
                }
            }
        }
        let id = self.emit(name, ev_env);
        if blocking {
            if let Some(ev) = self.event_mut(id) {
                ev.blocking.push(EventWaiter::Job(key.clone()));
            }
            if let Some(inst) = self.inst(key) {
                inst.blocker = Some(id);
            }
        }
    }

    /// Release everything an instance holds (§7).
    fn finished(&mut self, sys: &mut dyn Sys, key: &JobKey, failed: bool) {
        let Some(inst) = self.inst(key) else { return };
        let held = std::mem::take(&mut inst.blocking);
        for item in held {
            match item {
                Held::Event(id) => {
                    if failed {
                        if let Some(ev) = self.event_mut(id) {
                            ev.failed = true;
                        }
                    }
                    self.release(id);
                }
                Held::Waiter { token, kind } => sys.reply(
                    token,
                    if failed {
                        Reply::Failed(
                            "com.ubuntu.Upstart0_6.Error.JobFailed",
                            kind.failure_message(),
                        )
                    } else {
                        Reply::Ok
                    },
                ),
            }
        }
    }

    /// Record the first failure of an instance (§12.1).
    pub(super) fn fail(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
        process: Option<ProcessType>,
        status: i32,
    ) {
        let Some(inst) = self.inst(key) else { return };
        if inst.failed {
            return;
        }
        inst.failed = true;
        inst.failed_process = process;
        inst.exit_status = status;
        sys.notice(Notice::Failed(key.clone(), status));
        self.finished(sys, key, true);
    }

    // ------------------------------------------------------------------
    // Processes

    /// The environment a process of this instance runs with
    /// (process-spawning.md §2).
    pub fn process_env(&self, key: &JobKey, process: ProcessType) -> Vec<String> {
        let Some(inst) = self.instance(key) else {
            return Vec::new();
        };
        let mut out = inst.env.clone();
        if matches!(process, ProcessType::PreStop | ProcessType::PostStop) {
            for e in inst.stop_env.iter().flatten() {
                env::set(&mut out, e.clone());
            }
        }
        env::set(&mut out, format!("UPSTART_JOB={}", key.job));
        env::set(&mut out, format!("UPSTART_INSTANCE={}", key.instance));
        self.notify_env(key, process, &mut out);
        if self.options.user_mode {
            if let Some(addr) = &self.options.session_address {
                env::set(&mut out, format!("UPSTART_SESSION={addr}"));
            }
        }
        out
    }

    fn spawn(&mut self, sys: &mut dyn Sys, key: &JobKey, process: ProcessType) {
        let Some(class) = self.class_of(key) else {
            return;
        };
        let trace =
            process == ProcessType::Main && matches!(class.expect, Expect::Fork | Expect::Daemon);
        // needs_cgroups(), with the class at hand.
        let cgroup_manager = if !self.options.no_cgroups && !class.cgroups.is_empty() {
            match &self.options.cgroup_manager {
                Some(address) => Some(address.clone()),
                None => {
                    // Starts are refused or held until the address is
                    // known; anything that slips through fails here
                    // instead of retrying for ever.
                    sys.log(
                        Level::Warn,
                        format!(
                            "Failed to spawn {key} {} process: cgroup manager not available",
                            process.name()
                        ),
                    );
                    self.spawn_failed_action(sys, key, process);
                    return;
                }
            }
        } else {
            None
        };
        let req = SpawnRequest {
            job: key.clone(),
            process,
            env: self.process_env(key, process),
            class,
            trace,
            cgroup_manager,
        };
        // The reference retries forever; a bounded retry keeps PID 1 alive
        // when the failure is permanent, and fails the process instead.
        let mut last_err = String::new();
        for _ in 0..8 {
            match sys.spawn(&req) {
                Ok(pid) => {
                    log!(sys, Level::Info, "{key} {} process ({pid})", process.name());
                    if let Some(inst) = self.inst(key) {
                        inst.pids.insert(process, pid);
                        if process == ProcessType::Main {
                            inst.trace = if trace { Trace::New } else { Trace::None };
                            inst.trace_forks = 0;
                        }
                    }
                    if process == ProcessType::Main {
                        self.readiness_spawned(key);
                    }
                    self.pids.insert(pid, (key.clone(), process));
                    self.spawns.insert(
                        pid,
                        PendingSpawn {
                            job: key.clone(),
                            process,
                        },
                    );
                    return;
                }
                Err(e) => {
                    sys.log(Level::Warn, format!("Temporary process spawn error: {e}"));
                    last_err = e;
                }
            }
        }
        sys.log(
            Level::Warn,
            format!(
                "Failed to spawn {key} {} process: {last_err}",
                process.name()
            ),
        );
        self.spawn_failed_action(sys, key, process);
    }

    /// What a failed spawn does to the instance (events-and-states.md §13).
    fn spawn_failed_action(&mut self, sys: &mut dyn Sys, key: &JobKey, process: ProcessType) {
        if let Some(inst) = self.inst(key) {
            if let Some(pid) = inst.pids.remove(&process) {
                self.pids.remove(&pid);
            }
        }
        match process {
            ProcessType::PostStart | ProcessType::PreStop => {}
            _ => {
                self.fail(sys, key, Some(process), -1);
                self.change_goal(sys, key, Goal::Stop);
            }
        }
        // During a spawn state the caller's transition loop continues by
        // itself; otherwise advance here.
        if self
            .instance(key)
            .is_some_and(|i| !i.state.is_spawn_state())
        {
            let next = self.next_state(key);
            self.change_state(sys, key, next);
        }
    }

    /// (A): the child reported a setup failure on its status pipe.
    pub fn spawn_error(&mut self, sys: &mut dyn Sys, pid: i32, message: &str) {
        let Some(rec) = self.spawns.remove(&pid) else {
            return;
        };
        sys.log(
            Level::Warn,
            format!(
                "Failed to spawn {} {} process: {message}",
                rec.job,
                rec.process.name()
            ),
        );
        // After (C) the pid is no longer the instance's: the record is absorbed.
        if self
            .instance(&rec.job)
            .is_some_and(|i| i.pid(rec.process) == pid)
        {
            self.spawn_failed_action(sys, &rec.job, rec.process);
        }
    }

    /// (B): the status pipe closed without a record: exec succeeded.
    pub fn spawn_ok(&mut self, sys: &mut dyn Sys, pid: i32) {
        let Some(rec) = self.spawns.remove(&pid) else {
            return;
        };
        let expect_none = self
            .class_of(&rec.job)
            .is_some_and(|c| c.expect == Expect::None);
        let advance = rec.process == ProcessType::Main
            && expect_none
            && self
                .instance(&rec.job)
                .is_some_and(|i| i.state == State::Spawned && i.pid(ProcessType::Main) == pid);
        if advance {
            let next = self.next_state(&rec.job);
            self.change_state(sys, &rec.job, next);
        }
    }

    /// Spawns whose status pipe has not reported yet, as (pid, instance,
    /// process): what a re-exec hands over with the pipes.
    pub fn spawns_in_flight(&self) -> Vec<(i32, JobKey, ProcessType)> {
        self.spawns
            .iter()
            .map(|(pid, s)| (*pid, s.job.clone(), s.process))
            .collect()
    }

    /// Is this pid's status pipe still open?
    pub fn spawn_pending(&self, pid: i32) -> bool {
        self.spawns.contains_key(&pid)
    }

    /// A process stopped (`waitid` CLD_STOPPED): `expect stop` readiness.
    pub fn child_stopped(&mut self, sys: &mut dyn Sys, pid: i32, signal: i32) {
        let Some((key, process)) = self.pids.get(&pid).cloned() else {
            return;
        };
        let Some(class) = self.class_of(&key) else {
            return;
        };
        let Some(state) = self.instance(&key).map(|i| i.state) else {
            return;
        };
        if process != ProcessType::Main
            || class.expect != Expect::Stop
            || !matches!(state, State::Spawning | State::Spawned)
        {
            return;
        }
        if signal != SIGSTOP {
            log!(
                sys,
                Level::Info,
                "{key} main process ({pid}) stopped by signal {signal}"
            );
            return;
        }
        let _ = sys.kill(pid, SIGCONT, false);
        let next = self.next_state(&key);
        self.change_state(sys, &key, next);
    }

    /// A traced main process stopped (`waitid` CLD_TRAPPED): follow forks for
    /// `expect fork|daemon` (§10). `event` is the ptrace event number (0 for
    /// a plain signal stop).
    pub fn child_trapped(&mut self, sys: &mut dyn Sys, pid: i32, signal: i32, event: i32) {
        let Some((key, process)) = self.pids.get(&pid).cloned() else {
            return;
        };
        let Some(class) = self.class_of(&key) else {
            return;
        };
        let Some(inst) = self.instance(&key) else {
            return;
        };
        let (state, trace, forks) = (inst.state, inst.trace, inst.trace_forks);
        if process != ProcessType::Main || !matches!(state, State::Spawning | State::Spawned) {
            return;
        }
        let warn = |sys: &mut dyn Sys, what: &str, err: i32| {
            sys.log(
                Level::Warn,
                format!(
                    "Failed to {what} {key} main process ({pid}): {}",
                    nix::errno::Errno::from_raw(err).desc()
                ),
            )
        };
        match (trace, signal, event) {
            // The exec stop (or a new child to follow further): set options.
            (Trace::New, SIGTRAP, 0) => self.trace_follow(sys, &key, pid),
            (Trace::Normal, SIGTRAP, PTRACE_EVENT_FORK) => {
                let child = match sys.ptrace_new_child(pid) {
                    Ok(c) => c,
                    Err(e) => return warn(sys, "get the new child of", e),
                };
                log!(
                    sys,
                    Level::Info,
                    "{key} main process ({pid}) became new process ({child})"
                );
                if let Err(e) = sys.ptrace_detach(pid) {
                    warn(sys, "detach from", e);
                }
                self.pids.remove(&pid);
                self.pids.insert(child, (key.clone(), ProcessType::Main));
                if let Some(inst) = self.inst(&key) {
                    inst.pids.insert(ProcessType::Main, child);
                    inst.trace = Trace::NewChild;
                }
                // Already stopped if setting options works; else wait for it.
                if sys.ptrace_setoptions(child, false).is_ok() {
                    self.trace_child_stopped(sys, &key, &class, child);
                }
            }
            (Trace::NewChild, SIGSTOP, 0) => self.trace_child_stopped(sys, &key, &class, pid),
            (Trace::Normal, SIGTRAP, PTRACE_EVENT_EXEC) => {
                log!(
                    sys,
                    Level::Info,
                    "{key} main process ({pid}) executable changed"
                );
                if forks > 0 {
                    self.trace_done(sys, &key, pid);
                } else if let Err(e) = sys.ptrace_cont(pid, 0) {
                    warn(sys, "continue", e);
                }
            }
            (Trace::Normal, sig, _) => {
                if let Err(e) = sys.ptrace_cont(pid, sig) {
                    warn(sys, "continue", e);
                }
            }
            _ => {}
        }
    }

    fn trace_follow(&mut self, sys: &mut dyn Sys, key: &JobKey, pid: i32) {
        if let Err(e) = sys
            .ptrace_setoptions(pid, true)
            .and_then(|()| sys.ptrace_cont(pid, 0))
        {
            sys.log(
                Level::Warn,
                format!(
                    "Failed to trace {key} main process ({pid}): {}",
                    nix::errno::Errno::from_raw(e).desc()
                ),
            );
            return;
        }
        if let Some(inst) = self.inst(key) {
            inst.trace = Trace::Normal;
        }
    }

    fn trace_child_stopped(&mut self, sys: &mut dyn Sys, key: &JobKey, class: &JobClass, pid: i32) {
        let forks = match self.inst(key) {
            Some(inst) => {
                inst.trace_forks += 1;
                inst.trace_forks
            }
            None => return,
        };
        if forks > 1 || class.expect == Expect::Fork {
            self.trace_done(sys, key, pid);
        } else {
            self.trace_follow(sys, key, pid);
        }
    }

    /// Stop following: the main pid is final and the job is ready.
    fn trace_done(&mut self, sys: &mut dyn Sys, key: &JobKey, pid: i32) {
        let _ = sys.ptrace_detach(pid);
        if let Some(inst) = self.inst(key) {
            inst.trace = Trace::None;
        }
        let next = self.next_state(key);
        self.change_state(sys, key, next);
    }

    /// (C): `waitid` reported that a process ended (§12.2).
    pub fn child_exited(&mut self, sys: &mut dyn Sys, pid: i32, status: ExitStatus) {
        let Some((key, process)) = self.pids.remove(&pid) else {
            return;
        };
        let Some(class) = self.class_of(&key) else {
            return;
        };
        let raw = status.raw();
        let normal = class.normal_exit.contains(&raw);
        let abandoned = self.abandoned.remove(&pid);
        let level = if normal || abandoned {
            Level::Info
        } else {
            Level::Warn
        };
        let name = process.name();
        match status {
            ExitStatus::Exited(0) => log!(
                sys,
                Level::Info,
                "{key} {name} process ({pid}) exited normally"
            ),
            ExitStatus::Exited(c) => log!(
                sys,
                level,
                "{key} {name} process ({pid}) terminated with status {c}"
            ),
            ExitStatus::Signaled(s) => match signal_name(s) {
                Some(n) => log!(
                    sys,
                    level,
                    "{key} {name} process ({pid}) killed by {n} signal"
                ),
                None => log!(
                    sys,
                    level,
                    "{key} {name} process ({pid}) killed by signal {s}"
                ),
            },
        }
        let Some(inst) = self.instance(&key) else {
            return;
        };
        let (state, goal) = (inst.state, inst.goal);
        // An `expect notify` main process that ends before `READY=1` has
        // failed, whatever its status (extensions.md §7).
        let unready = process == ProcessType::Main
            && class.expect == Expect::Notify
            && matches!(state, State::Spawning | State::Spawned);
        let mut failed = false;
        let mut stop = false;
        let mut advance = true;
        match process {
            ProcessType::Main => 'main: {
                if (state == State::PostStart && inst.pid(ProcessType::PostStart) > 0)
                    || (state == State::PreStop && inst.pid(ProcessType::PreStop) > 0)
                {
                    advance = false;
                }
                if state == State::PostStart {
                    self.abandon_post_start(sys, &key);
                }
                if state == State::Killed {
                    break 'main;
                }
                if state == State::Stopping {
                    advance = false;
                    break 'main;
                }
                if goal == Goal::Start && (raw != 0 || (class.respawn && !class.task) || unready) {
                    failed = !normal || unready;
                    if failed && class.respawn && !self.no_respawn {
                        if self.respawn_runaway(&key, &class) {
                            sys.log(Level::Warn, format!("{key} respawning too fast, stopped"));
                            failed = false;
                            self.clear_pid(&key, process);
                            self.fail(sys, &key, None, 0);
                        } else {
                            sys.log(Level::Warn, format!("{key} main process ended, respawning"));
                            failed = false;
                            if !advance {
                                if let Some(inst) = self.inst(&key) {
                                    inst.goal = Goal::Respawn;
                                }
                            }
                            break 'main;
                        }
                    }
                }
                stop = true;
            }
            ProcessType::PreStart | ProcessType::PostStop => {
                if raw != 0 {
                    failed = true;
                    stop = true;
                }
            }
            ProcessType::PostStart | ProcessType::PreStop | ProcessType::Security => {}
        }
        if let Some(inst) = self.inst(&key) {
            inst.kill_deadline = None;
        }
        self.clear_pid(&key, process);
        if failed {
            self.fail(sys, &key, Some(process), raw);
        }
        if stop {
            let running = self
                .instance(&key)
                .is_some_and(|i| i.state == State::Running);
            self.change_goal(sys, &key, Goal::Stop);
            if running {
                advance = false;
            }
        }
        if advance {
            let next = self.next_state(&key);
            self.change_state(sys, &key, next);
        }
    }

    fn clear_pid(&mut self, key: &JobKey, process: ProcessType) {
        if let Some(inst) = self.inst(key) {
            inst.pids.remove(&process);
        }
    }

    /// The runaway check of §12.3; true when the limit is exceeded.
    fn respawn_runaway(&mut self, key: &JobKey, class: &JobClass) -> bool {
        if class.respawn_limit == 0 || class.respawn_interval == 0 {
            return false;
        }
        let now = self.now_ms / 1000;
        let Some(inst) = self.inst(key) else {
            return false;
        };
        if now.saturating_sub(inst.respawn_time) < class.respawn_interval as u64 {
            inst.respawn_count += 1;
            inst.respawn_count > class.respawn_limit
        } else {
            inst.respawn_time = now;
            inst.respawn_count = 1;
            false
        }
    }

    // ------------------------------------------------------------------
    // Kill sequence and timers

    fn kill_main(&mut self, sys: &mut dyn Sys, key: &JobKey, class: &JobClass, pid: i32) {
        let sig = class.kill_signal;
        let sname = signal_name(sig).map_or(sig.to_string(), str::to_string);
        log!(
            sys,
            Level::Info,
            "Sending {sname} signal to {key} main process ({pid})"
        );
        match sys.kill(pid, sig, true) {
            Ok(()) => {
                let deadline = self.now_ms + (class.kill_timeout.max(0) as u64) * 1000;
                if let Some(inst) = self.inst(key) {
                    inst.kill_deadline = Some(deadline);
                    self.timed.insert(key.clone());
                }
            }
            Err(ESRCH) => {}
            Err(errno) => sys.log(
                Level::Warn,
                format!(
                    "Failed to send {sname} signal to {key} main process ({pid}): {}",
                    nix::errno::Errno::from_raw(errno).desc()
                ),
            ),
        }
    }

    /// The earliest armed timer (monotonic milliseconds).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timed
            .iter()
            .filter_map(|key| self.deadline_of(key))
            .min()
    }

    fn deadline_of(&self, key: &JobKey) -> Option<u64> {
        let inst = self.slots.get(&key.job)?.instances.get(&key.instance)?;
        match (inst.kill_deadline, Self::readiness_deadline(inst)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fire every timer due at the current time.
    pub fn fire_timers(&mut self, sys: &mut dyn Sys) {
        let now = self.now_ms;
        let timed = std::mem::take(&mut self.timed);
        let mut due = Vec::new();
        for key in timed {
            match self.deadline_of(&key) {
                Some(d) if d <= now => due.push(key),
                Some(_) => {
                    self.timed.insert(key);
                }
                None => {}
            }
        }
        for key in due {
            self.readiness_timer(sys, &key);
            let Some(inst) = self.inst(&key) else {
                continue;
            };
            if inst.kill_deadline.is_none_or(|d| d > now) {
                continue;
            }
            inst.kill_deadline = None;
            let pid = inst.pid(ProcessType::Main);
            if pid > 0 {
                log!(
                    sys,
                    Level::Info,
                    "Sending KILL signal to {key} main process ({pid})"
                );
                let _ = sys.kill(pid, SIGKILL, true);
            }
        }
    }

    // ------------------------------------------------------------------
    // Control requests (control.md; events-and-states.md §15)

    /// The class of `job`, the class environment plus the caller's
    /// `KEY=VALUE` list, and the instance name that environment expands to.
    fn resolve(&self, job: &str, args: &[String]) -> Result<Resolved, (&'static str, String)> {
        // A class whose file is gone stays registered until its last
        // instance stops (job-config.md §3.3).
        let Some(class) = self.slots.get(job).map(|s| s.class.clone()) else {
            return Err((
                "com.ubuntu.Upstart0_6.Error.UnknownJob",
                format!("Unknown job: {job}"),
            ));
        };
        let mut env_table = self.class_env(&class);
        for a in args {
            env::set(&mut env_table, a.clone());
        }
        let name = expand(&class.instance, &env_table).map_err(|e| e.to_string());
        Ok(Resolved {
            class,
            env: env_table,
            name,
        })
    }

    /// A new request on an instance: answer earlier callers, then hold the
    /// new one (if it waits) until this request is finished (§7).
    fn take_request(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
        waiter: Option<u64>,
        kind: super::WaitKind,
    ) {
        self.finished(sys, key, false);
        if let (Some(token), Some(inst)) = (waiter, self.inst(key)) {
            inst.blocking.push(Held::Waiter { token, kind });
        }
    }

    /// The existing instance a stop or restart addresses, or its error.
    fn stoppable(&self, key: &JobKey, stopped_name: &str) -> Result<(), (&'static str, String)> {
        match self.instance(key) {
            None => Err((
                "com.ubuntu.Upstart0_6.Error.UnknownInstance",
                format!("Unknown instance: {}", key.instance),
            )),
            Some(inst) if inst.goal == Goal::Stop => Err((
                "com.ubuntu.Upstart0_6.Error.AlreadyStopped",
                format!("Job has already been stopped: {stopped_name}"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Start an instance of `job` with extra environment. Returns the
    /// instance key, or the D-Bus error name and message.
    pub fn start_job(
        &mut self,
        sys: &mut dyn Sys,
        job: &str,
        args: Vec<String>,
        waiter: Option<u64>,
    ) -> Result<JobKey, (&'static str, String)> {
        let Resolved {
            class,
            env: start_env,
            name,
        } = self.resolve(job, &args)?;
        self.cgroup_start_check(job, job)?;
        let iname = name.map_err(|mut msg| {
            if let Some(u) = &class.usage {
                msg.push_str(&format!("\nUsage: {u}"));
            }
            ("org.freedesktop.DBus.Error.InvalidArgs", msg)
        })?;
        let key = JobKey::new(job, &iname);
        if self.instance(&key).is_some_and(|i| i.goal == Goal::Start) {
            return Err((
                "com.ubuntu.Upstart0_6.Error.AlreadyStarted",
                format!("Job is already running: {key}"),
            ));
        }
        self.ensure_instance(sys, &key);
        if let Some(inst) = self.inst(&key) {
            inst.start_env = Some(start_env);
        }
        self.take_request(sys, &key, waiter, super::WaitKind::Start);
        self.change_goal(sys, &key, Goal::Start);
        Ok(key)
    }

    /// Stop an instance of `job`.
    pub fn stop_job(
        &mut self,
        sys: &mut dyn Sys,
        job: &str,
        args: Vec<String>,
        waiter: Option<u64>,
    ) -> Result<JobKey, (&'static str, String)> {
        let name = self.resolve(job, &args)?.name;
        let iname = name.map_err(|msg| ("org.freedesktop.DBus.Error.InvalidArgs", msg))?;
        let key = JobKey::new(job, &iname);
        self.stoppable(&key, &key.to_string())?;
        if let Some(inst) = self.inst(&key) {
            inst.stop_env = Some(args);
        }
        self.take_request(sys, &key, waiter, super::WaitKind::Stop);
        self.change_goal(sys, &key, Goal::Stop);
        Ok(key)
    }

    /// `Job.Restart`: stop, then start again with new environment.
    pub fn restart_job(
        &mut self,
        sys: &mut dyn Sys,
        job: &str,
        args: Vec<String>,
        waiter: Option<u64>,
    ) -> Result<JobKey, (&'static str, String)> {
        let Resolved {
            env: start_env,
            name,
            ..
        } = self.resolve(job, &args)?;
        let iname = name.map_err(|msg| ("org.freedesktop.DBus.Error.InvalidArgs", msg))?;
        let key = JobKey::new(job, &iname);
        // The reference names only the instance in this message.
        self.stoppable(&key, &iname)?;
        if let Some(inst) = self.inst(&key) {
            inst.start_env = Some(start_env);
            inst.stop_env = None;
        }
        self.take_request(sys, &key, waiter, super::WaitKind::Restart);
        self.change_goal(sys, &key, Goal::Stop);
        self.change_goal(sys, &key, Goal::Start);
        Ok(key)
    }

    /// `Instance.Start/Stop/Restart`: like the job-level calls, with no new
    /// environment.
    pub fn control_instance(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
        kind: super::WaitKind,
        waiter: Option<u64>,
    ) -> Result<(), (&'static str, String)> {
        let Some(inst) = self.instance(key) else {
            return Err((
                "com.ubuntu.Upstart0_6.Error.UnknownInstance",
                format!("Unknown instance: {}", key.instance),
            ));
        };
        let goal = inst.goal;
        if kind == super::WaitKind::Start {
            self.cgroup_start_check(&key.job, &key.to_string())?;
        }
        match kind {
            super::WaitKind::Start if goal == Goal::Start => {
                return Err((
                    "com.ubuntu.Upstart0_6.Error.AlreadyStarted",
                    format!("Job is already running: {key}"),
                ))
            }
            super::WaitKind::Stop | super::WaitKind::Restart if goal == Goal::Stop => {
                return Err((
                    "com.ubuntu.Upstart0_6.Error.AlreadyStopped",
                    format!("Job has already been stopped: {key}"),
                ))
            }
            _ => {}
        }
        if let Some(inst) = self.inst(key) {
            inst.start_env = None;
            inst.stop_env = None;
        }
        self.take_request(sys, key, waiter, kind);
        match kind {
            super::WaitKind::Start => self.change_goal(sys, key, Goal::Start),
            super::WaitKind::Stop => self.change_goal(sys, key, Goal::Stop),
            super::WaitKind::Restart => {
                self.change_goal(sys, key, Goal::Stop);
                self.change_goal(sys, key, Goal::Start);
            }
        }
        Ok(())
    }

    /// `Instance.Reload`: the reload signal to the main process only.
    pub fn reload_instance(
        &mut self,
        sys: &mut dyn Sys,
        key: &JobKey,
    ) -> Result<(), (&'static str, String)> {
        let class = self.class_of(key);
        let Some(inst) = self.instance(key) else {
            return Err((
                "com.ubuntu.Upstart0_6.Error.UnknownInstance",
                format!("Unknown instance: {}", key.instance),
            ));
        };
        let pid = inst.pid(ProcessType::Main);
        let Some(class) = class.filter(|_| pid > 0) else {
            return Err((
                "com.ubuntu.Upstart0_6.Error.NotRunning",
                format!("Job is not running: {key}"),
            ));
        };
        sys.kill(pid, class.reload_signal, false).map_err(|errno| {
            (
                "org.freedesktop.DBus.Error.Failed",
                nix::errno::Errno::from_raw(errno).desc().to_string(),
            )
        })
    }

    /// Set every instance's goal to stop (system stop, session end).
    pub fn stop_all(&mut self, sys: &mut dyn Sys) {
        let keys: Vec<JobKey> = self
            .slots
            .iter()
            .flat_map(|(job, s)| s.instances.keys().map(move |i| JobKey::new(job, i)))
            .collect();
        for key in keys {
            self.finished(sys, &key, false);
            self.change_goal(sys, &key, Goal::Stop);
        }
    }
}
