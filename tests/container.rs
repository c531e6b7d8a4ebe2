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
    assert!(
        ns.log()
            .contains("init: container mode: --container given\n"),
        "log:\n{}",
        ns.log()
    );
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
fn a_pid_namespace_without_markers_is_a_container() {
    use std::time::{Duration, Instant};
    let dir = common::TempDir::new("container-unmarked");
    let d = dir.0.display().to_string();
    dir.write(
        "conf/svc.conf",
        &format!(
            "start on startup\nstop on runlevel [016]\nconsole none\n\
             exec sh -c 'echo \"$container\" > {d}/svc.env; trap \"echo svc >> {d}/stopped; exit 0\" TERM; \
             while :; do sleep 0.05; done'\n"
        ),
    );
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let conf = format!("{d}/conf");
    let logs = format!("{d}/logs");
    let mut child = common::namespace::MarkerFree(
        common::namespace::marker_free_pid1(&dir, &["--confdir", &conf, "--logdir", &logs])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("unshare"),
    );
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
    let all = || format!("init log:\n{}\nkmsg:\n{}", read("init.log"), read("kmsg"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read("svc.env").ends_with('\n') {
        assert!(Instant::now() < deadline, "svc never started; {}", all());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Jobs are told, so the shipped ones skip getty, mounts and hostname.
    assert_eq!(read("svc.env"), "outset\n", "{}", all());
    assert!(
        read("init.log").contains("init: container mode: PID namespace is not the initial one\n"),
        "{}",
        all()
    );
    // Its messages stay out of the host's kernel log.
    assert_eq!(read("kmsg"), "", "{}", all());
    let init = child.init_pid().expect("init pid");
    // SIGTERM stops it (a machine would re-exec).
    // SAFETY: kill(2) on the namespace's init.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            panic!("PID 1 did not stop; {}", all());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}; {}", all());
    assert_eq!(read("stopped"), "svc\n", "{}", all());
    assert!(!read("init.log").contains("Re-executing"), "{}", all());
}

#[test]
fn shipped_jobs_find_outsets_own_tools_off_the_path() {
    // PID 1's PATH is the standard one, which lacks the directory of
    // these binaries: mountall needs `initctl`, cgmanager
    // `outset-cgmanager` (its socket moved into the test directory).
    let shipped = |name: &str| {
        std::fs::read_to_string(format!("{}/jobs.d/{name}.conf", env!("CARGO_MANIFEST_DIR")))
            .expect("shipped job")
    };
    let cgmanager = shipped("cgmanager").replace(
        "env SOCKET=/sys/fs/cgroup/cgmanager/sock",
        "env SOCKET=@DIR@/cgmanager.sock",
    );
    assert!(cgmanager.contains("@DIR@/cgmanager.sock"));
    // The tools that talk to init must be outset's, even where the host
    // has its own of the same name (systemd's `telinit`).
    let observer = "start on filesystem\ntask\nconsole none\n\
         exec sh -c 'command -v telinit > @DIR@/telinit; echo \"$PATH\" > @DIR@/filesystem'\n";
    let mut ns = Namespace::start(
        "container-path",
        &[
            ("mountall", &shipped("mountall")),
            ("cgmanager", &cgmanager),
            ("observer", observer),
        ],
        &[],
    );
    let path = ns.wait_file("filesystem");
    let own = std::path::Path::new(env!("CARGO_BIN_EXE_outset"))
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    assert!(
        path.trim_end().starts_with(&format!("{own}:")),
        "{path}; log:\n{}",
        ns.log()
    );
    assert_eq!(ns.wait_file("telinit").trim_end(), format!("{own}/telinit"));
    ns.wait_for("cgmanager to be running", 60, || {
        let o = ns.ctl(&["status", "cgmanager"]);
        String::from_utf8_lossy(&o.stdout).starts_with("cgmanager start/running")
    });
    assert!(!ns.log().contains("not found"), "log:\n{}", ns.log());
    let status = ns.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_init_in_the_same_network_namespace_says_who_holds_the_socket() {
    let first = Namespace::serving(
        "container-netns-1",
        &[("svc", "start on startup\nconsole none\nexec sleep 1000\n")],
    );
    let dir = common::TempDir::new("container-netns-2");
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    dir.write(
        "conf/ready.conf",
        &format!(
            "start on startup\ntask\nconsole none\nexec sh -c 'echo up > {}/ready'\n",
            dir.0.display()
        ),
    );
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    // Its own PID and mount namespaces, the first one's network namespace.
    let mut second = common::namespace::MarkerFree(
        std::process::Command::new("nsenter")
            .arg("-t")
            .arg(first.init_pid().to_string())
            .args(["--net", "--", "unshare", "--pid", "--mount", "--fork"])
            .args(["--mount-proc", env!("CARGO_BIN_EXE_outset"), "--container"])
            .args(["--no-dbus", "--confdir"])
            .arg(dir.0.join("conf"))
            .arg("--logdir")
            .arg(dir.0.join("logs"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nsenter"),
    );
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
    first.wait_for("the second init to run its jobs", 60, || {
        read("ready") == "up\n"
    });
    let log = read("init.log");
    assert!(
        log.contains(
            "init: Unable to listen on unix:abstract=/com/ubuntu/upstart: another init in this \
             network namespace holds it"
        ),
        "{log}"
    );
    // It keeps running; the first still answers on the address.
    assert!(second.0.try_wait().expect("wait").is_none(), "{log}");
    assert!(first
        .ctl_ok(&["status", "svc"])
        .starts_with("svc start/running"));
}

#[test]
fn job_output_goes_to_stdout_prefixed_and_a_stalled_reader_stalls_nothing() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    let talker = "start on startup\nconsole log\n\
         exec sh -c 'echo Ready to accept connections; printf \"second line\"; exec sleep 1000'\n";
    // Far more than a pipe and init's own buffer hold.
    let flood = "task\nconsole log\n\
         exec sh -c 'i=0; while [ $i -lt 20000 ]; do \
         echo \"flood line $i padded to be a little longer than a short line\"; i=$((i+1)); done'\n";
    let mut ns =
        Namespace::serving_to_stdout("container-stdout", &[("talker", talker), ("flood", flood)]);
    let mut pipe = ns.unshare.stdout.take().expect("stdout pipe");
    let seen = Arc::new(Mutex::new(String::new()));
    // Reads until told to stop, then stops reading (the pipe stays open).
    let reading = Arc::new(Mutex::new(true));
    let reader = {
        let (seen, reading) = (seen.clone(), reading.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                while !*reading.lock().unwrap() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n])),
                }
            }
        })
    };
    let text = || seen.lock().unwrap().clone();
    ns.wait_for("the talker's first line", 60, || {
        text().contains("talker: Ready to accept connections\n")
    });
    // The unfinished line is held back until it ends.
    assert!(!text().contains("second line"), "{}", text());

    // A reader that stops reading: init keeps serving and flood runs to
    // the end.
    *reading.lock().unwrap() = false;
    std::thread::sleep(std::time::Duration::from_millis(100));
    ns.ctl_ok(&["start", "flood"]);
    assert!(ns
        .ctl_ok(&["status", "talker"])
        .starts_with("talker start/running"));
    assert!(
        ns.log().contains(
            "init: standard output is not being read: job output beyond 64 KiB is dropped"
        ),
        "{}",
        ns.log()
    );
    // Once it reads again, what was kept arrives and the loss is counted.
    *reading.lock().unwrap() = true;
    ns.wait_for("the count of dropped lines", 60, || {
        ns.log().contains("init: standard output is read again; ")
    });
    assert!(
        text().contains("\nflood: flood line 0 padded"),
        "{}",
        ns.log()
    );
    // The talker's last line is written out when it stops.
    ns.ctl_ok(&["stop", "talker"]);
    ns.wait_for("the talker's unfinished line", 60, || {
        text().contains("talker: second line\n")
    });
    let status = ns.stop();
    assert!(status.success(), "{status:?}");
    let _ = reader.join();
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

#[test]
fn the_shipped_jobs_boot_a_container_and_stop_without_a_failure() {
    // Every shipped job as it is, the way the README runs them: the
    // container reaches runlevel 2 and stops, and no job fails on the way
    // (a host tool of the same name as outset's, a missing `stop` name).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs.d");
    let mut jobs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("jobs.d")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".conf")?
                .to_string();
            Some((name, std::fs::read_to_string(e.path()).ok()?))
        })
        .collect();
    jobs.push((
        "up".to_string(),
        "start on stopped rc RUNLEVEL=2\ntask\nconsole none\nexec sh -c 'echo up > @DIR@/up'\n"
            .to_string(),
    ));
    let jobs: Vec<(&str, &str)> = jobs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let mut ns = Namespace::start("container-shipped", &jobs, &[]);
    ns.wait_file("up");
    ns.signal(libc::SIGTERM);
    let status = ns.wait_exit();
    let log = ns.log();
    assert!(status.success(), "{status:?}; log:\n{log}");
    for bad in ["terminated with status", "killed by", "not found"] {
        assert!(!log.contains(bad), "{bad:?} in the log:\n{log}");
    }
}
