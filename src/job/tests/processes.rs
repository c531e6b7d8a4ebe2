//! Processes: respawn, exits, status pipes, spawn failures, expect, environment.

use super::*;

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
        f.apparmor = true;
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
