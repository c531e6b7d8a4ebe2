//! The bridges (upstart-*-bridge) end to end: a real session init, the
//! real bridge connected to it, the outside happening made for real, and
//! the job that the event starts seen doing its work.

mod common;

use common::{start_session, Started};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A bridge process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `upstart-NAME-bridge --user ARGS` against `init`; its messages go
/// to `DIR/NAME-bridge.log`.
fn bridge(init: &Started, exe: &str, args: &[&str]) -> Running {
    bridge_in(init, &[], exe, args)
}

/// `bridge`, run through `wrapper` (such as `nsenter ... --`).
fn bridge_in(init: &Started, wrapper: &[&str], exe: &str, args: &[&str]) -> Running {
    let log = std::fs::File::create(init.dir.0.join(format!(
        "{}.log",
        Path::new(exe).file_name().unwrap().to_string_lossy()
    )))
    .unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    Running(
        cmd.args(["--user", "--debug"])
            .args(args)
            .env("UPSTART_SESSION", &init.address)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("bridge"),
    )
}

/// The lines of `DIR/rel` once it has at least `n`, sorted.
fn lines(init: &Started, rel: &str, n: usize) -> Vec<String> {
    let path = init.dir.0.join(rel);
    let read = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    init.wait_for(&format!("{n} lines in {rel}"), || read().len() >= n);
    let mut l = read();
    l.sort();
    l
}

/// The file bridge, started on `init` and watching (its debug log says so).
fn watching_file_bridge(init: &Started) -> Running {
    let b = bridge(init, env!("CARGO_BIN_EXE_upstart-file-bridge"), &[]);
    init.wait_for("the bridge to connect", || {
        std::fs::read_to_string(init.dir.0.join("upstart-file-bridge.log"))
            .unwrap_or_default()
            .contains("watching")
    });
    b
}

#[test]
fn file_bridge_turns_changes_into_file_events() {
    let init = start_session(
        "file-bridge",
        &[(
            "spool",
            "start on file FILE=@DIR@/spool/*.job EVENT=create\n\
             instance $MATCH\ntask\n\
             exec sh -c 'echo \"$FILE $EVENT $MATCH\" >> @DIR@/spooled'\n",
        )],
        &[],
    );
    let d = init.dir.0.display().to_string();
    // The job is known before its directory exists: the bridge watches an
    // ancestor until the directory appears.
    let _b = watching_file_bridge(&init);
    std::fs::create_dir(init.dir.0.join("spool")).unwrap();
    std::fs::write(init.dir.0.join("spool/a.job"), "x").unwrap();
    std::fs::write(init.dir.0.join("spool/ignored.txt"), "x").unwrap();
    assert_eq!(
        lines(&init, "spooled", 1),
        [format!("{d}/spool/*.job create {d}/spool/a.job")]
    );
    // A job added later is picked up at once; its file already exists, so
    // it gets its create event straight away, then one per change asked.
    std::fs::write(init.dir.0.join("flag"), "").unwrap();
    init.dir.write(
        "conf/flag.conf",
        &format!(
            "start on file FILE={d}/flag\ninstance $EVENT\ntask\n\
             exec sh -c 'echo \"$FILE $EVENT\" >> {d}/flagged'\n"
        ),
    );
    assert_eq!(lines(&init, "flagged", 1), [format!("{d}/flag create")]);
    std::fs::remove_file(init.dir.0.join("flag")).unwrap();
    assert_eq!(
        lines(&init, "flagged", 2),
        [format!("{d}/flag create"), format!("{d}/flag delete")]
    );
    assert_eq!(
        lines(&init, "spooled", 1).len(),
        1,
        "no event for ignored.txt"
    );
}

/// The `file` events the bridge has sent, from its debug log, one line
/// each.
fn file_emits(init: &Started) -> Vec<String> {
    std::fs::read_to_string(init.dir.0.join("upstart-file-bridge.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once("emit file ").map(|(_, e)| e.to_string()))
        .collect()
}

#[test]
fn files_made_while_the_bridge_starts_watching_their_directory_are_reported_once() {
    let init = start_session(
        "file-burst",
        &[(
            "spool",
            "start on file FILE=@DIR@/spool/*.job EVENT=create\ntask\nexec true\n",
        )],
        &[],
    );
    let d = init.dir.0.display().to_string();
    let _b = watching_file_bridge(&init);
    // The directory appears and files pour in at once: some are made
    // before the bridge watches it, some while it reads it, some after.
    std::fs::create_dir(init.dir.0.join("spool")).unwrap();
    let names: Vec<String> = (0..300).map(|n| format!("{n:03}.job")).collect();
    for name in &names {
        std::fs::write(init.dir.0.join("spool").join(name), "").unwrap();
    }
    let event = |name: &str| format!("FILE={d}/spool/*.job EVENT=create MATCH={d}/spool/{name}");
    init.wait_for("the last file's event", || {
        file_emits(&init).contains(&event("299.job"))
    });
    // Changes are reported in the order they happen: once a file made
    // after all that is reported, everything before it has been.
    std::fs::write(init.dir.0.join("spool/end.job"), "").unwrap();
    init.wait_for("the end", || file_emits(&init).contains(&event("end.job")));
    let emits = file_emits(&init);
    for name in &names {
        let n = emits.iter().filter(|e| **e == event(name)).count();
        assert_eq!(n, 1, "{name} reported {n} times");
    }
}

/// A job that answers one connection on the socket it was handed, then
/// exits.
const ANSWER_ONCE: &str = "exec perl -e 'open(my $l, \"+<&=\", $ENV{UPSTART_FDS}) or die \"no fd\"; \
     accept(my $c, $l) or die \"accept: $!\"; print $c \"hello from $ENV{UPSTART_JOB} $ENV{PROTO}\\n\"; close $c'\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_status(init: &Started, job: &str, want: &str) {
    init.wait_for(&format!("{job} {want}"), || {
        init.ctl(&["status", job]).1.contains(want)
    });
}

#[test]
fn socket_bridge_activates_jobs_on_connection() {
    use std::io::Read;
    let port = free_port();
    let abstract_name = format!("@outset-test-socket-{}", std::process::id());
    let init = start_session(
        "socket-bridge",
        &[
            (
                "web",
                &format!("start on socket PROTO=inet PORT={port} ADDR=127.0.0.1\n{ANSWER_ONCE}"),
            ),
            (
                "local",
                &format!("start on socket PROTO=unix SOCKET_PATH={abstract_name}\n{ANSWER_ONCE}"),
            ),
        ],
        &[],
    );
    let _b = bridge(&init, env!("CARGO_BIN_EXE_upstart-socket-bridge"), &[]);
    let connect = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                        .unwrap();
                    break s;
                }
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "connect: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    };
    // One-shot activation, again and again: each time the job has exited,
    // the next connection starts it anew.
    for _ in 0..2 {
        let mut answer = String::new();
        connect().read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "hello from web inet\n");
        wait_status(&init, "web", "stop/waiting");
    }
    // An abstract unix socket.
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(
        abstract_name.strip_prefix('@').unwrap(),
    )
    .unwrap();
    let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "hello from local unix\n");
    // Removing the job closes its socket.
    std::fs::remove_file(init.dir.0.join("conf/web.conf")).unwrap();
    init.wait_for("the port to be closed", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
}

#[test]
fn udev_bridge_turns_kernel_uevents_into_device_events() {
    common::assert_root();
    // The init, the bridge and the uevent share a network namespace of
    // their own (with its own sysfs), so the uevent for its `lo` reaches
    // only them; no udevd there, so the bridge reads the kernel's uevents.
    let init = common::start_session_wrapped(
        "udev-bridge",
        &[(
            "lo-changed",
            "start on net-device-changed INTERFACE=lo\ntask\n\
             exec sh -c 'echo \"$UPSTART_EVENTS $INTERFACE $KERNEL $SUBSYSTEM $ACTION $DEVPATH\" > @DIR@/seen'\n",
        )],
        &[],
        &[
            "unshare",
            "--net",
            "--mount",
            "sh",
            "-c",
            "mount -t sysfs sysfs /sys && { [ ! -d /run/udev ] || mount -t tmpfs tmpfs /run/udev; } && exec \"$@\"",
            "sh",
        ],
    );
    let pid = init.child.id().to_string();
    let enter = ["nsenter", "-t", &pid, "--net", "--mount", "--"];
    let _b = bridge_in(
        &init,
        &enter,
        env!("CARGO_BIN_EXE_upstart-udev-bridge"),
        &[],
    );
    let log = init.dir.0.join("upstart-udev-bridge.log");
    init.wait_for("the bridge to read the jobs", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Connected")
    });
    let seen = init.dir.0.join("seen");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The bridge may still be reading the jobs: trigger until the job ran.
    while !seen.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no event; bridge log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let mut trigger = Command::new(enter[0]);
        trigger
            .args(&enter[1..])
            .args(["sh", "-c", "echo change > /sys/class/net/lo/uevent"]);
        assert!(trigger.status().unwrap().success());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    init.wait_for("the job's line", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with('\n')
    });
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "net-device-changed lo lo net change /devices/virtual/net/lo\n"
    );
}

#[test]
fn event_bridge_forwards_system_events_as_sys() {
    // A second session init stands in for the system one.
    let system = start_session("event-bridge-system", &[], &[]);
    let session = start_session(
        "event-bridge-session",
        &[(
            "from-system",
            "start on :sys:hello-world KEY=v\ntask\n\
             exec sh -c 'echo \"$UPSTART_EVENTS $KEY $OTHER\" > @DIR@/seen'\n",
        )],
        &[],
    );
    let _b = bridge(
        &session,
        env!("CARGO_BIN_EXE_upstart-event-bridge"),
        &["--system-address", &system.address],
    );
    let seen = session.dir.0.join("seen");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Until the bridge has connected, the system's events go unheard.
    while !seen.exists() {
        assert!(std::time::Instant::now() < deadline, "no :sys: event");
        let (code, _, err) = system.ctl(&["emit", "hello-world", "KEY=v", "OTHER=w"]);
        assert_eq!(code, 0, "{err}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    session.wait_for("the job's line", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with('\n')
    });
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        ":sys:hello-world v w\n"
    );
}

#[test]
fn event_bridge_of_another_user_hears_the_system_init_on_the_system_bus() {
    use common::bus::{SystemBus, NOBODY};
    // A root session init stands in for the system one, on a system bus
    // with the shipped policy; its private socket refuses other users.
    let system = start_session("event-bridge-bus-system", &[], &[]);
    let mut bus = SystemBus::at(&system.dir.0, &system.dir.0.join("system_bus_socket"));
    bus.start();
    let (code, _, err) = system.ctl(&["notify-dbus-address", &bus.address]);
    assert_eq!(code, 0, "{err}");
    // The user's session init and its bridge run as nobody.
    let session = common::start_session_prepared(
        "event-bridge-bus-session",
        &[(
            "from-system",
            "start on :sys:hello-world KEY=v\ntask\n\
             exec sh -c 'echo \"$UPSTART_EVENTS $KEY\" > @DIR@/seen'\n",
        )],
        &[],
        &NOBODY,
        |dir| {
            std::fs::create_dir_all(dir.0.join("run")).expect("runtime dir");
            let ok = Command::new("chown")
                .args(["-R", "65534:65534"])
                .arg(&dir.0)
                .status()
                .expect("chown");
            assert!(ok.success());
        },
    );
    let log = session.dir.0.join("upstart-event-bridge.log");
    let _b = Running(
        Command::new(NOBODY[0])
            .args(&NOBODY[1..])
            .arg(env!("CARGO_BIN_EXE_upstart-event-bridge"))
            .args(["--debug", "--system-address", &system.address])
            .env("UPSTART_SESSION", &session.address)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bridge"),
    );
    let seen = session.dir.0.join("seen");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no :sys: event; bridge:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let (code, _, err) = system.ctl(&["emit", "hello-world", "KEY=v"]);
        assert_eq!(code, 0, "{err}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    session.wait_for("the job's line", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with('\n')
    });
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        ":sys:hello-world v\n"
    );
}

#[test]
fn dbus_bridge_turns_signals_into_dbus_events() {
    let init = start_session(
        "dbus-bridge",
        &[(
            "pinged",
            "start on dbus SIGNAL=Ping INTERFACE=org.example.Test\ntask\n\
             exec sh -c 'echo \"$UPSTART_EVENTS $SIGNAL $BUS $INTERFACE $OBJPATH $ARG0 $ARG1 $ARG2\" > @DIR@/seen'\n",
        )],
        &[],
    );
    let mut bus = common::bus::SystemBus::session(&init.dir.0);
    bus.start();
    let log = init.dir.0.join("upstart-dbus-bridge.log");
    let _b = Running(
        Command::new(env!("CARGO_BIN_EXE_upstart-dbus-bridge"))
            .args(["--user", "--debug", "--bus-name", "session"])
            .env("UPSTART_SESSION", &init.address)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bridge"),
    );
    let send = |interface: &str, args: &[&str]| {
        let o = common::namespace::bounded(30, "dbus-send")
            .arg(format!("--bus={}", bus.address))
            .args(["--type=signal", "/org/example"])
            .arg(format!("{interface}.Ping"))
            .args(args)
            .output()
            .expect("dbus-send");
        assert!(o.status.success(), "{o:?}");
    };
    let seen = init.dir.0.join("seen");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Until the bridge has asked the bus for them, signals go unheard.
    while !seen.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no dbus event; bridge:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        // Another interface's Ping is not what the job waits for.
        send("org.example.Other", &["string:no"]);
        send(
            "org.example.Test",
            &["string:hi", "array:int32:1,2", "int32:-7"],
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    init.wait_for("the job's line", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with('\n')
    });
    // The array counts as ARG1 but is not written.
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "dbus Ping session org.example.Test /org/example hi  -7\n"
    );
    // The bus was asked for that signal only.
    let bridge_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !bridge_log.contains("INTERFACE=org.example.Other"),
        "{bridge_log}"
    );
}

#[test]
fn local_bridge_turns_lines_into_events() {
    use std::io::Write;
    let init = start_session(
        "local-bridge",
        &[(
            "poked",
            "start on poke COLOUR=blue\ntask\n\
             exec sh -c 'echo \"$UPSTART_EVENTS $COLOUR $SOCKET_VARIANT $CLIENT_UID\" > @DIR@/seen'\n",
        )],
        &[],
    );
    let sock = init.dir.0.join("poke.sock");
    let _b = bridge(
        &init,
        env!("CARGO_BIN_EXE_upstart-local-bridge"),
        &["--path", sock.to_str().unwrap(), "--event", "poke"],
    );
    init.wait_for("the socket", || sock.exists());
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"garbage\n=x\nCOLOUR=blue\r\n").unwrap();
    drop(s);
    let seen = init.dir.0.join("seen");
    init.wait_for("the job's line", || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .ends_with('\n')
    });
    let uid = nix::unistd::geteuid();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("poke blue named {uid}\n")
    );
}

#[test]
fn a_bridge_survives_a_reexec_of_init_and_keeps_serving_new_jobs() {
    let init = start_session("bridge-reexec", &[], &[]);
    let d = init.dir.0.display().to_string();
    let _b = bridge(&init, env!("CARGO_BIN_EXE_upstart-file-bridge"), &[]);
    let log = init.dir.0.join("upstart-file-bridge.log");
    let bridge_log = || std::fs::read_to_string(&log).unwrap_or_default();
    init.wait_for("the bridge to connect", || {
        bridge_log().contains("Connected")
    });
    let o = init.cmd(env!("CARGO_BIN_EXE_telinit"), &["u"]);
    assert!(o.status.success() || o.status.code() == Some(1), "{o:?}");
    // The new image announces itself as the first did.
    init.wait_for("the re-exec", || {
        init.log().matches("session init running").count() >= 2
    });
    // The connection is lost with the old image; the bridge says so, makes
    // it again, and serves a job that exists only in the new one.
    init.wait_for("the bridge to reconnect", || {
        bridge_log().matches("Connected").count() >= 2
    });
    assert!(bridge_log().contains("reconnecting"), "{}", bridge_log());
    init.dir.write(
        "conf/after.conf",
        &format!(
            "start on file FILE={d}/after EVENT=create\ntask\n\
             exec sh -c 'echo \"$FILE $EVENT\" > {d}/seen'\n"
        ),
    );
    init.wait_for("the bridge to watch", || {
        bridge_log().contains(&format!("watching {d}"))
    });
    std::fs::write(init.dir.0.join("after"), "").unwrap();
    assert_eq!(lines(&init, "seen", 1), [format!("{d}/after create")]);
}

#[test]
fn a_bridge_ends_with_status_zero_on_sigterm() {
    let init = start_session("bridge-term", &[], &[]);
    let sock = init.dir.0.join("term.sock");
    let mut b = bridge(
        &init,
        env!("CARGO_BIN_EXE_upstart-local-bridge"),
        &["--path", sock.to_str().unwrap(), "--event", "poke"],
    );
    init.wait_for("the socket", || sock.exists());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(b.0.id() as i32, libc::SIGTERM) };
    let status = b.0.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}
