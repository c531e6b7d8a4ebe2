//! initctl (and third-party D-Bus clients) against the real daemon in
//! `--user` mode.

mod common;

use common::{pid_of, TempDir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A session init (killed on drop) with the shared client helpers.
type Session = common::Started;

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)]) -> Session {
        common::start_session(tag, jobs, &[])
    }
}

const JOBS: &[(&str, &str)] = &[
    (
        "web",
        "description \"web server\"\nconsole none\nexec sleep 1000\n",
    ),
    ("fail", "task\nconsole none\nexec /bin/sh -c 'exit 3'\n"),
    (
        "task",
        "task\nconsole none\nexec /bin/sh -c 'sleep 0.2; echo done > @DIR@/task.out'\n",
    ),
    (
        "tty",
        "instance $TTY\nusage \"start tty TTY=name\"\nconsole none\nexec sleep 1000\n",
    ),
    (
        "a-b.c",
        "start on go\nstop on halt\nemits thing\nconsole none\nexec sleep 1000\n",
    ),
];

#[test]
fn start_stop_status_list_and_their_errors() {
    let s = Session::start("ctl", JOBS);
    let (rc, out, _) = s.ctl(&["list"]);
    assert_eq!((rc, out.as_str()), (0, "a-b.c stop/waiting\nfail stop/waiting\ntask stop/waiting\ntty stop/waiting\nweb stop/waiting\n"));

    let (rc, out, _) = s.ctl(&["start", "web"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("web start/running, process "), "{out}");
    let pid = pid_of(&out);
    assert!(pid > 0);
    assert_eq!(s.ctl(&["status", "web"]).1, out);
    assert_eq!(
        s.ctl(&["start", "web"]),
        (
            1,
            String::new(),
            "initctl: Job is already running: web\n".to_string()
        )
    );

    // A task: start returns once it has run, showing it stopped again.
    let (rc, out, _) = s.ctl(&["start", "task"]);
    assert_eq!((rc, out.as_str()), (0, "task stop/waiting\n"));
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("task.out"))
            .ok()
            .as_deref(),
        Some("done\n")
    );
    assert_eq!(
        s.ctl(&["start", "fail"]),
        (
            1,
            String::new(),
            "initctl: Job failed to start\n".to_string()
        )
    );

    // Instances.
    let (rc, out, _) = s.ctl(&["start", "tty", "TTY=tty1"]);
    assert_eq!(rc, 0);
    assert!(
        out.starts_with("tty (tty1) start/running, process "),
        "{out}"
    );
    assert_eq!(
        s.ctl(&["start", "tty", "TTY=tty1"]).2,
        "initctl: Job is already running: tty (tty1)\n"
    );
    assert_eq!(
        s.ctl(&["start", "tty"]),
        (
            1,
            String::new(),
            "initctl: Unknown parameter: TTY\nUsage: start tty TTY=name\n".to_string()
        )
    );
    assert_eq!(
        s.ctl(&["status", "tty", "TTY=tty9"]).2,
        "initctl: Unknown instance: tty9\n"
    );
    let (_, list, _) = s.ctl(&["list"]);
    assert!(
        list.contains("\ntty (tty1) start/running, process "),
        "{list}"
    );

    // Stop and the errors of stopping what is not there.
    assert_eq!(
        s.ctl(&["stop", "web"]),
        (0, "web stop/waiting\n".to_string(), String::new())
    );
    assert_eq!(
        s.ctl(&["stop", "web"]),
        (
            1,
            String::new(),
            "initctl: Unknown instance: \n".to_string()
        )
    );
    assert_eq!(
        s.ctl(&["status", "nope"]),
        (1, String::new(), "initctl: Unknown job: nope\n".to_string())
    );
    assert_eq!(
        s.ctl(&["status", "web"]),
        (0, "web stop/waiting\n".to_string(), String::new())
    );

    // Restart gives a new main process.
    let (_, before, _) = s.ctl(&["status", "tty", "TTY=tty1"]);
    let (rc, after, _) = s.ctl(&["restart", "tty", "TTY=tty1"]);
    assert_eq!(rc, 0);
    assert_ne!(pid_of(&before), pid_of(&after));
    assert!(after.starts_with("tty (tty1) start/running, process "));
}

#[test]
fn emit_waits_for_the_event_and_reports_failure() {
    let s = Session::start(
        "emit",
        &[
            ("slow", "start on go\ntask\nconsole none\nexec /bin/sh -c 'sleep 0.3; echo $X > @DIR@/slow.out'\n"),
            ("bad", "start on bad\ntask\nconsole none\nexec /bin/false\n"),
            ("onfail", "start on bad/failed\ntask\nconsole none\nexec /bin/sh -c 'echo seen > @DIR@/failed.out'\n"),
        ],
    );
    // Blocking emit: returns after the task it started has finished.
    assert_eq!(
        s.ctl(&["emit", "go", "X=42"]),
        (0, String::new(), String::new())
    );
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("slow.out"))
            .ok()
            .as_deref(),
        Some("42\n")
    );
    // --no-wait returns before the task has run.
    let _ = std::fs::remove_file(s.dir.0.join("slow.out"));
    assert_eq!(s.ctl(&["emit", "--no-wait", "go", "X=7"]).0, 0);
    assert!(!s.dir.0.join("slow.out").exists());
    assert_eq!(
        s.ctl(&["emit", "bad"]),
        (1, String::new(), "initctl: Event failed\n".to_string())
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.dir.0.join("failed.out").exists() {
        assert!(Instant::now() < deadline, "bad/failed was not emitted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.ctl(&["emit", "x", "NOEQUALS"]).2,
        "initctl: Env must be KEY=VALUE pairs\n"
    );
    assert_eq!(
        s.ctl(&["emit", ""]).2,
        "initctl: Name may not be empty string\n"
    );
    assert_eq!(
        s.ctl(&["emit"]).2,
        "initctl: missing event name\nTry `initctl --help' for more information.\n"
    );
}

#[test]
fn usage_errors_version_and_multicall_names() {
    let s = Session::start("misc", JOBS);
    assert_eq!(
        s.ctl(&["version"]),
        (0, "init (upstart 1.13.2)\n".to_string(), String::new())
    );
    assert_eq!(s.ctl(&["usage", "tty"]).1, "Usage: start tty TTY=name\n");
    assert_eq!(s.ctl(&["usage", "web"]).1, "Usage: \n");
    assert_eq!(
        s.ctl(&["bogus"]),
        (
            1,
            String::new(),
            "initctl: invalid command: bogus\nTry `initctl --help' for more information.\n"
                .to_string()
        )
    );
    assert_eq!(
        s.ctl(&[]),
        (
            1,
            String::new(),
            "initctl: missing command\nTry `initctl --help' for more information.\n".to_string()
        )
    );
    assert_eq!(s.ctl(&["reload-configuration"]).0, 0);

    // Invoked as `start`/`status`, initctl is that command.
    let bin = s.dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for name in ["start", "status", "stop"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_initctl"), bin.join(name)).expect("symlink");
    }
    let run = |name: &str, args: &[&str]| {
        let o = s.cmd(bin.join(name).to_str().expect("utf-8 path"), args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (rc, out, err) = run("start", &["web"]);
    assert_eq!(rc, Some(0), "{err}");
    assert!(out.starts_with("web start/running"));
    assert_eq!(
        run("start", &["web"]).2,
        "start: Job is already running: web\n"
    );
    assert_eq!(run("status", &["nope"]).2, "status: Unknown job: nope\n");
    assert_eq!(run("stop", &["web"]).1, "web stop/waiting\n");

    // list-sessions reads the session files.
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .arg("list-sessions")
        .env("XDG_RUNTIME_DIR", s.dir.0.join("run"))
        .output()
        .expect("list-sessions");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{} {}\n", s.child.id(), s.address)
    );
}

#[test]
fn third_party_clients_work() {
    let s = Session::start("dbus", JOBS);
    let dbus_send = |args: &[&str]| {
        let address = format!("--address={}", s.address);
        let mut a = vec![
            address.as_str(),
            "--print-reply",
            "--dest=com.ubuntu.Upstart",
        ];
        a.extend_from_slice(args);
        let o = s.cmd("dbus-send", &a);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, out) = dbus_send(&["/com/ubuntu/Upstart", "com.ubuntu.Upstart0_6.GetAllJobs"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("object path \"/com/ubuntu/Upstart/jobs/a_2db_2ec\""),
        "{out}"
    );
    assert!(
        out.contains("object path \"/com/ubuntu/Upstart/jobs/web\""),
        "{out}"
    );
    let (ok, out) = dbus_send(&[
        "/com/ubuntu/Upstart/jobs/web",
        "com.ubuntu.Upstart0_6.Job.Start",
        "array:string:",
        "boolean:true",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("object path \"/com/ubuntu/Upstart/jobs/web/_\""),
        "{out}"
    );
    let (ok, out) = dbus_send(&[
        "/com/ubuntu/Upstart/jobs/web/_",
        "org.freedesktop.DBus.Properties.Get",
        "string:com.ubuntu.Upstart0_6.Instance",
        "string:state",
    ]);
    assert!(ok && out.contains("string \"running\""), "{out}");
    let (ok, out) = dbus_send(&[
        "/com/ubuntu/Upstart",
        "com.ubuntu.Upstart0_6.GetJobByName",
        "string:nope",
    ]);
    assert!(
        !ok && out.contains("com.ubuntu.Upstart0_6.Error.UnknownJob")
            && out.contains("Unknown job: nope"),
        "{out}"
    );

    // gdbus sends Hello first; the stand-in answers it.
    let gdbus = |args: &[&str]| {
        let mut a = vec![
            "call",
            "--address",
            s.address.as_str(),
            "--dest",
            "com.ubuntu.Upstart",
        ];
        a.extend_from_slice(args);
        let o = s.cmd("gdbus", &a);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart",
        "--method",
        "com.ubuntu.Upstart0_6.GetJobByName",
        "a-b.c",
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "(objectpath '/com/ubuntu/Upstart/jobs/a_2db_2ec',)"
    );
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart",
        "--method",
        "org.freedesktop.DBus.Properties.Get",
        "com.ubuntu.Upstart0_6",
        "version",
    ]);
    assert!(ok && out.contains("init (upstart 1.13.2)"), "{out}");
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart/jobs/a_2db_2ec",
        "--method",
        "org.freedesktop.DBus.Properties.Get",
        "com.ubuntu.Upstart0_6.Job",
        "start_on",
    ]);
    assert!(ok && out.contains("[['go']]"), "{out}");
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart",
        "--method",
        "com.ubuntu.Upstart0_6.EmitEvent",
        "go",
        "[]",
        "true",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart/jobs/a_2db_2ec/_",
        "--method",
        "org.freedesktop.DBus.Properties.Get",
        "com.ubuntu.Upstart0_6.Instance",
        "processes",
    ]);
    assert!(ok && out.contains("('main', "), "{out}");
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart/jobs/a_2db_2ec",
        "--method",
        "com.ubuntu.Upstart0_6.Job.Stop",
        "[]",
        "true",
    ]);
    assert!(ok, "{out}");
    assert_eq!(s.ctl(&["status", "a-b.c"]).1, "a-b.c stop/waiting\n");

    // Calls on an instance that has gone fail with UnknownMethod.
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart/jobs/a_2db_2ec/_",
        "--method",
        "org.freedesktop.DBus.Properties.Get",
        "com.ubuntu.Upstart0_6.Instance",
        "state",
    ]);
    assert!(
        !ok && out.contains("org.freedesktop.DBus.Error.UnknownMethod"),
        "{out}"
    );
    let (ok, out) = gdbus(&[
        "--object-path",
        "/com/ubuntu/Upstart/jobs/a_2db_2ec/_",
        "--method",
        "com.ubuntu.Upstart0_6.Instance.Stop",
        "false",
    ]);
    assert!(
        !ok && out.contains("org.freedesktop.DBus.Error.UnknownMethod"),
        "{out}"
    );
}

#[test]
fn waiting_clients_do_not_stall_others() {
    let s = Session::start(
        "concurrent",
        &[
            ("slow1", "task\nconsole none\nexec sleep 2\n"),
            ("slow2", "task\nconsole none\nexec sleep 2\n"),
            ("web", "console none\nexec sleep 1000\n"),
        ],
    );
    let spawn = |job: &str| {
        Command::new(env!("CARGO_BIN_EXE_initctl"))
            .args(["start", job])
            .env("UPSTART_SESSION", &s.address)
            .stdout(Stdio::piped())
            .spawn()
            .expect("initctl")
    };
    let mut a = spawn("slow1");
    let mut b = spawn("slow2");
    // Both are now waiting on tasks; a third client is served meanwhile.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = s.ctl(&["status", "slow2"]);
        if out.starts_with("slow2 start/running") {
            break;
        }
        assert!(Instant::now() < deadline, "slow2 never started: {out}");
    }
    let (rc, out, _) = s.ctl(&["start", "web"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("web start/running"));
    assert!(
        a.try_wait().expect("wait").is_none(),
        "first waiter still waiting"
    );
    assert!(
        b.try_wait().expect("wait").is_none(),
        "second waiter still waiting"
    );
    assert!(a.wait().expect("a").success());
    assert!(b.wait().expect("b").success());
}

#[test]
fn environment_log_priority_and_config_commands() {
    let s = Session::start(
        "envcmds",
        &[
            ("fruit", "start on starting grape\nstop on peach\nconsole none\nexec sleep 1000\n"),
            ("net", "emits net-*\nstart on net-up or nope\nconsole none\nexec sleep 1000\n"),
            ("w", "start on (starting fruit and runlevel [2345]) or stopped JOB=net\nconsole none\nexec sleep 1000\n"),
        ],
    );
    // set-env KEY creates KEY=; --retain keeps an existing value.
    assert_eq!(s.ctl(&["set-env", "FOO"]).0, 0);
    assert_eq!(s.ctl(&["get-env", "FOO"]).1, "\n");
    assert_eq!(s.ctl(&["set-env", "-r", "FOO=2"]).0, 0);
    assert_eq!(s.ctl(&["get-env", "FOO"]).1, "\n");
    assert_eq!(s.ctl(&["set-env", "FOO=3", "BAR=4"]).0, 0);
    assert_eq!(s.ctl(&["get-env", "FOO"]).1, "3\n");
    let (_, list, _) = s.ctl(&["list-env"]);
    let lines: Vec<&str> = list.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "list-env is sorted");
    assert!(lines.contains(&"BAR=4") && lines.contains(&"FOO=3"));
    assert_eq!(s.ctl(&["unset-env", "FOO", "NEVER_SET"]).0, 0);
    assert_eq!(
        s.ctl(&["get-env", "FOO"]),
        (
            1,
            String::new(),
            "initctl: No such variable: FOO\n".to_string()
        )
    );
    assert_eq!(
        s.ctl(&["get-env"]).2,
        "initctl: missing variable name\nTry `initctl --help' for more information.\n"
    );
    assert_eq!(s.ctl(&["reset-env"]).0, 0);
    assert_eq!(
        s.ctl(&["get-env", "BAR"]).0,
        1,
        "reset-env restores the initial table"
    );

    // New jobs start with the global table as it is now.
    assert_eq!(s.ctl(&["set-env", "ZED=9"]).0, 0);
    // `w` half-matches `starting fruit` and holds it, so do not wait.
    assert_eq!(s.ctl(&["start", "--no-wait", "fruit"]).0, 0);
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["get-env", "ZED"])
        .env("UPSTART_SESSION", &s.address)
        .env("UPSTART_JOB", "fruit")
        .env("UPSTART_INSTANCE", "")
        .output()
        .expect("get-env in job");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "9\n");

    assert_eq!(s.ctl(&["log-priority"]).1, "message\n");
    assert_eq!(s.ctl(&["log-priority", "info"]).0, 0);
    assert_eq!(s.ctl(&["log-priority"]).1, "info\n");
    assert_eq!(
        s.ctl(&["log-priority", "loud"]).2,
        "initctl: The log priority given was not recognised\n"
    );

    assert_eq!(
        s.ctl(&["show-config", "w"]).1,
        "w\n  start on ((starting fruit and runlevel [2345]) or stopped JOB=net)\n"
    );
    assert_eq!(
        s.ctl(&["show-config", "-e", "w"]).1,
        "w\n  start on starting (job: fruit, env:)\n  start on runlevel (job:, env: [2345])\n  start on stopped (job: net, env:)\n"
    );
    assert_eq!(
        s.ctl(&["show-config", "net"]).1,
        "net\n  emits net-*\n  start on (net-up or nope)\n"
    );

    let (rc, out, _) = s.ctl(&["check-config"]);
    assert_eq!(rc, 1);
    // As Upstart 1.13 prints it: w's `and` cannot be met (nothing emits
    // runlevel here), even though `stopped net` satisfies its `or`.
    assert_eq!(
        out,
        "fruit\n  start on: unknown job grape\n  stop on: unknown event peach\nw\n  start on: unknown event runlevel\n"
    );
    assert_eq!(
        s.ctl(&["check-config", "-i", "peach", "fruit"]).1,
        "fruit\n  start on: unknown job grape\n"
    );
    assert_eq!(
        s.ctl(&["check-config", "--warn", "net"]).1,
        "net\n  start on: unknown event nope\n"
    );
    assert_eq!(
        s.ctl(&["check-config", "zzz"]).2,
        "initctl: Invalid job class: zzz\n"
    );

    assert_eq!(s.ctl(&["notify-disk-writeable"]).0, 0);
    assert_eq!(
        s.ctl(&["notify-cgroup-manager-address", "unix:path=/tmp/none"])
            .0,
        0
    );
    assert_eq!(
        s.ctl(&["notify-cgroup-manager-address"]).2,
        "initctl: missing address\nTry `initctl --help' for more information.\n"
    );
}

/// Upstart's check-config judges each condition as a tree: the first
/// operator (or the root) that cannot be satisfied has every unknown event
/// and job below it listed, even when an `or` above it is satisfied, in
/// the order of Upstart's tree (an operator's second operand first). The
/// expected texts are those Upstart 1.13 prints for the same files.
#[test]
fn check_config_lists_unsatisfiable_sub_expressions_in_tree_order() {
    let complex = "start on (starting mountall\n      or (hello\n          and (stopped gdm\n              or stopped kdm\n              or stopped xdm\n              or stopped lxdm)))\n";
    let plymouth =
        format!("{complex}stop on (stopping portmap\n         or (wibble or starting beano))\n");
    let s = common::start_session(
        "check-config-tree",
        &[
            ("plymouth", &plymouth),
            ("mountall", "exec true\n"),
            ("portmap", "exec true\nemits hello\n"),
            ("gdm", "exec true\n"),
        ],
        &[],
    );
    let (rc, out, _) = s.ctl(&["check-config"]);
    assert_eq!(rc, 1);
    assert_eq!(
        out,
        "plymouth\n  stop on: unknown job beano\n  stop on: unknown event wibble\n"
    );

    // The whole start condition unsatisfiable: every unknown job of it.
    std::fs::remove_file(s.dir.0.join("conf/gdm.conf")).expect("remove gdm");
    s.dir.write(
        "conf/plymouth.conf",
        &complex.replace("(hello", "(runlevel [016]"),
    );
    s.wait_for("the reload", || {
        s.ctl(&["status", "gdm"]).0 != 0
            && s.ctl(&["show-config", "plymouth"]).1.contains("runlevel")
    });
    assert_eq!(
        s.ctl(&["check-config", "--ignore-events=runlevel"]).1,
        "plymouth\n  start on: unknown job lxdm\n  start on: unknown job xdm\n  start on: unknown job kdm\n  start on: unknown job gdm\n"
    );

    // A job event names the first of its arguments that is `JOB=NAME`
    // or, first, a plain word.
    s.dir.write(
        "conf/plymouth.conf",
        "start on starting mountall JOB=nothere\n",
    );
    s.wait_for("the reload", || {
        s.ctl(&["show-config", "plymouth"]).1.contains("nothere")
    });
    assert_eq!(
        s.ctl(&["check-config", "plymouth"]),
        (0, String::new(), String::new())
    );
}

#[test]
fn telinit_emits_runlevel_and_runlevel_reads_utmp() {
    let s = Session::start(
        "telinit",
        &[(
            "rc",
            "start on runlevel [2345]\ninstance $RUNLEVEL\ntask\nconsole none\nexec /bin/sh -c 'echo \"$RUNLEVEL $PREVLEVEL $FOO\" >> @DIR@/rc.out'\n",
        )],
    );
    let utmp = s.dir.0.join("utmp");
    let wtmp = s.dir.0.join("wtmp");
    std::fs::write(&utmp, b"").expect("utmp");
    std::fs::write(&wtmp, b"").expect("wtmp");
    let run = |prog: &str, args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(prog);
        c.args(args)
            .env("UPSTART_SESSION", &s.address)
            .env("OUTSET_UTMP_FILE", &utmp)
            .env("OUTSET_WTMP_FILE", &wtmp)
            .env_remove("RUNLEVEL")
            .env_remove("PREVLEVEL");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("run");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let telinit = env!("CARGO_BIN_EXE_telinit");
    let runlevel = env!("CARGO_BIN_EXE_runlevel");
    assert_eq!(
        run(runlevel, &[], &[]),
        (1, "unknown\n".to_string(), String::new())
    );
    assert_eq!(run(telinit, &["5"], &[]).0, 0);
    assert_eq!(run(runlevel, &[], &[]).1, "N 5\n");
    assert_eq!(run(telinit, &["-e", "FOO=bar", "2"], &[]).0, 0);
    assert_eq!(run(runlevel, &[], &[]).1, "5 2\n");
    assert_eq!(
        run(runlevel, &[], &[("RUNLEVEL", "2"), ("PREVLEVEL", "")]).1,
        "N 2\n"
    );
    // utmp keeps one runlevel record, replaced in place; wtmp got both
    // runlevel records (no boot record: utmp agreed with PREVLEVEL).
    let rec = std::mem::size_of::<libc::utmpx>() as u64;
    assert_eq!(std::fs::metadata(&utmp).expect("utmp").len(), rec);
    assert_eq!(std::fs::metadata(&wtmp).expect("wtmp").len(), 2 * rec);
    // A PREVLEVEL that utmp does not know adds a boot record first.
    assert_eq!(run(telinit, &["3"], &[("RUNLEVEL", "S")]).0, 0);
    assert_eq!(std::fs::metadata(&wtmp).expect("wtmp").len(), 4 * rec);
    assert_eq!(run(runlevel, &[], &[]).1, "S 3\n");

    let out = s.dir.0.join("rc.out");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&out)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "runlevel events did not start rc"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out).expect("rc.out");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(lines, ["2 5 bar", "3 S ", "5 N "]);

    assert_eq!(
        run(telinit, &[], &[]),
        (
            1,
            String::new(),
            "telinit: missing runlevel\nTry `telinit --help' for more information.\n".to_string()
        )
    );
    assert_eq!(
        run(telinit, &["7"], &[]).2,
        "telinit: illegal runlevel: 7\nTry `telinit --help' for more information.\n"
    );
    assert_eq!(run(telinit, &["q"], &[]).0, 0);
}

#[test]
fn other_users_cannot_connect() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root to switch users (CI runs as root)"
    );
    let s = Session::start("peers", JOBS);
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_initctl"))
        .arg("list")
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("setpriv");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("initctl: Unable to connect to Upstart: "),
        "{err}"
    );
    // The daemon's own user still gets in.
    assert_eq!(s.ctl(&["status", "web"]).1, "web stop/waiting\n");
}

#[test]
fn early_output_waits_for_notify_disk_writeable() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root for a mount namespace (CI runs as root)"
    );
    let dir = TempDir::new("diskwrite");
    let logs = dir.0.join("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    dir.write(
        "conf/early.conf",
        "start on startup\ntask\nexec /bin/echo early output\n",
    );
    let l = logs.display().to_string();
    let script = format!(
        "mount --bind {l} {l} && mount -o remount,bind,ro {l} && exec {} --user --verbose --confdir {} --logdir {l}",
        env!("CARGO_BIN_EXE_outset"),
        dir.0.join("conf").display()
    );
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stderr(log)
        .spawn()
        .expect("unshare");
    // The daemon is the exec'd sh: same pid as our child.
    let pid = child.id();
    let session = dir.0.join(format!("run/upstart/sessions/{pid}.session"));
    let daemon_log = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon_log().contains("early state changed from post-stop to waiting")
        || !session.exists()
    {
        assert!(
            Instant::now() < deadline,
            "job did not run: {}",
            daemon_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = std::fs::read_to_string(&session).expect("session");
    let address = address
        .trim_end()
        .trim_start_matches("UPSTART_SESSION=")
        .to_string();
    let ctl = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
            .args(args)
            .env("UPSTART_SESSION", &address)
            .output()
            .expect("initctl");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert!(
        !logs.join("early.log").exists(),
        "nothing written while read-only"
    );
    assert_eq!(
        ctl(&["notify-disk-writeable"]),
        (Some(1), "initctl: Read-only file system\n".to_string())
    );
    let remount = Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "mount",
            "-o",
            "remount,bind,rw",
            &l,
            &l,
        ])
        .status()
        .expect("nsenter");
    assert!(remount.success());
    assert_eq!(ctl(&["notify-disk-writeable"]), (Some(0), String::new()));
    assert_eq!(
        std::fs::read(logs.join("early.log")).expect("early.log"),
        b"early output\r\n"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn deleting_a_running_jobs_file_keeps_it_until_it_stops() {
    let s = Session::start("deleted", JOBS);
    assert_eq!(s.ctl(&["start", "web"]).0, 0);
    std::fs::remove_file(s.dir.0.join("conf/web.conf")).expect("remove");
    assert_eq!(s.ctl(&["reload-configuration"]).0, 0);
    let (rc, out, _) = s.ctl(&["status", "web"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("web start/running, process "), "{out}");
    assert_eq!(
        s.ctl(&["stop", "web"]),
        (0, "web stop/waiting\n".to_string(), String::new())
    );
    assert_eq!(s.ctl(&["status", "web"]).2, "initctl: Unknown job: web\n");
}

#[test]
fn end_session_gives_session_end_jobs_their_time() {
    let mut s = Session::start(
        "logout",
        &[
            ("svc", "console none\nexec sleep 1000\n"),
            (
                "bye",
                "start on session-end TYPE=logout\ntask\nconsole none\nexec /bin/sh -c 'sleep 0.5; echo \"$TYPE\" > @DIR@/bye.out'\n",
            ),
        ],
    );
    assert_eq!(s.ctl(&["start", "svc"]).0, 0);
    let o = s.cmd(
        "gdbus",
        &[
            "call",
            "--address",
            &s.address,
            "--dest",
            "com.ubuntu.Upstart",
            "--object-path",
            "/com/ubuntu/Upstart",
            "--method",
            "com.ubuntu.Upstart0_6.EndSession",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = s.child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "session init did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    // The logout job ran to completion before the session ended.
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("bye.out"))
            .ok()
            .as_deref(),
        Some("logout\n")
    );
    assert!(
        !s.dir
            .0
            .join(format!("run/upstart/sessions/{}.session", s.child.id()))
            .exists(),
        "session file removed"
    );
}

#[test]
fn emit_event_with_file_passes_the_file_to_jobs() {
    let s = Session::start(
        "withfile",
        &[(
            "reader",
            "start on withfile\ntask\nconsole none\nexec /bin/sh -c 'cat /proc/self/fd/$UPSTART_FDS > @DIR@/read.out; echo \"$A\" >> @DIR@/read.out; \
             for f in /proc/$$/fd/*; do readlink $f; done | grep -c secret > @DIR@/copies'\n",
        )],
    );
    let secret = s.dir.write("secret", "the secret\n");
    let file = std::fs::File::open(&secret).expect("open");
    let client = outset::control::client::Client::connect(&s.address).expect("connect");
    use std::os::fd::AsFd;
    client
        .manager::<_, ()>(
            "EmitEventWithFile",
            &("withfile", vec!["A=1"], true, zbus::Fd::from(file.as_fd())),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e:?}: {}",
                std::fs::read_to_string(s.dir.0.join("daemon.log")).unwrap_or_default()
            )
        });
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("read.out"))
            .ok()
            .as_deref(),
        Some("the secret\n1\n")
    );
    // Exactly one descriptor of the file reached the job (Upstart's
    // behaviour), also while the caller waits for the event.
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("copies"))
            .ok()
            .as_deref(),
        Some("1\n")
    );
    // The event has finished: init lets go of the file. (The D-Bus layer
    // drops its copy of a received descriptor only once the call's message
    // is done with, just after the reply, so allow it a moment.)
    let held = || {
        std::fs::read_dir(format!("/proc/{}/fd", s.child.id()))
            .expect("fd dir")
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .any(|target| target == secret)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while held() {
        assert!(Instant::now() < deadline, "init leaked the event's file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = client
        .manager::<_, ()>(
            "EmitEventWithFile",
            &(
                "",
                Vec::<String>::new(),
                false,
                zbus::Fd::from(file.as_fd()),
            ),
        )
        .unwrap_err();
    assert_eq!(err.message, "Name may not be empty string");
}

#[test]
fn a_session_init_joins_a_notified_message_bus() {
    let s = Session::start("bus", JOBS);
    // A private bus daemon, gone with the test.
    let mut bus = Command::new("dbus-daemon")
        .args([
            "--config-file=/usr/share/dbus-1/session.conf",
            "--print-address",
            "--nofork",
            "--nopidfile",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = bus.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("bus address");
    }
    let address = line.trim().to_string();
    assert!(address.starts_with("unix:"), "{address}");

    assert_eq!(
        s.ctl(&["notify-dbus-address", &address]),
        (0, String::new(), String::new())
    );
    // A second notification is a no-op.
    assert_eq!(s.ctl(&["notify-dbus-address", &address]).0, 0);
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["--session", "status", "web"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env_remove("UPSTART_SESSION")
        .output()
        .expect("initctl --session");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "web stop/waiting\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = s.cmd(
        "dbus-send",
        &[
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=com.ubuntu.Upstart",
            "/com/ubuntu/Upstart",
            "com.ubuntu.Upstart0_6.GetJobByName",
            "string:tty",
        ],
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("/com/ubuntu/Upstart/jobs/tty"));
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["--session", "--dest", "com.ubuntu.Nobody", "status", "web"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env_remove("UPSTART_SESSION")
        .output()
        .expect("initctl --dest");
    assert_eq!(o.status.code(), Some(1), "a destination nobody owns fails");
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("initctl: "));
    let _ = bus.kill();
    let _ = bus.wait();
}

/// Objects are made from the path of each call, not registered on each
/// connection: a class that appears after a client connected is callable
/// on that connection at once, paths without an object answer
/// `UnknownMethod` (control.md §2), and introspection lists the children.
#[test]
fn objects_exist_for_every_connection_without_registration() {
    use outset::control::client::Client;
    let s = Session::start("objects", JOBS);
    let client = Client::connect(&s.address).expect("connect");
    let ping = |path: &str| client.call::<_, ()>(path, "org.freedesktop.DBus.Peer", "Ping", &());
    let introspect = |path: &str| {
        client.call::<_, String>(
            path,
            "org.freedesktop.DBus.Introspectable",
            "Introspect",
            &(),
        )
    };

    // A class added after the connection was made.
    std::fs::write(
        s.dir.0.join("conf/late.conf"),
        "console none\nexec sleep 1000\n",
    )
    .unwrap();
    assert_eq!(s.ctl(&["reload-configuration"]).0, 0);
    let started: Result<zbus::OwnedObjectPath, _> = client.call(
        "/com/ubuntu/Upstart/jobs/late",
        "com.ubuntu.Upstart0_6.Job",
        "Start",
        &(Vec::<String>::new(), true),
    );
    assert_eq!(
        started.expect("start late").as_str(),
        "/com/ubuntu/Upstart/jobs/late/_"
    );

    // Introspection: the standard interfaces, the object's own, children.
    let xml = introspect("/com/ubuntu/Upstart/jobs").expect("introspect jobs");
    for child in ["late", "web", "a_2db_2ec"] {
        assert!(xml.contains(&format!("<node name=\"{child}\"/>")), "{xml}");
    }
    let xml = introspect("/com/ubuntu/Upstart/jobs/late").expect("introspect late");
    assert!(
        xml.contains("<interface name=\"com.ubuntu.Upstart0_6.Job\">")
            && xml.contains("<interface name=\"org.freedesktop.DBus.Properties\">")
            && xml.contains("<node name=\"_\"/>"),
        "{xml}"
    );
    let xml = introspect("/").expect("introspect root");
    assert!(xml.contains("<node name=\"com\"/>"), "{xml}");

    // All of an instance's properties in one call.
    let props: std::collections::HashMap<String, zbus::OwnedVariant> = client
        .call(
            "/com/ubuntu/Upstart/jobs/late/_",
            "org.freedesktop.DBus.Properties",
            "GetAll",
            &("com.ubuntu.Upstart0_6.Instance",),
        )
        .expect("GetAll");
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["goal", "name", "processes", "state"]);

    // Gone or never there: UnknownMethod, for GetAll too.
    assert_eq!(s.ctl(&["stop", "late"]).0, 0);
    let unknown = |r: Result<(), outset::control::client::ClientError>| {
        assert_eq!(
            r.map_err(|e| e.name),
            Err("org.freedesktop.DBus.Error.UnknownMethod".to_string())
        )
    };
    let get_all = client
        .call::<_, std::collections::HashMap<String, zbus::OwnedVariant>>(
            "/com/ubuntu/Upstart/jobs/late/_",
            "org.freedesktop.DBus.Properties",
            "GetAll",
            &("com.ubuntu.Upstart0_6.Instance",),
        )
        .map(|_| ());
    unknown(get_all);
    unknown(client.call(
        "/com/ubuntu/Upstart/jobs/nope",
        "com.ubuntu.Upstart0_6.Job",
        "Stop",
        &(Vec::<String>::new(), false),
    ));
    unknown(client.call(
        "/no/such/object",
        "com.ubuntu.Upstart0_6",
        "GetAllJobs",
        &(),
    ));
    unknown(introspect("/com/ubuntu/Upstart/jobs/nope").map(|_| ()));

    // Peer answers on any path; a node on the way has no other interface.
    assert!(ping("/no/such/object").is_ok());
    let on_node = client.call::<_, Vec<zbus::OwnedObjectPath>>(
        "/com/ubuntu",
        "com.ubuntu.Upstart0_6",
        "GetAllJobs",
        &(),
    );
    assert_eq!(
        on_node.map_err(|e| e.name).err().as_deref(),
        Some("org.freedesktop.DBus.Error.UnknownInterface")
    );
}

/// A private connection that never says `Hello` is sent every signal, as
/// Upstart's are; one that does is sent only what its `AddMatch` rules
/// ask for, as on a bus.
#[test]
fn hello_makes_a_private_connection_a_subscriber() {
    use std::sync::mpsc;
    let s = Session::start("subscribe", JOBS);
    // Each connection's signal members, collected on a thread of its own.
    let watch = |hello: bool, rules: &[&str]| -> mpsc::Receiver<String> {
        let conn = zbus::block_on(
            zbus::connection::Builder::address(s.address.as_str())
                .p2p()
                .build(),
        )
        .expect("connect");
        let bus = "org.freedesktop.DBus";
        if hello {
            let _: String = zbus::block_on(conn.call_method(
                None::<&str>,
                "/org/freedesktop/DBus",
                Some(bus),
                "Hello",
                &(),
            ))
            .expect("Hello")
            .body()
            .deserialize()
            .expect("name");
        }
        for rule in rules {
            zbus::block_on(conn.call_method(
                None::<&str>,
                "/org/freedesktop/DBus",
                Some(bus),
                "AddMatch",
                &(*rule,),
            ))
            .expect("AddMatch");
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stream = zbus::MessageStream::from(&conn);
            while let Some(Ok(msg)) = zbus::block_on(futures_util::StreamExt::next(&mut stream)) {
                if msg.message_type() == zbus::message::Type::Signal {
                    let member = msg.header().member().map(|m| m.to_string());
                    if tx.send(member.unwrap_or_default()).is_err() {
                        return;
                    }
                }
            }
        });
        rx
    };
    let everything = watch(false, &[]);
    let nothing = watch(true, &[]);
    let added = watch(true, &["type='signal',member='InstanceAdded'"]);
    // Their handshakes are done (the calls above were answered); a start
    // makes InstanceAdded, GoalChanged, StateChanged and EventEmitted.
    assert_eq!(s.ctl(&["start", "web"]).0, 0);
    assert_eq!(s.ctl(&["stop", "web"]).0, 0);
    let drain = |rx: &mpsc::Receiver<String>| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(m) => got.push(m),
                Err(_) => break,
            }
        }
        got
    };
    let all = drain(&everything);
    for member in [
        "InstanceAdded",
        "GoalChanged",
        "StateChanged",
        "EventEmitted",
        "InstanceRemoved",
    ] {
        assert!(all.iter().any(|m| m == member), "{member} missing: {all:?}");
    }
    assert_eq!(drain(&nothing), Vec::<String>::new());
    assert_eq!(drain(&added), vec!["InstanceAdded".to_string()]);
}

/// A job's own processes can ask about their instance while init is
/// still busy with the turn that started it (here, 300 other tasks of the
/// same event): the instance must not be reported unknown meanwhile.
#[test]
fn a_job_sees_its_own_instance_while_init_is_busy() {
    let initctl = env!("CARGO_BIN_EXE_initctl");
    let own = format!(
        "start on go\nconsole none\npre-start exec /bin/sh -c '{initctl} status > @DIR@/own.out 2>&1'\nexec sleep 1000\n"
    );
    let mut jobs: Vec<(String, String)> = vec![("a-self".into(), own)];
    for i in 0..300 {
        jobs.push((
            format!("t{i}"),
            "task\nstart on go\nconsole none\nexec /bin/true\n".into(),
        ));
    }
    let refs: Vec<(&str, &str)> = jobs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let s = Session::start("ownstatus", &refs);
    assert_eq!(s.ctl(&["emit", "go"]).0, 0);
    let out = std::fs::read_to_string(s.dir.0.join("own.out")).expect("own.out");
    assert!(
        out.starts_with("a-self start/pre-start, process "),
        "the pre-start saw: {out}"
    );
}

/// Clients that build proxies from introspection (gdbus, d-feet) see the
/// signals of each interface (control.md §3), with Upstart's argument types.
#[test]
fn introspection_declares_every_signal() {
    let s = Session::start("signals", JOBS);
    let (rc, _, err) = s.ctl(&["start", "web"]);
    assert_eq!(rc, 0, "{err}");
    let introspect = |path: &str| {
        let o = s.introspect(path);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // One signal per line, whatever gdbus's alignment.
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let interface = |text: &str, name: &str| -> String {
        let start = text
            .find(&format!("interface {name} {{"))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        let rest = &text[start..];
        let end = rest.find("};").expect("interface end");
        rest[..end].to_string()
    };
    let signals = |text: &str| -> String {
        let from = text.find("signals:").expect("signals");
        let to = text.find("properties:").expect("properties");
        text[from + "signals:".len()..to].trim().to_string()
    };
    let manager = introspect("/com/ubuntu/Upstart");
    assert_eq!(
        signals(&interface(&manager, "com.ubuntu.Upstart0_6")),
        "JobAdded(o job); JobRemoved(o job); EventEmitted(s name, as env); Restarted();"
    );
    let job = introspect("/com/ubuntu/Upstart/jobs/web");
    assert_eq!(
        signals(&interface(&job, "com.ubuntu.Upstart0_6.Job")),
        "InstanceAdded(o instance); InstanceRemoved(o instance);"
    );
    let instance = introspect("/com/ubuntu/Upstart/jobs/web/_");
    assert_eq!(
        signals(&interface(&instance, "com.ubuntu.Upstart0_6.Instance")),
        "GoalChanged(s goal); StateChanged(s state); Failed(i status);"
    );
}

#[test]
fn check_exits_zero_only_when_wanted_services_run() {
    let s = Session::start(
        "ctl-check",
        &[
            ("web", "console none\nexec sleep 1000\n"),
            (
                "slow",
                "console none\npre-start exec sleep 1000\nexec sleep 1000\n",
            ),
            ("once", "task\nconsole none\nexec true\n"),
            ("tty", "instance $TTY\nconsole none\nexec sleep 1000\n"),
        ],
    );
    // Nothing wanted yet: everything that should run does.
    assert_eq!(s.ctl(&["check"]), (0, String::new(), String::new()));
    assert_eq!(s.ctl(&["start", "web"]).0, 0);
    assert_eq!(s.ctl(&["start", "once"]).0, 0);
    assert_eq!(s.ctl(&["start", "tty", "TTY=a"]).0, 0);
    assert_eq!(s.ctl(&["check"]), (0, String::new(), String::new()));
    assert_eq!(s.ctl(&["check", "web", "tty"]).0, 0);
    // Named jobs must run, whether or not anything wants them.
    assert_eq!(
        s.ctl(&["check", "web", "once", "nosuch"]),
        (
            1,
            "once is stop/waiting\nnosuch is not a known job\n".to_string(),
            String::new()
        )
    );
    // A service on its way up is not ready, with or without names.
    assert_eq!(s.ctl(&["start", "--no-wait", "slow"]).0, 0);
    s.wait_for("slow in pre-start", || {
        s.ctl(&["status", "slow"])
            .1
            .starts_with("slow start/pre-start")
    });
    assert_eq!(
        s.ctl(&["check"]),
        (1, "slow is start/pre-start\n".to_string(), String::new())
    );
    assert_eq!(
        s.ctl(&["check", "slow", "tty"]),
        (1, "slow is start/pre-start\n".to_string(), String::new())
    );
    assert_eq!(s.ctl(&["stop", "tty", "TTY=a"]).0, 0);
    assert_eq!(
        s.ctl(&["check", "tty"]),
        (1, "tty is stop/waiting\n".to_string(), String::new())
    );
}

/// A session init with nothing to stop ends at once on EndSession; the
/// caller still gets its reply first (Upstart's test_quiesce calls
/// EndSession and fails on a dropped connection). Losing the reply was a
/// race between the exit and the control thread writing it, most often
/// lost on a busy processor: the init shares one with a busy loop here.
#[test]
fn end_session_is_answered_even_when_init_ends_at_once() {
    let mut hog = Command::new("taskset")
        .args(["-c", "0", "sh", "-c", "while :; do :; done"])
        .spawn()
        .expect("taskset");
    for round in 0..30 {
        let mut s =
            common::start_session_wrapped("end-session-reply", &[], &[], &["taskset", "-c", "0"]);
        let client = outset::control::client::Client::connect(&s.address).expect("connect");
        let answer = client.manager::<_, ()>("EndSession", &());
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "session init did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
        if answer.is_err() {
            let _ = hog.kill();
            let _ = hog.wait();
        }
        assert!(answer.is_ok(), "round {round}: {answer:?}");
    }
    let _ = hog.kill();
    let _ = hog.wait();
}
