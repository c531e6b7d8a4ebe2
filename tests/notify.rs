//! `expect notify` through a real session init (extensions.md §7), and a
//! post-start that outlives its main process (outset(8)).

mod common;

use common::procs::alive;
use common::{pid_of, start_session, Started};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal sd_notify client: sends its arguments (one assignment a
/// line) to `$NOTIFY_SOCKET`, then runs the command after `--`, if any,
/// in its own process (so the sender stays the job's main process).
const NOTIFY_PY: &str = r#"import os, socket, sys
args = sys.argv[1:]
rest = []
if "--" in args:
    i = args.index("--")
    args, rest = args[:i], args[i + 1:]
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.send("\n".join(args).encode())
s.close()
if rest:
    os.execvp(rest[0], rest)
"#;

/// A session init whose directory holds `notify.py`.
fn session(tag: &str, jobs: &[(&str, &str)]) -> Started {
    let s = start_session(tag, jobs, &["--verbose"]);
    s.dir.write("notify.py", NOTIFY_PY);
    s
}

/// `initctl start JOB` run in the background.
fn start_in_background(s: &Started, job: &str) -> std::process::Child {
    ctl_in_background(s, &["start", job])
}

/// `initctl ARGS` run in the background.
fn ctl_in_background(s: &Started, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(args)
        .env("UPSTART_SESSION", &s.address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("initctl start")
}

/// Wait (30 s at most) for a background client to end.
fn finish(child: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut child = child;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "client never returned");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn status(s: &Started, job: &str) -> String {
    s.ctl(&["status", job]).1
}

/// The environment of the last `stopped` event of a job, as written by
/// the `watch` job below.
const WATCH: &str = "start on stopped svc\ntask\nexec env > @DIR@/stopped.env\n";

fn stopped_env(s: &Started) -> String {
    let path = s.dir.0.join("stopped.env");
    s.wait_for("the stopped event", || path.exists());
    s.wait_for("the stopped event's environment", || {
        std::fs::read_to_string(&path).is_ok_and(|t| t.contains("RESULT="))
    });
    std::fs::read_to_string(&path).unwrap_or_default()
}

#[test]
fn ready_gates_started_and_the_jobs_that_start_on_it() {
    let s = session(
        "notify-gate",
        &[
            (
                "svc",
                "expect notify\nscript\n  while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
                 exec python3 @DIR@/notify.py READY=1 'STATUS=Serving requests' -- sleep 1000\n\
                 end script\n",
            ),
            (
                "after",
                "start on started svc\ntask\nexec touch @DIR@/after\n",
            ),
        ],
    );
    let start = start_in_background(&s, "svc");
    s.wait_for("svc to be spawned", || {
        status(&s, "svc").starts_with("svc start/spawned")
    });
    // NOTIFY_SOCKET names init's socket in the main process's environment.
    let main = pid_of(&status(&s, "svc"));
    let environ = std::fs::read(format!("/proc/{main}/environ")).unwrap_or_default();
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|e| e.starts_with(b"NOTIFY_SOCKET=@")),
        "no NOTIFY_SOCKET in the main process's environment"
    );
    // Not ready: the caller still waits, and nothing started on `started`.
    std::thread::sleep(Duration::from_millis(300));
    let mut start = start;
    assert!(
        start.try_wait().expect("try_wait").is_none(),
        "start returned early"
    );
    assert!(!s.dir.0.join("after").exists());
    assert!(status(&s, "svc").starts_with("svc start/spawned"));

    s.dir.write("go", "");
    let o = finish(start);
    assert!(o.status.success(), "start: {o:?}");
    // The main process is the one that said READY=1.
    assert_eq!(
        status(&s, "svc"),
        format!("svc start/running, process {main}\n\tstatus: Serving requests\n")
    );
    s.wait_for("the job started on `started svc`", || {
        s.dir.0.join("after").exists()
    });
    assert!(s
        .log()
        .contains(&format!("svc main process ({main}) is ready")));
}

#[test]
fn a_sender_that_is_not_the_jobs_process_is_ignored() {
    let s = session(
        "notify-stranger",
        &[(
            "svc",
            "expect notify\nscript\n  while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
             exec python3 @DIR@/notify.py READY=1 -- sleep 1000\nend script\n",
        )],
    );
    let start = start_in_background(&s, "svc");
    s.wait_for("svc to be spawned", || {
        status(&s, "svc").starts_with("svc start/spawned")
    });
    let main = pid_of(&status(&s, "svc"));
    let environ = std::fs::read(format!("/proc/{main}/environ")).expect("environ");
    let address = environ
        .split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(b"NOTIFY_SOCKET=@"))
        .expect("NOTIFY_SOCKET")
        .to_vec();
    // This test is no process of the job.
    use std::os::linux::net::SocketAddrExt;
    let to = std::os::unix::net::SocketAddr::from_abstract_name(&address).expect("address");
    let sock = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    sock.send_to_addr(b"READY=1\nMAINPID=1\n", &to)
        .expect("send");
    let me = std::process::id();
    s.wait_for("the stranger to be turned away", || {
        s.log().contains(&format!(
            "Ignored notification from process {me}: not a job's process"
        ))
    });
    assert!(status(&s, "svc").starts_with("svc start/spawned"));

    s.dir.write("go", "");
    assert!(finish(start).status.success());
    assert!(status(&s, "svc").starts_with("svc start/running"));
}

#[test]
fn a_main_process_that_ends_before_ready_fails_the_job() {
    let s = session(
        "notify-early-exit",
        &[
            ("svc", "expect notify\nexec sh -c 'exit 0'\n"),
            ("watch", WATCH),
        ],
    );
    let (code, _, err) = s.ctl(&["start", "svc"]);
    assert_eq!(code, 1);
    assert!(err.contains("Job failed to start"), "{err}");
    let env = stopped_env(&s);
    for want in ["RESULT=failed", "PROCESS=main", "EXIT_STATUS=0"] {
        assert!(env.lines().any(|l| l == want), "{want} in\n{env}");
    }
}

#[test]
fn notify_timeout_fails_a_job_that_never_gets_ready() {
    let s = session(
        "notify-timeout",
        &[
            ("svc", "expect notify\nnotify timeout 1\nexec sleep 1000\n"),
            ("watch", WATCH),
        ],
    );
    let start = start_in_background(&s, "svc");
    s.wait_for("svc to be spawned", || {
        status(&s, "svc").starts_with("svc start/spawned")
    });
    let main = pid_of(&status(&s, "svc"));
    let o = finish(start);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let env = stopped_env(&s);
    assert!(env.lines().any(|l| l == "RESULT=failed"), "{env}");
    assert!(env.lines().any(|l| l == "PROCESS=main"), "{env}");
    // Through the kill sequence: the process is gone.
    s.wait_for("the main process to be killed", || !alive(main));
    assert!(s.log().contains(&format!(
        "svc main process ({main}) not ready after 1 seconds"
    )));
    assert_eq!(status(&s, "svc"), "svc stop/waiting\n");
}

#[test]
fn a_post_start_loop_is_killed_when_the_main_process_dies() {
    let s = session(
        "post-start-kill",
        &[
            (
                "svc",
                "script\n  while [ ! -e @DIR@/die ]; do sleep 0.05; done\n  exit 3\nend script\n\
                 post-start script\n  touch @DIR@/polling\n  while true; do sleep 0.1; done\n\
                 end script\n",
            ),
            ("watch", WATCH),
        ],
    );
    let start = start_in_background(&s, "svc");
    s.wait_for("post-start to poll", || s.dir.0.join("polling").exists());
    let st = status(&s, "svc");
    assert!(st.starts_with("svc start/post-start"), "{st}");
    s.dir.write("die", "");
    // Upstart would wait for the loop for ever.
    let o = finish(start);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let env = stopped_env(&s);
    for want in ["RESULT=failed", "PROCESS=main", "EXIT_STATUS=3"] {
        assert!(env.lines().any(|l| l == want), "{want} in\n{env}");
    }
    assert!(s.log().contains("Killing svc post-start process"));
    assert_eq!(status(&s, "svc"), "svc stop/waiting\n");
}

#[test]
fn redis_is_ready_when_it_says_so() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("redis-server is not installed (apt-get install redis-server)");
    }
    let s = start_session(
        "notify-redis",
        &[(
            "redis",
            "expect notify\n\
             exec redis-server --supervised systemd --port 0 --unixsocket @DIR@/redis.sock \
             --save '' --appendonly no --dir @DIR@\n",
        )],
        &["--verbose"],
    );
    // No polling: once `start` returns, redis answers.
    let (code, _, err) = s.ctl(&["start", "redis"]);
    assert_eq!(code, 0, "{err}\n{}", s.log());
    let sock = s.dir.0.join("redis.sock");
    let o = Command::new("redis-cli")
        .arg("-s")
        .arg(&sock)
        .arg("ping")
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "PONG", "{o:?}");
    let (code, _, _) = s.ctl(&["stop", "redis"]);
    assert_eq!(code, 0);
}

#[test]
fn the_socket_and_the_wait_survive_a_reexec() {
    let s = session(
        "notify-reexec",
        &[(
            "svc",
            "expect notify\nnotify timeout 600\nscript\n  \
             while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
             exec python3 @DIR@/notify.py READY=1 -- sleep 1000\nend script\n",
        )],
    );
    s.ctl(&["start", "--no-wait", "svc"]);
    s.wait_for("svc to be spawned", || {
        status(&s, "svc").starts_with("svc start/spawned")
    });
    let main = pid_of(&status(&s, "svc"));
    let o = Command::new("timeout")
        .arg("90")
        .arg(env!("CARGO_BIN_EXE_telinit"))
        .arg("u")
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("telinit");
    assert!(o.status.code().is_some_and(|c| c <= 1), "telinit u: {o:?}");
    s.wait_for("the re-exec", || {
        s.log().contains("Stateful re-exec completed")
    });
    s.wait_for("the new image to answer", || s.ctl(&["version"]).0 == 0);
    let st = status(&s, "svc");
    assert!(st.starts_with("svc start/spawned"), "still waiting: {st}");
    // The main process still has the address it was given, and it works.
    s.dir.write("go", "");
    s.wait_for("svc to be ready after the re-exec", || {
        status(&s, "svc").starts_with("svc start/running")
    });
    assert_eq!(pid_of(&status(&s, "svc")), main);
}

#[test]
fn status_text_is_shown_by_initctl_status_only() {
    let s = session(
        "notify-status",
        &[
            (
                "svc",
                "expect notify\nscript\n  \
                 python3 @DIR@/notify.py READY=1 'STATUS=Ready to accept connections'\n  \
                 while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  \
                 python3 @DIR@/notify.py 'STATUS=Busy: 3 clients'\n  \
                 touch @DIR@/sent\n  exec sleep 1000\nend script\n",
            ),
            (
                "quiet",
                "expect notify\nexec python3 @DIR@/notify.py READY=1 -- sleep 1000\n",
            ),
            ("plain", "exec sleep 1000\n"),
        ],
    );
    for job in ["svc", "quiet", "plain"] {
        let (code, out, err) = s.ctl(&["start", job]);
        assert_eq!(code, 0, "{err}");
        // `start` prints Upstart's status line, nothing more.
        assert!(!out.contains('\t'), "{out}");
    }
    let st = status(&s, "svc");
    let main = pid_of(st.lines().next().unwrap_or_default());
    assert_eq!(
        st,
        format!("svc start/running, process {main}\n\tstatus: Ready to accept connections\n")
    );
    // The latest text replaces the last.
    s.dir.write("go", "");
    s.wait_for("the second status", || s.dir.0.join("sent").exists());
    s.wait_for("the second status to show", || {
        status(&s, "svc").ends_with("\n\tstatus: Busy: 3 clients\n")
    });
    // Jobs that sent no STATUS= print exactly what Upstart prints.
    for job in ["quiet", "plain"] {
        let st = status(&s, job);
        assert_eq!(
            st,
            format!("{job} start/running, process {}\n", pid_of(&st))
        );
    }
    let (_, list, _) = s.ctl(&["list"]);
    assert!(!list.contains("status:"), "{list}");
    // Introspection shows outset's interface beside Upstart's, and the
    // property can be read directly.
    let o = s.introspect("/com/ubuntu/Upstart/jobs/svc/_");
    let xml = String::from_utf8_lossy(&o.stdout);
    assert!(
        xml.contains("interface org.outset.Instance1 {")
            && xml.contains("interface com.ubuntu.Upstart0_6.Instance {")
            && xml.contains("readonly s status_text = 'Busy: 3 clients';"),
        "{xml}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A stopped job has no status text left to show.
    assert_eq!(s.ctl(&["stop", "svc"]).0, 0);
    assert_eq!(status(&s, "svc"), "svc stop/waiting\n");
}

/// A daemon that speaks sd_notify about its reloads: `READY=1` once
/// started; on SIGHUP `RELOADING=1` (unless PREFIX`ignore-hup` exists; it
/// ends at once if PREFIX`die-on-hup` does), then `READY=1` once the test
/// creates PREFIX`reloaded`; `STOPPING=1` on SIGTERM.
const NOTIFYD_PY: &str = r#"import os, signal, socket, sys, time
prefix = sys.argv[1]
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
def send(m):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(addr)
    s.send(m.encode())
    s.close()
def hup(*_):
    if os.path.exists(prefix + "ignore-hup"):
        return
    send("RELOADING=1")
    open(prefix + "reloading", "w").close()
    if os.path.exists(prefix + "die-on-hup"):
        os._exit(3)
def term(*_):
    send("STOPPING=1")
    os._exit(0)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
send("READY=1")
while True:
    if os.path.exists(prefix + "reloaded"):
        os.remove(prefix + "reloaded")
        send("READY=1")
    time.sleep(0.02)
"#;

#[test]
fn reload_waits_for_ready_after_reloading() {
    let s = session(
        "notify-reload",
        &[
            (
                "svc",
                "expect notify\nexec python3 @DIR@/notifyd.py @DIR@/svc-\n",
            ),
            (
                "bounded",
                "expect notify\nnotify timeout 3\nexec python3 @DIR@/notifyd.py @DIR@/bounded-\n",
            ),
            (
                "plain",
                "script\n  trap 'touch @DIR@/hup' HUP\n  \
                 while true; do sleep 0.05; done\nend script\n",
            ),
        ],
    );
    s.dir.write("notifyd.py", NOTIFYD_PY);
    let file = |name: &str| s.dir.0.join(name);
    // Any other job: the signal, and the answer at once, as Upstart's.
    assert_eq!(s.ctl(&["start", "plain"]).0, 0);
    assert_eq!(
        s.ctl(&["reload", "plain"]),
        (0, String::new(), String::new())
    );
    s.wait_for("the plain job's SIGHUP", || file("hup").exists());

    assert_eq!(s.ctl(&["start", "svc"]).0, 0);
    let main = pid_of(&status(&s, "svc"));

    // RELOADING=1 ... READY=1: reload returns once the job is ready again.
    let reload = ctl_in_background(&s, &["reload", "svc"]);
    s.wait_for("RELOADING=1", || file("svc-reloading").exists());
    s.wait_for("the log to note it", || {
        s.log().contains("svc main process is reloading")
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut reload = reload;
    assert!(
        reload.try_wait().expect("try_wait").is_none(),
        "reload returned before READY=1"
    );
    // Upstart has no reloading state: the job stays running meanwhile.
    assert_eq!(
        status(&s, "svc"),
        format!("svc start/running, process {main}\n")
    );
    s.dir.write("svc-reloaded", "");
    let o = finish(reload);
    assert!(o.status.success(), "{o:?}");
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{o:?}");
    assert!(s.log().contains("svc main process reloaded"));

    // A job that does not answer the signal: reload returns as it did.
    s.dir.write("svc-ignore-hup", "");
    let reload = finish(ctl_in_background(&s, &["reload", "svc"]));
    assert!(reload.status.success(), "{reload:?}");
    assert_eq!(pid_of(&status(&s, "svc")), main);

    // STOPPING=1 is noted.
    assert_eq!(s.ctl(&["stop", "svc"]).0, 0);
    assert!(
        s.log().contains("svc main process is stopping"),
        "{}",
        s.log()
    );

    // A main process that ends mid-reload: reload fails at once.
    std::fs::remove_file(file("svc-ignore-hup")).expect("remove");
    s.dir.write("svc-die-on-hup", "");
    assert_eq!(s.ctl(&["start", "svc"]).0, 0);
    let o = finish(ctl_in_background(&s, &["reload", "svc"]));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "initctl: Job did not finish reloading: svc\n"
    );
    assert!(s
        .log()
        .contains("svc main process ended before it finished reloading"));

    // RELOADING=1 and never READY=1: reload gives up after `notify
    // timeout`, and the job keeps running.
    assert_eq!(s.ctl(&["start", "bounded"]).0, 0);
    let main = pid_of(&status(&s, "bounded"));
    let o = finish(ctl_in_background(&s, &["reload", "bounded"]));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "initctl: Job did not finish reloading: bounded\n"
    );
    assert!(s
        .log()
        .contains("bounded main process not ready after reloading for 3 seconds"));
    assert_eq!(
        status(&s, "bounded"),
        format!("bounded start/running, process {main}\n")
    );
}
