//! `outset run` (extensions.md §3) through the real binary: exit status,
//! stdio, signal forwarding, settling, and nothing left behind — with and
//! without `--pid-ns`. Needs root for `--pid-ns`.

mod common;

use common::TempDir;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A per-test marker that can be searched for in /proc/*/cmdline.
fn marker(n: u32) -> String {
    format!("{}", 100_000 + (std::process::id() % 50_000) * 10 + n)
}

/// Live processes whose command line contains `needle` as a whole word.
fn processes_with(needle: &str) -> Vec<i32> {
    common::procs::pids()
        .into_iter()
        .filter(|&pid| common::procs::cmdline_has(pid, needle))
        .collect()
}

/// `outset run` on `jobs` with `opts`, then `-- command`.
fn outset_run(dir: &TempDir, jobs: &[(&str, &str)], opts: &[&str], command: &[&str]) -> Command {
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    for (name, text) in jobs {
        dir.write(
            &format!("conf/{name}.conf"),
            &text.replace("@DIR@", &dir.0.display().to_string()),
        );
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outset"));
    cmd.arg("run")
        .args(opts)
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    cmd
}

fn output(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("outset run");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("outset run did not return");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

const MODES: [&[&str]; 2] = [&[], &["--pid-ns"]];

#[test]
fn exit_status_is_the_commands() {
    common::assert_root();
    for mode in MODES {
        for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 128 + 9)] {
            let dir = TempDir::new("run-status");
            let out = output(outset_run(&dir, &[], mode, &["sh", "-c", script]));
            assert_eq!(
                out.status.code(),
                Some(code),
                "{mode:?} {script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn a_command_that_cannot_run_gives_127() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-127");
        let out = output(outset_run(&dir, &[], mode, &["/nonexistent/command", "x"]));
        assert_eq!(out.status.code(), Some(127), "{mode:?}");
    }
}

#[test]
fn stdio_passes_through_and_arguments_stay_whole() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-stdio");
        let mut cmd = outset_run(
            &dir,
            &[],
            mode,
            &[
                "sh",
                "-c",
                "read line; echo \"got $line\"; echo \"$1|$2\"; echo oops >&2; echo \"job=$UPSTART_JOB\"",
                "sh",
                "two words",
                "it's $HOME",
            ],
        );
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("outset run");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"hello\n")
            .expect("write");
        let out = child.wait_with_output().expect("output");
        assert!(out.status.success(), "{mode:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "got hello\ntwo words|it's $HOME\njob=run\n",
            "{mode:?}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("oops\n"));
    }
}

#[test]
fn pid_ns_gives_the_command_a_fresh_proc() {
    common::assert_root();
    let dir = TempDir::new("run-pidns");
    let out = output(outset_run(
        &dir,
        &[],
        &["--pid-ns"],
        &["sh", "-c", "cat /proc/1/comm"],
    ));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "outset\n");
}

#[test]
fn services_are_stopped_and_stubborn_ones_killed() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-stubborn");
        let m = marker(i as u32);
        let polite = "start on startup\nstop on runlevel [016]\nconsole none\n\
             exec sh -c 'trap \"echo polite >> @DIR@/stopped; exit 0\" TERM; echo up > @DIR@/polite.up; \
             while :; do sleep 0.05; done'\n";
        let stubborn = format!(
            "start on startup\nconsole none\nkill timeout 1\n\
             exec sh -c 'trap \"echo stubborn >> @DIR@/stopped\" TERM; sleep {m} & echo $! > @DIR@/child.pid; \
             while :; do sleep 0.05; done'\n"
        );
        let out = output(outset_run(
            &dir,
            &[("polite", polite), ("stubborn", &stubborn)],
            mode,
            &[
                "sh",
                "-c",
                &format!(
                    "d={}; while [ ! -s $d/child.pid ] || [ ! -s $d/polite.up ]; do sleep 0.05; done; \
                     kill -0 $(cat $d/child.pid)",
                    dir.0.display()
                ),
            ],
        ));
        // The command saw the stubborn service's child running.
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stopped = std::fs::read_to_string(dir.0.join("stopped")).unwrap_or_default();
        assert!(stopped.contains("polite\n"), "{mode:?}: {stopped}");
        // The stubborn one ignored SIGTERM and was killed at its timeout.
        assert!(stopped.contains("stubborn\n"), "{mode:?}: {stopped}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .any(|l| l.contains("stubborn main process") && l.contains("killed by KILL")),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
    }
}

#[test]
fn a_daemonised_grandchild_does_not_leak() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-leak");
        let m = marker(10 + i as u32);
        // Double fork plus a new session: the classic daemon.
        let script = format!("(setsid sleep {m} < /dev/null > /dev/null 2>&1 &); exit 0");
        let out = output(outset_run(&dir, &[], mode, &["sh", "-c", &script]));
        assert!(out.status.success(), "{mode:?}");
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}: leaked");
    }
}

#[test]
fn settle_timeout_names_the_unsettled_jobs_and_exits_124() {
    common::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-settle");
        let m = marker(20 + i as u32);
        let stuck =
            format!("start on startup\nconsole none\npre-start exec sleep {m}\nexec sleep 1\n");
        let fine = "start on startup\nconsole none\nexec sleep 1000\n";
        let out = output(outset_run(
            &dir,
            &[("stuck", &stuck), ("fine", fine)],
            &[mode, &["--settle-timeout", "1"]].concat(),
            &["touch", &dir.0.join("ran").display().to_string()],
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(124), "{mode:?}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains("did not settle"))
            .unwrap_or_else(|| panic!("{mode:?}: {err}"));
        assert!(line.contains("stuck (start/pre-start)"), "{line}");
        assert!(!line.contains("fine"), "{line}");
        assert!(!dir.0.join("ran").exists(), "{mode:?}: the command ran");
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
    }
}

#[test]
fn signals_are_forwarded_to_the_command() {
    common::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-signal");
        let ready = dir.0.join("ready");
        let script = format!(
            "trap 'exit 7' USR1; echo > {}; while :; do sleep 0.05; done",
            ready.display()
        );
        let mut child = outset_run(&dir, &[], mode, &["sh", "-c", &script])
            .stderr(Stdio::piped())
            .spawn()
            .expect("outset run");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "{mode:?}: command never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(7), "{mode:?}");

        // SIGTERM reaches a command that does not catch it: 128+15.
        let dir = TempDir::new("run-signal");
        let mut child = outset_run(&dir, &[], mode, &["sleep", "1000"])
            .spawn()
            .expect("outset run");
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(
            child.wait().expect("wait").code(),
            Some(128 + 15),
            "{mode:?}"
        );
    }
}

#[test]
fn usage_errors() {
    for args in [
        &["run"][..],
        &["run", "--"],
        &["run", "--settle-timeout", "x", "--", "true"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_outset"))
            .args(args)
            .output()
            .expect("outset");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("outset run: "), "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_outset"))
        .args(["run", "--help"])
        .output()
        .expect("outset");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: outset run "));
}

/// The exit status of a run that failed before its command (fail fast).
const FAILED_BEFORE_COMMAND: i32 = 125;

#[test]
fn a_service_that_fails_before_the_command_ends_the_run_at_once() {
    common::namespace::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let m = marker(30 + i as u32);
        // A service whose main process dies at once after some output; a
        // sibling that would otherwise keep the run settling for long.
        let postgres = "start on startup\n\
             exec sh -c 'for n in $(seq 1 30); do echo line $n; done; exit 1'\n";
        let slow =
            format!("start on startup\nconsole none\npre-start exec sleep {m}\nexec sleep 1000\n");
        // A pre-start that fails.
        let broken =
            "start on startup\nconsole log\npre-start exec sh -c 'echo broken-pre; exit 4'\n\
             exec sleep 1000\n";
        for (name, job, how) in [
            (
                "postgres",
                postgres,
                "postgres failed: main process exited with status 1",
            ),
            (
                "broken",
                broken,
                "broken failed: pre-start process exited with status 4",
            ),
        ] {
            let dir = TempDir::new("run-failfast");
            let out = output(outset_run(
                &dir,
                &[(name, job), ("slow", &slow)],
                mode,
                &["touch", &dir.0.join("ran").display().to_string()],
            ));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(FAILED_BEFORE_COMMAND),
                "{mode:?} {name}: {err}"
            );
            assert!(
                err.contains(&format!("outset run: {how}")),
                "{mode:?}: {err}"
            );
            assert!(
                !dir.0.join("ran").exists(),
                "{mode:?} {name}: the command ran"
            );
            assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
            if name == "postgres" {
                // The tail of its log: the last lines, not the first.
                assert!(err.contains("line 30\n"), "{mode:?}: {err}");
                assert!(err.contains("line 11\n"), "{mode:?}: {err}");
                assert!(!err.contains("line 10\n"), "{mode:?}: {err}");
            } else {
                assert!(err.contains("broken-pre\n"), "{mode:?}: {err}");
            }
        }
    }
}

#[test]
fn a_required_job_that_is_not_running_fails_the_run() {
    common::namespace::assert_root();
    for mode in MODES {
        // A typo in `start on`: the job is never started.
        let postgres = "start on startpu\nconsole none\nexec sleep 1000\n";
        let redis = "start on startup\nconsole none\nexec sleep 1000\n";
        let dir = TempDir::new("run-require");
        let out = output(outset_run(
            &dir,
            &[("postgres", postgres), ("redis", redis)],
            &[mode, &["--require", "redis", "--require=postgres"]].concat(),
            &["touch", &dir.0.join("ran").display().to_string()],
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(FAILED_BEFORE_COMMAND),
            "{mode:?}: {err}"
        );
        assert!(
            err.contains("outset run: required job postgres is not running (stop/waiting)"),
            "{mode:?}: {err}"
        );
        assert!(!err.contains("required job redis"), "{mode:?}: {err}");
        assert!(!dir.0.join("ran").exists(), "{mode:?}: the command ran");

        // A required job that does not exist at all.
        let dir = TempDir::new("run-require");
        let out = output(outset_run(
            &dir,
            &[("redis", redis)],
            &[mode, &["--require", "nosuch"]].concat(),
            &["true"],
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(FAILED_BEFORE_COMMAND),
            "{mode:?}: {err}"
        );
        assert!(
            err.contains("outset run: required job nosuch is not running (unknown job)"),
            "{err}"
        );

        // Running: the command runs.
        let dir = TempDir::new("run-require");
        let out = output(outset_run(
            &dir,
            &[("redis", redis)],
            &[mode, &["--require", "redis"]].concat(),
            &["true"],
        ));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// SIGKILL every process whose command line mentions `text` (what a
/// failed test left behind).
fn kill_mentioning(text: &str) {
    for pid in common::procs::pids() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(text) {
            // SAFETY: kill(2) on a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Wait for `child` for up to `secs`; None (after killing it) if it is
/// still running then.
fn wait_bounded(mut child: std::process::Child, secs: u64) -> Option<Output> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}

#[test]
fn the_commands_leftovers_go_before_the_services_stop() {
    common::namespace::assert_root();
    for (i, mode) in MODES.into_iter().enumerate() {
        let dir = TempDir::new("run-leftovers");
        let m = marker(40 + i as u32);
        // A server that, told to stop, waits for its clients to let go of
        // a lock (as postgres' smart shutdown waits for its connections);
        // its kill timeout is far beyond what the test waits.
        let server = "start on startup\nstop on runlevel [016]\nconsole none\nkill timeout 30\n\
             exec sh -c 'trap \"flock @DIR@/lock true; echo clean >> @DIR@/stopped; exit 0\" TERM; \
             echo up > @DIR@/up; while :; do sleep 0.05; done'\n";
        // The command leaves a connected client behind.
        let script = format!(
            "d={}; flock $d/lock sh -c \"touch $d/held; exec sleep {m}\" > /dev/null 2>&1 & \
             while [ ! -e $d/held ]; do sleep 0.02; done; exit 0",
            dir.0.display()
        );
        let child = outset_run(&dir, &[("server", server)], mode, &["sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("outset run");
        let Some(out) = wait_bounded(child, 10) else {
            kill_mentioning(&dir.0.display().to_string());
            kill_mentioning(&m);
            panic!("{mode:?}: the teardown waited for the server's kill timeout");
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{mode:?}: {err}");
        let stopped = std::fs::read_to_string(dir.0.join("stopped")).unwrap_or_default();
        assert_eq!(stopped, "clean\n", "{mode:?}: {err}");
        assert!(!err.contains("killed by KILL"), "{mode:?}: {err}");
        assert_eq!(processes_with(&m), Vec::<i32>::new(), "{mode:?}");
    }
}

#[test]
fn logs_are_per_run_and_shown_when_asked_on_failure() {
    common::namespace::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-logs");
        let chatty = "start on startup\nexec sh -c 'echo chatty says hello; exec sleep 1000'\n";
        // A job that never logs, and one that is not run at all.
        let quiet = "start on startup\nconsole none\nexec sleep 1000\n";
        let wait_hello = format!(
            "while ! grep -q hello {}/logs/chatty.log 2>/dev/null; do sleep 0.02; done",
            dir.0.display()
        );
        // Twice: the second run's log holds its own output only.
        for _ in 0..2 {
            let out = output(outset_run(
                &dir,
                &[("chatty", chatty), ("quiet", quiet)],
                mode,
                &["sh", "-c", &wait_hello],
            ));
            assert!(out.status.success(), "{mode:?}");
            // Not asked for, or no failure: no log on stderr.
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains("hello"),
                "{mode:?}"
            );
        }
        let log = std::fs::read_to_string(dir.0.join("logs/chatty.log")).expect("log");
        // (A pty's line ends.)
        assert_eq!(log, "chatty says hello\r\n", "{mode:?}");

        for (command, code) in [
            (format!("{wait_hello}; exit 3"), 3),
            (wait_hello.clone(), 0),
        ] {
            let out = output(outset_run(
                &dir,
                &[("chatty", chatty), ("quiet", quiet)],
                &[mode, &["--show-logs-on-failure"]].concat(),
                &["sh", "-c", &command],
            ));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{mode:?}: {err}");
            let shown = err.contains(&format!(
                "outset run: log of chatty ({}):\nchatty says hello\r\n",
                dir.0.join("logs/chatty.log").display()
            ));
            assert_eq!(shown, code != 0, "{mode:?}: {err}");
        }
    }
}

#[test]
fn net_ns_lets_parallel_runs_use_the_same_port() {
    common::namespace::assert_root();
    let port = 20_000 + std::process::id() % 20_000;
    let dirs = [TempDir::new("run-netns"), TempDir::new("run-netns")];
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let other = &dirs[1 - i];
            dir.write("www/whoami", &format!("server {i}\n"));
            let web = format!(
                "start on startup\nconsole none\n\
                 exec busybox httpd -f -p 127.0.0.1:{port} -h @DIR@/www\n"
            );
            // Both servers are up before either command asks its own.
            let script = format!(
                "touch {d}/ready; n=0; while [ ! -e {o}/ready ]; do n=$((n+1)); \
                 [ $n -gt 400 ] && exit 9; sleep 0.05; done; \
                 busybox wget -q -O - http://127.0.0.1:{port}/whoami",
                d = dir.0.display(),
                o = other.0.display()
            );
            outset_run(dir, &[("web", &web)], &["--net-ns"], &["sh", "-c", &script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("outset run")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = wait_bounded(child, 60).expect("outset run returned");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{i}: {err}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("server {i}\n")
        );
    }
}

#[test]
fn ipc_ns_keeps_shared_memory_inside() {
    common::namespace::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-ipcns");
        let name = format!("outset-test-{}", marker(50));
        // A size no other segment is likely to have, to find it by.
        let size = 1_000_000 + marker(50).parse::<u64>().unwrap_or(0) % 1_000_000;
        let script = format!(
            "ipcmk -M {size} > /dev/null && touch /dev/shm/{name} && ls /dev/shm > {d}/inside",
            d = dir.0.display()
        );
        let out = output(outset_run(
            &dir,
            &[],
            &[mode, &["--ipc-ns"]].concat(),
            &["sh", "-c", &script],
        ));
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shm_file = std::path::Path::new("/dev/shm").join(&name);
        let leaked_file = shm_file.exists();
        let _ = std::fs::remove_file(&shm_file);
        // /proc/sysvipc/shm: key shmid perms size ...
        let leaked: Vec<String> = std::fs::read_to_string("/proc/sysvipc/shm")
            .expect("sysvipc")
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(3) == Some(&size.to_string().as_str())).then(|| f[1].to_string())
            })
            .collect();
        for id in &leaked {
            let _ = Command::new("ipcrm").args(["-m", id]).status();
        }
        assert!(!leaked_file, "{mode:?}: /dev/shm/{name} is visible outside");
        assert!(
            leaked.is_empty(),
            "{mode:?}: segment {leaked:?} is visible outside"
        );
        // Inside, /dev/shm was a fresh one.
        let inside = std::fs::read_to_string(dir.0.join("inside")).expect("inside");
        assert_eq!(inside, format!("{name}\n"), "{mode:?}");
    }
}

#[test]
fn isolation_options_need_root() {
    for opt in ["--ipc-ns", "--net-ns", "--pid-ns"] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_outset"))
            .args([
                "run",
                opt,
                "--confdir",
                "/nonexistent",
                "--logdir",
                "/tmp",
                "--",
                "true",
            ])
            .output()
            .expect("setpriv");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{opt}: {err}");
        assert!(
            err.contains(&format!("outset run: {opt} needs root")),
            "{opt}: {err}"
        );
    }
}

#[test]
fn the_command_gets_the_terminal_in_the_foreground_and_gives_it_back() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    common::namespace::assert_root();
    for mode in MODES {
        let dir = TempDir::new("run-tty");
        std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let d = dir.0.display();
        // The command: can it open its terminal, and is its group the
        // terminal's foreground group (stat fields 5 and 8)?
        let command = format!(
            "test -w /dev/tty && echo > /dev/tty && echo tty-ok > {d}/tty; \
             set -- $(cat /proc/$$/stat); [ \"$5\" = \"$8\" ] && echo fg-ok > {d}/fg"
        );
        // Around it, a shell that owns the terminal and looks at its
        // foreground group once outset is done.
        let outer = format!(
            "{outset} run {opts} --confdir {d}/conf --logdir {d}/logs -- sh -c '{command}'; \
             set -- $(cat /proc/$$/stat); echo \"$5 $8\" > {d}/after",
            outset = env!("CARGO_BIN_EXE_outset"),
            opts = mode.join(" "),
        );
        let slave = pty.slave.as_raw_fd();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &outer])
            .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stdout(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stderr(Stdio::from(pty.slave.try_clone().expect("dup")));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let _ = slave;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("sh");
        // Only the child may hold the terminal now, so that the master
        // reads to its end.
        drop(cmd);
        drop(pty.slave);
        // Keep the terminal drained while it runs.
        let mut master = std::fs::File::from(pty.master);
        let reader = std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut master, &mut sink);
            sink
        });
        let out = wait_bounded(child, 60).expect("the run returned");
        let said = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
        assert!(out.status.success(), "{mode:?}: {said}");
        let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
        assert_eq!(read("tty"), "tty-ok\n", "{mode:?}: {said}");
        assert_eq!(read("fg"), "fg-ok\n", "{mode:?}: {said}");
        let after = read("after");
        let fields: Vec<&str> = after.split_whitespace().collect();
        assert_eq!(fields.len(), 2, "{mode:?}: {after:?}");
        assert_eq!(
            fields[0], fields[1],
            "{mode:?}: foreground group not given back"
        );
    }
}
