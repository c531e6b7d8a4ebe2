//! The goal/state machine of an instance: goal changes, the walk from
//! state to state with each state's entry action, job events, and what
//! an instance holds until it finishes (events-and-states.md §6, §7).

use super::NameKey;
use std::collections::BTreeMap;

use super::engine::{Engine, EventWaiter};
use super::error::EngineError;
use super::instance::{Held, Instance};
use super::state::{Goal, State};
use super::sys::{Change, Level, Reply, Sys};
use super::JobKey;
use crate::config::{signal_name, JobClass, ProcessType};
use crate::env;

impl Engine {
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
        sys.changed(Change::GoalChanged(key.clone(), goal.name()));
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
        let Some(slot) = self.slots.get_mut(NameKey::new(key.job.as_str())) else {
            return State::Waiting;
        };
        match slot.instances.get_mut(NameKey::new(&key.instance)) {
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
            sys.changed(Change::StateChanged(key.clone(), target.name()));
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
                    if p != ProcessType::Security || sys.apparmor_available() {
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
        let Some(slot) = self.slots.get_mut(NameKey::new(key.job.as_str())) else {
            return;
        };
        let removed = slot.instances.remove(NameKey::new(&key.instance));
        if slot.instances.is_empty() {
            // An emptied BTreeMap keeps its node (room for eleven
            // instances, nearly 3 kB): after a storm, such nodes would be
            // most of the heap. A new map allocates nothing.
            slot.instances = BTreeMap::new();
        }
        if let Some(mut inst) = removed {
            for id in inst
                .stop_on
                .iter()
                .flat_map(|t| t.held().collect::<Vec<_>>())
            {
                self.release(id);
            }
            self.spare_env(std::mem::take(&mut inst.env));
        }
        sys.changed(Change::InstanceRemoved(key.clone()));
        let Some(slot) = self.slots.get_mut(NameKey::new(key.job.as_str())) else {
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
            for var in &class.rare.export {
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
    pub(super) fn finished(&mut self, sys: &mut dyn Sys, key: &JobKey, failed: bool) {
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
                        Reply::Failed(EngineError::JobFailed(kind))
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
        sys.changed(Change::Failed(key.clone(), status));
        self.finished(sys, key, true);
    }
}
