//! The control server's bounds (outset(8), docs/ARCHITECTURE.md): what an
//! idle, hostile or slow client may cost init, and that root always gets
//! through. Every test drives the real binaries.

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::namespace::Namespace;
use common::procs;
use common::wire::{self, closed_by_peer, header, read_message};
use outset::control::client::Client;

const SVC: (&str, &str) = ("svc", "console none\nexec sleep 1000\n");
/// init's limit on one message (guard.rs, outset(8)).
const MAX_MESSAGE: usize = 1024 * 1024;

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: i32) -> u64 {
    procs::status_field(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn three_hundred_idle_clients_cost_pid1_no_thread_and_one_descriptor_each() {
    common::assert_root();
    let pid1 = Namespace::serving("idle", &[SVC]);
    assert_eq!(pid1.ctl_ok(&["status", "svc"]), "svc stop/waiting\n");
    pid1.wait_for("no client connected", 30, || pid1.client_count() == 0);
    let fds_before = pid1.fd_count();
    let clients = pid1.authenticated_clients(300);
    pid1.wait_for("all 300 clients held", 60, || pid1.client_count() == 300);
    let threads = threads(pid1.init);
    assert!(threads <= 16, "PID 1 has {threads} threads");
    let fds = pid1.fd_count().saturating_sub(fds_before);
    assert!(fds <= 300 + 16, "300 idle clients hold {fds} descriptors");
    // Root still gets through, and nobody idle had to make room for it:
    // room is made when a connection is admitted, so any idle client cut
    // for initctl's would be shut down before initctl has its answer.
    assert_eq!(pid1.ctl_ok(&["status", "svc"]), "svc stop/waiting\n");
    assert_eq!(wire::hung_up_now(&clients), 0, "idle clients were cut");
    // initctl's own connection goes once init sees it hang up.
    pid1.wait_for("initctl's connection to go", 30, || {
        pid1.client_count() == 300
    });
    drop(clients);
    pid1.wait_for("the clients to go", 60, || pid1.client_count() == 0);
    assert!(pid1.stop().success());
}

#[test]
fn initctl_answers_while_pid1s_pids_cgroup_is_full() {
    common::assert_root();
    let pid1 = Namespace::serving("pidsfull", &[SVC]);
    assert_eq!(pid1.ctl_ok(&["status", "svc"]), "svc stop/waiting\n");
    // A pids cgroup (v1's or v2's, whichever the host has) holding only
    // PID 1, with no room for a task more.
    let full = common::pids_cgroup::PidsCgroup::new();
    full.enter(pid1.init);
    full.fill();
    for _ in 0..5 {
        assert_eq!(pid1.ctl_ok(&["status", "svc"]), "svc stop/waiting\n");
    }
    let listed = pid1.ctl_ok(&["list"]);
    assert!(listed.contains("svc stop/waiting"), "{listed}");
    drop(full);
    assert!(pid1.stop().success());
}

/// A `SetEnv` call setting `BIG` whose whole message is `len` bytes, and
/// the length of the value it sets.
fn set_env_of_length(len: usize) -> (Vec<u8>, usize) {
    let build = |n: usize| {
        zbus::Message::method_call("/com/ubuntu/Upstart", "SetEnv")
            .interface("com.ubuntu.Upstart0_6")
            .build(&(Vec::<String>::new(), format!("BIG={}", "x".repeat(n)), true))
            .expect("message")
            .data()
            .to_vec()
    };
    let guess = len - 256;
    let n = guess + len - build(guess).len();
    (n.saturating_sub(8)..n + 8)
        .map(|n| (build(n), n))
        .find(|(m, _)| m.len() == len)
        .expect("a message of exactly that length")
}

#[test]
fn a_message_at_the_size_limit_is_served_and_one_byte_more_closes_its_connection() {
    let s = common::start_session("msgsize", &[SVC], &[]);
    let (at_limit, value_len) = set_env_of_length(MAX_MESSAGE);
    let mut c = wire::raw_authenticated(&s.address);
    c.write_all(&at_limit).expect("message at the limit");
    let (kind, reply) = read_message(&mut c);
    assert_eq!(kind, 2, "not a method return: {reply:?}");
    let (code, value, err) = s.ctl(&["get-env", "BIG"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(value.trim_end().len(), value_len);
    // One byte more: the body grows by one.
    let mut past = at_limit.clone();
    let body = u32::from_le_bytes(past[4..8].try_into().unwrap()) + 1;
    past[4..8].copy_from_slice(&body.to_le_bytes());
    past.push(0);
    let mut c = wire::raw_authenticated(&s.address);
    let _ = c.write_all(&past);
    assert!(
        closed_by_peer(&mut c, 30),
        "a message past the limit was not refused"
    );
    let (code, _, err) = s.ctl(&["status", "svc"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn twenty_claims_of_huge_messages_reserve_nothing() {
    let s = common::start_session("claims", &[SVC], &[]);
    let pid = s.child.id() as i32;
    let (code, _, err) = s.ctl(&["status", "svc"]);
    assert_eq!(code, 0, "{err}");
    let rss_before = rss_kib(pid);
    // 120 MiB each, under D-Bus's own 128 MiB limit; the start of the
    // header fields follows, the rest never does.
    let mut held: Vec<_> = (0..20)
        .map(|_| {
            let mut c = wire::raw_authenticated(&s.address);
            c.write_all(&header(120 << 20, 16)).expect("header");
            let _ = c.write_all(&[0u8; 16]);
            c
        })
        .collect();
    let (code, _, err) = s.ctl(&["status", "svc"]);
    assert_eq!(code, 0, "{err}");
    let rss = rss_kib(pid);
    assert!(
        rss <= rss_before + 16 * 1024,
        "VmRSS went from {rss_before} KiB to {rss} KiB"
    );
    for c in &mut held {
        assert!(closed_by_peer(c, 30), "a huge claim was not refused");
    }
}

#[test]
fn twenty_clients_that_never_read_do_not_delay_a_monitor() {
    let s = common::start_session("stalled", &[SVC], &[]);
    // They ask for every signal (no Hello) and never read one.
    let deaf: Vec<_> = (0..20)
        .map(|_| wire::raw_authenticated(&s.address))
        .collect();
    let mut monitor = wire::raw_authenticated(&s.address);
    let (seen_tx, seen) = mpsc::channel();
    std::thread::spawn(move || loop {
        let (kind, msg) = read_message(&mut monitor);
        if kind == 4 && msg.windows(14).any(|w| w == b"stalled-marker") {
            let _ = seen_tx.send(Instant::now());
            return;
        }
    });
    // More signals than any of their sockets holds.
    let c = Client::connect(&s.address).expect("connect");
    let big = "y".repeat(4096);
    for i in 0..400 {
        c.manager::<_, ()>(
            "EmitEvent",
            &("loud", vec![format!("N={i}"), format!("B={big}")], false),
        )
        .expect("EmitEvent");
    }
    let (code, _, err) = s.ctl(&["emit", "loud-done"]);
    assert_eq!(code, 0, "{err}");
    let emitted = Instant::now();
    let (code, _, err) = s.ctl(&["emit", "stalled-marker"]);
    assert_eq!(code, 0, "{err}");
    let at = seen
        .recv_timeout(Duration::from_secs(120))
        .expect("the monitor never saw EventEmitted");
    let late = at.duration_since(emitted);
    assert!(
        late < Duration::from_secs(5),
        "EventEmitted reached the monitor {late:?} after the emit"
    );
    drop(deaf);
}

#[test]
fn serving_clients_loads_no_name_service_module() {
    let s = common::start_session("nss", &[SVC], &[]);
    for args in [
        &["status", "svc"][..],
        &["start", "svc"],
        &["list"],
        &["stop", "svc"],
    ] {
        let (code, _, err) = s.ctl(args);
        assert_eq!(code, 0, "initctl {args:?}: {err}");
    }
    let maps =
        std::fs::read_to_string(format!("/proc/{}/maps", s.child.id())).expect("init's maps");
    let nss: Vec<&str> = maps.lines().filter(|l| l.contains("libnss_")).collect();
    assert!(nss.is_empty(), "init mapped {nss:#?}");
}
