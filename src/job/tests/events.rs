//! Events: blocking, operators, instances from events, reloads.

use super::*;

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
    let mut back = through_reexec(&e);
    emit(&mut back, &mut f, "b");
    assert_eq!(state(&back, "j"), Some((Goal::Start, State::Spawned)));
}

/// A task started again after its instance was removed takes a spare
/// table: it must hold exactly what a fresh one would, whatever the table
/// held before (a longer global table, other event variables).
#[test]
fn a_recycled_environment_table_is_the_fresh_one() {
    let (mut e, mut f) = engine(&[("t", "start on go or again\ntask\nenv A=1\nexec t\n")]);
    e.global_env = vec!["PATH=/bin".into(), "TERM=linux".into(), "X=old".into()];
    let run = |e: &mut Engine, f: &mut Fake, event: &str, env: Vec<String>| {
        e.emit(event, env);
        e.run_queue(f);
        let pid = f.last_pid("t", ProcessType::Main);
        let env = e
            .instance(&JobKey::new("t", ""))
            .map(|i| i.env.clone())
            .expect("running");
        e.spawn_ok(f, pid);
        e.child_exited(f, pid, ExitStatus::Exited(0));
        e.run_queue(f);
        assert!(e.instance(&JobKey::new("t", "")).is_none(), "removed");
        env
    };
    let first = run(
        &mut e,
        &mut f,
        "go",
        vec!["LONG_VARIABLE=a long value".into()],
    );
    assert!(
        !e.spare_envs.is_empty(),
        "the removed instance's table is kept"
    );
    e.global_env = vec!["PATH=/usr/bin".into(), "TERM=vt100".into()];
    let fresh = e.class_env(&e.slots["t"].class.clone());
    let second = run(&mut e, &mut f, "again", vec![]);
    assert_ne!(first, second);
    let mut want = fresh;
    want.push("UPSTART_EVENTS=again".into());
    assert_eq!(second, want);
    e.release_spares();
    assert!(e.spare_envs.is_empty());
}
