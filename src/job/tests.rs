//! Pure tests of the engine: no processes, a virtual clock, a recording
//! fake for every effect.

use super::*;
use crate::config::{parse_job, ClassDefaults, ProcessType};
use nix::errno::Errno;

#[derive(Default)]
struct Fake {
    next_pid: i32,
    spawns: Vec<(i32, String, ProcessType)>,
    kills: Vec<(i32, i32, bool)>,
    logs: Vec<String>,
    events: Vec<String>,
    replies: Vec<(u64, Reply)>,
    fail_spawns: usize,
    ptrace: Vec<String>,
    forked: Vec<i32>,
    /// The cgroup manager address of every spawn request.
    managers: Vec<Option<String>>,
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
    fn notice(&mut self, notice: Notice) {
        if let Notice::EventEmitted(name, env) = notice {
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
    fn last_pid(&self, job: &str, p: ProcessType) -> i32 {
        self.spawns
            .iter()
            .rev()
            .find(|(_, j, q)| j == job && *q == p)
            .map(|s| s.0)
            .unwrap_or_else(|| panic!("no {p:?} spawn of {job}"))
    }
    fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.events)
    }
}

fn engine(jobs: &[(&str, &str)]) -> (Engine, Fake) {
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

fn key(job: &str) -> JobKey {
    JobKey::new(job, "")
}

fn state(e: &Engine, job: &str) -> Option<(Goal, State)> {
    e.instance(&key(job)).map(|i| (i.goal, i.state))
}

fn emit(e: &mut Engine, f: &mut Fake, name: &str) {
    e.emit(name, vec![]);
    e.run_queue(f);
}

#[test]
fn service_starts_and_stops_through_every_state() {
    let (mut e, mut f) = engine(&[("svc", "start on startup\nexec /bin/svc\n")]);
    emit(&mut e, &mut f, "startup");
    assert_eq!(state(&e, "svc"), Some((Goal::Start, State::Spawned)));
    let pid = f.last_pid("svc", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "svc"), Some((Goal::Start, State::Running)));
    assert_eq!(
        f.take_events(),
        [
            "starting JOB=svc INSTANCE=",
            "startup",
            "started JOB=svc INSTANCE="
        ]
    );
    let states: Vec<&str> = f
        .logs
        .iter()
        .filter_map(|l| l.strip_prefix("svc state changed from "))
        .collect();
    assert_eq!(
        states,
        [
            "waiting to starting",
            "starting to security-spawning",
            "security-spawning to security",
            "security to pre-starting",
            "pre-starting to pre-start",
            "pre-start to spawning",
            "spawning to spawned",
            "spawned to post-starting",
            "post-starting to post-start",
            "post-start to running",
        ]
    );

    e.stop_job(&mut f, "svc", vec![], Some(7)).expect("stop");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "svc"), Some((Goal::Stop, State::Killed)));
    assert_eq!(f.kills, [(pid, 15, true)]);
    e.child_exited(&mut f, pid, ExitStatus::Signaled(15));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "svc"), None);
    assert_eq!(
        f.take_events(),
        [
            "stopping JOB=svc INSTANCE= RESULT=ok",
            "stopped JOB=svc INSTANCE= RESULT=ok"
        ]
    );
    assert_eq!(f.replies, [(7, Reply::Ok)]);
}

#[test]
fn kill_timeout_sends_sigkill_to_the_group() {
    let (mut e, mut f) = engine(&[("svc", "exec svc\nkill timeout 3\nkill signal INT\n")]);
    e.set_time(1_000);
    e.start_job(&mut f, "svc", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("svc", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    e.stop_job(&mut f, "svc", vec![], None).expect("stop");
    e.run_queue(&mut f);
    assert_eq!(f.kills, [(pid, 2, true)]);
    assert_eq!(e.next_deadline(), Some(4_000));
    e.set_time(3_999);
    e.fire_timers(&mut f);
    assert_eq!(f.kills.len(), 1);
    e.set_time(4_000);
    e.fire_timers(&mut f);
    assert_eq!(f.kills, [(pid, 2, true), (pid, 9, true)]);
    assert_eq!(e.next_deadline(), None);
    e.child_exited(&mut f, pid, ExitStatus::Signaled(9));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "svc"), None, "dying in killed is not a failure");
    assert!(f
        .events
        .iter()
        .any(|s| s == "stopped JOB=svc INSTANCE= RESULT=ok"));
}

#[test]
fn kill_timeout_zero_fires_at_once() {
    let (mut e, mut f) = engine(&[("svc", "exec svc\nkill timeout 0\n")]);
    e.start_job(&mut f, "svc", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("svc", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.stop_job(&mut f, "svc", vec![], None).expect("stop");
    e.run_queue(&mut f);
    assert_eq!(e.next_deadline(), Some(0));
    e.fire_timers(&mut f);
    assert_eq!(f.kills.last(), Some(&(pid, 9, true)));
}

#[test]
fn task_holds_its_event_and_failure_emits_event_failed() {
    let (mut e, mut f) = engine(&[("t", "start on go\ntask\nexec t\n")]);
    e.emit_waiting("go", vec![], 1);
    e.run_queue(&mut f);
    let pid = f.last_pid("t", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "t"), Some((Goal::Start, State::Running)));
    assert!(f.replies.is_empty(), "event held while the task runs");
    assert!(!f.events.iter().any(|s| s == "go"));
    e.child_exited(&mut f, pid, ExitStatus::Exited(3));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "t"), None);
    assert_eq!(
        f.take_events(),
        [
            "starting JOB=t INSTANCE=",
            "started JOB=t INSTANCE=",
            // The first failure releases the event at once (marked failed).
            "go",
            "stopping JOB=t INSTANCE= RESULT=failed PROCESS=main EXIT_STATUS=3",
            "go/failed",
            "stopped JOB=t INSTANCE= RESULT=failed PROCESS=main EXIT_STATUS=3",
        ]
    );
    assert_eq!(f.replies, [(1, Reply::Failed(EngineError::EventFailed))]);
}

#[test]
fn starting_event_orders_dependencies() {
    let (mut e, mut f) = engine(&[
        ("foo", "exec foo\n"),
        ("bar", "start on starting foo\nexec bar\n"),
    ]);
    e.start_job(&mut f, "foo", vec![], None).expect("start");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "foo"), Some((Goal::Start, State::Starting)));
    assert_eq!(state(&e, "bar"), Some((Goal::Start, State::Spawned)));
    let bar = f.last_pid("bar", ProcessType::Main);
    e.spawn_ok(&mut f, bar);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "bar"), Some((Goal::Start, State::Running)));
    assert_eq!(state(&e, "foo"), Some((Goal::Start, State::Spawned)));
    assert_eq!(
        f.spawns.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["bar", "foo"]
    );
}

#[test]
fn and_holds_the_first_event_until_the_second() {
    let (mut e, mut f) = engine(&[("j", "start on a and b\nexec j\n")]);
    e.emit_waiting("a", vec!["X=1".into(), "Y=a".into()], 1);
    e.run_queue(&mut f);
    assert!(
        f.replies.is_empty(),
        "a is held by the half-matched condition"
    );
    e.emit("b", vec!["Y=b".into()]);
    e.run_queue(&mut f);
    let inst = e.instance(&key("j")).expect("instance");
    assert_eq!(inst.env, ["X=1", "Y=b", "UPSTART_EVENTS=a b"]);
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    assert_eq!(
        f.replies,
        [(1, Reply::Ok)],
        "released once the service is running"
    );
}

#[test]
fn stop_on_and_start_on_the_same_event_restarts() {
    let (mut e, mut f) = engine(&[("j", "start on go\nstop on go\nexec j\npre-stop exec ps\n")]);
    emit(&mut e, &mut f, "go");
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    f.take_events();
    e.emit("go", vec!["K=v".into()]);
    e.run_queue(&mut f);
    // Stop first: pre-stop runs with UPSTART_STOP_EVENTS…
    assert_eq!(state(&e, "j"), Some((Goal::Start, State::PreStop)));
    let inst = e.instance(&key("j")).expect("instance");
    assert_eq!(
        inst.stop_env.as_deref(),
        Some(&["K=v".to_string(), "UPSTART_STOP_EVENTS=go".to_string()][..])
    );
    // …then the start of the same event flipped the goal back: pre-stop
    // finishing returns to running (a cancelled stop, no new started).
    let ps = f.last_pid("j", ProcessType::PreStop);
    e.spawn_ok(&mut f, ps);
    e.child_exited(&mut f, ps, ExitStatus::Exited(0));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "j"), Some((Goal::Start, State::Running)));
    assert!(!f.events.iter().any(|s| s.starts_with("started")));
}

#[test]
fn respawn_limit_trips_on_the_eleventh_respawn() {
    let (mut e, mut f) = engine(&[("r", "respawn\nexec r\n")]);
    e.set_time(50_000);
    e.start_job(&mut f, "r", vec![], None).expect("start");
    e.run_queue(&mut f);
    for n in 1..=10 {
        let pid = f.last_pid("r", ProcessType::Main);
        e.spawn_ok(&mut f, pid);
        e.run_queue(&mut f);
        e.child_exited(&mut f, pid, ExitStatus::Exited(0));
        e.run_queue(&mut f);
        assert_eq!(
            state(&e, "r"),
            Some((Goal::Start, State::Spawned)),
            "respawn {n}"
        );
    }
    assert!(
        !f.events.iter().any(|s| s.starts_with("stopped")),
        "respawns emit no stopped"
    );
    let pid = f.last_pid("r", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.child_exited(&mut f, pid, ExitStatus::Exited(0));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "r"), None);
    assert!(f.logs.iter().any(|l| l == "r respawning too fast, stopped"));
    assert_eq!(
        f.events.last().map(String::as_str),
        Some("stopped JOB=r INSTANCE= RESULT=failed PROCESS=respawn")
    );
}

#[test]
fn respawn_window_restarts_after_the_interval() {
    let (mut e, mut f) = engine(&[("r", "respawn\nrespawn limit 2 10\nexec r\n")]);
    e.start_job(&mut f, "r", vec![], None).expect("start");
    e.run_queue(&mut f);
    for t in [0u64, 1_000, 11_000, 12_000] {
        e.set_time(t);
        let pid = f.last_pid("r", ProcessType::Main);
        e.spawn_ok(&mut f, pid);
        e.child_exited(&mut f, pid, ExitStatus::Exited(1));
        e.run_queue(&mut f);
        assert!(state(&e, "r").is_some(), "t={t}");
    }
    let pid = f.last_pid("r", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.child_exited(&mut f, pid, ExitStatus::Exited(1));
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "r"),
        None,
        "third respawn within the second window"
    );
}

#[test]
fn normal_exit_decides_failure() {
    let rows: &[(&str, ExitStatus, Option<&str>)] = &[
        ("exec s\n", ExitStatus::Exited(0), Some("RESULT=ok")),
        (
            "exec s\n",
            ExitStatus::Exited(2),
            Some("RESULT=failed PROCESS=main EXIT_STATUS=2"),
        ),
        (
            "exec s\n",
            ExitStatus::Signaled(11),
            Some("RESULT=failed PROCESS=main EXIT_SIGNAL=SEGV"),
        ),
        (
            "exec s\nnormal exit 2\n",
            ExitStatus::Exited(2),
            Some("RESULT=ok"),
        ),
        (
            "exec s\nnormal exit TERM\n",
            ExitStatus::Signaled(15),
            Some("RESULT=ok"),
        ),
        (
            "exec s\nrespawn\nnormal exit 1\n",
            ExitStatus::Exited(1),
            Some("RESULT=ok"),
        ),
        ("exec s\nrespawn\n", ExitStatus::Exited(0), None),
        (
            "exec s\ntask\nrespawn\n",
            ExitStatus::Exited(0),
            Some("RESULT=ok"),
        ),
        ("exec s\ntask\nrespawn\n", ExitStatus::Exited(4), None),
    ];
    for (text, status, want) in rows {
        let (mut e, mut f) = engine(&[("s", text)]);
        e.start_job(&mut f, "s", vec![], None).expect("start");
        e.run_queue(&mut f);
        let pid = f.last_pid("s", ProcessType::Main);
        e.spawn_ok(&mut f, pid);
        e.run_queue(&mut f);
        e.child_exited(&mut f, pid, *status);
        e.run_queue(&mut f);
        match want {
            Some(result) => {
                assert_eq!(state(&e, "s"), None, "{text:?} {status:?}");
                let stopped = f
                    .events
                    .iter()
                    .find(|s| s.starts_with("stopped"))
                    .expect("stopped");
                assert_eq!(
                    stopped,
                    &format!("stopped JOB=s INSTANCE= {result}"),
                    "{text:?}"
                );
            }
            None => {
                assert_eq!(
                    state(&e, "s"),
                    Some((Goal::Start, State::Spawned)),
                    "{text:?} respawns"
                );
            }
        }
    }
}

/// Drive a main process through one order of (A)/(B)/(C).
fn race(order: &str) -> Vec<String> {
    let (mut e, mut f) = engine(&[("s", "exec s\n")]);
    e.start_job(&mut f, "s", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("s", ProcessType::Main);
    for step in order.chars() {
        match step {
            'A' => e.spawn_error(&mut f, pid, "unable to execute: No such file or directory"),
            'B' => e.spawn_ok(&mut f, pid),
            'C' => e.child_exited(&mut f, pid, ExitStatus::Exited(0)),
            'X' => e.child_exited(&mut f, pid, ExitStatus::Exited(255)),
            _ => unreachable!(),
        }
        e.run_queue(&mut f);
    }
    assert_eq!(state(&e, "s"), None, "{order}");
    f.events
}

#[test]
fn status_pipe_and_exit_race_in_both_orders() {
    let bc = race("BC");
    assert!(bc.contains(&"started JOB=s INSTANCE=".to_string()));
    assert!(bc.contains(&"stopped JOB=s INSTANCE= RESULT=ok".to_string()));

    let cb = race("CB");
    assert!(
        !cb.iter().any(|s| s.starts_with("started")),
        "no started when exit wins"
    );
    assert!(cb.contains(&"stopped JOB=s INSTANCE= RESULT=ok".to_string()));

    let ax = race("AX");
    assert!(ax.contains(&"stopped JOB=s INSTANCE= RESULT=failed PROCESS=main".to_string()));
    assert!(!ax.iter().any(|s| s.starts_with("started")));

    let xa = race("XA");
    assert!(xa.contains(
        &"stopped JOB=s INSTANCE= RESULT=failed PROCESS=main EXIT_STATUS=255".to_string()
    ));
    let stopped = xa.iter().filter(|s| s.starts_with("stopped")).count();
    assert_eq!(stopped, 1, "the late error record is absorbed");
}

#[test]
fn spawn_failures_of_every_process_kind() {
    // (stanza, process, job ends stopped with, main started?)
    let rows: &[(&str, ProcessType, &str)] = &[
        (
            "pre-start exec p\nexec m\n",
            ProcessType::PreStart,
            "RESULT=failed PROCESS=pre-start",
        ),
        ("exec m\npost-start exec p\n", ProcessType::PostStart, ""),
        ("exec m\npre-stop exec p\n", ProcessType::PreStop, ""),
        (
            "exec m\npost-stop exec p\n",
            ProcessType::PostStop,
            "RESULT=failed PROCESS=post-stop",
        ),
        (
            "exec m\napparmor load prof\n",
            ProcessType::Security,
            "RESULT=failed PROCESS=security",
        ),
    ];
    for (text, proc_, result) in rows {
        let (mut e, mut f) = engine(&[("j", text)]);
        e.options.apparmor = true;
        e.start_job(&mut f, "j", vec![], None).expect("start");
        e.run_queue(&mut f);
        let drive = |e: &mut Engine, f: &mut Fake| {
            // Report success for every other spawn, failure for ours.
            loop {
                let pending: Vec<(i32, ProcessType)> = f
                    .spawns
                    .iter()
                    .filter(|(pid, _, _)| e.spawn_pending(*pid))
                    .map(|(pid, _, p)| (*pid, *p))
                    .collect();
                let Some(&(pid, p)) = pending.first() else {
                    break;
                };
                if p == *proc_ {
                    e.spawn_error(f, pid, "unable to execute: No such file or directory");
                } else {
                    e.spawn_ok(f, pid);
                    if p != ProcessType::Main {
                        e.child_exited(f, pid, ExitStatus::Exited(0));
                    }
                }
                e.run_queue(f);
            }
        };
        drive(&mut e, &mut f);
        if matches!(proc_, ProcessType::PreStop | ProcessType::PostStop) {
            if state(&e, "j").is_some() {
                e.stop_job(&mut f, "j", vec![], None).expect("stop");
                e.run_queue(&mut f);
                drive(&mut e, &mut f);
                let main = f.last_pid("j", ProcessType::Main);
                e.child_exited(&mut f, main, ExitStatus::Signaled(15));
                e.run_queue(&mut f);
                drive(&mut e, &mut f);
            }
            assert_eq!(state(&e, "j"), None, "{text:?}");
        }
        let msg = format!(
            "Failed to spawn j {} process: unable to execute: No such file or directory",
            proc_.name()
        );
        assert!(f.logs.contains(&msg), "{text:?}: {:?}", f.logs);
        if result.is_empty() {
            assert!(
                !f.events.iter().any(|s| s.contains("RESULT=failed")),
                "{text:?}: {:?}",
                f.events
            );
        } else {
            assert_eq!(state(&e, "j"), None, "{text:?}");
            let stopped = f
                .events
                .iter()
                .find(|s| s.starts_with("stopped"))
                .expect("stopped");
            assert_eq!(
                stopped,
                &format!("stopped JOB=j INSTANCE= {result}"),
                "{text:?}"
            );
        }
    }
}

#[test]
fn fork_failure_is_retried_then_fails_the_job() {
    let (mut e, mut f) = engine(&[("j", "exec j\n")]);
    f.fail_spawns = 2;
    e.start_job(&mut f, "j", vec![], None).expect("start");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "j"), Some((Goal::Start, State::Spawned)));
    assert_eq!(
        f.logs
            .iter()
            .filter(|l| l.starts_with("Temporary process spawn error"))
            .count(),
        2
    );

    let (mut e, mut f) = engine(&[("j", "exec j\n")]);
    f.fail_spawns = 100;
    e.start_job(&mut f, "j", vec![], Some(3)).expect("start");
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "j"),
        None,
        "a permanent failure fails the job instead of hanging"
    );
    assert_eq!(
        f.replies,
        [(3, Reply::Failed(EngineError::JobFailed(WaitKind::Start)))]
    );
}

#[test]
fn failed_pre_start_reports_status_and_fails_the_caller() {
    let (mut e, mut f) = engine(&[("j", "pre-start exec p\nexec m\npost-stop exec ps\n")]);
    e.start_job(&mut f, "j", vec![], Some(9)).expect("start");
    e.run_queue(&mut f);
    let pre = f.last_pid("j", ProcessType::PreStart);
    e.spawn_ok(&mut f, pre);
    e.child_exited(&mut f, pre, ExitStatus::Exited(1));
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "j"),
        Some((Goal::Stop, State::PostStop)),
        "post-stop still runs"
    );
    let ps = f.last_pid("j", ProcessType::PostStop);
    e.spawn_ok(&mut f, ps);
    e.child_exited(&mut f, ps, ExitStatus::Exited(0));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "j"), None);
    assert!(!f.spawns.iter().any(|s| s.2 == ProcessType::Main));
    assert!(f.events.contains(
        &"stopped JOB=j INSTANCE= RESULT=failed PROCESS=pre-start EXIT_STATUS=1".to_string()
    ));
    assert_eq!(
        f.replies,
        [(9, Reply::Failed(EngineError::JobFailed(WaitKind::Start)))]
    );
}

#[test]
fn stop_while_starting_still_emits_stopping_and_stopped() {
    let (mut e, mut f) = engine(&[
        ("foo", "exec foo\n"),
        ("holder", "start on starting foo\nexec h\n"),
    ]);
    e.start_job(&mut f, "foo", vec![], None).expect("start");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "foo"), Some((Goal::Start, State::Starting)));
    e.stop_job(&mut f, "foo", vec![], None).expect("stop");
    e.run_queue(&mut f);
    let h = f.last_pid("holder", ProcessType::Main);
    e.spawn_ok(&mut f, h);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "foo"), None);
    assert!(!f.spawns.iter().any(|s| s.1 == "foo"));
    assert!(f
        .events
        .contains(&"stopping JOB=foo INSTANCE= RESULT=ok".to_string()));
    assert!(f
        .events
        .contains(&"stopped JOB=foo INSTANCE= RESULT=ok".to_string()));
}

#[test]
fn expect_stop_waits_for_sigstop_and_continues_it() {
    let (mut e, mut f) = engine(&[("d", "expect stop\nexec d\n")]);
    e.start_job(&mut f, "d", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("d", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "d"),
        Some((Goal::Start, State::Spawned)),
        "exec alone is not ready"
    );
    e.child_stopped(&mut f, pid, 20);
    assert_eq!(
        state(&e, "d"),
        Some((Goal::Start, State::Spawned)),
        "other stops are only logged"
    );
    e.child_stopped(&mut f, pid, 19);
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "d"),
        Some((Goal::Start, State::Running)),
        "{:#?}",
        f.logs
    );
    assert_eq!(f.kills, [(pid, 18, false)]);
}

#[test]
fn instances_are_keyed_by_the_expanded_template() {
    let (mut e, mut f) = engine(&[(
        "tty",
        "instance $TTY\nusage \"start tty TTY=NAME\"\nexec getty $TTY\n",
    )]);
    let a = e
        .start_job(&mut f, "tty", vec!["TTY=tty1".into()], None)
        .expect("a");
    let b = e
        .start_job(&mut f, "tty", vec!["TTY=tty2".into()], None)
        .expect("b");
    assert_eq!((a.instance.as_str(), b.instance.as_str()), ("tty1", "tty2"));
    let err = e
        .start_job(&mut f, "tty", vec!["TTY=tty1".into()], None)
        .unwrap_err();
    assert_eq!(err, EngineError::AlreadyStarted("tty (tty1)".to_string()));
    assert_eq!(err.to_string(), "Job is already running: tty (tty1)");
    let err = e.start_job(&mut f, "tty", vec![], None).unwrap_err();
    assert_eq!(
        err,
        EngineError::InstanceName("Unknown parameter: TTY\nUsage: start tty TTY=NAME".into())
    );
    e.run_queue(&mut f);
    let envs: Vec<_> = f.spawns.iter().map(|s| s.1.clone()).collect();
    assert_eq!(envs, ["tty (tty1)", "tty (tty2)"]);
}

#[test]
fn stop_on_matches_against_the_instance_environment() {
    let (mut e, mut f) = engine(&[(
        "dev",
        "instance $DEVPATH\nstop on device-removed DEVPATH=$DEVPATH\nexec d\n",
    )]);
    for d in ["/dev/a", "/dev/b"] {
        e.start_job(&mut f, "dev", vec![format!("DEVPATH={d}")], None)
            .expect("start");
    }
    e.run_queue(&mut f);
    e.emit("device-removed", vec!["DEVPATH=/dev/b".into()]);
    e.run_queue(&mut f);
    assert_eq!(
        e.instance(&JobKey::new("dev", "/dev/a")).map(|i| i.goal),
        Some(Goal::Start)
    );
    assert_eq!(
        e.instance(&JobKey::new("dev", "/dev/b")).map(|i| i.goal),
        Some(Goal::Stop)
    );
}

#[test]
fn bad_instance_template_abandons_the_event() {
    let (mut e, mut f) = engine(&[
        ("a", "start on go\ninstance $NOPE\nexec a\n"),
        ("b", "start on go\nexec b\n"),
    ]);
    emit(&mut e, &mut f, "go");
    assert!(f
        .logs
        .contains(&"Failed to obtain a instance: Unknown parameter: NOPE".to_string()));
    assert_eq!(
        state(&e, "b"),
        None,
        "remaining classes are skipped, as in the reference"
    );
}

#[test]
fn process_environment_and_exports() {
    let (mut e, mut f) = engine(&[(
        "j",
        "env A=1\nenv HOME\nexport A\nexport JOB\nexec j\npre-stop exec p\n",
    )]);
    e.global_env = vec!["PATH=/bin".into(), "HOME=/old".into()];
    e.init_env = vec!["HOME=/root".into()];
    e.options.user_mode = true;
    e.options.session_address = Some("unix:abstract=/x".into());
    e.start_job(&mut f, "j", vec!["B=2".into()], None)
        .expect("start");
    e.run_queue(&mut f);
    let inst = e.instance(&key("j")).expect("instance");
    assert_eq!(inst.env, ["PATH=/bin", "HOME=/root", "A=1", "B=2"]);
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    // `export JOB` cannot override JOB.
    assert!(f
        .events
        .contains(&"starting JOB=j INSTANCE= A=1".to_string()));
    e.stop_job(&mut f, "j", vec!["WHY=test".into()], None)
        .expect("stop");
    e.run_queue(&mut f);
    assert_eq!(
        e.process_env(&key("j"), ProcessType::PreStop),
        [
            "PATH=/bin",
            "HOME=/root",
            "A=1",
            "B=2",
            "WHY=test",
            "UPSTART_JOB=j",
            "UPSTART_INSTANCE=",
            "UPSTART_SESSION=unix:abstract=/x"
        ]
    );
}

#[test]
fn reload_keeps_running_instances_on_the_old_class() {
    let (mut e, mut f) = engine(&[("j", "exec old\n")]);
    e.start_job(&mut f, "j", vec![], None).expect("start");
    e.run_queue(&mut f);
    let new = parse_job("j", "j.conf", "exec new\n", &ClassDefaults::default()).expect("parse");
    e.set_classes(&mut f, vec![new]);
    let cmd = |e: &Engine| {
        e.slots["j"]
            .class
            .process(ProcessType::Main)
            .map(|p| p.command.clone())
    };
    assert_eq!(cmd(&e).as_deref(), Some("old"));
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.child_exited(&mut f, pid, ExitStatus::Exited(0));
    e.run_queue(&mut f);
    assert_eq!(cmd(&e).as_deref(), Some("new"));
    e.set_classes(&mut f, vec![]);
    assert!(e.slots.is_empty(), "deleted with no instances");
}

#[test]
fn engine_state_round_trips_through_json() {
    let (mut e, mut f) = engine(&[("j", "start on a and b\nexec j\n")]);
    emit(&mut e, &mut f, "a");
    let json = serde_json::to_string(&e).expect("serialise");
    let back: Engine = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, e);
}

#[test]
fn expect_daemon_follows_two_forks() {
    let (mut e, mut f) = engine(&[
        ("d", "expect daemon\nexec d\n"),
        ("k", "expect fork\nexec k\n"),
    ]);
    f.forked = vec![500, 600, 700];
    e.start_job(&mut f, "d", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("d", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.child_trapped(&mut f, pid, 5, 0); // exec stop
    e.child_trapped(&mut f, pid, 10, 0); // an ordinary signal is passed on
    e.child_trapped(&mut f, pid, 5, 1); // first fork
    assert_eq!(state(&e, "d"), Some((Goal::Start, State::Spawned)));
    e.child_trapped(&mut f, 500, 19, 0); // the child's initial stop
    e.child_trapped(&mut f, 500, 5, 1); // second fork
                                        // The intermediate parent's exit is not the job's.
    e.child_exited(&mut f, pid, ExitStatus::Exited(0));
    e.child_trapped(&mut f, 600, 19, 0);
    e.run_queue(&mut f);
    assert_eq!(
        state(&e, "d"),
        Some((Goal::Start, State::Running)),
        "{:#?}",
        f.logs
    );
    assert_eq!(
        e.instance(&key("d")).map(|i| i.pid(ProcessType::Main)),
        Some(600)
    );
    assert_eq!(
        f.ptrace,
        [
            format!("setoptions {pid} true"),
            format!("cont {pid} 0"),
            format!("cont {pid} 10"),
            format!("detach {pid}"),
            "setoptions 500 false".to_string(),
            "setoptions 500 true".to_string(),
            "cont 500 0".to_string(),
            "detach 500".to_string(),
            "setoptions 600 false".to_string(),
            "detach 600".to_string(),
        ]
    );
    assert!(f
        .logs
        .contains(&format!("d main process ({pid}) became new process (500)")));

    // expect fork stops following after the first fork.
    e.start_job(&mut f, "k", vec![], None).expect("start");
    e.run_queue(&mut f);
    let kpid = f.last_pid("k", ProcessType::Main);
    e.child_trapped(&mut f, kpid, 5, 0);
    e.child_trapped(&mut f, kpid, 5, 1);
    e.child_trapped(&mut f, 700, 19, 0);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "k"), Some((Goal::Start, State::Running)));
    assert_eq!(
        e.instance(&key("k")).map(|i| i.pid(ProcessType::Main)),
        Some(700)
    );
}

#[test]
fn expect_fork_without_a_fork_stays_spawned() {
    let (mut e, mut f) = engine(&[("k", "expect fork\nexec k\n")]);
    e.start_job(&mut f, "k", vec![], None).expect("start");
    e.run_queue(&mut f);
    let pid = f.last_pid("k", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.child_trapped(&mut f, pid, 5, 0);
    e.run_queue(&mut f);
    assert_eq!(state(&e, "k"), Some((Goal::Start, State::Spawned)));
}

// ----------------------------------------------------------------------
// The cgroup manager gate (cgroups.md §5, §6)

const CG_JOB: &str = "start on startup\ncgroup memory\nexec /bin/true\n";

#[test]
fn event_start_waits_for_the_cgroup_manager() {
    let (mut e, mut f) = engine(&[
        ("cg", CG_JOB),
        ("plain", "start on startup\nexec /bin/true\n"),
    ]);
    emit(&mut e, &mut f, "startup");
    assert_eq!(state(&e, "cg"), None);
    assert!(e.slots["cg"].cgmanager_wait);
    assert!(f
        .logs
        .iter()
        .any(|l| l == "Cannot start some jobs until cgroup manager available"));
    // The matched event stays held by the tree, so it is not finished.
    assert!(e.events.iter().any(|ev| ev.name == "startup"));
    // A second event is not offered any more.
    emit(&mut e, &mut f, "startup");
    assert_eq!(state(&e, "cg"), None);

    e.cgroup_manager_address(&mut f, "unix:path=/x");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "cg"), Some((Goal::Start, State::Spawned)));
    assert!(!e.slots["cg"].cgmanager_wait);
    let main = f
        .spawns
        .iter()
        .position(|(_, j, p)| j == "cg" && *p == ProcessType::Main)
        .expect("cg main spawned");
    assert_eq!(f.managers[main].as_deref(), Some("unix:path=/x"));
    let plain = f
        .spawns
        .iter()
        .position(|(_, j, _)| j == "plain")
        .expect("plain spawned");
    assert_eq!(f.managers[plain], None);
    let inst = e.instance(&key("cg")).expect("instance");
    assert!(inst.env.iter().any(|v| v == "UPSTART_EVENTS=startup"));
}

#[test]
fn cgroup_wait_inducts_after_one_event_of_an_and() {
    let (mut e, mut f) = engine(&[("cg", "start on (a and b)\ncgroup cpu\nexec /bin/true\n")]);
    emit(&mut e, &mut f, "a");
    assert!(e.slots["cg"].cgmanager_wait);
    e.cgroup_manager_address(&mut f, "unix:path=/x");
    e.run_queue(&mut f);
    assert_eq!(state(&e, "cg"), Some((Goal::Start, State::Spawned)));
}

#[test]
fn manual_start_is_refused_until_the_manager_is_known() {
    let (mut e, mut f) = engine(&[("cg", "cgroup memory\nexec /bin/true\n")]);
    let err = e.start_job(&mut f, "cg", vec![], None).unwrap_err();
    assert_eq!(
        err,
        EngineError::CGroupManagerNotAvailable("cg".to_string())
    );
    assert_eq!(
        err.to_string(),
        "Job cannot be started as cgroup manager not available: cg"
    );
    assert!(f.spawns.is_empty());
    e.cgroup_manager_address(&mut f, "unix:path=/first");
    // First address wins.
    e.cgroup_manager_address(&mut f, "unix:path=/second");
    e.start_job(&mut f, "cg", vec![], None).expect("start");
    e.run_queue(&mut f);
    assert_eq!(
        f.managers.last().cloned().flatten().as_deref(),
        Some("unix:path=/first")
    );
}

#[test]
fn instance_start_names_the_instance_in_the_error() {
    let (mut e, mut f) = engine(&[("cg", "instance $N\ncgroup memory\nexec /bin/true\n")]);
    e.cgroup_manager_address(&mut f, "unix:path=/x");
    // Build an instance, then forget the address as a fresh engine would.
    e.start_job(&mut f, "cg", vec!["N=a".into()], None)
        .expect("start");
    e.run_queue(&mut f);
    e.stop_job(&mut f, "cg", vec!["N=a".into()], None)
        .expect("stop");
    e.options.cgroup_manager = None;
    let k = JobKey::new("cg", "a");
    // The main process has not exited yet: the instance is still there.
    assert_eq!(e.instance(&k).map(|i| i.goal), Some(Goal::Stop));
    let err = e
        .control_instance(&mut f, &k, super::WaitKind::Start, None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Job cannot be started as cgroup manager not available: cg (a)"
    );
}

#[test]
fn no_cgroups_ignores_the_stanzas() {
    let mut e = Engine::new(
        EngineOptions {
            no_cgroups: true,
            ..Default::default()
        },
        vec![],
        vec![],
    );
    let mut f = Fake::default();
    let class = parse_job("cg", "cg.conf", CG_JOB, &ClassDefaults::default()).expect("parse");
    e.set_classes(&mut f, vec![class]);
    emit(&mut e, &mut f, "startup");
    assert_eq!(state(&e, "cg"), Some((Goal::Start, State::Spawned)));
    assert_eq!(f.managers, [None]);
    // The address is ignored too.
    e.cgroup_manager_address(&mut f, "unix:path=/x");
    assert_eq!(e.options.cgroup_manager, None);
}

#[test]
fn cgroup_wait_survives_serialisation() {
    let (mut e, mut f) = engine(&[("cg", CG_JOB)]);
    emit(&mut e, &mut f, "startup");
    let text = serde_json::to_string(&e).expect("save");
    let mut back: Engine = serde_json::from_str(&text).expect("load");
    assert!(back.slots["cg"].cgmanager_wait);
    back.cgroup_manager_address(&mut f, "unix:path=/x");
    back.run_queue(&mut f);
    assert_eq!(state(&back, "cg"), Some((Goal::Start, State::Spawned)));
    let text = serde_json::to_string(&back).expect("save");
    let again: Engine = serde_json::from_str(&text).expect("load");
    assert_eq!(
        again.options.cgroup_manager.as_deref(),
        Some("unix:path=/x")
    );
}

fn class(name: &str, text: &str) -> crate::config::JobClass {
    parse_job(
        name,
        &format!("{name}.conf"),
        text,
        &ClassDefaults::default(),
    )
    .expect("parse")
}

#[test]
fn events_reach_conditions_changed_by_a_reload() {
    let (mut e, mut f) = engine(&[("j", "start on a\nexec j\n")]);
    // Handled once before the reload, so the event-to-job index exists.
    emit(&mut e, &mut f, "b");
    assert_eq!(state(&e, "j"), None);
    e.set_classes(
        &mut f,
        vec![
            class("j", "start on b\nexec j\n"),
            class("k", "start on b\nexec k\n"),
        ],
    );
    emit(&mut e, &mut f, "a");
    assert_eq!(state(&e, "j"), None, "old condition no longer counts");
    emit(&mut e, &mut f, "b");
    assert_eq!(state(&e, "j"), Some((Goal::Start, State::Spawned)));
    assert_eq!(state(&e, "k"), Some((Goal::Start, State::Spawned)));
}

#[test]
fn events_reach_stop_conditions_of_a_class_replaced_later() {
    let (mut e, mut f) = engine(&[("j", "start on up\nstop on down\nexec j\n")]);
    emit(&mut e, &mut f, "up");
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    // The new class waits for the running instance, which keeps the old
    // `stop on`; once it is gone the new one applies.
    e.set_classes(
        &mut f,
        vec![class("j", "start on up\nstop on halt\nexec j\n")],
    );
    emit(&mut e, &mut f, "halt");
    assert_eq!(state(&e, "j").map(|s| s.0), Some(Goal::Start));
    emit(&mut e, &mut f, "down");
    assert_eq!(state(&e, "j").map(|s| s.0), Some(Goal::Stop));
    e.child_exited(&mut f, pid, ExitStatus::Signaled(15));
    e.run_queue(&mut f);
    assert_eq!(state(&e, "j"), None);
    emit(&mut e, &mut f, "up");
    let pid = f.last_pid("j", ProcessType::Main);
    e.spawn_ok(&mut f, pid);
    e.run_queue(&mut f);
    emit(&mut e, &mut f, "down");
    assert_eq!(
        state(&e, "j").map(|s| s.0),
        Some(Goal::Start),
        "old stop on"
    );
    emit(&mut e, &mut f, "halt");
    assert_eq!(state(&e, "j").map(|s| s.0), Some(Goal::Stop));
}

#[test]
fn restored_engine_rebuilds_the_event_index() {
    let (mut e, mut f) = engine(&[("j", "start on a and b\nexec j\n")]);
    emit(&mut e, &mut f, "a");
    let json = serde_json::to_string(&e).expect("serialise");
    let mut back: Engine = serde_json::from_str(&json).expect("deserialise");
    emit(&mut back, &mut f, "b");
    assert_eq!(state(&back, "j"), Some((Goal::Start, State::Spawned)));
}
