//! Goals and states: a service's walk, stopping while starting, kill timers.

use super::*;

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
