//! SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT sent to outset by another
//! process: a session init says so and ends by that signal, every time;
//! process 1 says so and carries on, every time.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// Send `sig` to a session init: it must end by that very signal, saying so.
fn ends_by(sig: i32, name: &str) {
    let mut s = common::start_session_wrapped(
        &format!("fatal-{name}"),
        &[],
        &[],
        &["prlimit", "--core=0", "--"],
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(s.child.id() as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after SIG{name}; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.signal(), Some(sig), "{status:?}; log:\n{}", s.log());
    let me = std::process::id();
    assert!(
        s.log().contains(&format!(
            "Received SIG{name} from process {me}: ending with that signal"
        )),
        "{}",
        s.log()
    );
}

#[test]
fn a_session_init_ends_by_a_fatal_signal_sent_to_it_and_says_so() {
    ends_by(libc::SIGSEGV, "SEGV");
    ends_by(libc::SIGABRT, "ABRT");
}

#[test]
fn process_1_ignores_fatal_signals_sent_to_it_and_says_so() {
    let ns = common::namespace::Namespace::serving("fatal-pid1", &[]);
    for (sig, name) in [
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGBUS, "BUS"),
        (libc::SIGILL, "ILL"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGABRT, "ABRT"),
    ] {
        let before = ns.log().matches(&format!("Received SIG{name}")).count();
        ns.signal(sig);
        // Sent from outside the namespace, the sender shows as process 0.
        ns.wait_for(&format!("SIG{name} to be logged"), 30, || {
            ns.log()
                .matches(&format!("Received SIG{name} from process 0: ignored"))
                .count()
                > before
        });
        assert!(ns.alive(), "PID 1 lives after SIG{name}");
    }
    assert!(ns.ctl(&["version"]).status.success(), "{}", ns.log());
}
