//! Fuzz the control plane: D-Bus method calls with arbitrary paths,
//! interfaces, members and arguments, sent over a real peer-to-peer
//! connection to a real session daemon running in this process (its loop
//! on one thread, its zbus server on others).
//!
//! Each input is a call with well-typed but arbitrary arguments (so the
//! engine's request handling sees strange names, environments and flags),
//! a call whose body is raw bytes under an arbitrary signature (so zbus's
//! decoding on the daemon side sees malformed bodies), or raw bytes written
//! on a fresh connection, optionally after a valid authentication (so the
//! handshake and the message framing see garbage). The
//! daemon must answer with an error or a value, and never panic: a panic on
//! any thread aborts this process, which libFuzzer reports as a crash.
//!
//! Left out, because they do what they should rather than fail:
//! `Restart` (re-execs this process), `EndSession` (ends the daemon) and
//! `NotifyDBusAddress` (connects to whatever address it is given).
//!
//! The daemon's jobs have no processes, so starting and stopping them runs
//! the whole state machine without spawning anything.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use zbus::wire::{StructureBuilder, Variant};

const JOBS: &[(&str, &str)] = &[
    ("plain", "start on fuzz-start\nstop on fuzz-stop\n"),
    (
        "multi",
        "instance $NAME\nstart on fuzz-multi\nexport NAME\n",
    ),
    (
        "task",
        "task\nstart on (fuzz-task or plain-started) and fuzz-b\n",
    ),
    ("envy", "env A=1\nenv B\nexport A\nemits fuzz-start\n"),
    ("manual", "manual\ninstance ${X:-x}\n"),
];

#[derive(Arbitrary, Debug)]
enum PathChoice {
    Manager,
    Job(u8),
    Instance(u8, String),
    Bus,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Iface {
    None,
    Manager,
    Job,
    Instance,
    Properties,
    Introspectable,
    Peer,
    Bus,
    Other(String),
}

const MEMBERS: &[&str] = &[
    "GetJobByName",
    "GetAllJobs",
    "EmitEvent",
    "EmitEventWithFile",
    "ReloadConfiguration",
    "GetEnv",
    "SetEnv",
    "SetEnvList",
    "UnsetEnv",
    "UnsetEnvList",
    "ListEnv",
    "ResetEnv",
    "NotifyDiskWriteable",
    "NotifyCGroupManagerAddress",
    "GetState",
    "GetInstance",
    "GetInstanceByName",
    "GetAllInstances",
    "Start",
    "Stop",
    "Restart",
    "Reload",
    "Get",
    "GetAll",
    "Set",
    "Introspect",
    "Ping",
    "GetMachineId",
    "Hello",
    "AddMatch",
    "RequestName",
    "GetNameOwner",
];

#[derive(Arbitrary, Debug)]
enum Member {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Arg {
    Str(String),
    Bool(bool),
    Strs(Vec<String>),
    I32(i32),
    U32(u32),
    Byte(u8),
    Boxed(Box<Arg>),
    /// An `a(si)`-like list.
    Pairs(Vec<(String, i32)>),
    Fd,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Typed(Vec<Arg>),
    Raw { signature: String, bytes: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Call {
    path: PathChoice,
    iface: Iface,
    member: Member,
    body: Body,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Call(Call),
    /// Bytes on a new connection; with `auth`, after the SASL exchange a
    /// client of init's own user would send.
    Stream {
        auth: bool,
        bytes: Vec<u8>,
    },
}

struct Client {
    address: String,
    conn: Option<zbus::Connection>,
}

/// One daemon for the whole run, started on first use.
fn client() -> &'static Mutex<Client> {
    static CLIENT: OnceLock<Mutex<Client>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // Panics init contains on purpose (one client's failed handshake)
        // are not findings; every other panic still aborts the run.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !outset::panic_guard::in_contained_section() {
                fuzzer_hook(info)
            }
        }));
        let address = start_daemon();
        Mutex::new(Client {
            address,
            conn: None,
        })
    })
}

fn start_daemon() -> String {
    use outset::config::{ClassDefaults, ConfSource};
    use outset::daemon::{Daemon, DaemonConfig};
    let dir = std::env::temp_dir().join(format!("outset-fuzz-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("conf")).expect("conf dir");
    std::fs::create_dir_all(dir.join("logs")).expect("log dir");
    for (name, text) in JOBS {
        std::fs::write(dir.join(format!("conf/{name}.conf")), text).expect("job file");
    }
    let config = DaemonConfig {
        sources: vec![ConfSource::dir(dir.join("conf"))],
        defaults: ClassDefaults::default(),
        logdir: dir.join("logs"),
        user_mode: true,
        no_log: true,
        debug: false,
        startup_event: None,
        log_level: outset::job::Level::Fatal,
        job_env: vec!["PATH=/usr/bin:/bin".into()],
        no_cgroups: true,
        mode: outset::pid1::Mode::User,
        run: None,
        control_name: None,
        kmsg: false,
        no_dbus: true,
        argv: vec!["outset".into(), "--user".into()],
        restart: false,
        state_fd: None,
        write_state_file: false,
        inherited_fds: Vec::new(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("daemon".into())
        .spawn(move || {
            let mut daemon = Daemon::new(config).expect("daemon starts");
            tx.send(daemon.address().map(str::to_string))
                .expect("report address");
            let status = daemon.run_uncontained();
            panic!("the daemon's loop returned {status}");
        })
        .expect("daemon thread");
    rx.recv().expect("daemon reports").expect("daemon listens")
}

fn connect(address: &str) -> zbus::Connection {
    zbus::block_on(
        zbus::connection::Builder::address(address)
            .p2p()
            .method_timeout(Duration::from_secs(30))
            .build(),
    )
    .expect("connect to the daemon")
}

fn path(choice: &PathChoice) -> String {
    let job = |n: &u8| JOBS[*n as usize % JOBS.len()].0;
    match choice {
        PathChoice::Manager => "/com/ubuntu/Upstart".into(),
        PathChoice::Job(n) => format!("/com/ubuntu/Upstart/jobs/{}", job(n)),
        PathChoice::Instance(n, inst) => format!(
            "/com/ubuntu/Upstart/jobs/{}/{}",
            job(n),
            outset::control::paths::escape(inst)
        ),
        PathChoice::Bus => "/org/freedesktop/DBus".into(),
        PathChoice::Other(p) => p.clone(),
    }
}

fn interface(i: &Iface) -> Option<String> {
    Some(
        match i {
            Iface::None => return None,
            Iface::Manager => "com.ubuntu.Upstart0_6",
            Iface::Job => "com.ubuntu.Upstart0_6.Job",
            Iface::Instance => "com.ubuntu.Upstart0_6.Instance",
            Iface::Properties => "org.freedesktop.DBus.Properties",
            Iface::Introspectable => "org.freedesktop.DBus.Introspectable",
            Iface::Peer => "org.freedesktop.DBus.Peer",
            Iface::Bus => "org.freedesktop.DBus",
            Iface::Other(s) => s,
        }
        .to_string(),
    )
}

fn variant(arg: &Arg) -> Variant<'static> {
    match arg {
        Arg::Str(s) => Variant::from(s.clone()),
        Arg::Bool(b) => Variant::from(*b),
        Arg::Strs(v) => Variant::from(v.clone()),
        Arg::I32(n) => Variant::from(*n),
        Arg::U32(n) => Variant::from(*n),
        Arg::Byte(n) => Variant::from(*n),
        Arg::Boxed(inner) => Variant::Variant(Box::new(variant(inner))),
        Arg::Pairs(v) => Variant::from(v.clone()),
        Arg::Fd => {
            let file = std::fs::File::open("/dev/null").expect("/dev/null");
            Variant::from(zbus::wire::Fd::from(std::os::fd::OwnedFd::from(file)))
        }
    }
}

/// The message, or None when zbus itself refuses to build it (a bad name
/// or signature never leaves the client).
fn message(call: &Call) -> Option<zbus::Message> {
    let member = match &call.member {
        Member::Known(n) => MEMBERS[*n as usize % MEMBERS.len()].to_string(),
        Member::Other(s) => s.clone(),
    };
    let path = path(&call.path);
    let iface = interface(&call.iface);
    let at_manager = path == "/com/ubuntu/Upstart" || path == "/com/ubuntu/Upstart/";
    let manager_iface = iface
        .as_deref()
        .is_none_or(|i| i == "com.ubuntu.Upstart0_6");
    if at_manager && manager_iface && matches!(member.as_str(), "Restart" | "EndSession") {
        return None;
    }
    if member == "NotifyDBusAddress" {
        return None;
    }
    let mut builder = zbus::Message::method_call(path, member);
    if let Some(i) = iface {
        builder = builder.interface(i);
    }
    match &call.body {
        Body::Typed(args) if args.is_empty() => builder.build(&()).ok(),
        Body::Typed(args) => {
            let mut s = StructureBuilder::new();
            for a in args.iter().take(8) {
                s = s.append_field(variant(a));
            }
            builder.build(&s.build().ok()?).ok()
        }
        Body::Raw { signature, bytes } => {
            // SAFETY: an invalid message is the point; it is only sent.
            unsafe { builder.build_raw_body(bytes, signature.as_str(), Vec::new()) }.ok()
        }
    }
}

/// Write `bytes` on a new connection to the daemon and read whatever it
/// answers until it closes or goes quiet.
fn stream(address: &str, auth: bool, bytes: &[u8]) {
    use std::io::{Read, Write};
    use std::os::linux::net::SocketAddrExt;
    let Some(name) = address.strip_prefix("unix:abstract=") else {
        return;
    };
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let mut sock = std::os::unix::net::UnixStream::connect_addr(&addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    if auth {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let _ = sock.write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes());
    }
    let _ = sock.write_all(bytes);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
}

fuzz_target!(|input: Input| {
    let call = match input {
        Input::Call(call) => call,
        Input::Stream { auth, bytes } => {
            let mut client = client().lock().unwrap_or_else(|e| e.into_inner());
            let address = client.address.clone();
            stream(&address, auth, &bytes);
            let conn = client.conn.get_or_insert_with(|| connect(&address)).clone();
            if get_all_jobs(&conn).is_err() {
                check_alive(&mut client, true);
            }
            return;
        }
    };
    let Some(msg) = message(&call) else { return };
    let raw = matches!(call.body, Body::Raw { .. });
    let mut client = client().lock().unwrap_or_else(|e| e.into_inner());
    let address = client.address.clone();
    let conn = client.conn.get_or_insert_with(|| connect(&address)).clone();
    let sent = zbus::block_on(conn.send(&msg));
    // Whatever happened to that call, the daemon still answers.
    let alive = get_all_jobs(&conn);
    if sent.is_err() || alive.is_err() {
        check_alive(&mut client, raw);
    }
});

fn get_all_jobs(conn: &zbus::Connection) -> zbus::Result<zbus::Message> {
    zbus::block_on(conn.call_method(
        None::<&str>,
        "/com/ubuntu/Upstart",
        Some("com.ubuntu.Upstart0_6"),
        "GetAllJobs",
        &(),
    ))
}

/// The connection may have been closed on a malformed message; a fresh
/// one must work.
fn check_alive(client: &mut Client, raw: bool) {
    let fresh = connect(&client.address);
    get_all_jobs(&fresh)
        .unwrap_or_else(|e| panic!("daemon stopped answering (raw input: {raw}): {e}"));
    client.conn = Some(fresh);
}
