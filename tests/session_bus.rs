//! A session init on the D-Bus session bus it was told of
//! (`initctl notify-dbus-address`): it stays there across a re-exec, as
//! Upstart's did.

mod common;

use common::bus::SystemBus;

const NAME: &str = "com.ubuntu.Upstart";

#[test]
fn a_session_init_rejoins_its_notified_bus_after_a_reexec() {
    let s = common::start_session(
        "sbus-reexec",
        &[("svc", "console none\nexec sleep 100000\n")],
        &["--verbose"],
    );
    let mut bus = SystemBus::session(&s.dir.0);
    bus.start();
    let (code, _, err) = s.ctl(&["notify-dbus-address", &bus.address]);
    assert_eq!(code, 0, "{err}");
    let before = bus.owner(NAME).expect("init on the bus");
    let through_bus = |args: &[&str]| {
        let o = common::namespace::bounded(30, env!("CARGO_BIN_EXE_initctl"))
            .arg("--session")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env_remove("UPSTART_SESSION")
            .output()
            .expect("initctl --session");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert_eq!(through_bus(&["start", "svc"]).0, 0);

    let o = common::namespace::bounded(90, env!("CARGO_BIN_EXE_telinit"))
        .arg("u")
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("telinit");
    assert!(o.status.code() == Some(0) || o.status.code() == Some(1));
    s.wait_for("the re-exec", || {
        s.log().contains("Stateful re-exec completed")
    });
    // The new image, on the bus under a new connection.
    s.wait_for("init back on the bus", || {
        bus.owner(NAME).is_some_and(|o| o != before)
    });
    let (code, status) = through_bus(&["status", "svc"]);
    assert_eq!(code, 0);
    assert!(status.starts_with("svc start/running"), "{status}");
    assert_eq!(through_bus(&["stop", "svc"]).0, 0);
}
