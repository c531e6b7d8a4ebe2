//! The real daemon in `--user` mode on temporary job directories: real
//! processes, real files, real signals.

mod common;

use common::procs::alive;
use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A session init on its job files (with the startup event), killed
/// with its jobs on drop.
type Session = common::Started;

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Session {
        Session::start_ignoring(tag, jobs, extra, &[])
    }

    /// `start`, with outset started with `ignored` signals ignored (as a
    /// shell's `trap ''` or `nohup` would leave them).
    fn start_ignoring(
        tag: &str,
        jobs: &[(&str, &str)],
        extra: &[&str],
        ignored: &'static [i32],
    ) -> Session {
        use std::os::unix::process::CommandExt;
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.0.join("conf")).expect("conf dir");
        for (name, text) in jobs {
            dir.write(
                &format!("conf/{name}.conf"),
                &text.replace("@DIR@", &dir.0.display().to_string()),
            );
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outset"));
        // SAFETY: signal(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                for &sig in ignored {
                    libc::signal(sig, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        cmd.arg("--user")
            .arg("--confdir")
            .arg(dir.0.join("conf"))
            .arg("--logdir")
            .arg(dir.0.join("logs"))
            .args(extra)
            .stdout(Stdio::null());
        common::spawn_session(dir, cmd)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.0.join(rel)
    }

    fn wait_file(&self, rel: &str) -> String {
        let p = self.path(rel);
        self.wait_for(rel, || p.exists());
        // Give the writer a moment to finish its line.
        self.wait_for(rel, || {
            std::fs::read_to_string(&p).is_ok_and(|s| s.ends_with('\n'))
        });
        std::fs::read_to_string(&p).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.init_pid(), sig) };
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    fn stop(&mut self) -> i32 {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon did not exit; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn startup_runs_a_task_chain_and_logs_through_a_pty() {
    let mut s = Session::start(
        "chain",
        &[
            ("first", "start on startup\ntask\nexec /bin/echo first says hi\n"),
            (
                "second",
                "start on stopped first RESULT=ok\ntask\nconsole none\nscript\n  echo \"$UPSTART_EVENTS $JOB $RESULT $UPSTART_JOB\" > @DIR@/second.out\nend script\n",
            ),
        ],
        &[],
    );
    assert_eq!(s.wait_file("second.out"), "stopped first ok second\n");
    s.wait_for("first.log", || s.path("logs/first.log").exists());
    let log = std::fs::read(s.path("logs/first.log")).expect("log");
    assert_eq!(log, b"first says hi\r\n");
    assert!(
        !s.path("logs/second.log").exists(),
        "console none writes no log"
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn service_is_killed_on_session_end_and_nothing_is_left() {
    let mut s = Session::start(
        "svc",
        &[(
            "svc",
            "start on startup\nconsole none\nkill timeout 1\nscript\n  echo $$ > @DIR@/svc.pid\n  trap '' TERM\n  sh -c 'trap \"\" TERM; echo $$ > @DIR@/child.pid; exec sleep 1000' &\n  wait\nend script\n",
        )],
        &["--verbose"],
    );
    s.wait_file("svc.pid");
    s.wait_file("child.pid");
    let (main, child) = (read_pid(&s.path("svc.pid")), read_pid(&s.path("child.pid")));
    assert!(alive(main) && alive(child));
    assert_eq!(s.stop(), 0);
    let log = s.log();
    assert!(
        log.contains("Sending KILL signal to svc main process"),
        "{log}"
    );
    // SIGKILL is delivered asynchronously: wait (bounded) for both to go.
    s.wait_for("the whole process group to be gone", || {
        !alive(main) && !alive(child)
    });
}

#[test]
fn exec_failure_is_reported_and_fails_the_job() {
    let mut s = Session::start(
        "execfail",
        &[
            ("broken", "start on startup\nexec /nonexistent/binary --flag\n"),
            (
                "watch",
                "start on stopped broken\ntask\nconsole none\nexec /bin/sh -c 'echo \"$RESULT $PROCESS ${EXIT_STATUS-none}\" > @DIR@/watch.out'\n",
            ),
        ],
        &[],
    );
    assert_eq!(s.wait_file("watch.out"), "failed main none\n");
    let log = s.log();
    assert!(
        log.contains("init: Failed to spawn broken main process: unable to execute: No such file or directory"),
        "{log}"
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn setup_failures_use_the_reference_messages() {
    let mut s = Session::start(
        "setupfail",
        &[
            (
                "baddir",
                "start on startup\nchdir /nonexistent-dir\nexec /bin/true\n",
            ),
            (
                "baduser",
                "start on startup\nsetuid no-such-user-outset\nexec /bin/true\n",
            ),
        ],
        &[],
    );
    s.wait_for("both failures", || {
        let log = s.log();
        log.contains("Failed to spawn baddir main process: unable to change working directory: No such file or directory")
            && log.contains("Failed to spawn baduser main process: unable to find setuid user")
    });
    assert_eq!(s.stop(), 0);
}

#[test]
fn multi_line_scripts_come_through_fd_9_and_attributes_apply() {
    let mut s = Session::start(
        "script",
        &[(
            "attrs",
            "start on startup\ntask\nconsole none\numask 027\nnice 7\nlimit nofile 64 128\nchdir /tmp\nenv GREETING=\"two words\"\nscript\n  exec > @DIR@/attrs.tmp\n  echo \"$GREETING\"\n  umask\n  ulimit -n\n  pwd\n  cut -d' ' -f19 /proc/self/stat\n  ls /proc/self/fd | tr '\\n' ' '\n  echo\n  mv @DIR@/attrs.tmp @DIR@/attrs.out\nend script\n",
        )],
        &[],
    );
    let out = s.wait_file("attrs.out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..5],
        ["two words", "0027", "64", "/tmp", "7"],
        "{out}"
    );
    let fds: Vec<&str> = lines[5].split_whitespace().collect();
    assert!(!fds.contains(&"9"), "the shell dropped fd 9: {fds:?}");
    assert_eq!(s.stop(), 0);
}

#[test]
fn job_processes_start_with_default_signal_actions_and_none_blocked() {
    // Rust ignores SIGPIPE in outset itself; SIGQUIT and SIGUSR2 come
    // ignored from whoever started it. None of that reaches a job.
    let mut s = Session::start_ignoring(
        "sigreset",
        &[(
            "sigs",
            "start on startup\ntask\nconsole none\nexec /bin/cp /proc/self/status @DIR@/status.out\n",
        )],
        &[],
        &[libc::SIGQUIT, libc::SIGUSR2],
    );
    let status = s.wait_file("status.out");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let mask = |name: &str| u64::from_str_radix(&field(name), 16).expect("signal mask");
    // glibc keeps signals 32 and 33 for itself (no program can change
    // their action through it, Upstart neither): whatever the test
    // harness left on them passes through.
    let settable = !((1u64 << 31) | (1u64 << 32));
    assert_eq!(mask("SigIgn:") & settable, 0, "{status}");
    assert_eq!(mask("SigBlk:"), 0, "{status}");
    assert_eq!(s.stop(), 0);
}

#[test]
fn respawn_limit_stops_a_crashing_service() {
    let mut s = Session::start(
        "respawn",
        &[
            ("crash", "start on startup\nrespawn\nrespawn limit 3 60\nconsole none\nexec /bin/false\n"),
            (
                "after",
                "start on stopped crash\ntask\nconsole none\nexec /bin/sh -c 'echo \"$RESULT $PROCESS\" > @DIR@/after.out'\n",
            ),
        ],
        &[],
    );
    assert_eq!(s.wait_file("after.out"), "failed respawn\n");
    let log = s.log();
    assert_eq!(
        log.matches("crash main process ended, respawning").count(),
        3,
        "{log}"
    );
    assert!(log.contains("crash respawning too fast, stopped"));
    assert_eq!(s.stop(), 0);
}

#[test]
fn a_hanging_pre_start_does_not_block_the_daemon() {
    let mut s = Session::start(
        "hang",
        &[
            ("slow", "start on startup\nconsole none\npre-start exec /bin/sleep 1000\nexec /bin/true\n"),
            ("quick", "start on startup\ntask\nconsole none\nexec /bin/sh -c 'echo done > @DIR@/quick.out'\n"),
            (
                "later",
                "start on stopped quick\ntask\nconsole none\nexec /bin/sh -c 'echo later > @DIR@/later.out'\n",
            ),
        ],
        &["--verbose"],
    );
    assert_eq!(s.wait_file("quick.out"), "done\n");
    assert_eq!(s.wait_file("later.out"), "later\n");
    // SIGHUP is still served while pre-start hangs.
    s.signal(libc::SIGHUP);
    s.wait_for("reload", || s.log().contains("Reloading configuration"));
    assert!(
        s.log().contains("slow pre-start process"),
        "pre-start is still running"
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn new_job_files_are_picked_up_without_starting_jobs() {
    let mut s = Session::start(
        "reload",
        &[
            ("gate", "start on startup\ntask\nconsole none\nexec /bin/sh -c 'echo > @DIR@/gate.started; while [ ! -e @DIR@/go ]; do sleep 0.05; done'\n"),
        ],
        &[],
    );
    s.wait_file("gate.started");
    // Written while `gate` runs: the new job must wait for its event.
    s.dir.write(
        "conf/added.conf",
        &"start on stopped gate\ntask\nconsole none\nexec /bin/sh -c 'echo added > @DIR@/added.out'\n"
            .replace("@DIR@", &s.dir.0.display().to_string()),
    );
    s.dir.write(
        "conf/idle.conf",
        &"start on startup\ntask\nexec /bin/sh -c 'echo idle > @DIR@/idle.out'\n"
            .replace("@DIR@", &s.dir.0.display().to_string()),
    );
    std::thread::sleep(Duration::from_millis(300));
    s.dir.write("go", "");
    assert_eq!(s.wait_file("added.out"), "added\n");
    assert!(
        !s.path("idle.out").exists(),
        "a reload never starts jobs by itself"
    );
    assert_eq!(s.stop(), 0);
}

#[test]
fn orphans_are_reaped_by_the_session_init() {
    let mut s = Session::start(
        "orphans",
        &[(
            "forker",
            "start on startup\ntask\nconsole none\nscript\n  sh -c 'sleep 0.3; cut -d\" \" -f4 /proc/$$/stat > @DIR@/orphan.ppid' &\nend script\n",
        )],
        &[],
    );
    let ppid = s.wait_file("orphan.ppid");
    assert_eq!(
        ppid.trim().parse::<i32>().ok(),
        Some(s.init_pid()),
        "orphans are re-parented to outset"
    );
    // The orphan has exited; nothing of ours may stay a zombie.
    s.wait_for("no zombies", || {
        let children = std::fs::read_to_string(format!(
            "/proc/{}/task/{}/children",
            s.init_pid(),
            s.init_pid()
        ))
        .unwrap_or_default();
        children
            .split_whitespace()
            .all(|p| alive(p.parse().unwrap_or(0)))
    });
    assert_eq!(s.stop(), 0);
}

#[test]
fn expect_fork_and_daemon_follow_the_forks() {
    let mut s = Session::start(
        "expect",
        &[
            (
                "forking",
                "start on startup\nexpect fork\nconsole none\nexec /bin/sh -c 'sleep 1000 & echo $! > @DIR@/fork.pid'\n",
            ),
            (
                "daemonic",
                "start on startup\nexpect daemon\nconsole none\nexec /bin/sh -c '(sleep 1000 & echo $! > @DIR@/daemon.pid) & exit 0'\n",
            ),
            (
                "ready",
                "start on started forking and started daemonic\ntask\nconsole none\nexec /bin/sh -c 'echo ready > @DIR@/ready.out'\n",
            ),
        ],
        &["--verbose"],
    );
    assert_eq!(s.wait_file("ready.out"), "ready\n");
    let fork_pid = read_pid(&s.path("fork.pid"));
    s.wait_file("daemon.pid");
    let daemon_pid = read_pid(&s.path("daemon.pid"));
    let log = s.log();
    assert!(
        log.contains(&format!("became new process ({fork_pid})")),
        "{log}"
    );
    assert!(
        log.contains(&format!("became new process ({daemon_pid})")),
        "{log}"
    );
    assert_eq!(s.stop(), 0);
    let log = s.log();
    assert!(
        log.contains(&format!(
            "Sending TERM signal to forking main process ({fork_pid})"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Sending TERM signal to daemonic main process ({daemon_pid})"
        )),
        "{log}"
    );
    s.wait_for("followed processes to be stopped", || {
        !alive(fork_pid) && !alive(daemon_pid)
    });
}

#[test]
fn shipped_jobs_run_as_the_readme_says() {
    let dir = TempDir::new("shipped");
    let logs = dir.0.join("logs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outset"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--user", "--confdir", "jobs.d", "--logdir"])
        .arg(&logs);
    let mut s = common::spawn_session(dir, cmd);
    s.wait_for("hello.log", || {
        std::fs::read(logs.join("hello.log"))
            .is_ok_and(|b| b == b"hello from outset (job hello)\r\n")
    });
    s.wait_for("ticker", || {
        std::fs::read_to_string(logs.join("ticker.log"))
            .is_ok_and(|t| t.starts_with("ticker starting\r\ntick "))
    });
    assert!(s.log().contains("outset session init running as pid"));
    // The system jobs (mountall, hostname, ...) end quietly in a session:
    // no job failed, nothing wrote output.
    let log = s.log();
    assert!(!log.contains("terminated with status"), "{log}");
    assert!(!log.contains("killed by"), "{log}");
    let written: Vec<_> = std::fs::read_dir(&logs)
        .expect("log dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "hello.log" && n != "ticker.log")
        .collect();
    assert!(written.is_empty(), "{written:?}");
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(s.init_pid(), libc::SIGTERM) };
    let status = s.child.wait().expect("wait");
    assert!(status.success());
    let ticker = std::fs::read_to_string(logs.join("ticker.log")).expect("ticker log");
    assert!(ticker.ends_with("ticker stopped\r\n"), "{ticker:?}");
}

#[test]
fn debug_stanza_stops_the_process_before_exec() {
    let mut s = Session::start(
        "debugstop",
        &[(
            "dbg",
            "start on startup\ndebug\nconsole none\nexec /bin/sh -c 'echo ran > @DIR@/dbg.out; sleep 1000'\n",
        )],
        &["--debug"],
    );
    s.wait_for("the process to stop itself", || {
        s.log().contains("dbg main process (")
    });
    let log = s.log();
    let pid: i32 = log
        .split("dbg main process (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .expect("pid in log");
    s.wait_for("SIGSTOP", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('T'))
        })
    });
    assert!(!s.path("dbg.out").exists(), "stopped before exec");
    // A debugger (here: SIGCONT) lets it go on.
    // SAFETY: kill(2) on the job's process.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(s.wait_file("dbg.out"), "ran\n");
    assert_eq!(s.stop(), 0);
}

#[test]
fn a_command_is_searched_on_the_jobs_own_path_by_the_child() {
    // As execvp: a candidate that may not be executed is passed over for
    // a later one; init itself never looks into the job's PATH.
    let s = common::start_session(
        "exe-search",
        &[(
            "found",
            "task\nconsole none\nenv PATH=@DIR@/a:@DIR@/nothing-here:@DIR@/b:/usr/bin:/bin\nexec prog-xyz\n",
        )],
        &[],
    );
    use std::os::unix::fs::PermissionsExt;
    let d = s.dir.0.display().to_string();
    let a = s
        .dir
        .write("a/prog-xyz", "#!/bin/sh\necho wrong > DIR/out\n");
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let b = s
        .dir
        .write("b/prog-xyz", &format!("#!/bin/sh\necho right > {d}/out\n"));
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (code, _, err) = s.ctl(&["start", "found"]);
    assert_eq!(code, 0, "{err}");
    s.wait_for("the program found on PATH", || {
        std::fs::read_to_string(s.dir.0.join("out")).is_ok_and(|t| t == "right\n")
    });
}

#[test]
fn a_quiet_init_lets_go_of_its_program_text_and_still_works() {
    // Loading and answering fault most of the program in (each fault maps
    // its neighbours too); after a quiet second init drops those pages
    // from its page tables, and what it uses next comes back.
    let s = common::start_session(
        "text",
        &[("t", "task\nconsole none\nexec touch @DIR@/ran\n")],
        &[],
    );
    let pid = s.init_pid();
    let (size, _) = common::procs::program_text_kib(pid);
    assert!(size > 0, "no text mapping of the program found");
    // Seen as the text mapped falling at once by a good part of the
    // program. Where it settles is not checked: what the idle loop faults
    // back depends on how the kernel holds the file (a fault maps a whole
    // large folio of the page cache, and a copied binary has bigger ones
    // than one the linker wrote).
    let let_go = || {
        let mut last = common::procs::program_text_kib(pid).1;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            let now = common::procs::program_text_kib(pid).1;
            if last.saturating_sub(now) >= size / 4 {
                return true;
            }
            last = now;
        }
        false
    };
    // Work, then watch the quiet second after it (again if this test was
    // held up past that second before it first looked).
    s.wait_for("most of the program text to be let go", || {
        let (code, _, err) = s.ctl(&["status", "t"]);
        assert_eq!(code, 0, "{err}");
        let_go()
    });
    let (code, _, err) = s.ctl(&["start", "t"]);
    assert_eq!(code, 0, "{err}");
    s.wait_for("the task to run", || s.dir.0.join("ran").exists());
    let (code, out, err) = s.ctl(&["status", "t"]);
    assert_eq!((code, out.as_str()), (0, "t stop/waiting\n"), "{err}");
}
