//! A read-only copy of which classes and instances exist and of the
//! instances' properties, kept up to date by the engine thread and read by
//! the D-Bus side.
//!
//! `status` and `list` only read. Answered from here, they do not wait
//! for the engine thread, which a spawn storm keeps in one turn of its
//! loop for hundreds of milliseconds (every spawn waits for its child's
//! exec). The engine thread updates the copy before it sends any answer,
//! so a caller always reads the effect of its own earlier calls.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::paths::{instance_path, job_path};
use super::protocol::{Answer, CallError, Change, InstanceProps, Request, Value};
use crate::job::{
    ClassName, EngineError, InstName, InstanceDirectory, InstanceName, NameKey, Naming,
};

/// What the copy holds: every class, and each one's instances.
#[derive(Default)]
pub struct View {
    /// Filled in once the classes are loaded; until then every question
    /// goes to the engine.
    ready: bool,
    /// Keyed by the engine's own class names (shared, not copied).
    jobs: BTreeMap<ClassName, JobView>,
}

/// One class in the copy.
#[derive(Default)]
pub struct JobView {
    /// The class has no `instance` stanza: `GetInstance` always means the
    /// instance named "" (otherwise the engine expands the name).
    pub single: bool,
    pub instances: BTreeMap<InstName, InstanceProps>,
}

/// The copy, shared between the engine thread and the D-Bus side.
pub type SharedView = Arc<RwLock<View>>;

pub fn unknown_job(job: &str) -> CallError {
    EngineError::UnknownJob(job.to_string()).into()
}

/// An instance property read on an instance that has gone.
pub fn instance_gone() -> CallError {
    CallError::new(
        "org.freedesktop.DBus.Error.UnknownMethod",
        "Unknown instance",
    )
}

/// The instance whose goal or state a change sets.
fn props_target(change: &Change) -> Option<(&NameKey, &NameKey)> {
    match change {
        Change::GoalChanged(job, inst, _) | Change::StateChanged(job, inst, _) => {
            Some((NameKey::new(job), NameKey::new(inst)))
        }
        _ => None,
    }
}

/// Apply a goal or state change to an instance's properties.
fn note_props(p: &mut InstanceProps, change: &Change) {
    match change {
        Change::GoalChanged(_, _, goal) => (*goal).clone_into(&mut p.goal),
        Change::StateChanged(_, _, state) => (*state).clone_into(&mut p.state),
        _ => {}
    }
}

/// The copy does not hold a class's instance template: a class with one
/// has its instances named by the engine.
pub struct AskTheEngine;

impl InstanceDirectory for View {
    type Undecided = AskTheEngine;

    fn naming(&self, job: &str) -> Option<Result<Naming<'_>, AskTheEngine>> {
        let j = self.jobs.get(NameKey::new(job))?;
        Some(if j.single {
            Ok(Naming::Single)
        } else {
            Err(AskTheEngine)
        })
    }

    fn has_instance(&self, job: &str, instance: &str) -> bool {
        self.jobs
            .get(NameKey::new(job))
            .is_some_and(|j| j.instances.contains_key(NameKey::new(instance)))
    }
}

impl View {
    /// The answer to a read-only request, or `None` for a request only
    /// the engine can answer.
    pub fn answer(&self, request: &Request) -> Option<Answer> {
        if !self.ready {
            return None;
        }
        let instances = |job: &str| {
            self.jobs
                .get(NameKey::new(job))
                .map(|j| &j.instances)
                .ok_or_else(|| unknown_job(job))
        };
        let path_of = |job: &str, name: InstanceName<'_>| {
            // Undecided: the engine answers.
            let found = self.find_instance(job, name).ok()?;
            Some(
                found
                    .map(|key| Value::Path(instance_path(&key.job, &key.instance)))
                    .map_err(CallError::from),
            )
        };
        Some(match request {
            Request::GetJobByName(name) if !name.is_empty() => {
                instances(name).map(|_| Value::Path(job_path(name)))
            }
            Request::GetAllJobs => Ok(Value::Paths(
                self.jobs.keys().map(|j| job_path(j)).collect(),
            )),
            Request::GetAllInstances { job } => instances(job)
                .map(|insts| Value::Paths(insts.keys().map(|i| instance_path(job, i)).collect())),
            Request::GetInstanceByName { job, name } => {
                return path_of(job, InstanceName::Named(name))
            }
            Request::GetInstance { job, env } => return path_of(job, InstanceName::FromEnv(env)),
            Request::InstanceProperties { job, instance } => self
                .jobs
                .get(NameKey::new(job))
                .and_then(|j| j.instances.get(NameKey::new(instance)))
                .map(|p| Value::Instance(p.clone()))
                .ok_or_else(instance_gone),
            _ => return None,
        })
    }

    /// Start over from the engine's whole state.
    pub fn replace(&mut self, jobs: BTreeMap<ClassName, JobView>) {
        self.jobs = jobs;
        self.ready = true;
    }

    /// Note a change the moment the engine makes it. A job's processes
    /// can ask about their own instance before the engine publishes its
    /// turn (`Daemon::publish`, which fills in everything, processes
    /// included): an instance or class that exists must never be
    /// reported unknown. What is noted here is what the change itself
    /// says; a new class counts as having an instance template until it
    /// is published, so that `GetInstance` asks the engine meanwhile.
    pub fn note(&mut self, change: &Change) {
        match change {
            Change::JobAdded(job) => {
                self.job_mut(job);
            }
            // A class is replaced by removing and adding it, its
            // instances kept: whether it has gone is the engine's to say
            // when the turn is published.
            Change::JobRemoved(_) => {}
            Change::InstanceAdded(job, inst) => {
                let Some(j) = self.job_mut(job) else { return };
                j.instances
                    .entry(inst.as_str().into())
                    .or_insert_with(|| InstanceProps {
                        name: inst.clone(),
                        goal: "stop".into(),
                        state: "waiting".into(),
                        processes: Vec::new(),
                        status_text: String::new(),
                    });
            }
            Change::InstanceRemoved(job, inst) => self.set_instance(job, inst, None),
            Change::GoalChanged(job, inst, _) | Change::StateChanged(job, inst, _) => {
                if let Some(p) = self.instance_mut(job, inst) {
                    note_props(p, change);
                }
            }
            Change::Failed(..) | Change::EventEmitted(..) | Change::Restarted => {}
        }
    }

    /// Note a series of changes, in order. A row of goal and state changes
    /// of one instance (a task walks through a dozen states at once) finds
    /// the instance once.
    pub fn note_all(&mut self, changes: &[Change]) {
        let mut rest = changes;
        while let Some((first, tail)) = rest.split_first() {
            let Some(key) = props_target(first) else {
                self.note(first);
                rest = tail;
                continue;
            };
            let row = 1 + tail
                .iter()
                .take_while(|c| props_target(c) == Some(key))
                .count();
            let (now, later) = rest.split_at(row);
            if let Some(p) = self.instance_mut(key.0.as_str(), key.1.as_str()) {
                for change in now {
                    note_props(p, change);
                }
            }
            rest = later;
        }
    }

    /// Note a process just spawned for an instance (its end is published
    /// with the state change it brings).
    pub fn note_process(&mut self, job: &str, inst: &str, process: &str, pid: i32) {
        if let Some(p) = self.instance_mut(job, inst) {
            p.processes.retain(|(name, _)| name != process);
            p.processes.push((process.to_string(), pid));
        }
    }

    /// A class's entry, made if missing (always `Some`).
    fn job_mut(&mut self, job: &str) -> Option<&mut JobView> {
        if !self.jobs.contains_key(NameKey::new(job)) {
            self.jobs
                .insert(ClassName::from(Arc::from(job)), JobView::default());
        }
        self.jobs.get_mut(NameKey::new(job))
    }

    fn instance_mut(&mut self, job: &str, inst: &str) -> Option<&mut InstanceProps> {
        self.jobs
            .get_mut(NameKey::new(job))?
            .instances
            .get_mut(NameKey::new(inst))
    }

    /// A class is there (`Some(single)`, see [`JobView`]), or has gone.
    pub fn set_job(&mut self, job: &str, present: Option<bool>) {
        match present {
            None => {
                self.jobs.remove(NameKey::new(job));
            }
            Some(single) => {
                if let Some(j) = self.job_mut(job) {
                    j.single = single;
                }
            }
        }
    }

    /// An instance's current properties, or its removal.
    pub fn set_instance(&mut self, job: &str, instance: &str, props: Option<InstanceProps>) {
        match props {
            Some(p) => {
                if let Some(j) = self.job_mut(job) {
                    // In place when it is there: a new key costs a copy
                    // of the name.
                    match j.instances.get_mut(NameKey::new(instance)) {
                        Some(old) => *old = p,
                        None => {
                            j.instances.insert(instance.into(), p);
                        }
                    }
                }
            }
            None => {
                if let Some(j) = self.jobs.get_mut(NameKey::new(job)) {
                    j.instances.remove(NameKey::new(instance));
                    if j.instances.is_empty() {
                        // Drop the emptied map's node (see the engine's
                        // remove_instance).
                        j.instances = BTreeMap::new();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(state: &str) -> InstanceProps {
        InstanceProps {
            name: String::new(),
            goal: "start".into(),
            state: state.into(),
            processes: vec![("main".into(), 42)],
            status_text: String::new(),
        }
    }

    #[test]
    fn answers_only_once_ready_and_only_reads() {
        let mut v = View::default();
        assert!(v.answer(&Request::GetAllJobs).is_none());
        v.replace(BTreeMap::new());
        v.set_job("web", Some(true));
        v.set_instance("web", "", Some(props("running")));
        assert!(matches!(
            v.answer(&Request::GetJobByName("web".into())),
            Some(Ok(Value::Path(p))) if p == "/com/ubuntu/Upstart/jobs/web"
        ));
        assert!(matches!(
            v.answer(&Request::InstanceProperties { job: "web".into(), instance: String::new() }),
            Some(Ok(Value::Instance(p))) if p.state == "running"
        ));
        assert!(v
            .answer(&Request::JobProperties { job: "web".into() })
            .is_none());
        assert!(v.answer(&Request::GetJobByName(String::new())).is_none());
    }

    #[test]
    fn changes_are_noted_before_they_are_published() {
        let mut v = View::default();
        v.replace(BTreeMap::new());
        v.note(&Change::JobAdded("web".into()));
        // A new class's instance names are the engine's to expand.
        assert!(v
            .answer(&Request::GetInstance {
                job: "web".into(),
                env: vec![]
            })
            .is_none());
        v.note(&Change::InstanceAdded("web".into(), String::new()));
        v.note(&Change::GoalChanged("web".into(), String::new(), "start"));
        v.note(&Change::StateChanged(
            "web".into(),
            String::new(),
            "pre-start",
        ));
        assert!(matches!(
            v.answer(&Request::InstanceProperties { job: "web".into(), instance: String::new() }),
            Some(Ok(Value::Instance(p))) if p.goal == "start" && p.state == "pre-start"
        ));
        v.note(&Change::InstanceRemoved("web".into(), String::new()));
        assert!(matches!(
            v.answer(&Request::GetInstanceByName {
                job: "web".into(),
                name: String::new()
            }),
            Some(Err(_))
        ));
    }

    #[test]
    fn a_series_of_changes_is_noted_as_one_by_one() {
        let changes = [
            Change::JobAdded("web".into()),
            Change::InstanceAdded("web".into(), String::new()),
            Change::GoalChanged("web".into(), String::new(), "start"),
            Change::StateChanged("web".into(), String::new(), "starting"),
            Change::InstanceAdded("web".into(), "b".into()),
            Change::StateChanged("web".into(), "b".into(), "starting"),
            Change::StateChanged("web".into(), String::new(), "pre-start"),
            Change::StateChanged("web".into(), String::new(), "spawned"),
            Change::GoalChanged("web".into(), "b".into(), "stop"),
            Change::InstanceRemoved("web".into(), "b".into()),
            Change::StateChanged("web".into(), "b".into(), "waiting"),
        ];
        let props = |v: &View, inst: &str| {
            v.answer(&Request::InstanceProperties {
                job: "web".into(),
                instance: inst.into(),
            })
            .and_then(|a| a.ok())
            .map(|a| match a {
                Value::Instance(p) => (p.goal, p.state),
                _ => Default::default(),
            })
        };
        let (mut one, mut all) = (View::default(), View::default());
        one.replace(BTreeMap::new());
        all.replace(BTreeMap::new());
        for c in &changes {
            one.note(c);
        }
        all.note_all(&changes);
        for inst in ["", "b"] {
            assert_eq!(props(&one, inst), props(&all, inst));
        }
        assert_eq!(
            props(&all, ""),
            Some(("start".to_string(), "spawned".to_string()))
        );
        assert_eq!(props(&all, "b"), None);
    }

    #[test]
    fn gone_classes_and_instances_answer_like_the_engine() {
        let mut v = View::default();
        v.replace(BTreeMap::new());
        v.set_job("web", Some(true));
        v.set_instance("web", "", Some(props("running")));
        v.set_instance("web", "", None);
        let name = |a: Option<Answer>| a.and_then(|a| a.err()).map(|e| e.name);
        assert_eq!(
            name(v.answer(&Request::InstanceProperties {
                job: "web".into(),
                instance: String::new()
            }))
            .as_deref(),
            Some("org.freedesktop.DBus.Error.UnknownMethod")
        );
        assert_eq!(
            name(v.answer(&Request::GetInstanceByName {
                job: "web".into(),
                name: "x".into()
            }))
            .as_deref(),
            Some("com.ubuntu.Upstart0_6.Error.UnknownInstance")
        );
        v.set_job("web", None);
        assert_eq!(
            name(v.answer(&Request::GetAllInstances { job: "web".into() })).as_deref(),
            Some("com.ubuntu.Upstart0_6.Error.UnknownJob")
        );
    }
}
