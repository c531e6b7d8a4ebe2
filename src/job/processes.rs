//! Process input: spawns and their status pipes, children that stop,
//! trap or end, ptrace following for `expect fork|daemon`, and respawn
//! (events-and-states.md §10, §12; process-spawning.md).

use super::engine::{Engine, ExitStatus, PendingSpawn};
use super::error::SpawnError;
use super::instance::Trace;
use super::state::{Goal, State};
use super::sys::{Level, SpawnRequest, Sys};
use super::JobKey;
use crate::config::{signal_name, Expect, JobClass, ProcessType};
use crate::env;

const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;
const SIGTRAP: i32 = 5;
const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_EXEC: i32 = 4;

impl Engine {
    /// The environment a process of this instance runs with
    /// (process-spawning.md §2).
    pub fn process_env(&self, key: &JobKey, process: ProcessType) -> Vec<String> {
        let Some(inst) = self.instance(key) else {
            return Vec::new();
        };
        let mut out = inst.env.clone();
        for e in self.process_env_set(key, process) {
            env::set(&mut out, e);
        }
        out
    }

    /// What a process's environment sets over its instance's, in order.
    fn process_env_set(&self, key: &JobKey, process: ProcessType) -> Vec<String> {
        let mut out = Vec::new();
        if matches!(process, ProcessType::PreStop | ProcessType::PostStop) {
            if let Some(inst) = self.instance(key) {
                for e in inst.stop_env.iter().flatten() {
                    env::set(&mut out, e.clone());
                }
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

    pub(super) fn spawn(&mut self, sys: &mut dyn Sys, key: &JobKey, process: ProcessType) {
        let Some(class) = self.class_of(key) else {
            return;
        };
        let trace =
            process == ProcessType::Main && matches!(class.expect, Expect::Fork | Expect::Daemon);
        // needs_cgroups(), with the class at hand.
        let cgroup_manager = if !self.options.no_cgroups && !class.rare.cgroups.is_empty() {
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
        let env_set = self.process_env_set(key, process);
        // The instance's environment is lent to the spawn, not copied, and
        // given back before anything else can look at it.
        let env = self
            .inst(key)
            .map(|i| std::mem::take(&mut i.env))
            .unwrap_or_default();
        let mut req = SpawnRequest {
            job: key.clone(),
            process,
            env,
            env_set,
            class,
            trace,
            cgroup_manager,
        };
        // The reference retries forever; a bounded retry keeps PID 1 alive
        // when the failure is permanent, and fails the process instead.
        let mut last_err = None;
        let mut spawned = None;
        for _ in 0..8 {
            match sys.spawn(&req) {
                Ok(pid) => {
                    spawned = Some(pid);
                    break;
                }
                Err(e) => {
                    sys.log(Level::Warn, format!("Temporary process spawn error: {e}"));
                    last_err = Some(e);
                }
            }
        }
        if let Some(inst) = self.inst(key) {
            inst.env = std::mem::take(&mut req.env);
        }
        if let Some(pid) = spawned {
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
        let why = last_err.as_ref().map(SpawnError::to_string);
        sys.log(
            Level::Warn,
            format!(
                "Failed to spawn {key} {} process: {}",
                process.name(),
                why.unwrap_or_default()
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
        let warn = |sys: &mut dyn Sys, what: &str, err: nix::errno::Errno| {
            sys.log(
                Level::Warn,
                format!(
                    "Failed to {what} {key} main process ({pid}): {}",
                    err.desc()
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
                format!("Failed to trace {key} main process ({pid}): {}", e.desc()),
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
        if process == ProcessType::Main {
            self.reload_done(sys, &key, Some("ended before it finished reloading"));
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
}
