//! Stateful re-exec of a running session init: every job keeps its pids
//! and carries on where it was.

mod common;

use common::TempDir;
use std::process::Command;
use std::time::{Duration, Instant};

/// A session init (killed with its jobs on drop by `common::Started`)
/// with client helpers.
struct Session(common::Started);

impl std::ops::Deref for Session {
    type Target = common::Started;
    fn deref(&self) -> &common::Started {
        &self.0
    }
}

impl std::ops::DerefMut for Session {
    fn deref_mut(&mut self) -> &mut common::Started {
        &mut self.0
    }
}

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)]) -> Session {
        Session(common::start_session(tag, jobs, &["--verbose"]))
    }

    /// `initctl ARGS`: (exit code, stdout).
    fn ctl(&self, args: &[&str]) -> (i32, String) {
        let (code, out, _) = self.0.ctl(args);
        (code, out)
    }

    /// `telinit u` and wait until the new image has restored the state.
    fn reexec(&self) {
        let before = self.log().matches("Stateful re-exec completed").count();
        let o = Command::new(env!("CARGO_BIN_EXE_telinit"))
            .arg("u")
            .env("UPSTART_SESSION", &self.address)
            .output()
            .expect("telinit");
        assert!(
            o.status.success() || o.status.code() == Some(1),
            "telinit u: {o:?}"
        );
        self.wait_for("the re-exec", || {
            self.log().matches("Stateful re-exec completed").count() > before
        });
        // The new image answers again.
        self.wait_for("the control socket", || self.ctl(&["version"]).0 == 0);
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The descriptor count once connections of finished clients have been
    /// dropped (the server checks every second).
    fn settled_fds(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = self.fds();
        loop {
            std::thread::sleep(Duration::from_millis(1500));
            let now = self.fds();
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "descriptor count never settled");
            last = now;
        }
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        !st.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

fn pid_of(status: &str) -> i32 {
    status
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

#[test]
fn jobs_in_every_kind_of_state_carry_on_after_a_reexec() {
    let s = Session::start(
        "states",
        &[
            ("web", "console log\nexec /bin/sh -c 'echo before; read x < @DIR@/fifo; echo after; sleep 1000'\n"),
            ("slow", "console none\npre-start exec /bin/sh -c 'while [ ! -e @DIR@/go ]; do sleep 0.05; done'\nexec sleep 1000\n"),
            ("stubborn", "console none\nkill timeout 3\nexec /bin/sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'\n"),
            ("gate", "start on starting blocked\ntask\nconsole none\nexec /bin/sh -c 'while [ ! -e @DIR@/go ]; do sleep 0.05; done'\n"),
            ("blocked", "console none\nexec sleep 1000\n"),
            ("respawner", "respawn\nconsole none\nexec sleep 1000\n"),
        ],
    );
    let fifo = s.dir.0.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let web = pid_of(&s.ctl(&["start", "web"]).1);
    let respawner = pid_of(&s.ctl(&["start", "respawner"]).1);
    assert_eq!(s.ctl(&["start", "--no-wait", "slow"]).0, 0);
    assert_eq!(s.ctl(&["start", "--no-wait", "blocked"]).0, 0);
    let stubborn = pid_of(&s.ctl(&["start", "stubborn"]).1);
    assert_eq!(s.ctl(&["stop", "--no-wait", "stubborn"]).0, 0);
    s.wait_for("web's first line", || {
        std::fs::read(s.dir.0.join("logs/web.log")).is_ok_and(|b| b == b"before\r\n")
    });
    let (_, slow) = s.ctl(&["status", "slow"]);
    assert!(slow.starts_with("slow start/pre-start, process "), "{slow}");
    assert!(s
        .ctl(&["status", "blocked"])
        .1
        .starts_with("blocked start/starting"));
    assert!(s
        .ctl(&["status", "stubborn"])
        .1
        .starts_with("stubborn stop/killed"));
    s.reexec();

    // Same pids, same states.
    assert_eq!(pid_of(&s.ctl(&["status", "web"]).1), web);
    assert_eq!(pid_of(&s.ctl(&["status", "respawner"]).1), respawner);
    assert_eq!(s.ctl(&["status", "slow"]).1, slow);
    assert!(s
        .ctl(&["status", "blocked"])
        .1
        .starts_with("blocked start/starting"));
    assert!(s
        .ctl(&["status", "stubborn"])
        .1
        .starts_with("stubborn stop/killed"));

    // The kill timer armed before the re-exec still fires.
    s.wait_for("SIGKILL for the stubborn job", || !alive(stubborn));
    s.wait_for("stubborn to stop", || {
        s.ctl(&["status", "stubborn"]).1 == "stubborn stop/waiting\n"
    });
    assert!(s.log().contains(&format!(
        "Sending KILL signal to stubborn main process ({stubborn})"
    )));

    // The pre-start and the event-blocked start both finish.
    std::fs::write(s.dir.0.join("go"), "").expect("go");
    s.wait_for("slow to run", || {
        s.ctl(&["status", "slow"])
            .1
            .starts_with("slow start/running")
    });
    s.wait_for("blocked to run", || {
        s.ctl(&["status", "blocked"])
            .1
            .starts_with("blocked start/running")
    });

    // The log pty survived: output after the re-exec lands in the same file.
    std::fs::write(&fifo, "go\n").expect("fifo");
    s.wait_for("web's second line", || {
        std::fs::read(s.dir.0.join("logs/web.log")).is_ok_and(|b| b == b"before\r\nafter\r\n")
    });

    // A respawn after the re-exec still works.
    // SAFETY: kill(2) on the job's process.
    unsafe { libc::kill(respawner, libc::SIGKILL) };
    s.wait_for("respawn", || {
        let st = s.ctl(&["status", "respawner"]).1;
        st.starts_with("respawner start/running") && pid_of(&st) != respawner
    });
}

#[test]
fn repeated_reexecs_lose_nothing() {
    let s = Session::start(
        "many",
        &[
            ("a", "console none\nexec sleep 1000\n"),
            (
                "b",
                "instance $N\nconsole log\nexec /bin/sh -c 'echo hi; sleep 1000'\n",
            ),
        ],
    );
    let a = pid_of(&s.ctl(&["start", "a"]).1);
    let mut b = Vec::new();
    for n in 0..5 {
        b.push(pid_of(&s.ctl(&["start", "b", &format!("N={n}")]).1));
    }
    // Log files reopen on the next output and the D-Bus runtime creates
    // some descriptors on first use, so compare fresh images only.
    s.reexec();
    let fds = s.settled_fds();
    for round in 0..20 {
        s.reexec();
        assert_eq!(pid_of(&s.ctl(&["status", "a"]).1), a, "round {round}");
    }
    let (_, list) = s.ctl(&["list"]);
    assert_eq!(list.lines().count(), 6, "{list}");
    for (n, pid) in b.iter().enumerate() {
        assert_eq!(pid_of(&s.ctl(&["status", "b", &format!("N={n}")]).1), *pid);
    }
    assert_eq!(s.settled_fds(), fds, "descriptors leaked across re-execs");
}

#[test]
fn get_state_returns_the_handed_over_json() {
    let s = Session::start("getstate", &[("a", "console none\nexec sleep 1000\n")]);
    let a = pid_of(&s.ctl(&["start", "a"]).1);
    let client = outset::control::client::Client::connect(&s.address).expect("connect");
    let json: String = client.manager("GetState", &()).expect("GetState");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let inst = &v["outset"]["engine"]["slots"]["a"]["instances"][""];
    assert_eq!(inst["state"], "running");
    assert_eq!(inst["pids"]["main"], a);
}

#[test]
fn unreadable_state_means_a_stateless_start_not_a_crash() {
    let dir = TempDir::new("badstate");
    dir.write("conf/x.conf", "exec sleep 1000\n");
    let bad = dir.write("state", "{ this is not json");
    let file = std::fs::File::open(&bad).expect("state");
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: make the descriptor inheritable for the child.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_outset"))
        .args([
            "--user",
            "--restart",
            "--state-fd",
            &fd.to_string(),
            "--confdir",
        ])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(&dir.0)
        .stderr(log)
        .spawn()
        .expect("outset");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
        if text.contains("session init running") {
            break text;
        }
        assert!(Instant::now() < deadline, "did not start: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        text.contains("Failed to read serialisation data - reverting to stateless re-exec"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.0.join("upstart.state")).expect("kept"),
        b"{ this is not json"
    );
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn takes_over_from_an_upstart_payload() {
    let corpus = std::env::var_os("OUTSET_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
        });
    let payload = corpus.join("upstart-state/upstart-1.9.json");
    let text = std::fs::read_to_string(&payload).expect("Upstart 1.9 payload");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let (job, pid) = v["job_classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find_map(|c| {
            let j = c["jobs"].as_array()?.iter().find(|j| {
                j["state"] == "JOB_RUNNING" && j["name"] == "" && j["pid"][0].as_i64() > Some(0)
            })?;
            Some((c["name"].as_str()?.to_string(), j["pid"][0].as_i64()?))
        })
        .expect("a running single-instance job");

    let dir = TempDir::new("fromupstart");
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    let file = std::fs::File::open(&payload).expect("open");
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: make the descriptor inheritable for the child.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_outset"))
        .args([
            "--user",
            "--verbose",
            "--restart",
            "--state-fd",
            &fd.to_string(),
            "--confdir",
        ])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(&dir.0)
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stderr(log)
        .spawn()
        .expect("outset");
    drop(file);
    let read_log = || std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read_log().contains("session init running") {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not take over: {}", read_log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        read_log().contains("Stateful re-exec from Upstart completed"),
        "{}",
        read_log()
    );
    let session = dir
        .0
        .join(format!("run/upstart/sessions/{}.session", child.id()));
    let address = std::fs::read_to_string(&session).expect("session");
    let address = address.trim_end().trim_start_matches("UPSTART_SESSION=");
    let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["status", &job])
        .env("UPSTART_SESSION", address)
        .output()
        .expect("initctl");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{job} start/running, process {pid}\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
