//! Finding an existing instance by name or by environment.

use super::*;

#[test]
fn instances_are_found_by_name_or_by_environment() {
    let (mut e, mut f) = engine(&[
        (
            "tty",
            "instance $TTY\nusage \"start tty TTY=NAME\"\nexec getty\n",
        ),
        ("one", "exec daemon\n"),
    ]);
    e.start_job(&mut f, "tty", vec!["TTY=tty1".into()], None)
        .expect("start");
    e.start_job(&mut f, "one", vec![], None).expect("start");
    let tty1 = JobKey::new("tty", "tty1");
    assert_eq!(
        e.instance_named("tty", InstanceName::Named("tty1")),
        Ok(tty1.clone())
    );
    assert_eq!(
        e.instance_named("tty", InstanceName::FromEnv(&["TTY=tty1".into()])),
        Ok(tty1)
    );
    assert_eq!(
        e.instance_named("one", InstanceName::FromEnv(&["X=y".into()])),
        Ok(key("one"))
    );
    assert_eq!(
        e.instance_named("tty", InstanceName::FromEnv(&["TTY=tty2".into()])),
        Err(EngineError::UnknownInstance("tty2".into()))
    );
    assert_eq!(
        e.instance_named("tty", InstanceName::FromEnv(&[])),
        Err(EngineError::InstanceName(
            "Unknown parameter: TTY\nUsage: start tty TTY=NAME".into()
        ))
    );
    assert_eq!(
        e.instance_named("nope", InstanceName::Named("")),
        Err(EngineError::UnknownJob("nope".into()))
    );
}
