//! initctl's command line: options, usage errors, help and `--quiet`, with
//! the texts of Upstart 1.13's initctl (libnih's option parser).

mod common;

use std::process::Command;

/// `initctl ARGS` with no init to talk to: (exit code, stdout, stderr).
fn initctl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(args)
        .env_remove("UPSTART_SESSION")
        .env("COLUMNS", "80")
        .output()
        .expect("run initctl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn usage_error(line: &str) -> (i32, String, String) {
    (
        1,
        String::new(),
        format!("initctl: {line}\nTry `initctl --help' for more information.\n"),
    )
}

#[test]
fn unknown_options_and_missing_arguments_read_as_upstarts() {
    assert_eq!(
        initctl(&["--bogus"]),
        usage_error("invalid option: --bogus")
    );
    assert_eq!(initctl(&["-Z", "list"]), usage_error("invalid option: -Z"));
    assert_eq!(initctl(&["list", "-qZ"]), usage_error("invalid option: -Z"));
    assert_eq!(
        initctl(&["list", "--bogus=1"]),
        usage_error("invalid option: --bogus=1")
    );
    // -n belongs to start, not to initctl itself.
    assert_eq!(
        initctl(&["-n", "start", "x"]),
        usage_error("invalid option: -n")
    );
    assert_eq!(
        initctl(&["status", "-n", "x"]),
        usage_error("invalid option: -n")
    );
    assert_eq!(
        initctl(&["list", "--dest"]),
        usage_error("missing argument: --dest")
    );
    assert_eq!(
        initctl(&["check-config", "-wi"]),
        usage_error("missing argument: -wi")
    );
    assert_eq!(
        initctl(&["--user=yes", "list"]),
        usage_error("unexpected argument: --user=yes")
    );
    // Long options are spelt out in full.
    assert_eq!(
        initctl(&["--sess", "list"]),
        usage_error("invalid option: --sess")
    );
    assert_eq!(initctl(&[]), usage_error("missing command"));
    assert_eq!(initctl(&["-q"]), usage_error("missing command"));
    assert_eq!(initctl(&["frob"]), usage_error("invalid command: frob"));
}

#[test]
fn help_describes_each_command_and_its_arguments() {
    let (rc, out, err) = initctl(&["start", "--help"]);
    assert_eq!((rc, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "Usage: initctl start [OPTION]... JOB [KEY=VALUE]...
Start job.

Options:
  -n, --no-wait               do not wait for job to start before exiting
      --session               use existing D-Bus session bus to connect to init
                                daemon (for testing)
      --system                use D-Bus system bus to connect to init daemon
      --dest=NAME             destination well-known name on D-Bus bus
      --user                  run in user mode (as used for user sessions)
  -q, --quiet                 reduce output to errors only
  -v, --verbose               increase output to include informational messages
      --help                  display this help and exit
      --version               output version information and exit

JOB is the name of the job that is to be started, this may be followed by zero
or more environment variables to be defined in the new job.

The environment may also serve to distinguish between job instances, and thus
decide whether a new instance will be started or an error returned if an
existing instance is already running.
"
    );
    // A narrower screen wraps the descriptions.
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["stop", "--help"])
        .env("COLUMNS", "60")
        .output()
        .expect("run initctl");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("  -n, --no-wait               do not wait for job to stop\n                                before exiting\n"),
        "{text}"
    );

    let (rc, out, _) = initctl(&["--help"]);
    assert_eq!(rc, 0);
    assert!(
        out.starts_with("Usage: initctl [OPTION]... COMMAND [OPTION]... [ARG]...\n\nOptions:\n")
    );
    assert!(
        out.ends_with("\nFor a list of commands, try `initctl help'.\n"),
        "{out}"
    );

    // `help` lists the commands, whatever follows it.
    let (rc, out, _) = initctl(&["help", "start"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with(
        "Job commands:\n  start                       Start job.\n  stop                        Stop job.\n"
    ));
    assert!(out.contains("\nEnvironment commands:\n  get-env                     Retrieve value of a job environment variable.\n"));
    assert!(out.contains("  help                        display list of commands\n"));
    assert!(out.ends_with("\nFor more information on a command, try `initctl COMMAND --help'.\n"));

    let (rc, out, _) = initctl(&["--version"]);
    assert_eq!(rc, 0);
    assert!(out.starts_with("initctl (outset "), "{out}");
}

#[test]
fn quiet_leaves_only_errors() {
    let s = common::start_session(
        "quiet",
        &[
            ("web", "console none\nexec sleep 1000\n"),
            (
                "tty",
                "instance $T\nusage \"T=x\"\nconsole none\nexec sleep 1000\n",
            ),
        ],
        &[],
    );
    for args in [
        &["-q", "start", "web"][..],
        &["status", "web", "--quiet"],
        &["-q", "list"],
        &["-q", "version"],
        &["-q", "usage", "tty"],
        &["set-env", "-q", "A=1"],
        &["-q", "get-env", "A"],
        &["-q", "list-env"],
        &["-q", "show-config"],
        &["-q", "log-priority"],
        &["-q", "emit", "ping"],
        &["-q", "stop", "web"],
    ] {
        assert_eq!(s.ctl(args), (0, String::new(), String::new()), "{args:?}");
    }
    // Errors still show, and -v after -q wins.
    assert_eq!(
        s.ctl(&["-q", "status", "nope"]),
        (1, String::new(), "initctl: Unknown job: nope\n".to_string())
    );
    assert_eq!(
        s.ctl(&["-q", "-v", "status", "web"]).1,
        "web stop/waiting\n"
    );
}

#[test]
fn list_sessions_without_sessions_and_with_stale_files() {
    let t = common::TempDir::new("sessions");
    let list = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
            .args(args)
            .env("XDG_RUNTIME_DIR", &t.0)
            .output()
            .expect("run initctl");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // No sessions directory yet: nothing to list, as with Upstart.
    assert_eq!(
        list(&["list-sessions"]),
        (Some(0), String::new(), String::new())
    );
    assert!(t.0.join("upstart/sessions").is_dir());

    // A session whose init is gone is skipped, and named with -v.
    let mut gone = Command::new("true").spawn().expect("true");
    let dead = gone.id();
    gone.wait().expect("wait");
    let me = std::process::id();
    let stale = t.write(
        &format!("upstart/sessions/{dead}.session"),
        "UPSTART_SESSION=unix:abstract=/gone\n",
    );
    t.write(
        &format!("upstart/sessions/{me}.session"),
        "UPSTART_SESSION=unix:abstract=/here\n",
    );
    assert_eq!(
        list(&["list-sessions"]).1,
        format!("{me} unix:abstract=/here\n")
    );
    let (rc, out, _) = list(&["-v", "list-sessions"]);
    assert_eq!(rc, Some(0));
    assert!(
        out.contains(&format!(
            "Ignoring stale session file: {}\n",
            stale.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{me} unix:abstract=/here\n")),
        "{out}"
    );
    assert_eq!(list(&["list-sessions", "-q"]).1, "");

    // No runtime directory at all: Upstart's error.
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .arg("list-sessions")
        .env("XDG_RUNTIME_DIR", t.0.join("missing/deeper"))
        .output()
        .expect("run initctl");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "initctl: unable to determine sessions\n"
    );
}

/// A private message bus whose service directory could start
/// com.ubuntu.Upstart (leaving `activated` behind); killed on drop.
struct Bus {
    dir: common::TempDir,
    _bus: common::session_bus::SessionBus,
    address: String,
}

impl Bus {
    fn start() -> Bus {
        let dir = common::TempDir::new("bus");
        let d = dir.0.display().to_string();
        dir.write(
            "services/com.ubuntu.Upstart.service",
            &format!(
                "[D-BUS Service]\nName=com.ubuntu.Upstart\nExec=/bin/sh -c 'touch {d}/activated'\n"
            ),
        );
        let bus = common::session_bus::SessionBus::start_with(
            &dir.0,
            &format!("<servicedir>{d}/services</servicedir>"),
        );
        let address = bus.address.clone();
        Bus {
            dir,
            _bus: bus,
            address,
        }
    }
}

#[test]
fn initctl_never_has_the_bus_start_init() {
    let bus = Bus::start();
    for (option, variable) in [
        ("--session", "DBUS_SESSION_BUS_ADDRESS"),
        ("--system", "DBUS_SYSTEM_BUS_ADDRESS"),
    ] {
        for command in [&["status", "web"][..], &["list"], &["version"]] {
            let o = Command::new("timeout")
                .arg("30")
                .arg(env!("CARGO_BIN_EXE_initctl"))
                .arg(option)
                .args(command)
                .env(variable, &bus.address)
                .env_remove("UPSTART_SESSION")
                .output()
                .expect("run initctl");
            assert_eq!(o.status.code(), Some(1), "{option} {command:?}");
            assert_eq!(
                String::from_utf8_lossy(&o.stderr),
                "initctl: Name \"com.ubuntu.Upstart\" does not exist\n",
                "{option} {command:?}"
            );
        }
    }
    // Had any call asked for activation, the bus would have run the
    // service at once.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !bus.dir.0.join("activated").exists(),
        "the bus was asked to start com.ubuntu.Upstart"
    );
}

#[test]
fn no_init_to_talk_to_says_what_was_tried() {
    // A network namespace of its own has no init on the abstract socket.
    let o = Command::new("unshare")
        .args(["-n", env!("CARGO_BIN_EXE_initctl"), "list"])
        .env_remove("UPSTART_SESSION")
        .output()
        .expect("unshare initctl");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "initctl: Unable to connect to Upstart: Failed to connect to socket /com/ubuntu/upstart: Connection refused\n\
         initctl: tried the system init at unix:abstract=/com/ubuntu/upstart; a session init needs \
         UPSTART_SESSION (see `initctl list-sessions') or --session\n"
    );
    // With UPSTART_SESSION the address was the user's choice: one line.
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .arg("list")
        .env("UPSTART_SESSION", "unix:abstract=/outset/test/nobody")
        .output()
        .expect("run initctl");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "initctl: Unable to connect to Upstart: Failed to connect to socket /outset/test/nobody: Connection refused\n"
    );
}
