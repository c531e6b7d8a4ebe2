//! Who may control init, what a job runs as, and what event values can
//! (not) do. Real binaries; the PID 1 cases need root, as CI has.

mod common;

use common::namespace::{self, Namespace};
use common::procs;
use std::process::Output;

const NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn non_root_callers_cannot_control_pid1() {
    let pid1 = Namespace::serving(
        "nonroot",
        &[
            ("svc", "console none\nexec sleep 100000\n"),
            (
                "onpoke",
                "start on poke\ntask\nconsole none\nexec /bin/sh -c 'echo poked > @DIR@/poked'\n",
            ),
        ],
    );
    let initctl = env!("CARGO_BIN_EXE_initctl");
    // A non-root caller aimed at PID 1's private socket: refused before
    // any call is made.
    for args in [
        vec!["start", "svc"],
        vec!["stop", "svc"],
        vec!["emit", "poke"],
        vec!["set-env", "-g", "EVIL=1"],
        vec!["reset-env", "-g"],
    ] {
        let mut all: Vec<&str> = NOBODY.to_vec();
        all.extend([initctl, "--user"]);
        all.extend(&args);
        let o = pid1
            .inside(
                60,
                &["env", "UPSTART_SESSION=unix:abstract=/com/ubuntu/upstart"],
            )
            .args(&all)
            .output()
            .expect("initctl as nobody");
        let (code, out, err) = text(&o);
        assert_eq!(code, 1, "{args:?} as nobody: {out}{err}");
        assert!(
            err.starts_with("initctl: Unable to connect to Upstart: "),
            "{args:?}: {err}"
        );
    }
    // Nothing happened.
    assert_eq!(pid1.ctl_ok(&["status", "svc"]), "svc stop/waiting\n");
    assert!(!pid1.dir.0.join("poked").exists());
    assert!(!pid1.ctl_ok(&["list-env", "-g"]).contains("EVIL"));
    // Root may; but not even root changes PID 1's job environment.
    assert!(pid1.ctl_ok(&["start", "svc"]).contains("start/running"));
    let (code, _, err) = text(&pid1.ctl(&["set-env", "-g", "EVIL=1"]));
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "initctl: Not permissible to modify PID 1 job environment\n"
        )
    );
    assert!(pid1.stop().success());
}

#[test]
fn a_session_socket_refuses_other_users() {
    let s = common::start_session(
        "usersock",
        &[("svc", "console none\nexec sleep 100000\n")],
        &[],
    );
    let run = |wrapper: &[&str]| {
        let mut all: Vec<&str> = wrapper.to_vec();
        all.extend([env!("CARGO_BIN_EXE_initctl"), "start", "svc"]);
        let o = namespace::bounded(60, all[0])
            .args(&all[1..])
            .env("UPSTART_SESSION", &s.address)
            .output()
            .expect("initctl");
        text(&o)
    };
    let (code, out, err) = run(&NOBODY);
    assert_eq!(code, 1, "another user got in: {out}{err}");
    assert!(
        err.starts_with("initctl: Unable to connect to Upstart: "),
        "{err}"
    );
    // Its owner gets in.
    let (code, out, err) = run(&["env"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("svc start/running, process "), "{out}");
    drop(s);
}

/// `/proc/self/status` lines of a job process, by label.
fn status_lines(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[test]
fn setuid_and_setgid_drop_identity_and_capabilities() {
    let dir = common::TempDir::new("ids-out");
    // Writable by the jobs' users.
    std::fs::create_dir_all(dir.0.join("out")).expect("out dir");
    std::fs::write(dir.0.join("out/.keep"), "").expect("keep");
    // SAFETY: chmod on our own directory.
    let c = std::ffi::CString::new(dir.0.join("out").display().to_string()).expect("path");
    unsafe { libc::chmod(c.as_ptr(), 0o1777) };
    let out = dir.0.join("out").display().to_string();
    let job = |extra: &str, name: &str| {
        format!("start on startup\ntask\nconsole none\n{extra}exec /bin/sh -c 'cat /proc/self/status > {out}/{name}'\n")
    };
    let both = job("setuid nobody\nsetgid nogroup\n", "both");
    let user = job("setuid nobody\n", "user");
    let group = job("setgid nogroup\n", "group");
    let root = job("", "root");
    let pid1 = Namespace::serving(
        "ids",
        &[
            ("both", both.as_str()),
            ("user", user.as_str()),
            ("group", group.as_str()),
            ("root", root.as_str()),
        ],
    );
    let read = |name: &str| {
        let p = dir.0.join("out").join(name);
        pid1.wait_for(name, 60, || {
            std::fs::read_to_string(&p).is_ok_and(|s| s.contains("CapBnd"))
        });
        std::fs::read_to_string(&p).unwrap_or_default()
    };
    let full_bounding = procs::status_field(std::process::id() as i32, "CapBnd:").expect("CapBnd");

    for name in ["both", "user"] {
        let s = read(name);
        assert_eq!(
            status_lines(&s, "Uid:"),
            "65534 65534 65534 65534",
            "{name}"
        );
        assert_eq!(
            status_lines(&s, "Gid:"),
            "65534 65534 65534 65534",
            "{name}"
        );
        // initgroups for the target user and group: no trace of root's
        // group 0 (spec: the reference's quirk is fixed).
        assert_eq!(status_lines(&s, "Groups:"), "65534", "{name}");
        for cap in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
            assert_eq!(status_lines(&s, cap), "0000000000000000", "{name} {cap}");
        }
        // There is no stanza for the bounding set: it is left as it was.
        assert_eq!(status_lines(&s, "CapBnd:"), full_bounding, "{name}");
    }
    // setgid alone: the group changes, the user stays root.
    let s = read("group");
    assert_eq!(status_lines(&s, "Uid:"), "0 0 0 0");
    assert_eq!(status_lines(&s, "Gid:"), "65534 65534 65534 65534");
    // Neither: root with root's capabilities.
    let s = read("root");
    assert_eq!(status_lines(&s, "Uid:"), "0 0 0 0");
    assert_ne!(status_lines(&s, "CapEff:"), "0000000000000000");
    assert!(pid1.stop().success());
}

/// `/proc/PID/FILE` of a process of the namespace, read as PID 1 sees it.
fn proc_file(pid1: &Namespace, pid: i32, file: &str) -> String {
    let o = pid1
        .inside(30, &["cat", &format!("/proc/{pid}/{file}")])
        .output()
        .expect("cat in the namespace");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `initctl status JOB` in the namespace, without its newline.
fn status_of(pid1: &Namespace, job: &str) -> String {
    text(&pid1.ctl(&["status", job])).1.trim_end().to_string()
}

fn wait_status(pid1: &Namespace, job: &str, want: &str) {
    pid1.wait_for(&format!("{job} to be {want}"), 60, || {
        status_of(pid1, job).starts_with(want)
    });
}

#[test]
fn a_chrooted_job_finds_its_user_inside_the_chroot() {
    // The host knows both names, with other ids: a lookup made outside the
    // chroot would give 65534 for nobody and succeed for daemon.
    let host = std::fs::read_to_string("/etc/passwd").expect("host passwd");
    assert!(host.lines().any(|l| l.starts_with("nobody:x:65534:")));
    assert!(host.lines().any(|l| l.starts_with("daemon:")));
    let pid1 = Namespace::serving(
        "jailuser",
        &[
            (
                "jailed",
                "chroot @DIR@/root\nsetuid nobody\nconsole none\nenv PATH=/opt/jail\n\
                 exec busybox sleep 100000\n",
            ),
            (
                "unknown",
                "chroot @DIR@/root\nsetuid daemon\nconsole none\nexec /opt/jail/busybox true\n",
            ),
        ],
    );
    let root = pid1.dir.0.join("root");
    pid1.dir.write(
        "root/etc/passwd",
        "root:x:0:0:root:/:/bin/sh\nnobody:x:4242:4343:nobody:/:/bin/sh\n",
    );
    pid1.dir.write(
        "root/etc/group",
        "root:x:0:\nnogroup:x:4343:\nstaff:x:5555:nobody\nwheel:x:6666:root,nobody\n",
    );
    std::fs::create_dir_all(root.join("opt/jail")).expect("jail bin");
    std::fs::copy("/bin/busybox", root.join("opt/jail/busybox")).expect("static busybox");

    // The program is found on the job's PATH inside the chroot (the host
    // has no /opt/jail), and runs as the chroot's nobody.
    assert!(
        pid1.ctl_ok(&["start", "jailed"])
            .starts_with("jailed start/running, process "),
        "{}",
        pid1.log()
    );
    let pid = common::pid_of(&status_of(&pid1, "jailed"));
    let status = proc_file(&pid1, pid, "status");
    assert_eq!(status_lines(&status, "Uid:"), "4242 4242 4242 4242");
    assert_eq!(status_lines(&status, "Gid:"), "4343 4343 4343 4343");
    assert_eq!(status_lines(&status, "Groups:"), "4343 5555 6666");

    // A user the host has but the chroot does not: Upstart's error.
    let (code, _, err) = text(&pid1.ctl(&["start", "unknown"]));
    assert_eq!((code, err.trim_end()), (1, "initctl: Job failed to start"));
    pid1.wait_for("the spawn failure", 30, || {
        pid1.log()
            .contains("Failed to spawn unknown main process: unable to find setuid user")
    });
    assert!(pid1.stop().success());
}

#[test]
fn a_hanging_name_service_holds_up_the_job_not_init() {
    // glibc asks nss-systemd for users /etc/passwd does not know, and it
    // reads /run/userdb/NAME.user: a FIFO there hangs that one lookup (as a
    // dead LDAP server would), while root, which the control socket's
    // handshake looks up, is still found in /etc/passwd.
    assert!(
        std::path::Path::new("/usr/lib/x86_64-linux-gnu/libnss_systemd.so.2").exists(),
        "libnss-systemd is needed (.ci/run installs it)"
    );
    let nss = common::TempDir::new("hangnss");
    nss.write("nsswitch.conf", "passwd: files systemd\ngroup: files\n");
    std::fs::create_dir_all(nss.0.join("userdb")).expect("userdb");
    let fifo = nss.0.join("userdb/outset-hang.user");
    let c = std::ffi::CString::new(fifo.display().to_string()).expect("path");
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let d = nss.0.display();
    let setup = format!(
        "mount -t tmpfs tmpfs /run && mkdir /run/userdb && \
         mount --bind {d}/userdb /run/userdb && \
         mount --bind {d}/nsswitch.conf /etc/nsswitch.conf && exec \"$@\""
    );
    let pid1 = Namespace::serving_with(
        "hangnss",
        &[
            (
                "hang",
                "setuid outset-hang\nconsole none\nexec sleep 100000\n",
            ),
            (
                "other",
                "task\nconsole none\nexec /bin/sh -c 'echo ran > @DIR@/other.out'\n",
            ),
        ],
        &["sh", "-c", &setup, "sh"],
        &[],
    );
    // Answer the lookup that is waiting on the FIFO: a user record.
    let answer = || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut w = None;
        pid1.wait_for("a reader of the user record", 30, || {
            w = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .ok();
            w.is_some()
        });
        let mut w = w.expect("writer");
        w.write_all(br#"{"userName":"outset-hang","uid":4321,"gid":4321}"#)
            .expect("user record");
    };

    for round in ["stopped while waiting", "run"] {
        assert_eq!(text(&pid1.ctl(&["start", "--no-wait", "hang"])).0, 0);
        // The job shows its in-between state; its own process, not init,
        // is the one waiting for the name service.
        wait_status(&pid1, "hang", "hang start/spawned, process ");
        let pid = common::pid_of(&status_of(&pid1, "hang"));
        assert!(pid > 1, "{round}");
        // Between the clone and its exec the child still shows init's
        // command line; the helper's comes once the exec is done.
        pid1.wait_for("the spawn helper's exec", 30, || {
            proc_file(&pid1, pid, "cmdline").contains("--spawn-helper")
        });
        // init goes on: it starts other jobs and answers.
        let _ = std::fs::remove_file(pid1.dir.0.join("other.out"));
        pid1.ctl_ok(&["start", "other"]);
        assert_eq!(
            std::fs::read_to_string(pid1.dir.0.join("other.out")).unwrap_or_default(),
            "ran\n"
        );
        assert!(pid1.ctl_ok(&["list"]).contains("hang start/spawned"));
        if round == "run" {
            answer();
            wait_status(&pid1, "hang", "hang start/running, process ");
            let status = proc_file(&pid1, pid, "status");
            assert_eq!(status_lines(&status, "Uid:"), "4321 4321 4321 4321");
            assert_eq!(status_lines(&status, "Gid:"), "4321 4321 4321 4321");
            assert_eq!(status_lines(&status, "Groups:"), "4321");
            pid1.ctl_ok(&["stop", "hang"]);
        } else {
            // As for any spawn, a stop waits for it to report.
            assert_eq!(text(&pid1.ctl(&["stop", "--no-wait", "hang"])).0, 0);
            wait_status(&pid1, "hang", "hang stop/spawned");
            answer();
            wait_status(&pid1, "hang", "hang stop/waiting");
        }
    }
    assert!(pid1.alive());
    assert!(pid1.stop().success());
}

#[test]
fn event_values_reach_jobs_only_as_environment() {
    let s = common::start_session(
        "inject",
        &[
            (
                "byscript",
                "start on inject\ntask\nconsole none\nscript\n  printf '%s\\n' \"$VALUE\" > @DIR@/script.out\n  printf '%s\\n' $VALUE >> @DIR@/script.out\nend script\n",
            ),
            // An exec line with a variable goes through the shell.
            ("byexec", "start on inject\ntask\nexec /bin/echo $VALUE\n"),
            (
                "byinstance",
                "start on inject\ninstance $VALUE\ntask\nconsole none\nexec /bin/sh -c 'printf %s \"$UPSTART_INSTANCE\" > @DIR@/instance.out'\n",
            ),
        ],
        &[],
    );
    let d = s.dir.0.display().to_string();
    let value = format!(
        "$(touch {d}/pwned1); touch {d}/pwned2 `touch {d}/pwned3` && touch {d}/pwned4 | touch {d}/pwned5 > {d}/pwned6"
    );
    let o = namespace::bounded(60, env!("CARGO_BIN_EXE_initctl"))
        .args(["emit", "inject", &format!("VALUE={value}")])
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("emit");
    let (code, _, err) = text(&o);
    assert_eq!(code, 0, "{err}");
    let script = std::fs::read_to_string(s.dir.0.join("script.out")).unwrap_or_default();
    let words: Vec<&str> = value.split_whitespace().collect();
    assert_eq!(script, format!("{value}\n{}\n", words.join("\n")));
    assert_eq!(
        std::fs::read_to_string(s.dir.0.join("instance.out")).unwrap_or_default(),
        value
    );
    // `console log` of the exec'd echo: the words, literally.
    let log = s.dir.0.join("logs/byexec.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.ends_with('\n')) {
        assert!(std::time::Instant::now() < deadline, "no byexec log");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&log).unwrap_or_default(),
        format!("{}\r\n", words.join(" "))
    );
    for n in 1..=6 {
        assert!(
            !s.dir.0.join(format!("pwned{n}")).exists(),
            "pwned{n}: an event value was executed"
        );
    }
    drop(s);
}

/// A private system bus for one test, on a path socket in `dir`, with the
/// default-deny rules of a system bus plus `policy` (a file to include),
/// or with everything allowed when `policy` is `None`.
struct Bus {
    child: std::process::Child,
    address: String,
}

impl Bus {
    fn start(dir: &std::path::Path, policy: Option<&str>) -> Bus {
        let socket = dir.join("system_bus_socket");
        let rules = match policy {
            Some(file) => format!(
                "<deny own=\"*\"/><deny send_type=\"method_call\"/></policy><include>{file}</include><policy context=\"default\">"
            ),
            None => "<allow own=\"*\"/><allow send_type=\"method_call\"/>".to_string(),
        };
        let conf = format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig><type>system</type><listen>unix:path={}</listen><auth>EXTERNAL</auth>\n\
             <policy context=\"default\"><allow user=\"*\"/>{rules}\n\
             <allow send_type=\"signal\"/>\n\
             <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n\
             <allow send_requested_reply=\"true\" send_type=\"error\"/>\n\
             <allow receive_type=\"method_call\"/><allow receive_type=\"method_return\"/>\n\
             <allow receive_type=\"error\"/><allow receive_type=\"signal\"/>\n\
             <allow send_destination=\"org.freedesktop.DBus\"/></policy></busconfig>\n",
            socket.display()
        );
        let file = dir.join("bus.conf");
        std::fs::write(&file, conf).expect("bus config");
        // Killed when the test ends (Drop), so not under `timeout`.
        let child = std::process::Command::new("dbus-daemon")
            .args(["--nofork", "--nopidfile"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .arg(format!("--config-file={}", file.display()))
            .spawn()
            .expect("dbus-daemon");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !socket.exists() {
            assert!(std::time::Instant::now() < deadline, "no bus socket");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Everybody may connect to a system bus.
        let c = std::ffi::CString::new(socket.display().to_string()).expect("path");
        // SAFETY: chmod on the socket we just made.
        unsafe { libc::chmod(c.as_ptr(), 0o666) };
        Bus {
            child,
            address: format!("unix:path={}", socket.display()),
        }
    }

    /// `initctl --system ARGS` as nobody (or as root with `as_root`).
    fn initctl(&self, as_root: bool, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<&str> = if as_root {
            vec!["env"]
        } else {
            NOBODY.to_vec()
        };
        all.extend([env!("CARGO_BIN_EXE_initctl"), "--system"]);
        all.extend(args);
        let o = namespace::bounded(60, all[0])
            .args(&all[1..])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .env_remove("UPSTART_SESSION")
            .output()
            .expect("initctl --system");
        text(&o)
    }

    /// Wait until init owns its name on the bus.
    fn wait_for_init(&self, pid1: &Namespace) {
        pid1.wait_for("init on the bus", 60, || {
            self.initctl(true, &["version"]).0 == 0
        });
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BUS_JOBS: [(&str, &str); 2] = [
    ("svc", "console none\nexec sleep 100000\n"),
    (
        "onpoke",
        "start on poke\ntask\nconsole none\nexec /bin/sh -c 'echo poked > @DIR@/poked'\n",
    ),
];

#[test]
fn init_itself_refuses_privileged_calls_from_other_users_on_a_bus() {
    // A bus that lets everyone call everything: what is refused here is
    // refused by init (control.md §5), not by the bus.
    let dir = common::TempDir::new("bus-open");
    let bus = Bus::start(&dir.0, None);
    let pid1 = Namespace::serving_on_bus("bus-open", &BUS_JOBS, &bus.address);
    bus.wait_for_init(&pid1);
    for (args, message) in [
        (
            vec!["emit", "poke"],
            "You do not have permission to emit an event",
        ),
        (
            vec!["set-env", "-g", "EVIL=1"],
            "You do not have permission to modify job environment",
        ),
        (
            vec!["unset-env", "-g", "PATH"],
            "You do not have permission to modify job environment",
        ),
        (
            vec!["reset-env", "-g"],
            "You do not have permission to modify job environment",
        ),
        (
            vec!["list-env", "-g"],
            "You do not have permission to query job environment",
        ),
        (
            vec!["get-env", "-g", "PATH"],
            "You do not have permission to query job environment",
        ),
        (
            vec!["reload-configuration"],
            "You do not have permission to reload configuration",
        ),
        (
            vec!["notify-disk-writeable"],
            "You do not have permission to notify disk is writeable",
        ),
        (
            vec!["log-priority", "debug"],
            "You do not have permission to set log priority",
        ),
    ] {
        let (code, out, err) = bus.initctl(false, &args);
        assert_eq!(
            (code, err.as_str()),
            (1, format!("initctl: {message}\n").as_str()),
            "{args:?} as nobody: {out}"
        );
    }
    // Reading is for everyone.
    assert_eq!(
        bus.initctl(false, &["status", "svc"]),
        (0, "svc stop/waiting\n".to_string(), String::new())
    );
    // Nothing was changed; root may.
    assert!(!pid1.dir.0.join("poked").exists());
    assert_eq!(bus.initctl(true, &["emit", "poke"]).0, 0);
    assert!(pid1.dir.0.join("poked").exists());
    assert!(pid1.stop().success());
}

#[test]
fn the_shipped_bus_policy_keeps_other_users_to_reading() {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/dbus/Upstart.conf");
    let dir = common::TempDir::new("bus-policy");
    let bus = Bus::start(&dir.0, Some(policy));
    let pid1 = Namespace::serving_on_bus("bus-policy", &BUS_JOBS, &bus.address);
    bus.wait_for_init(&pid1);
    let (code, running, err) = bus.initctl(true, &["start", "svc"]);
    assert_eq!(code, 0, "{err}");
    assert!(running.starts_with("svc start/running"), "{running}");
    for args in [
        vec!["start", "svc"],
        vec!["stop", "svc"],
        vec!["restart", "svc"],
        vec!["emit", "poke"],
        vec!["set-env", "-g", "EVIL=1"],
    ] {
        let (code, out, err) = bus.initctl(false, &args);
        assert_eq!(code, 1, "{args:?} as nobody: {out}{err}");
        assert!(
            // The bus's own refusal (org.freedesktop.DBus.Error.AccessDenied).
            err.starts_with("initctl: Rejected send message"),
            "{args:?}: {err}"
        );
    }
    // Untouched: still the same process, and no event went out.
    assert_eq!(
        bus.initctl(false, &["status", "svc"]),
        (0, running, String::new())
    );
    assert!(!pid1.dir.0.join("poked").exists());
    let (code, out, err) = bus.initctl(true, &["stop", "svc"]);
    assert_eq!((code, out.as_str()), (0, "svc stop/waiting\n"), "{err}");
    assert!(pid1.stop().success());
}
