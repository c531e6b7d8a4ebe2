//! The system init on the system bus when the bus comes after it (as on
//! every boot, where dbus is a job): SIGUSR1 joins it, as with Upstart;
//! outset also joins by itself when the bus socket appears and again when
//! the bus comes back after a restart. The bus runs the distribution's
//! system configuration with outset's shipped policy. Needs root.

mod common;

use common::bus::SystemBus;
use common::namespace::Namespace;

const JOBS: [(&str, &str); 2] = [
    ("svc", "console none\nexec sleep 100000\n"),
    (
        "onpoke",
        "start on poke\ntask\nconsole none\nexec /bin/sh -c 'echo poked > @DIR@/poked'\n",
    ),
];

const NAME: &str = "com.ubuntu.Upstart";

fn owned(bus: &SystemBus) -> bool {
    bus.owner(NAME).is_some()
}

#[test]
fn sigusr1_joins_the_system_bus_and_others_may_only_read() {
    let dir = common::TempDir::new("sysbus-usr1");
    // init watches `bus/` for the socket; the bus comes up elsewhere and
    // is mounted over `bus/`, which no watch reports: only the signal
    // can make init look.
    std::fs::create_dir_all(dir.0.join("bus")).expect("bus dir");
    let mut bus = SystemBus::at(&dir.0, &dir.0.join("elsewhere/system_bus_socket"));
    let seen_at = dir.0.join("bus/system_bus_socket");
    let address = format!("unix:path={}", seen_at.display());
    let pid1 = Namespace::serving_on_bus("sysbus-usr1", &JOBS, &address);
    bus.start();
    let mounted = pid1
        .inside(30, &["mount", "--bind"])
        .arg(dir.0.join("elsewhere"))
        .arg(dir.0.join("bus"))
        .status()
        .expect("mount");
    assert!(mounted.success());
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!owned(&bus), "joined before SIGUSR1:\n{}", pid1.log());
    pid1.signal(libc::SIGUSR1);
    pid1.wait_for("init on the bus after SIGUSR1", 30, || owned(&bus));
    assert!(pid1.alive());

    // Root controls init through the bus.
    let (code, running, err) = bus.initctl(true, &["start", "svc"]);
    assert_eq!(code, 0, "{err}");
    assert!(running.starts_with("svc start/running"), "{running}");
    // Anybody else reads: job list, status (properties, instances).
    let (code, list, err) = bus.initctl(false, &["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(list.contains("onpoke stop/waiting"), "{list}");
    assert_eq!(
        bus.initctl(false, &["status", "svc"]),
        (0, running.clone(), String::new())
    );
    // ... and is turned away by the bus policy when it would change things.
    let (code, out, err) = bus.initctl(false, &["emit", "poke"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("initctl: Rejected send message"), "{err}");
    assert!(!pid1.dir.0.join("poked").exists());
    assert!(pid1.stop().success());
}

#[test]
fn init_joins_a_bus_that_appears_and_rejoins_it_after_a_restart() {
    let dir = common::TempDir::new("sysbus-watch");
    // Not even the socket's directory exists yet, as early in boot.
    let mut bus = SystemBus::at(&dir.0, &dir.0.join("run/dbus/system_bus_socket"));
    let pid1 = Namespace::serving_on_bus("sysbus-watch", &JOBS, &bus.address);
    bus.start();
    pid1.wait_for("init on the bus once it appeared", 30, || owned(&bus));
    let first = bus.owner(NAME);
    assert_eq!(bus.initctl(false, &["status", "svc"]).0, 0);

    // The bus dies and comes back: init joins the new one unasked.
    bus.kill();
    bus.start();
    pid1.wait_for("init on the restarted bus", 30, || owned(&bus));
    assert_eq!(
        bus.initctl(false, &["status", "svc"]),
        (0, "svc stop/waiting\n".to_string(), String::new())
    );
    let (code, _, err) = bus.initctl(true, &["emit", "poke"]);
    assert_eq!(code, 0, "{err}");
    assert!(pid1.log().contains("Disconnected from D-Bus system bus"));
    // A new connection: the unique name is the new bus's.
    assert!(bus.owner(NAME).is_some() && first.is_some());
    assert!(pid1.stop().success());
}
