//! The cgroup manager gate (cgroups.md §5, §6).

use super::*;

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
fn cgroup_wait_survives_a_reexec() {
    let (mut e, mut f) = engine(&[("cg", CG_JOB)]);
    emit(&mut e, &mut f, "startup");
    let mut back = through_reexec(&e);
    assert!(back.slots["cg"].cgmanager_wait);
    back.cgroup_manager_address(&mut f, "unix:path=/x");
    back.run_queue(&mut f);
    assert_eq!(state(&back, "cg"), Some((Goal::Start, State::Spawned)));
    let again = through_reexec(&back);
    assert_eq!(
        again.options.cgroup_manager.as_deref(),
        Some("unix:path=/x")
    );
}
