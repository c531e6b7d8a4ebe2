//! Job directories as the real init walks and watches them: symbolic links
//! that loop or give a directory a second name, and subdirectories made
//! while it runs.

mod common;

use common::{procs, start_session, start_session_prepared, Started, TempDir};
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

/// The job names `initctl list` shows, sorted.
fn job_names(s: &Started) -> Vec<String> {
    let (code, out, err) = s.ctl(&["list"]);
    assert_eq!(code, 0, "initctl list: {err}\nlog:\n{}", s.log());
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// How many times the init's log says `line`.
fn said(s: &Started, line: &str) -> usize {
    s.log().matches(line).count()
}

/// SIGTERM ends the session init (bounded: a hung init fails the test).
fn terminate(s: &mut Started) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.child.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not end the init; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn svc_pid(s: &Started) -> i32 {
    common::pid_of(&s.ctl(&["status", "svc"]).1)
}

#[test]
fn two_symlink_loops_at_start_cost_nothing_and_are_said_once() {
    let mut s = start_session_prepared("loop2", &[("svc", "exec sleep 1000\n")], &[], &[], |d| {
        symlink(".", d.0.join("conf/a")).expect("symlink");
        symlink(".", d.0.join("conf/b")).expect("symlink");
    });
    assert_eq!(job_names(&s), ["svc"]);
    for link in ["a", "b"] {
        let line = format!("conf/{link}: Directory loop detected");
        s.wait_for("the loop to be said", || said(&s, &line) > 0);
        // A later reload of the same tree does not say it again.
        assert_eq!(s.ctl(&["reload-configuration"]).0, 0);
        assert_eq!(job_names(&s), ["svc"]);
        assert_eq!(said(&s, &line), 1, "log:\n{}", s.log());
    }
    terminate(&mut s);
}

#[test]
fn a_single_symlink_loop_loads_the_job_once() {
    let s = start_session_prepared("loop1", &[("svc", "exec sleep 1000\n")], &[], &[], |d| {
        symlink(".", d.0.join("conf/a")).expect("symlink")
    });
    assert_eq!(job_names(&s), ["svc"]);
}

#[test]
fn a_symlink_loop_made_at_runtime_leaves_init_supervising() {
    let mut s = start_session(
        "loop-runtime",
        &[("svc", "respawn\nexec sleep 1000\n")],
        &[],
    );
    assert_eq!(s.ctl(&["start", "svc"]).0, 0, "log:\n{}", s.log());
    let first = svc_pid(&s);
    assert!(first > 0);
    symlink(".", s.dir.0.join("conf/a")).expect("symlink");
    symlink(".", s.dir.0.join("conf/b")).expect("symlink");
    for link in ["a", "b"] {
        let line = format!("conf/{link}: Directory loop detected");
        s.wait_for("the reload to see the loop", || said(&s, &line) > 0);
    }
    assert_eq!(job_names(&s), ["svc"]);
    // The job is still respawned and its old process reaped.
    // SAFETY: kill(2) on a job process of this test's init.
    unsafe { libc::kill(first, libc::SIGKILL) };
    s.wait_for("the old process to be reaped", || {
        procs::state(first).is_none()
    });
    s.wait_for("the respawn", || {
        let pid = svc_pid(&s);
        pid > 0 && pid != first
    });
    terminate(&mut s);
}

#[test]
fn a_directory_reached_through_symlinks_is_read_once_under_its_real_name() {
    let outside = TempDir::new("outside");
    outside.write("x.conf", "exec sleep 1000\n");
    let s = start_session_prepared(
        "alias",
        &[("sub/job", "exec sleep 1000\n")],
        &[],
        &[],
        |d| {
            // Sorts before `sub`: the real name must still win.
            symlink("sub", d.0.join("conf/link")).expect("symlink");
            symlink(&outside.0, d.0.join("conf/ext")).expect("symlink");
            symlink(&outside.0, d.0.join("conf/ext2")).expect("symlink");
        },
    );
    assert_eq!(job_names(&s), ["ext/x", "sub/job"]);
    for (link, first) in [("link", "sub"), ("ext2", "ext")] {
        let line = format!("conf/{link}: Same directory as ");
        s.wait_for("the second name to be said", || said(&s, &line) > 0);
        assert!(
            s.log().contains(&format!(
                "{line}{}",
                s.dir.0.join("conf").join(first).display()
            )),
            "log:\n{}",
            s.log()
        );
    }
}

#[test]
fn job_files_in_directories_made_after_start_are_seen() {
    let s = start_session("subdir", &[("svc", "exec sleep 1000\n")], &[]);
    let outside = TempDir::new("outside-later");
    std::fs::create_dir(s.dir.0.join("conf/sub")).expect("mkdir");
    symlink(&outside.0, s.dir.0.join("conf/ext")).expect("symlink");
    // Once this one is in, the init has read the tree with `sub` in it.
    s.dir.write("conf/probe.conf", "exec sleep 1000\n");
    s.wait_for("probe", || job_names(&s).contains(&"probe".to_string()));

    s.dir.write("conf/sub/job.conf", "exec sleep 1000\n");
    outside.write("x.conf", "exec sleep 1000\n");
    s.wait_for("sub/job and ext/x", || {
        let names = job_names(&s);
        names.contains(&"sub/job".to_string()) && names.contains(&"ext/x".to_string())
    });

    // Several levels made in one go, a file at the bottom at once.
    std::fs::create_dir_all(s.dir.0.join("conf/sub/deep/er")).expect("mkdir -p");
    s.dir.write("conf/sub/deep/er/j.conf", "exec sleep 1000\n");
    s.wait_for("sub/deep/er/j", || {
        job_names(&s).contains(&"sub/deep/er/j".to_string())
    });
}

#[test]
fn a_job_file_is_read_once_its_writer_has_closed_it() {
    use std::io::Write;
    let s = start_session("half-written", &[("svc", "exec sleep 1000\n")], &[]);
    // Made and partly written, still open: not a job yet.
    let mut f = std::fs::File::create(s.dir.0.join("conf/late.conf")).expect("create");
    f.write_all(b"description \"late\"\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(
            job_names(&s),
            ["svc"],
            "a job file read before it was closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    f.write_all(b"task\nexec true\n").expect("write");
    drop(f);
    s.wait_for("the closed file to be read", || {
        job_names(&s) == ["late", "svc"]
    });
    // All of it: a task, done when `start` returns.
    let (code, _, err) = s.ctl(&["start", "late"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.ctl(&["status", "late"]).1, "late stop/waiting\n");
}
