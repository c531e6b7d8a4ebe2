//! Pure tests of the engine: no processes, a virtual clock, a recording
//! fake for every effect. The tests are grouped by the input they drive.

use super::*;
use crate::config::{parse_job, ClassDefaults, ProcessType};
use nix::errno::Errno;

#[derive(Default)]
pub(super) struct Fake {
    pub(super) next_pid: i32,
    pub(super) spawns: Vec<(i32, String, ProcessType)>,
    pub(super) kills: Vec<(i32, i32, bool)>,
    pub(super) logs: Vec<String>,
    pub(super) events: Vec<String>,
    pub(super) replies: Vec<(u64, Reply)>,
    pub(super) fail_spawns: usize,
    pub(super) ptrace: Vec<String>,
    pub(super) forked: Vec<i32>,
    /// The cgroup manager address of every spawn request.
    pub(super) managers: Vec<Option<String>>,
    /// What `apparmor_available` answers.
    pub(super) apparmor: bool,
}

impl Sys for Fake {
    fn spawn(&mut self, req: &SpawnRequest) -> Result<i32, SpawnError> {
        if self.fail_spawns > 0 {
            self.fail_spawns -= 1;
            return Err(SpawnError::Fork(Errno::EAGAIN));
        }
        self.next_pid += 1;
        let pid = 100 + self.next_pid;
        self.spawns.push((pid, req.job.to_string(), req.process));
        self.managers.push(req.cgroup_manager.clone());
        Ok(pid)
    }
    fn kill(&mut self, pid: i32, signal: i32, group: bool) -> Result<(), Errno> {
        self.kills.push((pid, signal, group));
        Ok(())
    }
    fn log(&mut self, _level: Level, message: String) {
        self.logs.push(message);
    }
    fn changed(&mut self, change: Change) {
        if let Change::EventEmitted(name, env) = change {
            let mut s = name;
            for e in env {
                s.push(' ');
                s.push_str(&e);
            }
            self.events.push(s);
        }
    }
    fn reply(&mut self, token: u64, reply: Reply) {
        self.replies.push((token, reply));
    }
    fn apparmor_available(&mut self) -> bool {
        self.apparmor
    }
    fn ptrace_setoptions(&mut self, pid: i32, follow: bool) -> Result<(), Errno> {
        self.ptrace.push(format!("setoptions {pid} {follow}"));
        // A freshly forked child has not stopped yet in these tests.
        if follow {
            Ok(())
        } else {
            Err(Errno::ESRCH)
        }
    }
    fn ptrace_cont(&mut self, pid: i32, signal: i32) -> Result<(), Errno> {
        self.ptrace.push(format!("cont {pid} {signal}"));
        Ok(())
    }
    fn ptrace_detach(&mut self, pid: i32) -> Result<(), Errno> {
        self.ptrace.push(format!("detach {pid}"));
        Ok(())
    }
    fn ptrace_new_child(&mut self, _pid: i32) -> Result<i32, Errno> {
        Ok(self.forked.remove(0))
    }
}

impl Fake {
    pub(super) fn last_pid(&self, job: &str, p: ProcessType) -> i32 {
        self.spawns
            .iter()
            .rev()
            .find(|(_, j, q)| j == job && *q == p)
            .map(|s| s.0)
            .unwrap_or_else(|| panic!("no {p:?} spawn of {job}"))
    }
    pub(super) fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }
}

pub(super) fn engine(jobs: &[(&str, &str)]) -> (Engine, Fake) {
    let mut e = Engine::new(EngineOptions::default(), vec![], vec![]);
    let mut f = Fake::default();
    let classes = jobs
        .iter()
        .map(|(name, text)| {
            parse_job(
                name,
                &format!("{name}.conf"),
                text,
                &ClassDefaults::default(),
            )
            .expect("parse")
        })
        .collect();
    e.set_classes(&mut f, classes);
    (e, f)
}

/// The engine as a re-exec'd image gets it: written into the payload and
/// read back (no processes in flight, so nothing to hand over).
pub(super) fn through_reexec(e: &Engine) -> Engine {
    let payload = crate::reexec::export(&crate::reexec::ExportInput {
        engine: e,
        sources: &[],
        handover: &crate::reexec::Handover::default(),
        daemon: serde_json::Value::Null,
        bus_address: None,
    });
    let text = serde_json::to_string(&payload).expect("text");
    crate::reexec::read(&text)
        .expect("read")
        .expect("own payload")
        .imported
        .engine
}

pub(super) fn key(job: &str) -> JobKey {
    JobKey::new(job, "")
}

pub(super) fn state(e: &Engine, job: &str) -> Option<(Goal, State)> {
    e.instance(&key(job)).map(|i| (i.goal, i.state))
}

pub(super) fn emit(e: &mut Engine, f: &mut Fake, name: &str) {
    e.emit(name, vec![]);
    e.run_queue(f);
}
pub(super) fn class(name: &str, text: &str) -> crate::config::JobClass {
    parse_job(
        name,
        &format!("{name}.conf"),
        text,
        &ClassDefaults::default(),
    )
    .expect("parse")
}

mod cgroups;
mod events;
mod lookup;
mod processes;
mod states;
