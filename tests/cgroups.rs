//! The `cgroup` stanza end to end: outset (a session init, or PID 1 of a
//! namespace) with the real `outset-cgmanager` on a temporary socket. Jobs
//! are placed by the spawn helper; placement is read back from
//! `/proc/PID/cgroup` and the knobs from the cgroup files. Needs root (CI
//! runs as root).

mod common;

use common::cgroup_layout::{is_v1, make_cgroup, mount_of, v2_mount, Limit};
use common::{assert_root, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A name no other test run uses, for cgroups made on the host.
fn unique(tag: &str) -> String {
    format!("{tag}{}", std::process::id())
}

// ----------------------------------------------------------------------
// The host's cgroup layout

/// The controller the jobs here are placed in (`@CG@` in their job
/// files), with a limit they set: pids where this layout offers it, else
/// one it does (hugetlb where cgroup2 alone is mounted on a kernel that
/// keeps the others in v1 hierarchies).
fn cg() -> Limit {
    Limit::offered(&["pids"])
}

/// The cgroup of `pid` in `controller`'s hierarchy (`/proc/PID/cgroup`).
fn cgroup_of(pid: &str, controller: &str) -> Option<String> {
    cgroup_in(
        &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?,
        controller,
    )
}

/// The cgroup in `controller`'s hierarchy of a `/proc/PID/cgroup` text.
fn cgroup_in(text: &str, controller: &str) -> Option<String> {
    let mut unified = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, list, path) = (f.next()?, f.next()?, f.next()?);
        if list.split(',').any(|c| c == controller) {
            return Some(path.to_string());
        }
        if list.is_empty() {
            unified = Some(path.to_string());
        }
    }
    if is_v1(controller) {
        None
    } else {
        unified
    }
}

/// `base/rel` as a cgroup path.
fn under(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    format!("{base}/{rel}")
}

/// A knob file of a cgroup (path as in `/proc/PID/cgroup`).
fn knob(controller: &str, cgroup: &str, file: &str) -> PathBuf {
    mount_of(controller)
        .expect("controller mounted")
        .join(cgroup.trim_start_matches('/'))
        .join(file)
}

/// Remove the cgroups a test made under `base` (each `rel` and its now
/// empty parents up to `base`, deepest first); the manager removes most of
/// them itself once they empty.
fn remove_cgroups(controller: &str, base: &str, rels: &[&str]) {
    let Some(mount) = mount_of(controller) else {
        return;
    };
    let root = mount.join(base.trim_start_matches('/'));
    for rel in rels {
        let mut dir = root.join(rel);
        for _ in 0..=rel.matches('/').count() {
            // Wait out the job's processes leaving.
            let deadline = Instant::now() + Duration::from_secs(5);
            while dir.exists() && std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            dir.pop();
        }
    }
}

// ----------------------------------------------------------------------
// The manager and a session init

struct Manager {
    child: Child,
    socket: PathBuf,
}

impl Manager {
    fn start(dir: &Path) -> Manager {
        let socket = dir.join("cgmanager.sock");
        let log = std::fs::File::create(dir.join("cgmanager.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_outset-cgmanager"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("outset-cgmanager");
        Manager::answering(child, socket)
    }

    /// A manager that sees every cgroup hierarchy mounted read-only: it
    /// runs in a private mount namespace whose cgroup mounts are remounted
    /// `ro` (bind remounts change only those mounts, not the host's).
    fn start_read_only(dir: &Path) -> Manager {
        let socket = dir.join("cgmanager.sock");
        let log = std::fs::File::create(dir.join("cgmanager.log")).expect("log");
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-ec"])
            .arg(
                "for d in $(awk '$3 == \"cgroup\" || $3 == \"cgroup2\" { print $2 }' /proc/self/mounts); do\n  mount -o remount,bind,ro \"$d\"\ndone\nexec \"$0\" --socket \"$1\"",
            )
            .arg(env!("CARGO_BIN_EXE_outset-cgmanager"))
            .arg(&socket)
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("unshare");
        Manager::answering(child, socket)
    }

    /// Wait until the manager just spawned answers on `socket`.
    fn answering(child: Child, socket: PathBuf) -> Manager {
        let m = Manager { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !Command::new(env!("CARGO_BIN_EXE_outset-cgmanager"))
            .args(["--ping", "--socket"])
            .arg(&m.socket)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "manager does not answer; its log:\n{}",
                std::fs::read_to_string(m.socket.with_file_name("cgmanager.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session init with the shared client helpers; stopped gently on drop.
type Session = common::Started;

impl Session {
    /// `@CG@` in the jobs names the controller `cg()` chose, `@KEY@` its
    /// limit and `@VALUE@` a value of it.
    fn start(tag: &str, jobs: &[(&str, &str)], extra: &[&str]) -> Session {
        let mut args = vec!["--debug"];
        args.extend_from_slice(extra);
        let cg = cg();
        let jobs: Vec<(&str, String)> = jobs
            .iter()
            .map(|(name, text)| {
                let text = text
                    .replace("@CG@", cg.controller)
                    .replace("@KEY@", cg.key)
                    .replace("@VALUE@", cg.values[0]);
                (*name, text)
            })
            .collect();
        let jobs: Vec<(&str, &str)> = jobs.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let mut session = common::start_session(tag, &jobs, &args);
        session.stop_gently = true;
        session
    }

    fn status(&self, job: &str) -> String {
        self.ctl(&["status", job]).1.trim_end().to_string()
    }

    fn wait_status(&self, job: &str, want: &str) {
        self.wait_for(&format!("{job} to be {want}"), || {
            self.status(job).starts_with(want)
        });
    }

    /// The main pid of a running job (`KEY=VALUE`s name an instance).
    fn main_pid(&self, job: &str) -> String {
        let mut args = vec!["status"];
        args.extend(job.split(' '));
        let s = self.ctl(&args).1.trim_end().to_string();
        s.rsplit(' ')
            .next()
            .filter(|p| p.parse::<u32>().is_ok())
            .unwrap_or_else(|| panic!("no pid in {s:?}"))
            .to_string()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.0.join(rel)).unwrap_or_default()
    }
}

/// Our own cgroup in `controller`: a session init and its jobs start there.
fn own(controller: &str) -> String {
    cgroup_of("self", controller).expect("own cgroup")
}

// ----------------------------------------------------------------------

#[test]
fn every_stanza_form_places_the_job_and_sets_its_knobs() {
    assert_root();
    let tag = unique("cgf");
    // Two controllers, each with the limit key of its own hierarchy (v1
    // and v2 name memory's differently); one and the same where the
    // layout offers only one.
    let (p, m) = (cg(), Limit::offered(&["memory"]));
    let (pc, mc) = (p.controller, m.controller);
    let jobs = [
        // Implicit name: upstart/JOB.
        ("plain", format!("cgroup {pc}\nexec sleep 1000\n")),
        // Explicit name with levels and `$VAR`s, and a setting.
        (
            "named",
            format!(
                "instance $N\ncgroup {mc} {tag}/$N/$UPSTART_JOB {} {}\nexec sleep 1000\n",
                m.key, m.values[0]
            ),
        ),
        // Implicit name with a setting.
        (
            "knobs",
            format!("cgroup {pc} {} {}\nexec sleep 1000\n", p.key, p.values[1]),
        ),
        // $UPSTART_CGROUP inside a name.
        (
            "nested",
            format!("cgroup {mc} $UPSTART_CGROUP/sub\nexec sleep 1000\n"),
        ),
        // Two controllers.
        (
            "both",
            format!("cgroup {pc}\ncgroup {mc}\nexec sleep 1000\n"),
        ),
    ];
    let jobs: Vec<(&str, &str)> = jobs.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let s = Session::start("cgforms", &jobs, &[]);
    let manager = Manager::start(&s.dir.0);
    assert_eq!(
        s.ctl(&["notify-cgroup-manager-address", &manager.address()])
            .0,
        0
    );
    let (p_base, m_base) = (own(pc), own(mc));
    let limit = |l: &Limit, cgroup: &str| {
        std::fs::read_to_string(knob(l.controller, cgroup, &l.file()))
            .unwrap_or_else(|e| panic!("{} of {cgroup}: {e}", l.file()))
            .trim()
            .to_string()
    };

    assert_eq!(s.ctl(&["start", "plain"]).0, 0, "{}", s.log());
    let want = under(&p_base, "upstart/plain");
    assert_eq!(cgroup_of(&s.main_pid("plain"), pc), Some(want));

    let (rc, _, err) = s.ctl(&["start", "named", "N=a/b"]);
    assert_eq!(rc, 0, "{err}{}", s.log());
    let want = under(&m_base, &format!("{tag}/a/b/named"));
    assert_eq!(
        cgroup_of(&s.main_pid("named N=a/b"), mc),
        Some(want.clone())
    );
    assert_eq!(limit(&m, &want), m.values[0]);

    assert_eq!(s.ctl(&["start", "knobs"]).0, 0, "{}", s.log());
    let want = under(&p_base, "upstart/knobs");
    assert_eq!(cgroup_of(&s.main_pid("knobs"), pc), Some(want.clone()));
    assert_eq!(limit(&p, &want), p.values[1]);

    assert_eq!(s.ctl(&["start", "nested"]).0, 0, "{}", s.log());
    let want = under(&m_base, "upstart/nested/sub");
    assert_eq!(cgroup_of(&s.main_pid("nested"), mc), Some(want));

    assert_eq!(s.ctl(&["start", "both"]).0, 0, "{}", s.log());
    let pid = s.main_pid("both");
    assert_eq!(cgroup_of(&pid, pc), Some(under(&p_base, "upstart/both")));
    assert_eq!(cgroup_of(&pid, mc), Some(under(&m_base, "upstart/both")));

    for job in ["plain", "knobs", "nested", "both"] {
        assert_eq!(s.ctl(&["stop", job]).0, 0);
    }
    assert_eq!(s.ctl(&["stop", "named", "N=a/b"]).0, 0);
    remove_cgroups(
        pc,
        &p_base,
        &["upstart/plain", "upstart/knobs", "upstart/both"],
    );
    let named = format!("{tag}/a/b/named");
    remove_cgroups(mc, &m_base, &[&named, "upstart/nested/sub", "upstart/both"]);
}

#[test]
fn every_process_of_a_job_runs_in_its_cgroup() {
    assert_root();
    let record = |name: &str| format!("  cat /proc/self/cgroup > @DIR@/{name}.cg\n");
    let job = format!(
        "cgroup @CG@\npre-start script\n{}end script\npost-start script\n{}end script\nscript\n{}  exec sleep 1000\nend script\npre-stop script\n{}end script\npost-stop script\n{}end script\n",
        record("pre-start"),
        record("post-start"),
        record("main"),
        record("pre-stop"),
        record("post-stop"),
    );
    let s = Session::start("cgprocs", &[("everywhere", &job)], &[]);
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    assert_eq!(s.ctl(&["start", "everywhere"]).0, 0, "{}", s.log());
    assert_eq!(s.ctl(&["stop", "everywhere"]).0, 0, "{}", s.log());
    let want = under(&own(cg().controller), "upstart/everywhere");
    for p in ["pre-start", "main", "post-start", "pre-stop", "post-stop"] {
        let text = s.read(&format!("{p}.cg"));
        assert_eq!(
            cgroup_in(&text, cg().controller).as_deref(),
            Some(want.as_str()),
            "{p} ran in\n{text}"
        );
    }
    remove_cgroups(
        cg().controller,
        &own(cg().controller),
        &["upstart/everywhere"],
    );
}

#[test]
fn a_traced_daemon_is_followed_into_its_cgroup() {
    assert_root();
    let s = Session::start(
        "cgfork",
        &[(
            "forker",
            "expect fork\ncgroup @CG@\nexec /bin/sh -c \"sleep 1000 &\"\n",
        )],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    assert_eq!(s.ctl(&["start", "forker"]).0, 0, "{}", s.log());
    let pid = s.main_pid("forker");
    // The pid followed is the forked child (soon to exec sleep), in the
    // job's cgroup.
    assert!(
        s.log().contains(&format!("became new process ({pid})")),
        "{}",
        s.log()
    );
    s.wait_for("the forked child to exec sleep", || {
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.starts_with("sleep"))
    });
    let want = under(&own(cg().controller), "upstart/forker");
    assert_eq!(
        cgroup_of(&pid, cg().controller).as_deref(),
        Some(want.as_str())
    );
    assert_eq!(s.ctl(&["stop", "forker"]).0, 0);
    remove_cgroups(cg().controller, &own(cg().controller), &["upstart/forker"]);
}

#[test]
fn a_debug_job_stops_before_entering_its_cgroups() {
    assert_root();
    let s = Session::start(
        "cgdebug",
        &[(
            "dbg",
            "debug\ncgroup @CG@\nexec /bin/sh -c 'cat /proc/self/cgroup > @DIR@/dbg.cg; exec sleep 1000'\n",
        )],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    // init sees the spawn succeed once the helper has stopped itself.
    assert_eq!(s.ctl(&["start", "dbg"]).0, 0, "{}", s.log());
    let pid = s.main_pid("dbg");
    let stopped = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('T'))
        })
    };
    s.wait_for("the helper to stop", stopped);
    assert_eq!(s.read("dbg.cg"), "", "ran before the debugger");
    // SAFETY: kill(2) on the job's process.
    unsafe { libc::kill(pid.parse().expect("pid"), libc::SIGCONT) };
    s.wait_for("the job to run", || s.read("dbg.cg").ends_with('\n'));
    let want = under(&own(cg().controller), "upstart/dbg");
    assert_eq!(
        cgroup_in(&s.read("dbg.cg"), cg().controller).as_deref(),
        Some(want.as_str()),
        "{}",
        s.read("dbg.cg")
    );
    s.ctl(&["stop", "dbg"]);
    remove_cgroups(cg().controller, &own(cg().controller), &["upstart/dbg"]);
}

#[test]
fn cgroups_of_a_setuid_job_are_handed_to_its_user() {
    assert_root();
    let s = Session::start(
        "cgsetuid",
        &[
            // A script: fd 9 is handed to the user looked up by the helper.
            (
                "asnobody",
                "setuid nobody\ncgroup @CG@\nscript\n  exec sleep 1000\nend script\n",
            ),
            (
                "nosuchuser",
                "setuid no-such-user-outset\ncgroup @CG@\nexec sleep 1000\n",
            ),
        ],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    assert_eq!(s.ctl(&["start", "asnobody"]).0, 0, "{}", s.log());
    let pid = s.main_pid("asnobody");
    let want = under(&own(cg().controller), "upstart/asnobody");
    assert_eq!(
        cgroup_of(&pid, cg().controller).as_deref(),
        Some(want.as_str())
    );
    use std::os::unix::fs::MetadataExt;
    let dir = knob(cg().controller, &want, "");
    let nobody = std::fs::metadata(format!("/proc/{pid}"))
        .expect("proc")
        .uid();
    assert_ne!(nobody, 0);
    assert_eq!(std::fs::metadata(&dir).expect("cgroup dir").uid(), nobody);
    s.ctl(&["stop", "asnobody"]);
    remove_cgroups(
        cg().controller,
        &own(cg().controller),
        &["upstart/asnobody"],
    );

    let (rc, _, err) = s.ctl(&["start", "nosuchuser"]);
    assert_eq!((rc, err.trim_end()), (1, "initctl: Job failed to start"));
    assert!(
        s.log()
            .contains("Failed to spawn nosuchuser main process: unable to find setuid user"),
        "{}",
        s.log()
    );
}

#[test]
fn jobs_wait_for_the_manager_address_by_event_and_by_hand() {
    assert_root();
    let s = Session::start(
        "cgwait",
        &[
            (
                "byevent",
                "start on go\ncgroup @CG@\nscript\n  echo \"$UPSTART_EVENTS\" > @DIR@/events\n  exec sleep 1000\nend script\n",
            ),
            ("byhand", "cgroup @CG@\nexec sleep 1000\n"),
            ("other", "start on go\nexec sleep 1000\n"),
        ],
        &[],
    );
    // By hand: Upstart's error, nothing started.
    let (rc, _, err) = s.ctl(&["start", "byhand"]);
    assert_eq!(rc, 1);
    assert_eq!(
        err.trim_end(),
        "initctl: Job cannot be started as cgroup manager not available: byhand"
    );
    // By event: held; other jobs start.
    assert_eq!(s.ctl(&["emit", "--no-wait", "go"]).0, 0);
    s.wait_status("other", "other start/running");
    assert_eq!(s.status("byevent"), "byevent stop/waiting");
    assert!(s
        .log()
        .contains("Cannot start some jobs until cgroup manager available"));

    let m = Manager::start(&s.dir.0);
    assert_eq!(s.ctl(&["notify-cgroup-manager-address", &m.address()]).0, 0);
    // A second address is ignored.
    assert_eq!(
        s.ctl(&["notify-cgroup-manager-address", "unix:path=/nonexistent"])
            .0,
        0
    );
    s.wait_status("byevent", "byevent start/running");
    assert_eq!(s.read("events").trim_end(), "go");
    assert_eq!(s.ctl(&["start", "byhand"]).0, 0, "{}", s.log());
    let want = under(&own(cg().controller), "upstart/byhand");
    assert_eq!(
        cgroup_of(&s.main_pid("byhand"), cg().controller).as_deref(),
        Some(want.as_str())
    );
    for j in ["byevent", "byhand", "other"] {
        s.ctl(&["stop", j]);
    }
    remove_cgroups(
        cg().controller,
        &own(cg().controller),
        &["upstart/byhand", "upstart/byevent"],
    );
}

#[test]
fn a_job_held_for_the_manager_is_still_held_after_a_reexec() {
    assert_root();
    let s = Session::start(
        "cgwaitreexec",
        // Not "held": the job of the test below, whose cgroup would be
        // the same path, in use meanwhile.
        &[("kept", "start on go\ncgroup @CG@\nexec sleep 1000\n")],
        &[],
    );
    assert_eq!(s.ctl(&["emit", "--no-wait", "go"]).0, 0);
    s.wait_for("the job to be held", || {
        s.log()
            .contains("Cannot start some jobs until cgroup manager available")
    });
    s.reexec();
    assert_eq!(s.status("kept"), "kept stop/waiting");
    let m = Manager::start(&s.dir.0);
    assert_eq!(s.ctl(&["notify-cgroup-manager-address", &m.address()]).0, 0);
    s.wait_status("kept", "kept start/running");
    s.ctl(&["stop", "kept"]);
    remove_cgroups(cg().controller, &own(cg().controller), &["upstart/kept"]);
}

#[test]
fn a_stopped_manager_holds_the_job_but_never_init() {
    assert_root();
    let mut s = Session::start(
        "cgstop",
        &[
            ("held", "cgroup @CG@\nexec sleep 1000\n"),
            ("given-up", "cgroup @CG@\nexec sleep 1000\n"),
            ("free", "exec sleep 1000\n"),
        ],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    m.signal(libc::SIGSTOP);
    assert_eq!(s.ctl(&["start", "--no-wait", "held"]).0, 0);
    // The job shows its in-between state while init keeps answering.
    s.wait_for("held to wait in spawned", || {
        s.status("held").starts_with("held start/spawned")
    });
    assert_eq!(s.ctl(&["start", "free"]).0, 0, "{}", s.log());
    assert!(s.status("free").starts_with("free start/running"));
    let (rc, list, _) = s.ctl(&["list"]);
    assert_eq!(rc, 0);
    assert!(list.contains("held start/spawned"), "{list}");
    assert!(s.status("held").starts_with("held start/spawned"));

    // As in Upstart, a stop request waits for the spawn to report.
    assert_eq!(s.ctl(&["start", "--no-wait", "given-up"]).0, 0);
    s.wait_status("given-up", "given-up start/spawned");
    assert_eq!(s.ctl(&["stop", "--no-wait", "given-up"]).0, 0);
    s.wait_status("given-up", "given-up stop/spawned");

    m.signal(libc::SIGCONT);
    s.wait_status("held", "held start/running");
    s.wait_status("given-up", "given-up stop/waiting");
    let want = under(&own(cg().controller), "upstart/held");
    assert_eq!(
        cgroup_of(&s.main_pid("held"), cg().controller).as_deref(),
        Some(want.as_str())
    );
    assert!(s.alive());
    for j in ["held", "free"] {
        s.ctl(&["stop", j]);
    }
    remove_cgroups(cg().controller, &own(cg().controller), &["upstart/held"]);
}

#[test]
fn a_dead_manager_fails_the_job_with_upstarts_error() {
    assert_root();
    let mut s = Session::start(
        "cgdead",
        &[("orphan", "cgroup @CG@\nexec sleep 1000\n")],
        &[],
    );
    let mut m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    let _ = m.child.kill();
    let _ = m.child.wait();
    let (rc, _, err) = s.ctl(&["start", "orphan"]);
    assert_eq!(rc, 1);
    assert_eq!(err.trim_end(), "initctl: Job failed to start");
    assert!(
        s.log()
            .contains("Failed to spawn orphan main process: unable to connect to CGManager:"),
        "{}",
        s.log()
    );
    assert_eq!(s.status("orphan"), "orphan stop/waiting");
    assert!(s.alive());
    assert_eq!(s.ctl(&["version"]).0, 0);
}

#[test]
fn a_read_only_cgroupfs_fails_the_job_with_upstarts_error() {
    assert_root();
    let mut s = Session::start(
        "cgro",
        &[
            // Its cgroup cannot be made (Create fails).
            ("rofresh", "cgroup @CG@\nexec sleep 1000\n"),
            // Its cgroup exists already, but cannot be entered (MovePid).
            ("roexist", "cgroup @CG@\nexec sleep 1000\n"),
            ("roplain", "exec sleep 1000\n"),
        ],
        &[],
    );
    let base = own(cg().controller);
    // Made as the manager makes it: on cgroup2, the controller enabled in
    // its parents (which the read-only manager could not do).
    let existing = knob(cg().controller, &under(&base, "upstart/roexist"), "");
    make_cgroup(cg().controller, &existing);
    let m = Manager::start_read_only(&s.dir.0);
    assert_eq!(s.ctl(&["notify-cgroup-manager-address", &m.address()]).0, 0);
    for (job, error) in [
        ("rofresh", "unable to setup cgroup:"),
        ("roexist", "unable to enter cgroup:"),
    ] {
        let (rc, _, err) = s.ctl(&["start", job]);
        assert_eq!(rc, 1, "{}", s.log());
        assert_eq!(err.trim_end(), "initctl: Job failed to start");
        let want = format!("Failed to spawn {job} main process: {error}");
        let log = s.log();
        let line = log
            .lines()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("no {want:?} in the log:\n{log}"));
        assert!(line.contains("Read-only file system"), "{line}");
        assert_eq!(s.status(job), format!("{job} stop/waiting"));
    }
    assert!(!knob(cg().controller, &under(&base, "upstart/rofresh"), "").exists());
    // Init and the manager carry on.
    assert!(s.alive());
    let (rc, list, _) = s.ctl(&["list"]);
    assert_eq!(rc, 0);
    assert!(list.contains("rofresh stop/waiting"), "{list}");
    assert_eq!(s.ctl(&["start", "roplain"]).0, 0, "{}", s.log());
    assert!(s.status("roplain").starts_with("roplain start/running"));
    assert!(Command::new(env!("CARGO_BIN_EXE_outset-cgmanager"))
        .args(["--ping", "--socket"])
        .arg(&m.socket)
        .status()
        .is_ok_and(|st| st.success()));
    s.ctl(&["stop", "roplain"]);
    remove_cgroups(cg().controller, &base, &["upstart/roexist"]);
}

#[test]
fn a_bad_controller_fails_the_job_and_init_carries_on() {
    assert_root();
    let mut s = Session::start("cgbad", &[("bad", "cgroup name\nexec sleep 1000\n")], &[]);
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    let (rc, _, err) = s.ctl(&["start", "bad"]);
    assert_eq!(rc, 1);
    assert_eq!(err.trim_end(), "initctl: Job failed to start");
    assert!(
        s.log()
            .contains("Failed to spawn bad main process: unable to setup cgroup:"),
        "{}",
        s.log()
    );
    assert!(s.alive());
}

#[test]
fn no_cgroups_starts_such_jobs_without_a_manager() {
    let s = Session::start(
        "cgnone",
        &[("plain", "cgroup @CG@ @KEY@ @VALUE@\nexec sleep 1000\n")],
        &["--no-cgroups"],
    );
    assert_eq!(s.ctl(&["start", "plain"]).0, 0, "{}", s.log());
    let pid = s.main_pid("plain");
    assert_eq!(
        cgroup_of(&pid, cg().controller),
        cgroup_of("self", cg().controller)
    );
    // The address is accepted and ignored.
    assert_eq!(
        s.ctl(&["notify-cgroup-manager-address", "unix:path=/nonexistent"])
            .0,
        0
    );
    s.ctl(&["stop", "plain"]);
    assert_eq!(s.ctl(&["start", "plain"]).0, 0, "{}", s.log());
    s.ctl(&["stop", "plain"]);
}

#[test]
fn a_spawn_waiting_on_the_manager_survives_a_reexec() {
    assert_root();
    let s = Session::start(
        "cgreexecwait",
        &[("inflight", "cgroup @CG@\nexec sleep 1000\n")],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    m.signal(libc::SIGSTOP);
    assert_eq!(s.ctl(&["start", "--no-wait", "inflight"]).0, 0);
    s.wait_status("inflight", "inflight start/spawned");
    let o = Command::new(env!("CARGO_BIN_EXE_telinit"))
        .arg("u")
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("telinit");
    assert!(o.status.success() || o.status.code() == Some(1), "{o:?}");
    s.wait_for("the re-exec", || {
        s.log().contains("Stateful re-exec completed")
    });
    s.wait_for("the control socket", || s.ctl(&["version"]).0 == 0);
    assert!(s.status("inflight").starts_with("inflight start/spawned"));
    m.signal(libc::SIGCONT);
    s.wait_status("inflight", "inflight start/running");
    let want = under(&own(cg().controller), "upstart/inflight");
    assert_eq!(
        cgroup_of(&s.main_pid("inflight"), cg().controller).as_deref(),
        Some(want.as_str())
    );
    s.ctl(&["stop", "inflight"]);
    remove_cgroups(
        cg().controller,
        &own(cg().controller),
        &["upstart/inflight"],
    );
}

#[test]
fn the_manager_address_survives_a_reexec() {
    assert_root();
    let s = Session::start(
        "cgreexec",
        &[("after", "cgroup @CG@\nexec sleep 1000\n")],
        &[],
    );
    let m = Manager::start(&s.dir.0);
    s.ctl(&["notify-cgroup-manager-address", &m.address()]);
    let o = Command::new(env!("CARGO_BIN_EXE_telinit"))
        .arg("u")
        .env("UPSTART_SESSION", &s.address)
        .output()
        .expect("telinit");
    assert!(o.status.success() || o.status.code() == Some(1), "{o:?}");
    s.wait_for("the re-exec", || {
        s.log().contains("Stateful re-exec completed")
    });
    s.wait_for("the control socket", || s.ctl(&["version"]).0 == 0);
    assert_eq!(s.ctl(&["start", "after"]).0, 0, "{}", s.log());
    let want = under(&own(cg().controller), "upstart/after");
    assert_eq!(
        cgroup_of(&s.main_pid("after"), cg().controller).as_deref(),
        Some(want.as_str())
    );
    s.ctl(&["stop", "after"]);
    remove_cgroups(cg().controller, &own(cg().controller), &["upstart/after"]);
}

#[test]
fn pid1_on_a_fresh_cgroup2_mount() {
    assert_root();
    let v2 = v2_mount().expect("a cgroup2 hierarchy on this host");
    let limit = Limit::in_v2(&["memory", "pids"]);
    let (ctl, key, value) = (limit.controller, limit.key, limit.values[0]);
    // The manager enables controllers in the ancestors' subtree_control and
    // never disables them: put the root's back as it was afterwards.
    let enabled_before = std::fs::read_to_string(v2.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == ctl);
    let tag = unique("v2");
    let dir = TempDir::new("cgv2");
    let d = dir.0.display().to_string();
    let mgr = env!("CARGO_BIN_EXE_outset-cgmanager");
    let initctl = env!("CARGO_BIN_EXE_initctl");
    // The manager is a job of init, announced from its post-start, as
    // the shipped cgmanager job does.
    dir.write(
        "conf/manager.conf",
        &format!(
            "start on startup\nconsole log\nexec {mgr} --socket {d}/sock\npost-start script\n  until {mgr} --ping --socket {d}/sock; do sleep 0.05; done\n  {initctl} notify-cgroup-manager-address unix:path={d}/sock\nend script\n"
        ),
    );
    // Both are held by their start event until the address arrives.
    let report = |name: &str, file: &str| {
        format!(
            "start on startup\ntask\nconsole log\nscript\n  cat /proc/self/cgroup > {d}/{name}.cg\n  cat {file} > {d}/{name}.knob\nend script\n"
        )
    };
    let plain = format!("{tag}a");
    let deep = format!("{tag}b");
    dir.write(
        &format!("conf/{plain}.conf"),
        &format!(
            "cgroup {ctl}\n{}",
            report(
                &plain,
                &format!("/sys/fs/cgroup/upstart/{plain}/cgroup.procs")
            )
        ),
    );
    dir.write(
        &format!("conf/{deep}.conf"),
        &format!(
            "cgroup {ctl} {tag}/$UPSTART_JOB/x {key} {value}\n{}",
            report(&deep, &format!("/sys/fs/cgroup/{tag}/{deep}/x/{ctl}.{key}"))
        ),
    );
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let outset = env!("CARGO_BIN_EXE_outset");
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--mount", "--net", "--fork", "--mount-proc", "sh", "-c"])
        .arg(format!(
            "umount -R -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec {outset} --container --debug --confdir {d}/conf --logdir {d}/logs"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare");
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
    let logs = || {
        format!(
            "init:\n{}\nmanager:\n{}",
            read("init.log"),
            read("logs/manager.log")
        )
    };
    common::wait_until(
        "both jobs to report",
        30,
        || {
            read(&format!("{plain}.knob")).ends_with('\n')
                && read(&format!("{deep}.knob")).ends_with('\n')
        },
        || format!("log:\n{}", logs()),
    );
    let ours = |name: &str| {
        read(&format!("{name}.cg"))
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .unwrap_or_default()
    };
    assert_eq!(ours(&plain), format!("/upstart/{plain}"), "{}", logs());
    assert_eq!(ours(&deep), format!("/{tag}/{deep}/x"), "{}", logs());
    assert_eq!(read(&format!("{deep}.knob")).trim_end(), value);

    // SIGTERM stops a container's init.
    let init = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse::<i32>().ok())
        .expect("init pid");
    // SAFETY: kill(2) on the namespace's init.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while unshare.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = unshare.kill();
            panic!("init did not stop; {}", logs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for rel in [format!("upstart/{plain}"), format!("{tag}/{deep}/x")] {
        let mut p = v2.join(&rel);
        for _ in 0..=rel.matches('/').count() {
            let _ = std::fs::remove_dir(&p);
            p.pop();
        }
    }
    if !enabled_before {
        // Refused while another cgroup still uses it; then it is not ours.
        let _ = std::fs::write(v2.join("cgroup.subtree_control"), format!("-{ctl}"));
    }
}
