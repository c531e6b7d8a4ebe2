//! The engine's data: registered jobs, the event queue, and the indexes
//! kept beside them. Every public method of [`Engine`] is one input (the
//! other files of this module take one kind each); effects go through the
//! [`Sys`] passed in. Nothing here reads a clock: callers pass `now`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::instance::Instance;
use super::interest::InterestCache;
use super::state::{Goal, State};
use super::sys::Sys;
use super::{ClassName, InstName, JobKey, NameKey};
use crate::config::{JobClass, ProcessType};
use crate::event::{EventId, EventTree, Progress};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub name: String,
    pub env: Vec<String>,
    pub progress: Progress,
    pub failed: bool,
    pub blockers: u32,
    pub blocking: Vec<EventWaiter>,
    /// A file descriptor the event carries (`EmitEventWithFile`).
    pub fd: Option<i32>,
}

/// Who waits for an event to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventWaiter {
    /// An instance blocked in `starting` or `stopping`.
    Job(JobKey),
    /// An `EmitEvent(wait=true)` caller.
    Caller(u64),
}

/// A registered job name: its class, start condition and instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub class: Arc<JobClass>,
    pub start_on: Option<EventTree>,
    pub instances: BTreeMap<InstName, Instance>,
    /// A configuration change that waits for the last instance to go.
    pub pending: Option<ClassChange>,
    /// The start condition matched events while the cgroup manager was
    /// unknown: start once its address arrives (cgroups.md §5).
    pub cgmanager_wait: bool,
}

/// What a (re)load does to a registered job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassChange {
    /// The job file changed: this definition replaces the old one.
    Replace(Arc<JobClass>),
    /// The job file is gone.
    Delete,
}

impl Slot {
    pub(super) fn new(class: Arc<JobClass>) -> Self {
        Slot {
            start_on: class.start_on.as_ref().map(EventTree::new),
            class,
            instances: BTreeMap::new(),
            pending: None,
            cgmanager_wait: false,
        }
    }
}

/// Settings that come from how the daemon runs. The one part of the
/// engine that serde carries: the re-exec payload stores it as is (see
/// `reexec::outset`); the rest is written in Upstart's layout by hand.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EngineOptions {
    pub user_mode: bool,
    /// Private control address, exported to user-mode jobs.
    pub session_address: Option<String>,
    /// `--no-cgroups`.
    pub no_cgroups: bool,
    /// The cgroup manager's address, once known.
    pub cgroup_manager: Option<String>,
    /// `NOTIFY_SOCKET` for `expect notify` main processes.
    #[serde(default)]
    pub notify_socket: Option<String>,
}

/// A spawn whose status pipe has not reported yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingSpawn {
    pub(super) job: JobKey,
    pub(super) process: ProcessType,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Engine {
    /// Keyed by the class's own name (`JobClass::name`, shared).
    pub slots: BTreeMap<ClassName, Slot>,
    pub events: VecDeque<Event>,
    pub(super) next_event: EventId,
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
    pub(super) spawns: BTreeMap<i32, PendingSpawn>,
    /// Monotonic time of the current input, in milliseconds.
    pub(super) now_ms: u64,
    /// A class held back for the cgroup manager during this event.
    pub(super) cgroup_wait_logged: bool,
    /// Event name → interested jobs; rebuilt when the classes change.
    pub(super) interest: InterestCache,
    /// Instances that may have a kill deadline (a superset: entries are
    /// dropped when their timer is looked at), so that finding the next
    /// deadline after every turn of the loop does not visit every class.
    pub(super) timed: BTreeSet<JobKey>,
    /// Post-start processes killed because their main process ended: their
    /// end is expected, not a warning (post_start.rs).
    pub(super) abandoned: BTreeSet<i32>,
    /// Environment tables of removed instances, kept while init is busy
    /// so that the next instances' tables reuse their strings instead of
    /// allocating each anew (the copy of the global table was most of
    /// the allocations a task cost). Released when init is quiet.
    pub(super) spare_envs: Vec<Vec<String>>,
    /// The event queue is not in id order (state imported from elsewhere
    /// may not be): an id the binary search misses must be looked for
    /// along the whole queue. The engine's own events are queued in order.
    pub(super) events_unordered: bool,
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
                .get(NameKey::new(job))
                .is_some_and(|s| !s.class.rare.cgroups.is_empty())
    }

    /// `NotifyCGroupManagerAddress`: the first address wins; classes whose
    /// start condition matched while waiting for it start now, without
    /// re-checking the whole condition (cgroups.md §2, §5).
    pub fn cgroup_manager_address(&mut self, sys: &mut dyn Sys, address: &str) {
        if self.options.no_cgroups || self.options.cgroup_manager.is_some() {
            return;
        }
        self.options.cgroup_manager = Some(address.to_string());
        let waiting: Vec<Arc<str>> = self
            .slots
            .iter()
            .filter(|(_, s)| s.cgmanager_wait && s.start_on.is_some())
            .map(|(j, _)| Arc::clone(j))
            .collect();
        for job in waiting {
            self.induct(sys, &job);
            if let Some(slot) = self.slots.get_mut(&*job) {
                slot.cgmanager_wait = false;
            }
        }
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
        self.events_unordered = !self.events.iter().is_sorted_by_key(|e| e.id);
    }

    pub fn set_time(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    pub fn instance(&self, key: &JobKey) -> Option<&Instance> {
        self.slots
            .get(NameKey::new(key.job.as_str()))?
            .instances
            .get(NameKey::new(&key.instance))
    }

    pub(super) fn inst(&mut self, key: &JobKey) -> Option<&mut Instance> {
        self.slots
            .get_mut(NameKey::new(key.job.as_str()))?
            .instances
            .get_mut(NameKey::new(&key.instance))
    }

    pub(super) fn class_of(&self, key: &JobKey) -> Option<Arc<JobClass>> {
        self.slots
            .get(NameKey::new(key.job.as_str()))
            .map(|s| s.class.clone())
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
}
