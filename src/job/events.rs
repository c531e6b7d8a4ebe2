//! Event input: the queue, and what each event does to stop and start
//! conditions (events-and-states.md §2, §5).

use super::engine::{Engine, Event, EventWaiter};
use super::error::EngineError;
use super::instance::{Held, Instance};
use super::state::Goal;
use super::sys::{Change, Level, Reply, Sys};
use super::JobKey;
use super::{InstName, NameKey};
use crate::config::expand;
use crate::env;
use crate::event::{EventId, EventRef, EventTree, Progress};

/// Outcome of handling one class for an event.
pub(super) enum Flow {
    Continue,
    /// Instance-name expansion failed: the reference abandons the event for
    /// every remaining class.
    Abort,
}

impl Engine {
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
    /// may not be (then a scan, where the search misses). An id that has
    /// left the queue is looked up often (the holds of finished events),
    /// and with thousands of events queued a scan each time made the
    /// engine's work per event grow with the queue.
    fn event_index(&self, id: EventId) -> Option<usize> {
        match self.events.binary_search_by_key(&id, |e| e.id) {
            Ok(i) => Some(i),
            Err(_) if self.events_unordered => self.events.iter().position(|e| e.id == id),
            Err(_) => None,
        }
    }

    pub(super) fn event(&self, id: EventId) -> Option<&Event> {
        self.events.get(self.event_index(id)?)
    }

    pub(super) fn event_mut(&mut self, id: EventId) -> Option<&mut Event> {
        let i = self.event_index(id)?;
        self.events.get_mut(i)
    }

    pub(super) fn hold(&mut self, id: EventId) {
        if let Some(ev) = self.event_mut(id) {
            ev.blockers += 1;
        }
    }

    pub(super) fn release(&mut self, id: EventId) {
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
                    if self.events.is_empty() {
                        self.events_unordered = false;
                    }
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
                        Reply::Failed(EngineError::EventFailed)
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
        sys.changed(Change::EventEmitted(ev.name, ev.env));
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
        let instances: Vec<InstName> = match self.slots.get(NameKey::new(job)) {
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
        let Some(slot) = self.slots.get_mut(NameKey::new(job)) else {
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
                if let Some(slot) = self.slots.get_mut(NameKey::new(job)) {
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
        let Some(tree) = self
            .slots
            .get_mut(NameKey::new(job))
            .and_then(|s| s.start_on.as_mut())
        else {
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

    /// A satisfied start condition creates or restarts an instance (§5).
    pub(super) fn induct(&mut self, sys: &mut dyn Sys, job: &str) -> Flow {
        let Some(slot) = self.slots.get(NameKey::new(job)) else {
            return Flow::Continue;
        };
        let class = slot.class.clone();
        let contributing = slot
            .start_on
            .as_ref()
            .map(|t| t.contributing())
            .unwrap_or_default();
        let base = self.recycled_class_env(&class);
        let start_env = self.collect_env(base, &contributing, "UPSTART_EVENTS");
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
            .get_mut(NameKey::new(job))
            .and_then(|s| s.start_on.as_mut())
            .map(|t| t.reset())
            .unwrap_or_default();
        for ev in released {
            self.release(ev);
        }
    }

    pub(super) fn ensure_instance(&mut self, sys: &mut dyn Sys, key: &JobKey) {
        let Some(slot) = self.slots.get_mut(NameKey::new(key.job.as_str())) else {
            return;
        };
        if !slot.instances.contains_key(NameKey::new(&key.instance)) {
            let stop_on = slot.class.stop_on.as_ref().map(EventTree::new);
            slot.instances.insert(
                key.instance.as_str().into(),
                Instance::new(&key.instance, stop_on),
            );
            sys.changed(Change::InstanceAdded(key.clone()));
        }
    }
}
