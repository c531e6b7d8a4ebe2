//! Control-call input: start, stop, restart and reload of jobs and
//! instances (control.md; events-and-states.md §15).

use super::NameKey;
use std::sync::Arc;

use super::engine::Engine;
use super::error::EngineError;
use super::instance::{Held, WaitKind};
use super::lookup::with_usage;
use super::state::Goal;
use super::sys::{Reply, Sys};
use super::JobKey;
use crate::config::{expand, Expect, JobClass, ProcessType};
use crate::env;

/// What a control call's job name and environment resolve to.
struct Resolved {
    class: Arc<JobClass>,
    /// Class environment plus the caller's list.
    env: Vec<String>,
    /// The expanded instance name, or the expansion error's message.
    name: Result<String, String>,
}

impl Engine {
    /// The class of `job`, the class environment plus the caller's
    /// `KEY=VALUE` list, and the instance name that environment expands to.
    fn resolve(&self, job: &str, args: &[String]) -> Result<Resolved, EngineError> {
        // A class whose file is gone stays registered until its last
        // instance stops (job-config.md §3.3).
        let Some(class) = self.slots.get(NameKey::new(job)).map(|s| s.class.clone()) else {
            return Err(EngineError::UnknownJob(job.to_string()));
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
        kind: WaitKind,
    ) {
        self.finished(sys, key, false);
        if let (Some(token), Some(inst)) = (waiter, self.inst(key)) {
            inst.blocking.push(Held::Waiter { token, kind });
        }
    }

    /// The existing instance a stop or restart addresses, or its error.
    fn stoppable(&self, key: &JobKey, stopped_name: &str) -> Result<(), EngineError> {
        match self.instance(key) {
            None => Err(EngineError::UnknownInstance(key.instance.clone())),
            Some(inst) if inst.goal == Goal::Stop => {
                Err(EngineError::AlreadyStopped(stopped_name.to_string()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Start an instance of `job` with extra environment. Returns the
    /// instance key.
    pub fn start_job(
        &mut self,
        sys: &mut dyn Sys,
        job: &str,
        args: Vec<String>,
        waiter: Option<u64>,
    ) -> Result<JobKey, EngineError> {
        let Resolved {
            class,
            env: start_env,
            name,
        } = self.resolve(job, &args)?;
        self.cgroup_start_check(job, job)?;
        let iname = name.map_err(|msg| with_usage(&class, msg))?;
        let key = JobKey::new(job, &iname);
        if self.instance(&key).is_some_and(|i| i.goal == Goal::Start) {
            return Err(EngineError::AlreadyStarted(key.to_string()));
        }
        self.ensure_instance(sys, &key);
        if let Some(inst) = self.inst(&key) {
            inst.start_env = Some(start_env);
        }
        self.take_request(sys, &key, waiter, WaitKind::Start);
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
    ) -> Result<JobKey, EngineError> {
        let name = self.resolve(job, &args)?.name;
        let iname = name.map_err(EngineError::InstanceName)?;
        let key = JobKey::new(job, &iname);
        self.stoppable(&key, &key.to_string())?;
        if let Some(inst) = self.inst(&key) {
            inst.stop_env = Some(args);
        }
        self.take_request(sys, &key, waiter, WaitKind::Stop);
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
    ) -> Result<JobKey, EngineError> {
        let Resolved {
            env: start_env,
            name,
            ..
        } = self.resolve(job, &args)?;
        let iname = name.map_err(EngineError::InstanceName)?;
        let key = JobKey::new(job, &iname);
        // The reference names only the instance in this message.
        self.stoppable(&key, &iname)?;
        if let Some(inst) = self.inst(&key) {
            inst.start_env = Some(start_env);
            inst.stop_env = None;
        }
        self.take_request(sys, &key, waiter, WaitKind::Restart);
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
        kind: WaitKind,
        waiter: Option<u64>,
    ) -> Result<(), EngineError> {
        let Some(inst) = self.instance(key) else {
            return Err(EngineError::UnknownInstance(key.instance.clone()));
        };
        let goal = inst.goal;
        if kind == WaitKind::Start {
            self.cgroup_start_check(&key.job, &key.to_string())?;
        }
        match kind {
            WaitKind::Start if goal == Goal::Start => {
                return Err(EngineError::AlreadyStarted(key.to_string()))
            }
            WaitKind::Stop | WaitKind::Restart if goal == Goal::Stop => {
                return Err(EngineError::AlreadyStopped(key.to_string()))
            }
            _ => {}
        }
        if let Some(inst) = self.inst(key) {
            inst.start_env = None;
            inst.stop_env = None;
        }
        self.take_request(sys, key, waiter, kind);
        match kind {
            WaitKind::Start => self.change_goal(sys, key, Goal::Start),
            WaitKind::Stop => self.change_goal(sys, key, Goal::Stop),
            WaitKind::Restart => {
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
        waiter: Option<u64>,
    ) -> Result<(), EngineError> {
        let class = self.class_of(key);
        let Some(inst) = self.instance(key) else {
            return Err(EngineError::UnknownInstance(key.instance.clone()));
        };
        let pid = inst.pid(ProcessType::Main);
        let Some(class) = class.filter(|_| pid > 0) else {
            return Err(EngineError::NotRunning(key.to_string()));
        };
        sys.kill(pid, class.reload_signal, false)
            .map_err(EngineError::SignalFailed)?;
        match waiter {
            Some(token) if class.expect == Expect::Notify => self.reload_sent(key, token),
            Some(token) => sys.reply(token, Reply::Ok),
            None => {}
        }
        Ok(())
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

    /// The error of a manual start while the manager is unknown.
    fn cgroup_start_check(&self, job: &str, display: &str) -> Result<(), EngineError> {
        if self.needs_cgroups(job) && self.options.cgroup_manager.is_none() {
            return Err(EngineError::CGroupManagerNotAvailable(display.to_string()));
        }
        Ok(())
    }
}
