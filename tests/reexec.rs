//! Stateful re-exec of a running session init: every job keeps its pids
//! and carries on where it was.

mod common;

use common::procs::{alive, comm};
use common::{pid_of, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A session init (killed with its jobs on drop by `common::Started`)
/// with client helpers.
type Session = common::Started;

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)]) -> Session {
        Session::start_with(tag, jobs, &["--verbose"])
    }

    fn start_with(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Session {
        common::start_session(tag, jobs, extra)
    }

    /// `GetState()` as JSON text.
    fn state_text(&self) -> String {
        let client = outset::control::client::Client::connect(&self.address).expect("connect");
        client.manager("GetState", &()).expect("GetState")
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.state_text()).expect("JSON")
    }

    /// The payload's instance object of JOB (instance NAME).
    fn job_state(&self, job: &str, name: &str) -> Option<serde_json::Value> {
        let v = self.state();
        v["job_classes"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == job)?["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
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
    let (_, slow, _) = s.ctl(&["status", "slow"]);
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
    let (_, list, _) = s.ctl(&["list"]);
    assert_eq!(list.lines().count(), 6, "{list}");
    for (n, pid) in b.iter().enumerate() {
        assert_eq!(pid_of(&s.ctl(&["status", "b", &format!("N={n}")]).1), *pid);
    }
    // The first count may still include a descriptor on its way out (a
    // client connection the server has not pruned yet); a leak only grows.
    let after = s.settled_fds();
    assert!(
        after <= fds,
        "descriptors leaked across re-execs: {fds} before, {after} after"
    );
}

#[test]
fn get_state_returns_the_handed_over_json() {
    let s = Session::start("getstate", &[("a", "console none\nexec sleep 1000\n")]);
    let a = pid_of(&s.ctl(&["start", "a"]).1);
    let client = outset::control::client::Client::connect(&s.address).expect("connect");
    let json: String = client.manager("GetState", &()).expect("GetState");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    // Upstart 1.13's layout.
    let class = v["job_classes"]
        .as_array()
        .expect("job_classes")
        .iter()
        .find(|c| c["name"] == "a")
        .expect("class a");
    assert_eq!(class["path"], "/com/ubuntu/Upstart/jobs/a");
    let inst = &class["jobs"][0];
    assert_eq!(inst["name"], "");
    assert_eq!(inst["goal"], "JOB_START");
    assert_eq!(inst["state"], "JOB_RUNNING");
    assert_eq!(inst["pid"][0], a);
    assert_eq!(v["conf_sources"][0]["type"], "CONF_JOB_DIR");
}

/// Start `outset --user EXTRA --restart --state-fd FD` on DIR/conf (logs
/// and `upstart.state` in DIR, runtime directory DIR/run) with `env`, and
/// wait until it runs. Returns the daemon (for the caller to kill and
/// wait for) and its log so far.
#[allow(clippy::zombie_processes)]
fn start_with_state(
    dir: &TempDir,
    fd: std::os::fd::RawFd,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    // SAFETY: make the descriptor inheritable for the child.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_outset"))
        .arg("--user")
        .args(extra)
        .args(["--restart", "--state-fd", &fd.to_string(), "--confdir"])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(&dir.0)
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .envs(env.iter().copied())
        .stderr(log)
        .spawn()
        .expect("outset");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
        if text.contains("session init running") {
            return (child, text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM: a session init stops every job it runs, then ends; SIGKILL
/// after 20 s. Nothing a test's init started is left behind.
fn end_gently(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn unreadable_state_means_a_stateless_start_not_a_crash() {
    let dir = TempDir::new("badstate");
    dir.write("conf/x.conf", "exec sleep 1000\n");
    let bad = dir.write("state", "{ this is not json");
    let file = std::fs::File::open(&bad).expect("state");
    use std::os::fd::AsRawFd;
    let (mut child, text) = start_with_state(&dir, file.as_raw_fd(), &[], &[]);
    assert!(
        text.contains("Failed to read serialisation data - reverting to stateless re-exec"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.0.join("upstart.state")).expect("kept"),
        b"{ this is not json"
    );
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    end_gently(&mut child);
}

#[test]
fn a_state_pipe_left_half_written_is_given_up_after_the_wait() {
    let dir = TempDir::new("stalledstate");
    dir.write("conf/x.conf", "exec sleep 1000\n");
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    // Part of a payload, then nothing: the writer neither goes on nor
    // closes its end.
    nix::unistd::write(&write_end, b"{\"events\": [").expect("write");
    use std::os::fd::AsRawFd;
    let started = Instant::now();
    let (mut child, text) = start_with_state(
        &dir,
        read_end.as_raw_fd(),
        &[],
        &[("UPSTART_STATE_WAIT_SECS", "1")],
    );
    drop(read_end);
    // It waited (for the rest that never came) before giving up.
    assert!(started.elapsed() >= Duration::from_secs(1));
    use std::os::unix::fs::PermissionsExt;
    let kept = std::fs::metadata(dir.0.join("upstart.state")).expect("kept");
    assert_eq!(kept.permissions().mode() & 0o777, 0o400);
    assert!(
        text.contains("Failed to read serialisation data - reverting to stateless re-exec"),
        "{text}"
    );
    assert!(text.contains("did not come"), "{text}");
    assert_eq!(
        std::fs::read(dir.0.join("upstart.state")).expect("kept"),
        b"{\"events\": ["
    );
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    end_gently(&mut child);
    drop(write_end);
}

/// (soft, hard) "Max open files" of `pid`.
fn nofile(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let mut words = line.split_whitespace().skip(3);
    (
        words.next().expect("soft").to_string(),
        words.next().expect("hard").to_string(),
    )
}

#[test]
fn init_raises_its_descriptor_limit_and_jobs_keep_the_one_it_had() {
    let s = common::start_session_wrapped(
        "nofile",
        &[
            ("plain", "exec sleep 1000\n"),
            ("own", "limit nofile 2000 3000\nexec sleep 1000\n"),
        ],
        &["--verbose"],
        &["prlimit", "--nofile=512:8192", "--"],
    );
    let init = s.child.id() as i32;
    let want = |soft: &str, hard: &str| (soft.to_string(), hard.to_string());
    assert_eq!(nofile(init), want("8192", "8192"));
    let check = |s: &Session| {
        let plain = pid_of(&s.ctl(&["start", "plain"]).1);
        let own = pid_of(&s.ctl(&["start", "own"]).1);
        assert_eq!(nofile(plain), want("512", "8192"), "no limit stanza");
        assert_eq!(nofile(own), want("2000", "3000"), "limit nofile 2000 3000");
        assert_eq!(s.ctl(&["stop", "plain"]).0, 0);
        assert_eq!(s.ctl(&["stop", "own"]).0, 0);
    };
    check(&s);
    // The next image starts with the raised limit; jobs still get the
    // first one.
    s.reexec();
    assert_eq!(nofile(init), want("8192", "8192"));
    check(&s);
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
    // The captured system's jobs would be started again here (its dbus,
    // udev, gettys...): each process is made a sleep, so that nothing
    // runs on this machine. Those whose class expects a fork never become
    // ready, so they never stop, and the session's end leaves them (as
    // Upstart's does): they are killed after it.
    let mut harmless = v.clone();
    for class in harmless["job_classes"].as_array_mut().expect("classes") {
        for p in class["process"].as_array_mut().into_iter().flatten() {
            if p["command"].is_string() {
                p["script"] = 0.into();
                p["command"] = "sleep 100000".into();
            }
        }
    }
    let payload = dir.write("payload.json", &harmless.to_string());
    let file = std::fs::File::open(&payload).expect("open");
    use std::os::fd::AsRawFd;
    let (mut child, text) = start_with_state(&dir, file.as_raw_fd(), &["--verbose"], &[]);
    drop(file);
    assert!(
        text.contains("Stateful re-exec from Upstart completed"),
        "{text}"
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
    end_gently(&mut child);
    common::procs::kill_session_leftovers(address);
    // The payload was captured on another system: its processes are not
    // this init's children, so none is adopted (or ever signalled); each
    // job moves on as if its process had ended.
    let text = std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
    assert!(
        text.contains(&format!(
            "{job} main process ({pid}) is not a child of init: treating it as exited"
        )),
        "{text}"
    );
    let status = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    // The class's file is not in this init's directories: once its
    // instance has stopped (its respawn fails here), the class goes too,
    // and may be gone before the question comes.
    assert!(
        status.starts_with(&format!("{job} ")) || err.contains(&format!("Unknown job: {job}")),
        "{status}{err}"
    );
    assert!(!status.contains(&format!("process {pid}\n")), "{status}");
}

/// What a payload holds, counted straight from the JSON.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    classes: usize,
    jobs: usize,
    events: usize,
    sources: usize,
    conf_files: usize,
}

fn list<'a>(v: &'a serde_json::Value, key: &str) -> &'a [serde_json::Value] {
    v.get(key)
        .and_then(serde_json::Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn count(v: &serde_json::Value) -> Counts {
    Counts {
        classes: list(v, "job_classes").len(),
        jobs: list(v, "job_classes")
            .iter()
            .map(|c| list(c, "jobs").len())
            .sum(),
        events: list(v, "events").len(),
        sources: list(v, "conf_sources").len(),
        conf_files: list(v, "conf_sources")
            .iter()
            .map(|s| list(s, "conf_files").len())
            .sum(),
    }
}

fn touch(s: &Session, name: &str) {
    std::fs::write(s.dir.0.join(name), "").expect("touch");
}

const WAIT_GO: &str = "/bin/sh -c 'while [ ! -e @DIR@/go ]; do sleep 0.05; done'";

#[test]
fn the_payload_is_upstart_shaped_and_reads_back_whole() {
    let s = Session::start(
        "roundtrip",
        &[
            ("svc", "console log\nexec /bin/sh -c 'echo up; exec sleep 1000'\n"),
            ("multi", "instance $N\nconsole none\nexec sleep 1000\n"),
            ("both", "start on alpha and beta\nconsole none\nexec sleep 1000\n"),
            ("slow", &format!("console none\npre-start exec {WAIT_GO}\nexec sleep 1000\n")),
            ("gate", &format!("start on starting blocked\ntask\nconsole none\nexec {WAIT_GO}\n")),
            ("blocked", "console none\nexec sleep 1000\n"),
            ("stubborn", "console none\nkill timeout 60\nexec /bin/sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'\n"),
        ],
    );
    let svc = pid_of(&s.ctl(&["start", "svc"]).1);
    for n in 0..3 {
        assert_eq!(s.ctl(&["start", "multi", &format!("N={n}")]).0, 0);
    }
    assert_eq!(s.ctl(&["start", "--no-wait", "slow"]).0, 0);
    assert_eq!(s.ctl(&["start", "--no-wait", "blocked"]).0, 0);
    assert_eq!(s.ctl(&["start", "stubborn"]).0, 0);
    assert_eq!(s.ctl(&["stop", "--no-wait", "stubborn"]).0, 0);
    assert_eq!(s.ctl(&["emit", "--no-wait", "alpha"]).0, 0);
    s.wait_for("svc's output", || {
        std::fs::read(s.dir.0.join("logs/svc.log")).is_ok_and(|b| b == b"up\r\n")
    });
    s.wait_for("the states to settle", || {
        s.ctl(&["status", "slow"])
            .1
            .starts_with("slow start/pre-start")
            && s.ctl(&["status", "stubborn"])
                .1
                .starts_with("stubborn stop/killed")
            && s.ctl(&["status", "gate"])
                .1
                .starts_with("gate start/running")
    });

    let text = s.state_text();
    let before: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    // Upstart 1.13's top level, outset's extras beside it.
    for key in [
        "sessions",
        "events",
        "job_classes",
        "conf_sources",
        "job_environment",
        "control_bus_address",
        "cgroup_manager_address",
        "outset",
    ] {
        assert!(before.get(key).is_some(), "no {key}");
    }

    // An Upstart-shaped reader sees the same classes, jobs, pids, events.
    let imported = outset::reexec::import(&text).expect("Upstart importer");
    let want = count(&before);
    let sum = &imported.summary;
    assert_eq!(
        (
            sum.job_classes,
            sum.jobs,
            sum.events,
            sum.conf_sources,
            sum.conf_files
        ),
        (
            want.classes,
            want.jobs,
            want.events,
            want.sources,
            want.conf_files
        )
    );
    assert_eq!(want.classes, 7);
    assert_eq!(want.jobs, 8, "svc, 3 multi, slow, gate, blocked, stubborn");
    assert!(want.events >= 2, "alpha and `starting blocked`");
    for c in list(&before, "job_classes") {
        let name = c["name"].as_str().expect("name");
        let slot = &imported.engine.slots[name];
        assert_eq!(slot.instances.len(), list(c, "jobs").len(), "{name}");
        for j in list(c, "jobs") {
            let inst = &slot.instances[j["name"].as_str().expect("instance")];
            for (i, p) in outset::config::ProcessType::ALL.iter().enumerate() {
                assert_eq!(i64::from(inst.pid(*p)), j["pid"][i].as_i64().expect("pid"));
            }
            assert_eq!(
                inst.state.name(),
                s.ctl(&["status", name, &format!("N={}", inst.name)])
                    .1
                    .split('/')
                    .nth(1)
                    .and_then(|r| r.split([',', '\n']).next())
                    .unwrap_or(""),
                "{name} ({})",
                inst.name
            );
        }
    }
    let names: Vec<&str> = imported
        .engine
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let json_names: Vec<&str> = list(&before, "events")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, json_names);
    assert_eq!(pid_of(&s.ctl(&["status", "svc"]).1), svc);
    assert_eq!(
        before["job_classes"]
            .as_array()
            .expect("classes")
            .iter()
            .find(|c| c["name"] == "svc")
            .expect("svc")["jobs"][0]["pid"][0],
        svc
    );

    // outset reads back everything it wrote: the state after the re-exec
    // is the state before it.
    s.reexec();
    assert_eq!(s.state(), before);

    // And it carries on from there: `both` still holds alpha.
    assert_eq!(s.ctl(&["emit", "--no-wait", "beta"]).0, 0);
    s.wait_for("both to run", || {
        s.ctl(&["status", "both"])
            .1
            .starts_with("both start/running")
    });
    let both = s.job_state("both", "").expect("both");
    assert!(
        list(&both, "env")
            .iter()
            .any(|e| e == "UPSTART_EVENTS=alpha beta"),
        "{both}"
    );
    touch(&s, "go");
    s.wait_for("slow and blocked to run", || {
        s.ctl(&["status", "slow"])
            .1
            .starts_with("slow start/running")
            && s.ctl(&["status", "blocked"])
                .1
                .starts_with("blocked start/running")
    });
}

#[test]
fn a_deeply_nested_start_on_survives_a_reexec() {
    let alternatives: Vec<String> = (0..400).map(|i| format!("e{i}")).collect();
    let job = format!(
        "start on go and ({})\nconsole none\nexec sleep 1000\n",
        alternatives.join(" or ")
    );
    let s = Session::start("deep", &[("deep", &job)]);
    // `go` is held by the tree's first leaf across the re-exec.
    assert_eq!(s.ctl(&["emit", "--no-wait", "go"]).0, 0);
    s.wait_for("go to be held", || list(&s.state(), "events").len() == 1);
    s.reexec();
    assert!(
        !s.log().contains("Failed to read serialisation data"),
        "{}",
        s.log()
    );
    assert_eq!(s.ctl(&["emit", "--no-wait", "e399"]).0, 0);
    s.wait_for("deep to run", || {
        s.ctl(&["status", "deep"])
            .1
            .starts_with("deep start/running")
    });
    let deep = s.job_state("deep", "").expect("deep");
    assert!(
        list(&deep, "env")
            .iter()
            .any(|e| e == "UPSTART_EVENTS=go e399"),
        "{deep}"
    );
}

#[test]
fn a_waiting_emit_is_cut_off_by_a_reexec_and_its_jobs_carry_on() {
    let s = Session::start(
        "emitwait",
        &[(
            "hold",
            &format!("start on hello\nconsole none\npre-start exec {WAIT_GO}\nexec sleep 1000\n"),
        )],
    );
    let emit = Command::new(env!("CARGO_BIN_EXE_initctl"))
        .args(["emit", "hello"])
        .env("UPSTART_SESSION", &s.address)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("initctl emit");
    s.wait_for("hold's pre-start", || {
        s.ctl(&["status", "hold"])
            .1
            .starts_with("hold start/pre-start")
    });
    // The caller waits for `hello` to finish, which needs hold to start.
    let mut emit = emit;
    assert!(
        emit.try_wait().expect("wait").is_none(),
        "emit returned early"
    );
    s.reexec();
    // Its connection ended with the old image: an error, not a reply
    // (reexec.md §4.4, §6.9).
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = emit.try_wait().expect("wait") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "emit still waiting after the re-exec"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = emit.wait_with_output().expect("output");
    assert!(!status.success(), "emit succeeded: {out:?}");
    assert!(!out.stderr.is_empty(), "no error message");
    // The event and the job it started carry on in the new image.
    assert_eq!(list(&s.state(), "events")[0]["name"], "hello");
    touch(&s, "go");
    s.wait_for("hold to run", || {
        s.ctl(&["status", "hold"])
            .1
            .starts_with("hold start/running")
    });
    s.wait_for("hello to finish", || list(&s.state(), "events").is_empty());
    // A new waiting emit is answered by the new image.
    assert_eq!(s.ctl(&["emit", "hello"]).0, 0);
}

#[test]
fn a_post_start_running_across_a_reexec_completes() {
    let s = Session::start(
        "poststart",
        &[(
            "post",
            &format!("console none\nexec sleep 1000\npost-start exec {WAIT_GO}\n"),
        )],
    );
    assert_eq!(s.ctl(&["start", "--no-wait", "post"]).0, 0);
    s.wait_for("post-start", || {
        s.job_state("post", "")
            .is_some_and(|j| j["state"] == "JOB_POST_START")
    });
    let before = s.job_state("post", "").expect("post");
    let main = before["pid"][0].as_i64().expect("main");
    let post = before["pid"][2].as_i64().expect("post-start");
    assert!(main > 0 && post > 0, "{before}");
    s.reexec();
    assert_eq!(s.job_state("post", "").expect("post")["pid"], before["pid"]);
    touch(&s, "go");
    s.wait_for("post to run", || {
        s.ctl(&["status", "post"]).1 == format!("post start/running, process {main}\n")
    });
    assert!(!alive(i32::try_from(post).expect("pid")));
}

fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        st.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('T'))
    })
}

#[test]
fn a_child_stopped_before_exec_is_supervised_by_the_new_image() {
    // `debug` (honoured with --debug): the child stops itself between fork
    // and exec and waits to be continued.
    let s = Session::start_with(
        "beforeexec",
        &[("dbg", "debug\nconsole none\nexec sleep 1000\n")],
        &["--debug"],
    );
    assert_eq!(s.ctl(&["start", "--no-wait", "dbg"]).0, 0);
    s.wait_for("the stopped child", || {
        s.job_state("dbg", "")
            .and_then(|j| j["pid"][0].as_i64())
            .is_some_and(|p| p > 0 && stopped(p as i32))
    });
    let child = s.job_state("dbg", "").expect("dbg")["pid"][0]
        .as_i64()
        .expect("pid") as i32;
    assert_ne!(comm(child), "sleep", "not exec'd yet");
    s.reexec();
    // SAFETY: kill(2) on the job's process.
    unsafe { libc::kill(child, libc::SIGCONT) };
    s.wait_for("the exec", || comm(child) == "sleep");
    assert_eq!(pid_of(&s.ctl(&["status", "dbg"]).1), child);
    // The new image ends it and sees it go.
    assert_eq!(s.ctl(&["stop", "dbg"]).0, 0);
    assert!(!alive(child));
    assert_eq!(s.ctl(&["status", "dbg"]).1, "dbg stop/waiting\n");
}

/// Descriptors a process has open, by number.
fn open_fds(pid: i32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

#[test]
fn a_failed_exec_leaves_init_running_and_answering() {
    // The daemon re-executes the path it was started from: a copy that the
    // test then replaces with a file that cannot be executed.
    let dir = TempDir::new("execfail");
    let bin = dir.0.join("bin/outset");
    std::fs::create_dir_all(dir.0.join("bin")).expect("bin");
    common::copy_executable(Path::new(env!("CARGO_BIN_EXE_outset")), &bin);
    std::fs::create_dir_all(dir.0.join("run")).expect("run");
    // a's log pty is one of the descriptors a re-exec hands over.
    dir.write("conf/a.conf", "console log\nexec sleep 1000\n");
    dir.write("conf/c.conf", "console none\nexec sleep 1000\n");
    dir.write(
        "conf/s.conf",
        "console none\nscript\n  exec sleep 1000\nend script\n",
    );
    dir.write("conf/b.conf", "console none\nexec sleep 1000\n");
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    let child = Command::new(&bin)
        .args(["--user", "--no-startup-event", "--verbose", "--confdir"])
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .stdin(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("outset copy");
    let session_file = dir
        .0
        .join(format!("run/upstart/sessions/{}.session", child.id()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        if let Some(a) = std::fs::read_to_string(&session_file).ok().and_then(|t| {
            t.trim_end()
                .strip_prefix("UPSTART_SESSION=")
                .map(str::to_string)
        }) {
            break a;
        }
        assert!(Instant::now() < deadline, "no session file");
        std::thread::sleep(Duration::from_millis(20));
    };
    let s = common::Started {
        dir,
        child,
        address,
        stop_gently: false,
    };
    let a = pid_of(&s.ctl(&["start", "a"]).1);
    let script = pid_of(&s.ctl(&["start", "s"]).1);
    let c = pid_of(&s.ctl(&["start", "c"]).1);
    assert!(a > 0 && script > 0 && c > 0);
    let before = open_fds(c);

    std::fs::remove_file(&bin).expect("remove");
    std::fs::write(&bin, "not a program\n").expect("replace");
    let client = outset::control::client::Client::connect(&s.address).expect("connect");
    // Answered before the execution is tried (Upstart dropped the caller).
    client
        .manager::<_, ()>("Restart", &())
        .expect("an empty reply to Restart()");
    drop(client);
    s.wait_for("the failed exec", || {
        s.log().contains("Failed to re-execute")
    });
    assert!(s.log().contains("Permission denied"), "{}", s.log());

    // Still the same process, still answering, jobs still supervised.
    assert!(s.child.id() > 0 && alive(s.child.id() as i32));
    assert_eq!(pid_of(&s.ctl(&["status", "a"]).1), a);
    assert_eq!(pid_of(&s.ctl(&["status", "s"]).1), script);
    // A job started now inherits none of init's descriptors (those made
    // inheritable for the exec are close-on-exec again).
    let b = pid_of(&s.ctl(&["start", "b"]).1);
    let links = |pid: i32| -> Vec<String> {
        open_fds(pid)
            .iter()
            .map(|f| {
                format!(
                    "{f}:{:?}",
                    std::fs::read_link(format!("/proc/{pid}/fd/{f}"))
                )
            })
            .collect()
    };
    assert_eq!(
        open_fds(b),
        before,
        "descriptors leaked into b: {:?} (c: {:?})",
        links(b),
        links(c)
    );
    assert_eq!(s.ctl(&["stop", "a"]).0, 0);
    assert!(!alive(a));

    // Once the binary is back, re-executing works again.
    common::copy_executable(Path::new(env!("CARGO_BIN_EXE_outset")), &bin);
    s.reexec();
    assert_eq!(pid_of(&s.ctl(&["status", "b"]).1), b);
    assert_eq!(pid_of(&s.ctl(&["status", "s"]).1), script);
}

/// What each thread of a process is doing (for failure messages).
fn threads(pid: i32) -> String {
    let mut out = String::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = t.path();
        let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
        out.push_str(&format!(
            "thread {} {} wchan={} syscall={} stack={}\n",
            t.file_name().to_string_lossy(),
            read("comm").trim(),
            read("wchan"),
            read("syscall").trim(),
            read("stack").replace('\n', " | ")
        ));
    }
    // Backtraces too, where gdb is around.
    if let Ok(o) = Command::new("timeout")
        .args([
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt 30",
        ])
        .output()
    {
        out.push_str(&String::from_utf8_lossy(&o.stdout));
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    out.push_str(&format!(
        "{fds} descriptors; status: {}",
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Sig") || l.starts_with("State"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    out
}

/// Children of `parent` that have not exited.
fn live_children(parent: i32) -> std::collections::BTreeSet<i32> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let mut rest = stat.rsplit(')').next().unwrap_or("").split_whitespace();
        let state = rest.next().unwrap_or("");
        let ppid = rest.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) && state != "Z" {
            out.insert(pid);
        }
    }
    out
}

/// Every pid the daemon's state names.
fn state_pids(v: &serde_json::Value) -> Vec<i32> {
    let mut out = Vec::new();
    for c in list(v, "job_classes") {
        for j in list(c, "jobs") {
            out.extend(
                list(j, "pid")
                    .iter()
                    .filter_map(serde_json::Value::as_i64)
                    .filter(|p| *p > 0)
                    .map(|p| p as i32),
            );
        }
    }
    out
}

#[test]
fn a_hundred_reexecs_under_load_lose_nothing() {
    let rounds: usize = std::env::var("OUTSET_REEXEC_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let s = Session::start_with(
        "load",
        &[
            ("long1", "console none\nexec sleep 1000\n"),
            ("long2", "console none\nrespawn\nexec sleep 1000\n"),
            (
                "chatter",
                "console log\nexec /bin/sh -c 'while :; do echo tick; sleep 0.2; done'\n",
            ),
            ("worker", "instance $N\nconsole none\nexec sleep 1000\n"),
            (
                "pinger",
                "start on ping\ntask\nconsole none\nexec /bin/sh -c 'sleep 0.05'\n",
            ),
            (
                "flash",
                "console none\npre-start exec true\nexec sleep 0.1\npost-stop exec true\n",
            ),
        ],
        &["--debug"],
    );
    let daemon = s.child.id() as i32;
    let mut long = Vec::new();
    for job in ["long1", "long2", "chatter"] {
        long.push((job, pid_of(&s.ctl(&["start", job]).1)));
    }
    s.reexec();
    let fds = s.settled_fds();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let generator = {
        let stop = stop.clone();
        let address = s.address.clone();
        std::thread::spawn(move || {
            let ctl = |args: &[&str]| -> i32 {
                Command::new("timeout")
                    .arg("30")
                    .arg(env!("CARGO_BIN_EXE_initctl"))
                    .args(args)
                    .env("UPSTART_SESSION", &address)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .map_or(-1, |st| st.code().unwrap_or(-1))
            };
            let mut hung = Vec::new();
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = format!("N={}", i % 6);
                let verb = if (i / 6) % 2 == 0 { "start" } else { "stop" };
                for args in [
                    vec![verb, "--no-wait", "worker", n.as_str()],
                    vec!["emit", "--no-wait", "ping"],
                    vec!["start", "--no-wait", "flash"],
                ] {
                    // 124: `timeout` ended a call the daemon never answered.
                    if ctl(&args) == 124 {
                        hung.push(args.join(" "));
                    }
                }
                i += 1;
            }
            (i, hung)
        })
    };

    for round in 0..rounds {
        s.reexec();
        for (job, pid) in &long {
            let (code, out, _) = s.ctl(&["status", job]);
            assert_eq!(
                pid_of(&out),
                *pid,
                "{job} after re-exec {round}: {code} {out}\n{}",
                threads(daemon)
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ops, hung) = generator.join().expect("load generator");
    assert!(ops > 0);
    assert!(hung.is_empty(), "calls never answered: {hung:?}");
    assert_eq!(
        s.log().matches("Stateful re-exec completed").count(),
        rounds + 1
    );
    assert!(!s.log().contains("Quiescing"), "the session ended");

    // Every process the daemon has is one it knows, once, and the other
    // way round (no job lost, none duplicated).
    s.wait_for("the load to drain", || {
        let v = s.state();
        let mut known = state_pids(&v);
        known.sort_unstable();
        let unique: std::collections::BTreeSet<i32> = known.iter().copied().collect();
        unique.len() == known.len()
            && unique == live_children(daemon)
            && list(&v, "events").is_empty()
            && !s.ctl(&["status", "flash"]).1.contains("start/")
    });
    let (_, listing, _) = s.ctl(&["list"]);
    let workers: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("worker "))
        .collect();
    // The listing shows exactly the worker instances init has (the load
    // may well have ended with every worker stopped).
    let v = s.state();
    let running: std::collections::BTreeSet<String> = list(&v, "job_classes")
        .iter()
        .filter(|c| c.get("name").and_then(serde_json::Value::as_str) == Some("worker"))
        .flat_map(|c| list(c, "jobs"))
        .filter_map(|j| j.get("name")?.as_str().map(str::to_string))
        .collect();
    if running.is_empty() {
        assert_eq!(workers, ["worker stop/waiting"], "{listing}");
    } else {
        let names: std::collections::BTreeSet<String> = workers
            .iter()
            .filter_map(|l| l.split(['(', ')']).nth(1).map(str::to_string))
            .collect();
        assert_eq!(names, running, "{listing}");
        assert_eq!(names.len(), workers.len(), "{listing}");
        for w in &workers {
            assert!(w.contains("start/running, process "), "{listing}");
        }
    }
    for (job, pid) in &long {
        assert_eq!(pid_of(&s.ctl(&["status", job]).1), *pid, "{job}");
    }

    // No descriptor leaked: a fresh image with the same jobs as before.
    for n in 0..6 {
        let _ = s.ctl(&["stop", "worker", &format!("N={n}")]);
    }
    s.reexec();
    // The first count may still include a descriptor on its way out (a
    // client connection the server has not pruned yet); a leak only grows.
    let after = s.settled_fds();
    assert!(
        after <= fds,
        "descriptors leaked across re-execs: {fds} before, {after} after"
    );
}

/// Restart() is answered before the new image is executed, every time
/// (the execution ends the thread that writes replies: without waiting
/// for it, the caller often saw its connection dropped instead).
#[test]
fn restart_is_answered_before_the_execution() {
    let s = common::start_session("restart-reply", &[], &[]);
    for round in 1..=5 {
        let client = outset::control::client::Client::connect(&s.address).expect("connect");
        let answer = client.manager::<_, ()>("Restart", &());
        assert!(answer.is_ok(), "round {round}: {answer:?}");
        drop(client);
        s.wait_for("the re-exec", || {
            // Each image says it is running.
            s.log().matches("session init running").count() > round && s.ctl(&["version"]).0 == 0
        });
    }
}

/// The inotify descriptors a process holds.
fn inotify_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy() == "anon_inode:inotify")
                })
                .count()
        })
        .unwrap_or(0)
}

/// The old image's watch on the job directories is let go of by the
/// state writer, after the exec (its close waits for the kernel): the new
/// image must hold only its own watch, and that watch must work.
#[test]
fn the_job_directory_watch_is_renewed_and_never_doubled() {
    let s = Session::start("watch", &[("a", "exec sleep 1000\n")]);
    let pid = s.init_pid();
    assert_eq!(inotify_fds(pid), 1);
    for round in 0..3 {
        s.reexec();
        s.wait_for("the old watch to be closed", || inotify_fds(pid) == 1);
        let name = format!("new{round}");
        s.dir
            .write(&format!("conf/{name}.conf"), "exec sleep 1000\n");
        s.wait_for("the new job file to be loaded", || {
            s.ctl(&["status", &name]).1.contains("stop/waiting")
        });
    }
    // Settled: never a second watch left behind.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inotify_fds(pid), 1);
}
