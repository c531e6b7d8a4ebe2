//! `initctl start --no-wait` against the real daemon in `--user` mode: the
//! status it prints comes after the job's first process was spawned, as
//! the reference's does, so it always names that process.

mod common;

use common::{pid_of, procs, start_session};

/// `start -n JOB`, repeated: every printed status is
/// `JOB start/STATE, process N` with STATE one of `states` and N alive.
/// The process is then killed, which ends the job.
fn assert_no_wait_shows_process(s: &common::Started, job: &str, states: &[&str], rounds: usize) {
    for round in 0..rounds {
        let (code, out, err) = s.ctl(&["start", "-n", job]);
        assert_eq!(code, 0, "round {round}: {err}");
        assert!(
            states
                .iter()
                .any(|state| out.starts_with(&format!("{job} start/{state}, process "))),
            "round {round}: start -n printed {out:?}; log:\n{}",
            s.log()
        );
        let pid = pid_of(&out);
        assert!(
            procs::alive(pid),
            "round {round}: {out:?} names a process that is not running"
        );
        // SAFETY: kill(2) on a job process of this test's init.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        s.wait_for("the job to stop", || {
            s.ctl(&["status", job]).1 == format!("{job} stop/waiting\n")
        });
    }
}

#[test]
fn no_wait_start_prints_the_main_process() {
    let s = start_session("nowait-main", &[("plain", "exec sleep 1000\n")], &[]);
    // `spawned` until the exec is confirmed, then `running`.
    assert_no_wait_shows_process(&s, "plain", &["spawned", "running"], 20);
}

#[test]
fn no_wait_start_prints_the_pre_start_process() {
    // The pre-start process is the first one; it outlives initctl.
    let s = start_session(
        "nowait-pre",
        &[("pre", "pre-start exec sleep 1000\nexec sleep 1000\n")],
        &[],
    );
    assert_no_wait_shows_process(&s, "pre", &["pre-start"], 20);
}
