//! Answering control requests on the engine thread. Requests that wait
//! (start/stop/restart with `wait`, blocking emits) park their reply
//! channel under a token; the engine answers the token later.

use std::collections::HashMap;

use super::Daemon;
use crate::config::{EventExpr, ProcessType};
use crate::control::paths::{instance_path, job_path};
use crate::control::view::{instance_gone, unknown_job, JobView};
use crate::control::{
    Answer, CallError, Change, Envelope, InstanceProps, JobProps, Request, Value,
};
use crate::job::{EngineError, InstanceName, JobKey, Level, NameKey, Reply, WaitKind};

/// How long an exiting daemon waits for its last replies to be written.
const FINISH_CALLS_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// Replies waiting for the engine.
#[derive(Default)]
pub struct Pending {
    next: u64,
    waiting: HashMap<u64, (futures_channel::oneshot::Sender<Answer>, Value)>,
    /// Answers of job control calls without `wait`, sent once the engine
    /// has run its queue (see `answer_after_queue`).
    after_queue: Vec<(futures_channel::oneshot::Sender<Answer>, Answer)>,
}

impl Pending {
    fn park(&mut self, reply: futures_channel::oneshot::Sender<Answer>, on_success: Value) -> u64 {
        self.next += 1;
        self.waiting.insert(self.next, (reply, on_success));
        self.next
    }

    fn unpark(&mut self, token: u64) -> Option<futures_channel::oneshot::Sender<Answer>> {
        self.waiting.remove(&token).map(|(tx, _)| tx)
    }

    /// The engine's answer for a parked caller, with where it goes.
    fn answer(
        &mut self,
        token: u64,
        reply: Reply,
    ) -> Option<(futures_channel::oneshot::Sender<Answer>, Answer)> {
        let (tx, value) = self.waiting.remove(&token)?;
        let answer = match reply {
            Reply::Ok => Ok(value),
            Reply::Failed(e) => Err(e.into()),
        };
        Some((tx, answer))
    }
}

/// What `InstanceProperties` answers for an instance, if it exists.
fn instance_props(engine: &crate::job::Engine, job: &str, instance: &str) -> Option<InstanceProps> {
    let inst = engine.instance(&JobKey::new(job, instance))?;
    let processes = ProcessType::ALL
        .iter()
        .filter_map(|p| {
            let pid = inst.pid(*p);
            (pid > 0).then(|| (p.name().to_string(), pid))
        })
        .collect();
    Some(InstanceProps {
        name: inst.name.clone(),
        goal: inst.goal.name().to_string(),
        state: inst.state.name().to_string(),
        processes,
        status_text: inst.readiness.status.clone().unwrap_or_default(),
    })
}

/// Post-order flattening of an event expression for D-Bus (`aas`).
fn flatten(expr: &EventExpr, out: &mut Vec<Vec<String>>) {
    match expr {
        EventExpr::Match { event, args } => {
            let mut v = vec![event.clone()];
            v.extend(args.iter().cloned());
            out.push(v);
        }
        EventExpr::Op { op, left, right } => {
            flatten(left, out);
            flatten(right, out);
            out.push(vec![match op {
                crate::config::Operator::And => "/AND".to_string(),
                crate::config::Operator::Or => "/OR".to_string(),
            }]);
        }
    }
}

impl Daemon {
    /// Serve every queued control request.
    pub(super) fn serve_requests(&mut self) {
        let Some(rx) = self.requests.take() else {
            return;
        };
        while let Ok(env) = rx.try_recv() {
            self.serve(env);
            self.flush_replies();
        }
        self.requests = Some(rx);
    }

    /// Hand the engine's replies to their callers.
    pub(super) fn flush_replies(&mut self) {
        for (token, reply) in std::mem::take(&mut self.world.replies) {
            if let Some((tx, answer)) = self.pending.answer(token, reply) {
                self.deliver(tx, answer);
            }
        }
    }

    /// Send the answers of job control calls made without `wait`. They
    /// wait for the engine to have run its queue, as the reference's
    /// caller in effect does: its reply is read after init's main loop
    /// went round, so the status it then asks for shows the job's first
    /// process already spawned (or whatever holds the job, such as a
    /// blocked `starting` event), never a spawn half made.
    pub(super) fn answer_after_queue(&mut self) {
        for (tx, answer) in std::mem::take(&mut self.pending.after_queue) {
            self.deliver(tx, answer);
        }
    }

    /// Before the daemon exits: send every answer it has, drop the calls
    /// still waiting on jobs (their callers see the connection close, as
    /// with Upstart), and give the control thread a moment to write the
    /// replies out, so that the call that ended init (EndSession, a
    /// runlevel) is answered rather than cut off by the exit.
    pub(super) fn finish_calls(&mut self) {
        self.pending.waiting.clear();
        self.write_replies();
    }

    /// Send every answer the daemon has and wait (at most
    /// `FINISH_CALLS_BOUND`) until the control thread has written them:
    /// until no call is in flight but those parked on jobs. Before a
    /// re-exec, so that `Restart()` is answered before the execution ends
    /// the control thread; the parked calls are kept (if the execution
    /// fails, they are still answered).
    pub(super) fn write_replies(&mut self) {
        self.flush_replies();
        self.answer_after_queue();
        let deadline = std::time::Instant::now() + FINISH_CALLS_BOUND;
        while crate::control::calls_in_flight() > self.pending.waiting.len()
            && std::time::Instant::now() < deadline
        {
            // A reply is written within microseconds: a coarser step adds
            // most of its length to every re-exec's pause.
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    /// Send an answer, the signals of the changes made so far first on
    /// their way. Objects need no registering (the dispatcher makes them
    /// per call), so the answer does not wait for the signals: a caller is
    /// answered while a storm's signals are still being sent.
    fn deliver(&mut self, tx: futures_channel::oneshot::Sender<Answer>, answer: Answer) {
        self.publish();
        let _ = tx.send(answer);
    }

    fn serve(&mut self, Envelope { request, reply }: Envelope) {
        if let Request::EmitEvent { name, env, .. } | Request::EmitEventWithFile { name, env, .. } =
            &request
        {
            self.observe_emit(name, env);
        }
        #[cfg(feature = "panic-trigger")]
        if let Request::EmitEvent { name, .. } = &request {
            crate::panic_guard::trigger(name, "main");
        }
        let immediate = match request {
            Request::NotifyDBusAddress(address) if self.config.user_mode => {
                self.publish();
                // The keeper of the bus connection answers the caller once
                // it has joined (or failed to).
                let call = crate::control::BusCall::Join {
                    address,
                    kind: crate::control::BusKind::Notified,
                    reply: Some(reply),
                };
                if let Some(crate::control::BusCall::Join {
                    reply: Some(reply), ..
                }) = self.bus_call(call)
                {
                    let _ = reply.send(Err(CallError::new(
                        "org.freedesktop.DBus.Error.Failed",
                        "no control server",
                    )));
                }
                return;
            }
            Request::EmitEventWithFile {
                name,
                env,
                wait,
                file,
            } => {
                use std::os::fd::AsRawFd;
                let fd = file.as_raw_fd();
                // Inheritable while the event exists, so jobs it starts get it.
                let _ = self.world.sys.set_cloexec(fd, false);
                self.world.event_fds.insert(fd, file);
                if wait {
                    let token = self.pending.park(reply, Value::Unit);
                    let id = self.engine.emit_waiting(&name, env, token);
                    self.engine.attach_fd(id, fd);
                    return;
                }
                let id = self.engine.emit(&name, env);
                self.engine.attach_fd(id, fd);
                Ok(Value::Unit)
            }
            Request::EmitEvent {
                name,
                env,
                wait: true,
            } => {
                let token = self.pending.park(reply, Value::Unit);
                self.engine.emit_waiting(&name, env, token);
                return;
            }
            Request::JobStart { job, env, wait } => {
                return self.waiting_call(reply, wait, |d, waiter| {
                    d.engine
                        .start_job(&mut d.world, &job, env, waiter)
                        .map(|k| Value::Path(instance_path(&k.job, &k.instance)))
                });
            }
            Request::JobStop { job, env, wait } => {
                return self.waiting_call(reply, wait, |d, waiter| {
                    d.engine
                        .stop_job(&mut d.world, &job, env, waiter)
                        .map(|_| Value::Unit)
                });
            }
            Request::JobRestart { job, env, wait } => {
                return self.waiting_call(reply, wait, |d, waiter| {
                    d.engine
                        .restart_job(&mut d.world, &job, env, waiter)
                        .map(|k| Value::Path(instance_path(&k.job, &k.instance)))
                });
            }
            Request::InstanceControl {
                job,
                instance,
                kind,
                wait,
            } => {
                return self.instance_call(reply, wait, JobKey::new(&job, &instance), kind);
            }
            // Answered once the engine says so: an `expect notify` job's
            // reload lasts until it is ready again (extensions.md §7).
            Request::InstanceReload { job, instance } => {
                let key = JobKey::new(&job, &instance);
                return self.waiting_call(reply, true, |d, waiter| {
                    d.engine
                        .reload_instance(&mut d.world, &key, waiter)
                        .map(|()| Value::Unit)
                });
            }
            // Property reads and writes change nothing the engine must
            // publish first: answered at once.
            property @ (Request::JobProperties { .. }
            | Request::InstanceProperties { .. }
            | Request::GetLogPriority
            | Request::SetLogPriority(_)) => {
                let _ = reply.send(self.answer_now(property));
                return;
            }
            other => self.answer_now(other),
        };
        self.deliver(reply, immediate);
    }

    /// Run a job-level control call; with `wait` the answer is parked
    /// until the engine finishes the request, without it until the engine
    /// has run its queue (an error goes back at once).
    fn waiting_call(
        &mut self,
        reply: futures_channel::oneshot::Sender<Answer>,
        wait: bool,
        call: impl FnOnce(&mut Self, Option<u64>) -> Result<Value, EngineError>,
    ) {
        if !wait {
            match call(self, None) {
                Ok(value) => self.pending.after_queue.push((reply, Ok(value))),
                Err(e) => self.deliver(reply, Err(e.into())),
            }
            return;
        }
        // Parked first: the engine may answer during the call itself.
        let token = self.pending.park(reply, Value::Unit);
        match call(self, Some(token)) {
            Ok(value) => {
                if let Some(slot) = self.pending.waiting.get_mut(&token) {
                    slot.1 = value;
                }
            }
            Err(e) => {
                if let Some(tx) = self.pending.unpark(token) {
                    self.deliver(tx, Err(e.into()));
                }
            }
        }
    }

    fn instance_call(
        &mut self,
        reply: futures_channel::oneshot::Sender<Answer>,
        wait: bool,
        key: JobKey,
        kind: WaitKind,
    ) {
        self.waiting_call(reply, wait, |d, waiter| {
            d.engine
                .control_instance(&mut d.world, &key, kind, waiter)
                .map(|()| Value::Unit)
        });
    }

    fn answer_now(&mut self, request: Request) -> Answer {
        match request {
            Request::GetJobByName(name) => match self.engine.slots.get(name.as_str()) {
                Some(_) => Ok(Value::Path(job_path(&name))),
                None => Err(unknown_job(&name)),
            },
            Request::GetAllJobs => Ok(Value::Paths(
                self.engine.slots.keys().map(|j| job_path(j)).collect(),
            )),
            Request::EmitEvent { name, env, .. } => {
                self.engine.emit(&name, env);
                Ok(Value::Unit)
            }
            Request::ReloadConfiguration => {
                self.reload();
                Ok(Value::Unit)
            }
            Request::GetInstance { job, env: args } => {
                self.instance_path_of(&job, InstanceName::FromEnv(&args))
            }
            Request::GetInstanceByName { job, name } => {
                self.instance_path_of(&job, InstanceName::Named(&name))
            }
            Request::GetAllInstances { job } => {
                let slot = self
                    .engine
                    .slots
                    .get(job.as_str())
                    .ok_or_else(|| unknown_job(&job))?;
                Ok(Value::Paths(
                    slot.instances
                        .keys()
                        .map(|i| instance_path(&job, i))
                        .collect(),
                ))
            }
            Request::JobProperties { job } => {
                let slot = self
                    .engine
                    .slots
                    .get(job.as_str())
                    .ok_or_else(|| unknown_job(&job))?;
                let c = &slot.class;
                let mut start_on = Vec::new();
                let mut stop_on = Vec::new();
                if let Some(e) = &c.start_on {
                    flatten(e, &mut start_on);
                }
                if let Some(e) = &c.stop_on {
                    flatten(e, &mut stop_on);
                }
                Ok(Value::Job(JobProps {
                    name: c.name.to_string(),
                    description: c.rare.description.clone().unwrap_or_default(),
                    author: c.rare.author.clone().unwrap_or_default(),
                    version: c.rare.version.clone().unwrap_or_default(),
                    usage: c.rare.usage.clone().unwrap_or_default(),
                    start_on,
                    stop_on,
                    emits: c.rare.emits.clone(),
                }))
            }
            Request::InstanceProperties { job, instance } => {
                instance_props(&self.engine, &job, &instance)
                    .map(Value::Instance)
                    .ok_or_else(instance_gone)
            }
            Request::GetEnv { details, name } => self
                .engine
                .get_env(&details, &name)
                .map(Value::Str)
                .map_err(CallError::from),
            Request::ListEnv { details } => self
                .engine
                .list_env(&details)
                .map(Value::Strs)
                .map_err(CallError::from),
            Request::SetEnvList {
                details,
                vars,
                replace,
            } => self
                .engine
                .set_env_list(&details, &vars, replace, std::process::id() == 1)
                .map(|()| Value::Unit)
                .map_err(CallError::from),
            Request::UnsetEnvList { details, names } => self
                .engine
                .unset_env_list(&details, &names, std::process::id() == 1)
                .map(|()| Value::Unit)
                .map_err(CallError::from),
            Request::ResetEnv { details } => {
                let initial = self.config.job_env.clone();
                self.engine
                    .reset_env(&details, &initial, std::process::id() == 1)
                    .map(|()| Value::Unit)
                    .map_err(CallError::from)
            }
            Request::GetLogPriority => Ok(Value::Str(
                super::logger::priority_name(&self.log_priority).to_string(),
            )),
            Request::SetLogPriority(name) => {
                if super::logger::set_priority(&self.log_priority, &name) {
                    Ok(Value::Unit)
                } else {
                    Err(CallError::new(
                        "org.freedesktop.DBus.Error.InvalidArgs",
                        "The log priority given was not recognised",
                    ))
                }
            }
            Request::NotifyDiskWriteable => self
                .world
                .disk_writeable()
                .map(|()| Value::Unit)
                .map_err(|e| {
                    CallError::new(
                        "org.freedesktop.DBus.Error.Failed",
                        crate::os_error::without_errno(&e.to_string()).to_string(),
                    )
                }),
            Request::NotifyDBusAddress(_) => Err(EngineError::PermissionDenied(
                "Not permissible to notify D-Bus address for PID 1",
            )
            .into()),
            Request::NotifyCGroupManagerAddress(address) => {
                // First address wins; with --no-cgroups the call does nothing.
                self.engine
                    .cgroup_manager_address(&mut self.world, &address);
                Ok(Value::Unit)
            }
            Request::GetState => self.state_json().map(Value::Str).map_err(|_| {
                CallError::new("org.freedesktop.DBus.Error.NoMemory", "Out of Memory")
            }),
            Request::Restart => {
                self.log(Level::Info, "Restarting");
                self.reexec_requested = true;
                Ok(Value::Unit)
            }
            // A session init logs out; PID 1 ignores the request.
            Request::EndSession => {
                if self.config.user_mode {
                    self.start_quiesce(crate::lifecycle::Requester::Session);
                }
                Ok(Value::Unit)
            }
            // Handled by `serve`.
            Request::EmitEventWithFile { .. }
            | Request::JobStart { .. }
            | Request::JobStop { .. }
            | Request::JobRestart { .. }
            | Request::InstanceControl { .. }
            | Request::InstanceReload { .. } => Err(CallError::new(
                "org.freedesktop.DBus.Error.Failed",
                "misrouted",
            )),
        }
    }

    fn instance_path_of(&self, job: &str, name: InstanceName<'_>) -> Answer {
        let key = self.engine.instance_named(job, name)?;
        Ok(Value::Path(instance_path(&key.job, &key.instance)))
    }

    /// Bring the control side's copy of classes and instances up to date
    /// with the changes made so far, then hand the changes to the
    /// broadcaster. Called before any answer goes out.
    pub(super) fn publish(&mut self) {
        if self.world.changes.is_empty() {
            return;
        }
        if let Some(mut view) = self.view.as_ref().and_then(|v| v.write().ok()) {
            // Each class and instance once, as the engine has it now (an
            // instance goes through a dozen changes in a turn). Classes
            // first: an instance is only put back where its class is.
            let mut jobs = std::collections::BTreeSet::new();
            let mut instances = std::collections::BTreeSet::new();
            // An instance's changes mostly come in a row: the set is
            // only asked once per row.
            let mut last = None;
            for change in &self.world.changes {
                match change {
                    Change::JobAdded(job) | Change::JobRemoved(job) => {
                        jobs.insert(NameKey::new(job));
                    }
                    Change::InstanceAdded(job, inst)
                    | Change::InstanceRemoved(job, inst)
                    | Change::GoalChanged(job, inst, _)
                    | Change::StateChanged(job, inst, _)
                    | Change::Failed(job, inst, _) => {
                        let key = (NameKey::new(job), NameKey::new(inst));
                        if last != Some(key) {
                            instances.insert(key);
                            last = Some(key);
                        }
                    }
                    Change::EventEmitted(..) | Change::Restarted => {}
                }
            }
            for job in jobs {
                let slot = self.engine.slots.get(job);
                view.set_job(job.as_str(), slot.map(|s| s.class.instance.is_empty()));
            }
            for (job, inst) in instances {
                let (job, inst) = (job.as_str(), inst.as_str());
                view.set_instance(job, inst, instance_props(&self.engine, job, inst));
            }
            // What was not yet noted is in the copy now, as it stands.
            self.world.noted = self.world.changes.len();
        }
        self.world.flush_changes();
    }

    /// Put one instance's properties, as the engine has them now, in the
    /// control side's copy: for a change no broadcast carries (a job's
    /// `STATUS=` text).
    pub(super) fn refresh_view_of(&mut self, key: &JobKey) {
        let props = instance_props(&self.engine, &key.job, &key.instance);
        if let Some(mut view) = self.view.as_ref().and_then(|v| v.write().ok()) {
            if props.is_some() {
                view.set_instance(&key.job, &key.instance, props);
            }
        }
    }

    /// Fill the control side's copy afresh from the engine (after loading
    /// or reloading the configuration, which may replace classes in place).
    pub(super) fn rebuild_view(&mut self) {
        // The copy is replaced below: the changes only go to the broadcaster.
        self.world.flush_changes();
        let Some(view) = &self.view else { return };
        let jobs = self
            .engine
            .slots
            .iter()
            .map(|(job, slot)| {
                let instances = slot
                    .instances
                    .keys()
                    .filter_map(|i| Some((i.clone(), instance_props(&self.engine, job, i)?)))
                    .collect();
                let single = slot.class.instance.is_empty();
                (job.clone(), JobView { single, instances })
            })
            .collect();
        if let Ok(mut v) = view.write() {
            v.replace(jobs);
        }
    }
}
