//! outset as a container's PID 1 (extensions.md §2): SIGTERM runs the
//! built-in system stop in `stop on` order and PID 1 exits 0; SIGPWR and
//! SIGINT queue their events. Needs root.

mod common;

use common::namespace::Namespace;

/// A service that records NAME in @DIR@/order when it gets SIGTERM and
/// writes @DIR@/NAME.up once running.
fn service(name: &str, start_on: &str, stop_on: Option<&str>) -> String {
    let stop = stop_on
        .map(|s| format!("stop on {s}\n"))
        .unwrap_or_default();
    format!(
        "start on {start_on}\n{stop}console none\n\
         exec sh -c 'trap \"echo {name} >> @DIR@/order; exit 0\" TERM; echo up > @DIR@/{name}.up; \
         while :; do sleep 0.05; done'\n"
    )
}

#[test]
fn sigterm_stops_services_in_stop_on_order_and_exits_zero() {
    let a = service("a", "startup", Some("runlevel [016]"));
    let b = service("b", "started a", Some("stopping a"));
    let c = service("c", "started b", Some("stopping b"));
    // No `stop on`: stopped with everything else once the runlevel
    // event is done.
    let d = service("d", "started c", None);
    // Not a job: a process left behind by a task, which only the final
    // SIGTERM sweep reaches.
    let straggler = "start on started d\ntask\nconsole none\nscript\n  \
         setsid sh -c 'trap \"echo straggler >> @DIR@/order; exit 0\" TERM; echo up > @DIR@/straggler.up; \
         while :; do sleep 0.05; done' > /dev/null 2>&1 &\nend script\n";
    let mut ns = Namespace::start(
        "container-term",
        &[
            ("a", &a),
            ("b", &b),
            ("c", &c),
            ("d", &d),
            ("straggler", straggler),
        ],
        &[],
    );
    for up in ["a", "b", "c", "d", "straggler"] {
        ns.wait_file(&format!("{up}.up"));
    }
    ns.signal(libc::SIGTERM);
    let status = ns.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", ns.log());
    let order = std::fs::read_to_string(ns.dir.0.join("order")).unwrap_or_default();
    assert_eq!(order, "c\nb\na\nd\nstraggler\n", "log:\n{}", ns.log());
    assert!(!ns.log().contains("failed to stop"), "log:\n{}", ns.log());
}

#[test]
fn sigpwr_and_sigint_queue_their_events() {
    let pwr =
        "start on power-status-changed\ntask\nconsole none\nexec sh -c 'echo pwr > @DIR@/pwr'\n";
    let cad =
        "start on control-alt-delete\ntask\nconsole none\nexec sh -c 'echo cad > @DIR@/cad'\n";
    let ready = "start on startup\ntask\nconsole none\nexec sh -c 'echo ready > @DIR@/ready'\n";
    let mut ns = Namespace::start(
        "container-events",
        &[("pwr", pwr), ("cad", cad), ("ready", ready)],
        &[],
    );
    ns.wait_file("ready");
    assert!(!ns.dir.0.join("pwr").exists() && !ns.dir.0.join("cad").exists());
    ns.signal(libc::SIGPWR);
    assert_eq!(ns.wait_file("pwr"), "pwr\n");
    ns.signal(libc::SIGINT);
    assert_eq!(ns.wait_file("cad"), "cad\n");
    // Neither signal stopped anything: PID 1 is still there for SIGTERM.
    ns.signal(libc::SIGTERM);
    let status = ns.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", ns.log());
}

#[test]
fn sigrtmin_3_halts_the_container() {
    let svc = service("svc", "startup", Some("runlevel [016]"));
    let observer = "start on runlevel\ntask\nconsole none\n\
         exec sh -c 'echo \"$RUNLEVEL ${INIT_HALT:-}\" >> @DIR@/runlevel'\n";
    let mut ns = Namespace::start(
        "container-rtmin3",
        &[("svc", &svc), ("observer", observer)],
        &[],
    );
    ns.wait_file("svc.up");
    ns.signal(libc::SIGRTMIN() + 3);
    let status = ns.wait_exit();
    assert!(status.success(), "exit {status:?}; log:\n{}", ns.log());
    let read = |f: &str| std::fs::read_to_string(ns.dir.0.join(f)).unwrap_or_default();
    assert_eq!(read("runlevel"), "0 HALT\n", "log:\n{}", ns.log());
    assert_eq!(read("order"), "svc\n", "log:\n{}", ns.log());
}

#[test]
fn a_job_whose_failure_is_the_containers_ends_it_with_its_status() {
    for (stanza, code) in [
        ("exit-container-on-failure", 3),
        ("exit-container-on-failure 42", 42),
    ] {
        let svc = service("svc", "startup", Some("runlevel [016]"));
        let app = format!(
            "start on started svc\nconsole none\n{stanza}\n\
             exec sh -c 'while [ ! -e @DIR@/go ]; do sleep 0.05; done; exit 3'\n"
        );
        // A failing job without the stanza changes nothing.
        let other = "start on startup\nconsole none\nexec sh -c 'exit 5'\n";
        let mut ns = Namespace::start(
            "container-exit",
            &[("svc", &svc), ("app", &app), ("other", other)],
            &[],
        );
        ns.wait_file("svc.up");
        ns.touch("go");
        let status = ns.wait_exit();
        assert_eq!(status.code(), Some(code), "{stanza}; log:\n{}", ns.log());
        let order = std::fs::read_to_string(ns.dir.0.join("order")).unwrap_or_default();
        assert_eq!(order, "svc\n", "{stanza}; log:\n{}", ns.log());
    }
}

#[test]
fn a_job_killed_by_a_signal_ends_the_container_with_128_plus_n() {
    let app = "start on startup\nconsole none\nexit-container-on-failure\n\
         exec sh -c 'echo up > @DIR@/app.up; kill -9 $$'\n";
    let mut ns = Namespace::start("container-exit-sig", &[("app", app)], &[]);
    let status = ns.wait_exit();
    assert_eq!(status.code(), Some(128 + 9), "log:\n{}", ns.log());
}

#[test]
fn the_log_directory_is_made_when_missing() {
    let chatty = "start on startup\nconsole log\nexec sh -c 'echo chatty here; echo > @DIR@/said; exec sleep 1000'\n";
    let mut ns = Namespace::start("container-logdir", &[("chatty", chatty)], &[]);
    ns.wait_file("said");
    let log = ns.dir.0.join("logs/chatty.log");
    ns.wait_for("the job's log", 10, || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("chatty here"))
    });
    ns.signal(libc::SIGTERM);
    assert!(ns.wait_exit().success(), "log:\n{}", ns.log());
}
