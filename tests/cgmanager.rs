//! outset-cgmanager end to end: the real binary on a temporary socket,
//! driven with dbus-send (and gdbus, and zbus for fd-passing calls), its
//! effects checked in the cgroup filesystems it sees. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cgroup_layout::Limit;
use common::TempDir;

const DEST: &str = "--dest=org.linuxcontainers.cgmanager";
const OBJECT: &str = "/org/linuxcontainers/cgmanager";
const IFACE: &str = "org.linuxcontainers.cgmanager0_0";

/// Tests on the fresh v2 mount change the v2 root's subtree_control; they
/// take turns so that each can restore it.
static V2_LOCK: Mutex<()> = Mutex::new(());

fn must_be_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the cgroup manager tests need root"
    );
}

/// A running manager on a temporary socket.
struct Manager {
    child: Child,
    dir: TempDir,
    socket: PathBuf,
}

impl Manager {
    /// On the cgroup layout of this machine.
    fn host(tag: &str) -> Self {
        Self::start(tag, None)
    }

    /// Alone with a fresh cgroup2 mount on /sys/fs/cgroup in a mount
    /// namespace of its own.
    fn fresh_v2(tag: &str) -> Self {
        Self::start(
            tag,
            Some("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup"),
        )
    }

    /// Alone with a hybrid layout of its own: a named v1 hierarchy
    /// (`name=outset-test`, no controllers) and a cgroup2 mount, on a
    /// tmpfs over /sys/fs/cgroup.
    fn private_hybrid(tag: &str) -> Self {
        Self::start(
            tag,
            Some(
                "umount -l /sys/fs/cgroup && mount -t tmpfs none /sys/fs/cgroup \
                 && mkdir /sys/fs/cgroup/outset-test /sys/fs/cgroup/unified \
                 && mount -t cgroup -o none,name=outset-test none /sys/fs/cgroup/outset-test \
                 && mount -t cgroup2 none /sys/fs/cgroup/unified",
            ),
        )
    }

    fn start(tag: &str, setup: Option<&str>) -> Self {
        let dir = TempDir::new(tag);
        let socket = dir.0.join("sock");
        Self::start_on(dir, socket, setup)
    }

    /// Start on `socket` (a path in the manager's mount namespace; the
    /// test reaches it through /proc/PID/root).
    fn start_on(dir: TempDir, socket: PathBuf, setup: Option<&str>) -> Self {
        must_be_root();
        let log = std::fs::File::create(dir.0.join("manager.log")).expect("log");
        let bin = env!("CARGO_BIN_EXE_outset-cgmanager");
        let mut cmd = match setup {
            None => Command::new(bin),
            Some(setup) => {
                let mut c = Command::new("unshare");
                c.args(["-m", "sh", "-c"])
                    .arg(format!("{setup} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
        };
        let child = cmd
            .arg("--socket")
            .arg(&socket)
            .args(["--debug", "--sweep-interval", "20"])
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("outset-cgmanager");
        let mut m = Manager { child, dir, socket };
        if setup.is_some() && !m.socket.starts_with(&m.dir.0) {
            m.socket = PathBuf::from(format!("/proc/{}/root{}", m.child.id(), m.socket.display()));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let o = Command::new(bin)
                .args(["--ping", "--socket"])
                .arg(&m.socket)
                .output()
                .expect("ping");
            if o.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "manager never answered Ping: {}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("manager.log")).unwrap_or_default()
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket.display())
    }

    fn dbus_send(&self, prefix: &[&str], method: &str, args: &[&str]) -> (bool, String) {
        let address = format!("--address={}", self.address());
        let member = format!("{IFACE}.{method}");
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend([
            "dbus-send",
            &address,
            "--print-reply",
            DEST,
            OBJECT,
            &member,
        ]);
        argv.extend_from_slice(args);
        let o = run(&argv);
        (o.status.success(), text(&o))
    }

    /// A call as root that must succeed; its printed reply.
    fn ok(&self, method: &str, args: &[&str]) -> String {
        let (ok, out) = self.dbus_send(&[], method, args);
        assert!(ok, "{method} {args:?} failed: {out}\n{}", self.log());
        out
    }

    /// A call as root that must fail; the error text.
    fn fails(&self, method: &str, args: &[&str]) -> String {
        let (ok, out) = self.dbus_send(&[], method, args);
        assert!(!ok, "{method} {args:?} succeeded: {out}");
        out
    }

    /// A call as nobody (uid/gid 65534).
    fn as_nobody(&self, method: &str, args: &[&str]) -> (bool, String) {
        self.dbus_send(NOBODY, method, args)
    }

    /// The directory of `controller`'s hierarchy as the manager sees it.
    fn hierarchy(&self, controller: &str) -> PathBuf {
        let pid = self.child.id();
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
        let mut v2 = None;
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (dir, fstype, opts) = (fields[4], fields[sep + 1], fields[sep + 3]);
            if fstype == "cgroup" && opts.split(',').any(|o| o == controller) {
                return PathBuf::from(format!("/proc/{pid}/root{dir}"));
            }
            if fstype == "cgroup2" && v2.is_none() {
                v2 = Some(PathBuf::from(format!("/proc/{pid}/root{dir}")));
            }
        }
        v2.expect("controller's hierarchy")
    }

    /// Whether `controller` is on a v1 hierarchy for this manager.
    fn is_v1(&self, controller: &str) -> bool {
        let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.child.id()))
            .expect("mountinfo");
        mountinfo.lines().any(|l| {
            l.split(" - ").nth(1).is_some_and(|tail| {
                let f: Vec<&str> = tail.split(' ').collect();
                f.first() == Some(&"cgroup")
                    && f.get(2)
                        .is_some_and(|o| o.split(',').any(|o| o == controller))
            })
        })
    }

    /// The v2 tree as the manager sees it.
    fn v2_root(&self) -> PathBuf {
        self.hierarchy("")
    }

    /// This test's v2 cgroup as the manager sees it.
    fn own_v2_dir(&self) -> PathBuf {
        self.v2_root()
            .join(cgroup_of("self", "", false).trim_start_matches('/'))
    }

    /// The directory of the caller's (this test's) cgroup for `controller`.
    fn own_dir(&self, controller: &str) -> PathBuf {
        let own = cgroup_of("self", controller, self.is_v1(controller));
        self.hierarchy(controller).join(own.trim_start_matches('/'))
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

const NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

fn run(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run client")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The `int32` of a printed reply.
fn int_reply(out: &str) -> i32 {
    out.split("int32 ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no int32 in {out}"))
}

/// The `string`s of a printed reply.
fn string_replies(out: &str) -> Vec<String> {
    out.split("string \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The `int32`s of a printed array reply.
fn int_replies(out: &str) -> Vec<i32> {
    out.split("int32 ")
        .skip(1)
        .filter_map(|s| s.split_whitespace().next())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The cgroup of a process (`self` or a pid) for a controller.
fn cgroup_of(pid: &str, controller: &str, v1: bool) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("proc cgroup");
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = if v1 {
                ctrls.split(',').any(|c| c == controller)
            } else {
                ctrls.is_empty()
            };
            hit.then(|| path.to_string())
        })
        .expect("process's cgroup")
}

/// A unique cgroup name for one test.
fn name(tag: &str) -> String {
    format!("outset-test-cgm-{}-{tag}", std::process::id())
}

/// Processes and cgroup directories to get rid of at the end of a test,
/// pass or fail.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    dirs: Vec<PathBuf>,
}

impl Cleanup {
    fn sleeper(&mut self) -> u32 {
        self.sleeper_with(&[])
    }

    fn sleeper_with(&mut self, prefix: &[&str]) -> u32 {
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend(["sleep", "1000"]);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .spawn()
            .expect("sleep");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    fn dir(&mut self, dir: PathBuf) -> PathBuf {
        self.dirs.push(dir.clone());
        dir
    }
}

fn rmdir_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            // Killed processes leave their cgroups a moment later.
            let deadline = Instant::now() + Duration::from_secs(5);
            while d.exists() && Instant::now() < deadline {
                rmdir_tree(d);
                if d.exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim_end()
        .to_string()
}

fn s(v: &str) -> String {
    format!("string:{v}")
}

fn i(v: impl std::fmt::Display) -> String {
    format!("int32:{v}")
}

/// The controller the tests on this machine's layout use, the name of a
/// limit of it, and that limit's file: pids where the layout offers it,
/// else one it does (hugetlb where cgroup2 alone is mounted on a kernel
/// that keeps the others in v1 hierarchies).
fn host_limit() -> (Limit, &'static str, String) {
    let l = Limit::offered(&["pids"]);
    (l, l.controller, l.file())
}

#[test]
fn host_layout_every_method() {
    let m = Manager::host("cgm-host");
    let (l, ctl, knob) = host_limit();
    let mut clean = Cleanup::default();
    let t = name("host");
    let a = format!("{t}/a");

    let out = m.ok("ListControllers", &[]);
    let ctrls = string_replies(&out);
    assert!(ctrls.iter().any(|c| c == ctl), "{out}");
    m.ok("Ping", &[&i(0)]);

    let base = m.own_dir(ctl);
    let tdir = clean.dir(base.join(&t));
    let adir = tdir.join("a");
    assert_eq!(int_reply(&m.ok("Create", &[&s(ctl), &s(&a)])), -1);
    assert!(adir.is_dir());
    assert_eq!(int_reply(&m.ok("Create", &[&s(ctl), &s(&a)])), 1);

    m.ok("SetValue", &[&s(ctl), &s(&a), &s(&knob), &s(l.values[1])]);
    assert_eq!(read(&adir.join(&knob)), l.values[1]);
    let out = m.ok("GetValue", &[&s(ctl), &s(&a), &s(&knob)]);
    assert_eq!(string_replies(&out), [l.values[1]]);

    let pid = clean.sleeper();
    m.ok("MovePid", &[&s(ctl), &s(&a), &i(pid)]);
    let own = cgroup_of("self", ctl, m.is_v1(ctl));
    let expect = format!("{}/{a}", own.trim_end_matches('/'));
    assert_eq!(cgroup_of(&pid.to_string(), ctl, m.is_v1(ctl)), expect);

    assert_eq!(
        int_replies(&m.ok("GetTasks", &[&s(ctl), &s(&a)])),
        [pid as i32]
    );
    assert!(int_replies(&m.ok("GetTasks", &[&s(ctl), &s(&t)])).is_empty());
    assert_eq!(
        int_replies(&m.ok("GetTasksRecursive", &[&s(ctl), &s(&t)])),
        [pid as i32]
    );
    assert_eq!(
        string_replies(&m.ok("ListChildren", &[&s(ctl), &s(&t)])),
        ["a"]
    );
    assert_eq!(
        string_replies(&m.ok("GetPidCgroup", &[&s(ctl), &i(pid)])),
        [format!("/{a}")]
    );
    // The manager and this test share their cgroups.
    assert_eq!(
        string_replies(&m.ok("GetPidCgroupAbs", &[&s(ctl), &i(pid)])),
        [format!("/{a}")]
    );

    m.ok("Chown", &[&s(ctl), &s(&a), &i(65534), &i(65534)]);
    use std::os::unix::fs::MetadataExt;
    for f in ["", "cgroup.procs"] {
        let meta = std::fs::metadata(adir.join(f)).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{f}");
    }
    // Knobs stay root's: a delegated cgroup cannot raise its own limits.
    assert_eq!(std::fs::metadata(adir.join(&knob)).expect("stat").uid(), 0);
    m.ok("Chmod", &[&s(ctl), &s(&a), &s(&knob), &i(0o600)]);
    assert_eq!(
        std::fs::metadata(adir.join(&knob)).expect("stat").mode() & 0o777,
        0o600
    );
    let out = m.ok("ListKeys", &[&s(ctl), &s(&a)]);
    assert!(out.contains(&format!("string \"{knob}\"")), "{out}");
    assert!(out.contains("uint32 384"), "mode 0600 listed: {out}");

    // Back to the manager's own cgroup (this test's too).
    m.ok("MovePidAbs", &[&s(ctl), &s("/"), &i(pid)]);
    assert_eq!(cgroup_of(&pid.to_string(), ctl, m.is_v1(ctl)), own);

    let out = m.fails("Remove", &[&s(ctl), &s(&t), &i(0)]);
    assert!(out.contains("child cgroups"), "{out}");
    assert_eq!(int_reply(&m.ok("Remove", &[&s(ctl), &s(&t), &i(1)])), 1);
    assert!(!tdir.exists());
    assert_eq!(int_reply(&m.ok("Remove", &[&s(ctl), &s(&t), &i(1)])), -1);

    // Several controllers at once, one of them through an alias.
    let both = format!("{t}/both");
    m.ok("Create", &[&s(&format!("{ctl},freezer")), &s(&both)]);
    assert!(tdir.join("both").is_dir());
    assert!(m.own_dir("freezer").join(&both).is_dir());
    clean.dir(m.own_dir("freezer").join(&t));
    m.ok("Remove", &[&s(&format!("{ctl},freezer")), &s(&t), &i(1)]);
    assert!(!m.own_dir("freezer").join(&t).exists());
}

#[test]
fn errors_have_clear_names() {
    let m = Manager::host("cgm-errors");
    let (_, ctl, knob) = host_limit();
    let t = name("errors");
    for bad in ["", "/abs", "a/../b", "..", "a//b", "./x"] {
        let out = m.fails("Create", &[&s(ctl), &s(bad)]);
        assert!(
            out.contains("org.freedesktop.DBus.Error.InvalidArgs"),
            "{bad:?}: {out}"
        );
    }
    let out = m.fails("Create", &[&s("nosuchcontroller"), &s(&t)]);
    assert!(
        out.contains("org.linuxcontainers.cgmanager0_0.Error.UnknownController"),
        "{out}"
    );
    let out = m.fails("GetValue", &[&s(ctl), &s(&t), &s(&knob)]);
    assert!(
        out.contains("org.freedesktop.DBus.Error.FileNotFound"),
        "{out}"
    );
    let out = m.fails("GetValue", &[&s(ctl), &s("/"), &s("../x")]);
    assert!(out.contains("InvalidArgs"), "{out}");
    let out = m.fails("MovePid", &[&s(ctl), &s("/"), &i(-3)]);
    assert!(out.contains("InvalidArgs"), "{out}");
    let out = m.fails("Remove", &[&s(ctl), &s("/"), &i(1)]);
    assert!(out.contains("InvalidArgs"), "{out}");
}

#[test]
fn paths_are_relative_to_the_callers_cgroup() {
    let m = Manager::host("cgm-relative");
    // The client lives in the cgroup it creates below: only a hierarchy
    // that enables no controller takes that on v2 (no processes beside
    // children with controllers), which the freezer is on either version.
    let ctl = "freezer";
    let mut clean = Cleanup::default();
    let t = name("relative");
    let tdir = clean.dir(m.own_dir(ctl).join(&t));
    m.ok("Create", &[&s(ctl), &s(&t)]);

    // A client that lives in cgroup T: its paths start there.
    let procs = tdir.join("cgroup.procs");
    let address = format!("--address={}", m.address());
    let script = format!(
        "echo $$ > {} && exec dbus-send {address} --print-reply {DEST} {OBJECT} \
         {IFACE}.Create string:{ctl} string:inner",
        procs.display()
    );
    let o = run(&["sh", "-c", &script]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(tdir.join("inner").is_dir());
    assert!(!m.own_dir(ctl).join("inner").exists());

    let script = format!(
        "echo $$ > {} && exec dbus-send {address} --print-reply {DEST} {OBJECT} \
         {IFACE}.GetPidCgroup string:{ctl} int32:$$",
        tdir.join("inner/cgroup.procs").display()
    );
    let o = run(&["sh", "-c", &script]);
    assert_eq!(string_replies(&text(&o)), ["/"], "{}", text(&o));
}

#[test]
fn remove_on_empty_waits_for_use_then_removes() {
    let m = Manager::host("cgm-roe");
    let ctl = host_limit().1;
    let mut clean = Cleanup::default();
    let t = name("roe");
    let a = format!("{t}/a");
    let tdir = clean.dir(m.own_dir(ctl).join(&t));
    m.ok("Create", &[&s(ctl), &s(&a)]);
    m.ok("RemoveOnEmpty", &[&s(ctl), &s(&a)]);
    // Registered while empty: kept until something has been in it (the
    // Create, RemoveOnEmpty, MovePid sequence of a job's child).
    std::thread::sleep(Duration::from_millis(200));
    assert!(tdir.join("a").is_dir(), "removed before it was ever used");

    let pid = clean.sleeper();
    m.ok("MovePid", &[&s(ctl), &s(&a), &i(pid)]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(tdir.join("a").is_dir(), "removed while in use");
    if let Some(c) = clean.children.iter_mut().find(|c| c.id() == pid) {
        c.kill().expect("kill");
        c.wait().expect("wait");
    }
    common::wait_until(
        "the emptied cgroup to go",
        10,
        || !tdir.join("a").exists(),
        String::new,
    );
    // Only the registered cgroup goes.
    assert!(tdir.is_dir());

    // Prune: every empty cgroup of a subtree goes at once.
    m.ok("Create", &[&s(ctl), &s(&format!("{t}/x/y"))]);
    m.ok("Prune", &[&s(ctl), &s(&t)]);
    common::wait_until("the pruned tree to go", 10, || !tdir.exists(), String::new);
}

#[test]
fn non_root_callers_are_confined() {
    let m = Manager::host("cgm-nobody");
    let (l, ctl, knob) = host_limit();
    let mut clean = Cleanup::default();
    let t = name("nobody");
    let tdir = clean.dir(m.own_dir(ctl).join(&t));

    let (ok, out) = m.as_nobody("Create", &[&s(ctl), &s(&t)]);
    assert!(
        !ok && out.contains("org.freedesktop.DBus.Error.AccessDenied"),
        "{out}"
    );
    assert!(!tdir.exists());

    m.ok("Create", &[&s(ctl), &s(&t)]);
    let (ok, out) = m.as_nobody("Create", &[&s(ctl), &s(&format!("{t}/c"))]);
    assert!(
        !ok && out.contains("AccessDenied"),
        "not delegated yet: {out}"
    );

    // Delegate T to nobody.
    m.ok("Chown", &[&s(ctl), &s(&t), &i(65534), &i(65534)]);
    let c = format!("{t}/c");
    let (ok, out) = m.as_nobody("Create", &[&s(ctl), &s(&c)]);
    assert!(ok, "{out}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(tdir.join("c").join(&knob)).expect("stat");
    assert_eq!(meta.uid(), 65534, "what nobody creates is nobody's");

    // Limits: T's own knobs stay root's, the child's are nobody's.
    let (ok, out) = m.as_nobody("SetValue", &[&s(ctl), &s(&t), &s(&knob), &s(l.values[0])]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    let (ok, out) = m.as_nobody("SetValue", &[&s(ctl), &s(&c), &s(&knob), &s(l.values[0])]);
    assert!(ok, "{out}");
    assert_eq!(read(&tdir.join("c").join(&knob)), l.values[0]);
    let (ok, out) = m.as_nobody("GetValue", &[&s(ctl), &s(&c), &s(&knob)]);
    assert!(ok && string_replies(&out) == [l.values[0]], "{out}");

    // Processes: only nobody's own, only into nobody's cgroups.
    let roots = clean.sleeper();
    let (ok, out) = m.as_nobody("MovePid", &[&s(ctl), &s(&c), &i(roots)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    let own = clean.sleeper_with(NOBODY);
    common::wait_until(
        "the sleeper to drop privileges",
        10,
        || {
            std::fs::read_to_string(format!("/proc/{own}/status"))
                .map(|s| s.contains("Uid:\t65534"))
                .unwrap_or(false)
        },
        String::new,
    );
    // It starts in a cgroup of nobody's beside T/c: on v2 a move needs the
    // common ancestor's cgroup.procs too (T's, nobody's).
    let home = format!("{t}/home");
    m.ok("Create", &[&s(ctl), &s(&home)]);
    m.ok("Chown", &[&s(ctl), &s(&home), &i(65534), &i(65534)]);
    m.ok("MovePid", &[&s(ctl), &s(&home), &i(own)]);
    let (ok, out) = m.as_nobody("MovePid", &[&s(ctl), &s(&c), &i(own)]);
    assert!(ok, "{out}");
    assert!(cgroup_of(&own.to_string(), ctl, m.is_v1(ctl)).ends_with(&c));
    let (ok, out) = m.as_nobody("MovePidAbs", &[&s(ctl), &s("/"), &i(own)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    // The Abs form works on a delegated cgroup too, joined as a session's
    // job would join GetPidCgroupAbs's answer and its path.
    let (ok, out) = m.as_nobody("GetPidCgroupAbs", &[&s(ctl), &i(own)]);
    assert!(ok && string_replies(&out) == [format!("/{c}")], "{out}");
    let (ok, out) = m.as_nobody("MovePidAbs", &[&s(ctl), &s(&format!("//{c}")), &i(own)]);
    assert!(ok, "{out}");
    let other = format!("{t}-other");
    clean.dir(m.own_dir(ctl).join(&other));
    m.ok("Create", &[&s(ctl), &s(&other)]);
    let (ok, out) = m.as_nobody("MovePid", &[&s(ctl), &s(&other), &i(own)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");

    // Ownership cannot be given away by nobody.
    let (ok, out) = m.as_nobody("Chown", &[&s(ctl), &s(&c), &i(0), &i(0)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    let (ok, out) = m.as_nobody("Chmod", &[&s(ctl), &s(&t), &s(&knob), &i(0o666)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");

    // Removal needs the parent too: T/c yes (once empty), T itself no.
    let (ok, out) = m.as_nobody("Remove", &[&s(ctl), &s(&t), &i(1)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    m.ok("MovePidAbs", &[&s(ctl), &s("/"), &i(own)]);
    let (ok, out) = m.as_nobody("Remove", &[&s(ctl), &s(&c), &i(0)]);
    assert!(ok && int_reply(&out) == 1, "{out}");

    // Reading is open to everyone.
    let (ok, out) = m.as_nobody("ListChildren", &[&s(ctl), &s(&t)]);
    assert!(ok, "{out}");
    let (ok, out) = m.as_nobody("ListControllers", &[]);
    assert!(ok, "{out}");
    m.ok("Remove", &[&s(ctl), &s(&t), &i(1)]);
    m.ok("Remove", &[&s(ctl), &s(&other), &i(1)]);
}

/// A v2 controller to exercise: pids when offered, else what is.
fn some_v2_controller(m: &Manager) -> String {
    let ctrls = string_replies(&m.ok("ListControllers", &[]));
    ctrls
        .iter()
        .find(|c| *c == "pids")
        .or_else(|| ctrls.iter().find(|c| *c != "freezer"))
        .unwrap_or_else(|| panic!("the v2 tree offers no controller: {ctrls:?}"))
        .clone()
}

/// Put a v2 root's subtree_control back as it was.
struct RestoreSubtree(PathBuf, String);

impl Drop for RestoreSubtree {
    fn drop(&mut self) {
        let now = std::fs::read_to_string(&self.0).unwrap_or_default();
        for c in now.split_whitespace() {
            if !self.1.split_whitespace().any(|o| o == c) {
                let _ = std::fs::write(&self.0, format!("-{c}"));
            }
        }
    }
}

#[test]
fn fresh_cgroup2_mount() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let m = Manager::fresh_v2("cgm-v2");
    let control = m.v2_root().join("cgroup.subtree_control");
    let _restore = RestoreSubtree(control.clone(), read(&control));
    let mut clean = Cleanup::default();
    let t = name("v2");
    let tdir = clean.dir(m.own_v2_dir().join(&t));
    assert!(
        m.log().contains("cgroup v2 at /sys/fs/cgroup"),
        "{}",
        m.log()
    );
    assert!(!m.log().contains("cgroup v1"), "{}", m.log());

    let ctrls = string_replies(&m.ok("ListControllers", &[]));
    assert!(ctrls.iter().any(|c| c == "freezer"), "{ctrls:?}");
    let ctrl = some_v2_controller(&m);

    // Creating enables the controller down to the new cgroup.
    let a = format!("{t}/a");
    assert_eq!(int_reply(&m.ok("Create", &[&s(&ctrl), &s(&a)])), -1);
    for dir in [&m.own_v2_dir(), &tdir] {
        let enabled = read(&dir.join("cgroup.subtree_control"));
        assert!(enabled.split_whitespace().any(|c| c == ctrl), "{enabled}");
    }
    let a_dir = tdir.join("a");
    let has_knobs = std::fs::read_dir(&a_dir).expect("a").flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{ctrl}."))
    });
    assert!(has_knobs, "no {ctrl}.* files in {}", a_dir.display());

    m.ok(
        "SetValue",
        &[&s(&ctrl), &s(&a), &s("cgroup.max.descendants"), &s("3")],
    );
    assert_eq!(read(&a_dir.join("cgroup.max.descendants")), "3");

    // devices needs eBPF on v2: refused by name.
    let out = m.fails("Create", &[&s("devices"), &s(&a)]);
    assert!(
        out.contains("org.freedesktop.DBus.Error.NotSupported"),
        "{out}"
    );

    // freezer is cgroup.freeze.
    let pid = clean.sleeper();
    m.ok("MovePid", &[&s("freezer"), &s(&a), &i(pid)]);
    assert_eq!(cgroup_of(&pid.to_string(), "", false), format!("/{a}"));
    m.ok(
        "SetValue",
        &[&s("freezer"), &s(&a), &s("freezer.state"), &s("FROZEN")],
    );
    assert_eq!(read(&a_dir.join("cgroup.freeze")), "1");
    common::wait_until(
        "the freeze",
        10,
        || {
            string_replies(&m.ok("GetValue", &[&s("freezer"), &s(&a), &s("freezer.state")]))
                == ["FROZEN"]
        },
        String::new,
    );
    m.ok(
        "SetValue",
        &[&s("freezer"), &s(&a), &s("freezer.state"), &s("THAWED")],
    );
    assert_eq!(read(&a_dir.join("cgroup.freeze")), "0");

    // No internal processes: a cgroup with a process of its own is not
    // given controllers, and its process stays where it is.
    let b = format!("{t}/b");
    m.ok("Create", &[&s("freezer"), &s(&b)]);
    let pid_b = clean.sleeper();
    m.ok("MovePid", &[&s("freezer"), &s(&b), &i(pid_b)]);
    let out = m.fails("Create", &[&s(&ctrl), &s(&format!("{b}/c"))]);
    assert!(out.contains("has processes"), "{out}");
    assert_eq!(read(&tdir.join("b/cgroup.subtree_control")), "");
    assert!(
        !tdir.join("b/c").exists(),
        "a refused Create leaves nothing"
    );
    assert_eq!(cgroup_of(&pid_b.to_string(), "", false), format!("/{b}"));

    // Remove-on-empty on v2 (populated is read from cgroup.events).
    m.ok("RemoveOnEmpty", &[&s(&ctrl), &s(&b)]);
    if let Some(c) = clean.children.iter_mut().find(|c| c.id() == pid_b) {
        c.kill().expect("kill");
        c.wait().expect("wait");
    }
    common::wait_until("b to go", 10, || !tdir.join("b").exists(), String::new);

    m.ok("MovePidAbs", &[&s("all"), &s("/"), &i(pid)]);
    assert_eq!(int_reply(&m.ok("Remove", &[&s("all"), &s(&t), &i(1)])), 1);
    assert!(!tdir.exists());
}

#[test]
fn other_clients_and_gdbus() {
    let m = Manager::host("cgm-clients");
    let ctl = host_limit().1;
    // Clients that connect and then say nothing, or stop half-way through
    // authentication, hold up nobody.
    let _silent = std::os::unix::net::UnixStream::connect(&m.socket).expect("connect");
    let mut half = std::os::unix::net::UnixStream::connect(&m.socket).expect("connect");
    use std::io::Write;
    half.write_all(b"\0AUTH EXTERNAL ").expect("write");
    m.ok("Ping", &[&i(1)]);

    // gdbus sends Hello first and wants a destination.
    let o = run(&[
        "gdbus",
        "call",
        "--address",
        &m.address(),
        "--dest",
        "org.linuxcontainers.cgmanager",
        "--object-path",
        OBJECT,
        "--method",
        &format!("{IFACE}.ListControllers"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("'{ctl}'")), "{}", text(&o));

    // api_version property.
    let o = run(&[
        "dbus-send",
        &format!("--address={}", m.address()),
        "--print-reply",
        DEST,
        OBJECT,
        "org.freedesktop.DBus.Properties.Get",
        &s(IFACE),
        "string:api_version",
    ]);
    assert!(text(&o).contains("int32 10"), "{}", text(&o));
}

#[test]
fn credential_passing_variants_are_refused() {
    let m = Manager::host("cgm-scm");
    let stream = std::os::unix::net::UnixStream::connect(&m.socket).expect("connect");
    let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
    let err = zbus::block_on(async move {
        let conn = zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .build()
            .await
            .expect("connect");
        let fd = zbus::Fd::from(&ours);
        conn.call_method(
            None::<&str>,
            OBJECT,
            Some(IFACE),
            "MovePidScm",
            &("pids", "x", fd),
        )
        .await
        .expect_err("MovePidScm must be refused")
    });
    let text = err.to_string();
    assert!(
        text.contains("org.freedesktop.DBus.Error.NotSupported"),
        "{text}"
    );
}

#[test]
fn shipped_job_stays_quiet_under_a_session_init() {
    let job = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/jobs.d/cgmanager.conf"
    ))
    .expect("jobs.d/cgmanager.conf");
    let mut s = common::start_session("cgm-job", &[("cgmanager", &job)], &[]);
    let initctl = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
            .args(args)
            .env("UPSTART_SESSION", &s.address)
            .env_remove("UPSTART_JOB")
            .env_remove("UPSTART_INSTANCE")
            .output()
            .expect("initctl");
        text(&o)
    };
    let o = initctl(&["emit", "startup"]);
    assert_eq!(o, "", "emit startup");
    common::wait_until(
        "the job to settle",
        10,
        || initctl(&["status", "cgmanager"]) == "cgmanager stop/waiting\n",
        String::new,
    );
    let log = std::fs::read_to_string(s.dir.0.join("daemon.log")).unwrap_or_default();
    assert!(!log.contains("cgmanager"), "the job complained: {log}");
    // Started by hand it runs and ends by itself, without a failure.
    let o = initctl(&["start", "cgmanager"]);
    assert!(
        o == "cgmanager start/running\n" || o == "cgmanager stop/waiting\n",
        "{o}"
    );
    common::wait_until(
        "the job to stop again",
        10,
        || initctl(&["status", "cgmanager"]) == "cgmanager stop/waiting\n",
        String::new,
    );
    let _ = s.child.kill();
    let _ = s.child.wait();
}

#[test]
fn private_hybrid_layout() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let m = Manager::private_hybrid("cgm-hybrid");
    let mut clean = Cleanup::default();
    let t = name("hybrid");
    let ctrls = string_replies(&m.ok("ListControllers", &[]));
    assert_eq!(ctrls.first().map(String::as_str), Some("name=outset-test"));
    assert!(ctrls.iter().any(|c| c == "freezer"), "{ctrls:?}");

    // The named v1 hierarchy, by either name, and the v2 tree for the
    // freezer, in one call.
    let v1 = m.hierarchy("name=outset-test");
    let v1_dir = clean.dir(v1.join(&t));
    let v2_dir = clean.dir(m.own_v2_dir().join(&t));
    assert_eq!(
        int_reply(&m.ok("Create", &[&s("outset-test,freezer"), &s(&t)])),
        -1
    );
    assert!(v1_dir.is_dir() && v2_dir.is_dir());
    let pid = clean.sleeper();
    m.ok(
        "MovePid",
        &[&s("name=outset-test,freezer"), &s(&t), &i(pid)],
    );
    let own_v1 = cgroup_of("self", "name=outset-test", true);
    let own_v2 = cgroup_of("self", "", false);
    let join = |base: &str| format!("{}/{t}", base.trim_end_matches('/'));
    assert_eq!(
        cgroup_of(&pid.to_string(), "name=outset-test", true),
        join(&own_v1)
    );
    assert_eq!(cgroup_of(&pid.to_string(), "", false), join(&own_v2));
    assert_eq!(
        int_replies(&m.ok("GetTasks", &[&s("outset-test"), &s(&t)])),
        [pid as i32]
    );
    assert_eq!(
        read(&v1_dir.join("tasks")),
        pid.to_string(),
        "v1 hierarchies have tasks"
    );

    m.ok("MovePidAbs", &[&s("all"), &s("/"), &i(pid)]);
    assert_eq!(int_reply(&m.ok("Remove", &[&s("all"), &s(&t), &i(1)])), 1);
    assert!(!v1_dir.exists() && !v2_dir.exists());
}

#[test]
fn socket_directory_on_cgroupfs_gets_a_tmpfs() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // As /sys/fs/cgroup/cgmanager on a pure v2 system: the directory is a
    // cgroup, where no socket can be made.
    let cg = name("sockdir");
    let dir = TempDir::new("cgm-sockdir");
    let socket = PathBuf::from(format!("/sys/fs/cgroup/{cg}/sock"));
    let m = Manager::start_on(
        dir,
        socket,
        Some("umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup"),
    );
    assert!(m.log().contains("mounted a tmpfs"), "{}", m.log());
    m.ok("Ping", &[&i(7)]);
    drop(m);
    // The cgroup the directory made stays, as cgmanager's did; remove it.
    let o = run(&[
        "unshare",
        "-m",
        "sh",
        "-c",
        &format!("mount -t cgroup2 none /mnt && rmdir /mnt/{cg}"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn shipped_job_serves_init_on_a_fresh_cgroup2_mount() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    must_be_root();
    let dir = TempDir::new("cgm-boot");
    let d = dir.0.display().to_string();
    let job = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/jobs.d/cgmanager.conf"
    ))
    .expect("jobs.d/cgmanager.conf");
    dir.write("conf/cgmanager.conf", &job);
    // The job finds outset-cgmanager and initctl on PATH, as installed.
    let bin = Path::new(env!("CARGO_BIN_EXE_outset-cgmanager"))
        .parent()
        .expect("bin dir")
        .display()
        .to_string();
    dir.write(
        "conf/cgmanager.override",
        &format!("env PATH={bin}:/usr/sbin:/usr/bin:/sbin:/bin\nconsole log\n"),
    );
    let placed = name("boot");
    dir.write(
        &format!("conf/{placed}.conf"),
        &format!(
            "start on startup\ntask\ncgroup freezer\nexec cp /proc/self/cgroup {d}/placed.cg\n"
        ),
    );
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let mut init = Command::new("unshare")
        .args([
            "--pid",
            "--mount",
            "--net",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .arg(format!(
            "umount -R -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup \
             && exec {} --container --confdir {d}/conf --logdir {d}/logs",
            env!("CARGO_BIN_EXE_outset")
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare");
    let read = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read("placed.cg").ends_with('\n') {
        if Instant::now() > deadline {
            let _ = init.kill();
            let _ = init.wait();
            panic!(
                "the cgroup job never ran\ninit:\n{}\ncgmanager:\n{}",
                read("init.log"),
                read("logs/cgmanager.log")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cg = read("placed.cg");
    let line = cg.lines().find_map(|l| l.strip_prefix("0::"));
    // The stop below needs init's pid: the child of unshare.
    let pid1 = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", init.id()))
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse::<i32>().ok());
    if let Some(pid) = pid1 {
        // SAFETY: kill(2) on the namespace's init.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while init.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = init.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = init.wait();
    // Remove what the boot left in the (shared) v2 hierarchy.
    let o = run(&[
        "unshare",
        "-m",
        "sh",
        "-c",
        &format!(
            "mount -t cgroup2 none /mnt && rmdir /mnt/upstart/{placed}; \
             rmdir /mnt/upstart /mnt/cgmanager 2>/dev/null; true"
        ),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        line,
        Some(format!("/upstart/{placed}").as_str()),
        "{cg}\ninit:\n{}",
        read("init.log")
    );
    assert!(pid1.is_some(), "no init pid");
}

/// The SASL lines of a client of `uid` that authenticates and begins.
fn greeting(uid: u32) -> Vec<u8> {
    let hex: String = uid
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes()
}

/// Fork a process that becomes uid/gid `uid`, opens `n` connections to
/// `socket`, sends `hello` on each (nothing when empty), then says
/// nothing more and waits to be killed. Only raw system calls after the
/// fork (the test process has threads).
fn silent_clients(socket: &Path, uid: u32, n: usize, hello: &[u8]) -> Reap {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let path = socket.as_os_str().as_bytes();
    assert!(path.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: the child makes only async-signal-safe calls, then _exit or
    // pause until killed.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Parent { child } => Reap(child),
        nix::unistd::ForkResult::Child => unsafe {
            if libc::setresgid(uid, uid, uid) != 0 || libc::setresuid(uid, uid, uid) != 0 {
                libc::_exit(1);
            }
            for _ in 0..n {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                if fd < 0 || libc::connect(fd, (&raw const addr).cast::<libc::sockaddr>(), len) != 0
                {
                    libc::_exit(2);
                }
                if !hello.is_empty() {
                    libc::write(fd, hello.as_ptr().cast(), hello.len());
                }
            }
            loop {
                libc::pause();
            }
        },
    }
}

impl Manager {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Connections the manager holds: the connected sockets that carry
    /// its socket's address (only those it accepted do).
    fn connections(&self) -> usize {
        let path = self.socket.to_string_lossy();
        std::fs::read_to_string("/proc/net/unix")
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(5) == Some(&"03") && f.get(7) == Some(&&*path)
            })
            .count()
    }

    /// How the manager admitted and let go of connections, from its log.
    fn admissions(&self) -> String {
        let log = self.log();
        let mut why: std::collections::BTreeMap<&str, usize> = Default::default();
        for line in log.lines() {
            for mark in ["closed a connection", "refusing a connection", "client pid"] {
                if let Some(at) = line.find(mark) {
                    let rest = &line[at..];
                    let reason = rest.split_once(": ").map_or(mark, |(_, r)| r);
                    let reason = if mark == "client pid" && rest.contains(" connected") {
                        "connected"
                    } else {
                        reason
                    };
                    *why.entry(reason).or_default() += 1;
                }
            }
        }
        format!("{} held; {why:?}", self.connections())
    }

    fn threads(&self) -> usize {
        common::procs::status_field(self.pid(), "Threads:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn rss_kib(&self) -> u64 {
        common::procs::status_field(self.pid(), "VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Ping as `uid` (and its gid).
    fn ping_as(&self, uid: u32) -> (bool, String) {
        let (u, g) = (format!("--reuid={uid}"), format!("--regid={uid}"));
        self.dbus_send(&["setpriv", &u, &g, "--clear-groups"], "Ping", &[&i(uid)])
    }
}

#[test]
fn idle_clients_cost_no_thread_and_lock_nobody_out() {
    let m = Manager::host("cgm-idle");
    m.ok("Ping", &[&i(0)]);
    // The Ping's connection is let go once the manager sees it hang up.
    common::wait_until(
        "the Ping's connection to close",
        30,
        || m.connections() == 0,
        || m.log(),
    );
    let (threads, fds) = (m.threads(), m.fds());
    // 16 users, 64 authenticated connections each, all idle: more than
    // users other than root may hold (1024 - 64).
    let hogs: Vec<Reap> = (0..16)
        .map(|k| silent_clients(&m.socket, 60000 + k, 64, &greeting(60000 + k)))
        .collect();
    common::wait_until(
        "the idle connections",
        60,
        || m.connections() == 960,
        || m.admissions(),
    );
    // One descriptor per connection (a few more for connections being
    // turned away), and not one thread more.
    let held = m.fds();
    assert!(held <= fds + 960 + 8, "{held} descriptors");
    assert_eq!(m.threads(), threads, "threads grew with idle clients");
    // Root is served.
    m.ok("Ping", &[&i(1)]);
    // A user with 64 connections is served: its longest-idle one goes.
    let (ok, out) = m.ping_as(60003);
    assert!(ok, "{out}\n{}", m.log());
    // Another user gets in once some connection has been idle a while.
    common::wait_until(
        "another user to be served",
        10,
        || m.ping_as(65534).0,
        String::new,
    );
    assert_eq!(m.threads(), threads, "threads grew with idle clients");
    drop(hogs);
    common::wait_until(
        "every connection to close",
        30,
        || m.connections() == 0 && m.fds() <= fds,
        || m.admissions(),
    );
}

#[test]
fn clients_that_never_authenticate_are_bounded_and_let_go() {
    let m = Manager::host("cgm-noauth");
    m.ok("Ping", &[&i(0)]);
    let fds = m.fds();
    let hog = silent_clients(&m.socket, 65534, 200, b"");
    let mark = format!("client pid {} uid 65534 ", hog.0);
    common::wait_until(
        "the silent connections",
        10,
        || m.log().matches(&mark).count() == 200,
        String::new,
    );
    // At most 64 of them are held while they say nothing.
    assert!(m.fds() <= fds + 64, "{} descriptors", m.fds());
    m.ok("Ping", &[&i(1)]);
    let (ok, out) = m.as_nobody("Ping", &[&i(2)]);
    assert!(ok, "{out}");
    // None of them is held past the handshake's time limit.
    let deadline = Instant::now() + Duration::from_secs(15);
    while m.fds() > fds {
        assert!(
            Instant::now() < deadline,
            "silent connections are still held"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(hog);
}

/// A method call whose whole message is `total` bytes long.
fn message_of(total: usize) -> zbus::Message {
    let build = |n: usize| {
        zbus::Message::method_call(OBJECT, "GetValue")
            .interface(IFACE)
            .build(&("pids", "x", "k".repeat(n)))
            .expect("message")
    };
    let base = build(0).data().len();
    assert!(total > base, "{total} is too small for a message");
    let msg = build(total - base);
    assert_eq!(msg.data().len(), total);
    msg
}

/// Send one message on a fresh connection; the reply's error name, or
/// None if the connection was closed instead.
fn send_sized(socket: &Path, total: usize) -> Option<String> {
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    let msg = message_of(total);
    zbus::block_on(async move {
        let conn = zbus::connection::Builder::unix_stream(stream)
            .p2p()
            .build()
            .await
            .expect("connect");
        let mut replies = zbus::MessageStream::from(&conn);
        conn.send(&msg).await.ok()?;
        use futures_util::StreamExt;
        let reply = replies.next().await?.ok()?;
        Some(
            reply
                .header()
                .error_name()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "a method return".into()),
        )
    })
}

#[test]
fn messages_over_the_limit_close_the_connection() {
    let m = Manager::host("cgm-big");
    const LIMIT: usize = 256 * 1024;
    // At the limit: read and answered (the key is no file name).
    let at = send_sized(&m.socket, LIMIT);
    assert!(
        at.as_deref().is_some_and(|e| e.contains(".Error.")),
        "{at:?}\n{}",
        m.log()
    );
    // One byte past it: the connection is closed unanswered.
    assert_eq!(send_sized(&m.socket, LIMIT + 1), None);
    m.ok("Ping", &[&i(0)]);

    // Headers that claim 120 MiB reserve nothing.
    let (rss, fds) = (m.rss_kib(), m.fds());
    let mut claim = greeting(0);
    let mut header = [0u8; 16];
    header[0] = b'l';
    header[1] = 1; // a method call
    header[3] = 1; // protocol version
    header[4..8].copy_from_slice(&(120u32 << 20).to_le_bytes());
    header[8] = 1; // serial
    claim.extend_from_slice(&header);
    let hogs: Vec<Reap> = (0..20)
        .map(|_| silent_clients(&m.socket, 0, 1, &claim))
        .collect();
    for h in &hogs {
        let mark = format!("client pid {} uid 0 ", h.0);
        common::wait_until(
            "the claim's connection",
            10,
            || m.log().contains(&mark),
            String::new,
        );
    }
    // Either the manager lets go of them or it holds their claims.
    common::wait_until(
        "the claims to be dealt with",
        10,
        || m.fds() <= fds || m.rss_kib() > rss + 64 * 1024,
        String::new,
    );
    let grown = m.rss_kib().saturating_sub(rss);
    drop(hogs);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
}
#[test]
fn memory_limit_on_this_layout() {
    let m = Manager::host("cgm-memory");
    // Memory where the layout offers it, else a limit it does offer; the
    // key is the hierarchy's own (v1 and v2 name memory's differently).
    let l = Limit::offered(&["memory"]);
    let (ctl, key) = (l.controller, l.file());
    let mut clean = Cleanup::default();
    let ctrls = string_replies(&m.ok("ListControllers", &[]));
    assert!(ctrls.iter().any(|c| c == ctl), "{ctrls:?}");
    let t = name("memory");
    let tdir = clean.dir(m.own_dir(ctl).join(&t));
    m.ok("Create", &[&s(ctl), &s(&t)]);
    m.ok("SetValue", &[&s(ctl), &s(&t), &s(&key), &s(l.values[1])]);
    assert_eq!(read(&tdir.join(&key)), l.values[1]);
    let pid = clean.sleeper();
    m.ok("MovePid", &[&s(ctl), &s(&t), &i(pid)]);
    let own = cgroup_of("self", ctl, m.is_v1(ctl));
    assert_eq!(
        cgroup_of(&pid.to_string(), ctl, m.is_v1(ctl)),
        format!("{}/{t}", own.trim_end_matches('/'))
    );
    m.ok("MovePid", &[&s(ctl), &s("/"), &i(pid)]);
    assert_eq!(int_reply(&m.ok("Remove", &[&s(ctl), &s(&t), &i(0)])), 1);
}

/// A prefix that puts the client in the cgroup whose `cgroup.procs` is
/// `procs` (as root), then runs it as nobody.
fn nobody_in(procs: &Path) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        format!("echo $$ > {} && exec \"$@\"", procs.display()),
        "sh".into(),
    ];
    v.extend(NOBODY.iter().map(|s| s.to_string()));
    v
}

/// Wait until `pid`'s `Uid:` line (real, effective, saved, fs) is `uids`.
fn wait_for_uids(pid: u32, uids: &str) {
    common::wait_until(
        "the process to change its uids",
        10,
        || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| s.lines().any(|l| l == format!("Uid:\t{uids}")))
                .unwrap_or(false)
        },
        String::new,
    );
}

#[test]
fn v2_moves_follow_the_kernels_rules() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let m = Manager::fresh_v2("cgm-v2-move");
    let control = m.v2_root().join("cgroup.subtree_control");
    let _restore = RestoreSubtree(control.clone(), read(&control));
    let mut clean = Cleanup::default();
    let t = name("v2move");
    let tdir = clean.dir(m.own_v2_dir().join(&t));
    let ctrl = some_v2_controller(&m);
    let (jail, deleg, direct) = (
        format!("{t}/jail"),
        format!("{t}/deleg"),
        format!("{t}/deleg/direct"),
    );
    m.ok("Create", &[&s(&ctrl), &s(&jail)]);
    m.ok("Create", &[&s(&ctrl), &s(&deleg)]);
    m.ok("Chown", &[&s(&ctrl), &s(&deleg), &i(65534), &i(65534)]);
    let (ok, out) = m.as_nobody("Create", &[&s(&ctrl), &s(&direct)]);
    assert!(ok, "{out}");

    // Root puts one of nobody's processes in a cgroup of root's.
    let victim = clean.sleeper_with(NOBODY);
    wait_for_uids(victim, "65534\t65534\t65534\t65534");
    m.ok("MovePid", &[&s(&ctrl), &s(&jail), &i(victim)]);
    let in_jail = string_replies(&m.ok("GetPidCgroupAbs", &[&s(&ctrl), &i(victim)]));
    let in_jail = in_jail.first().expect("victim's cgroup");
    assert!(in_jail.ends_with(&jail), "{in_jail}");
    let abs_direct = format!("{}/direct", in_jail.replace("/jail", "/deleg"));

    // The kernel refuses nobody this move (T, the common ancestor, is
    // root's), and so does the manager, in either form.
    let procs = tdir.join("deleg/direct/cgroup.procs");
    let by_hand = run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        &format!("echo {victim} > {}", procs.display()),
    ]);
    assert!(!by_hand.status.success(), "the kernel allowed the move");
    let (ok, out) = m.as_nobody("MovePidAbs", &[&s(&ctrl), &s(&abs_direct), &i(victim)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    let (ok, out) = m.as_nobody("MovePid", &[&s(&ctrl), &s(&direct), &i(victim)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    assert!(cgroup_of(&victim.to_string(), "", false).ends_with(&jail));

    // Within nobody's own subtree the move is nobody's to make.
    let side = format!("{deleg}/side");
    let (ok, out) = m.as_nobody("Create", &[&s(&ctrl), &s(&side)]);
    assert!(ok, "{out}");
    m.ok("MovePid", &[&s(&ctrl), &s(&side), &i(victim)]);
    let (ok, out) = m.as_nobody("MovePid", &[&s(&ctrl), &s(&direct), &i(victim)]);
    assert!(ok, "{out}");
    assert!(cgroup_of(&victim.to_string(), "", false).ends_with(&direct));

    // A caller confined to deleg/direct may not reach over to a process
    // in deleg/side, though the kernel would let nobody make that move.
    m.ok("MovePid", &[&s(&ctrl), &s(&side), &i(victim)]);
    let prefix = nobody_in(&procs);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let (ok, out) = m.dbus_send(
        &prefix,
        "MovePidAbs",
        &[&s(&ctrl), &s(&abs_direct), &i(victim)],
    );
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    let (ok, out) = m.dbus_send(&prefix, "MovePid", &[&s(&ctrl), &s("/"), &i(victim)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    assert!(cgroup_of(&victim.to_string(), "", false).ends_with(&side));
    m.ok("MovePidAbs", &[&s("all"), &s("/"), &i(victim)]);
}

/// A cgroup T made by root in the manager's own cgroup2 tree and given to
/// nobody, with the controller a v2 layout offers: the setting of the
/// tests of what a user may do below a cgroup of their own. Holds the
/// test's turn on the shared tree and puts it back as it was.
struct NobodysV2Cgroup {
    // Dropped in this order: the cgroups, the root's controllers, the
    // manager, the turn.
    _clean: Cleanup,
    _restore: RestoreSubtree,
    m: Manager,
    t: String,
    tdir: PathBuf,
    limit: Limit,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl NobodysV2Cgroup {
    fn new(tag: &str, cgroup: &str) -> Self {
        let turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let m = Manager::fresh_v2(tag);
        let control = m.v2_root().join("cgroup.subtree_control");
        let restore = RestoreSubtree(control.clone(), read(&control));
        let mut clean = Cleanup::default();
        let t = name(cgroup);
        let tdir = clean.dir(m.own_v2_dir().join(&t));
        let limit = Limit::in_v2(&["pids"]);
        let ctl = limit.controller;
        m.ok("Create", &[&s(ctl), &s(&t)]);
        m.ok("Chown", &[&s(ctl), &s(&t), &i(65534), &i(65534)]);
        NobodysV2Cgroup {
            _clean: clean,
            _restore: restore,
            m,
            t,
            tdir,
            limit,
            _turn: turn,
        }
    }
}

#[test]
fn a_cgroup_a_user_makes_on_v2_is_wholly_theirs() {
    let n = NobodysV2Cgroup::new("cgm-v2-owner", "v2owner");
    let (m, t, tdir, l, ctl) = (&n.m, &n.t, &n.tdir, &n.limit, n.limit.controller);
    // Enabling the controller in T (nobody's) makes the child's limit
    // files: they are nobody's as much as the rest of the child.
    let c = format!("{t}/c");
    let (ok, out) = m.as_nobody("Create", &[&s(ctl), &s(&c)]);
    assert!(ok, "{out}");
    let cdir = tdir.join("c");
    assert!(
        cdir.join(l.file()).exists(),
        "no {} in {}",
        l.file(),
        cdir.display()
    );
    use std::os::unix::fs::MetadataExt;
    for e in std::fs::read_dir(&cdir).expect("c").flatten() {
        let uid = e.metadata().expect("stat").uid();
        assert_eq!(uid, 65534, "{} is uid {uid}'s", e.path().display());
    }
    let (ok, out) = m.as_nobody(
        "SetValue",
        &[&s(ctl), &s(&c), &s(&l.file()), &s(l.values[0])],
    );
    assert!(ok, "{out}");
    assert_eq!(read(&cdir.join(l.file())), l.values[0]);
}

#[test]
fn a_limit_a_user_sets_on_v2_enables_its_controller_for_them() {
    let n = NobodysV2Cgroup::new("cgm-v2-setvalue", "v2setvalue");
    let (m, t, tdir, l, ctl) = (&n.m, &n.t, &n.tdir, &n.limit, n.limit.controller);
    // Made by nobody without the controller: its limit file appears
    // when SetValue enables the controller in T (nobody's).
    let c = format!("{t}/c");
    let (ok, out) = m.as_nobody("Create", &[&s("freezer"), &s(&c)]);
    assert!(ok, "{out}");
    let cdir = tdir.join("c");
    assert!(!cdir.join(l.file()).exists());
    let (ok, out) = m.as_nobody(
        "SetValue",
        &[&s(ctl), &s(&c), &s(&l.file()), &s(l.values[0])],
    );
    assert!(ok, "{out}");
    assert_eq!(read(&cdir.join(l.file())), l.values[0]);
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(cdir.join(l.file())).expect("stat").uid();
    assert_eq!(uid, 65534);
}

#[test]
fn refused_v2_calls_change_nothing() {
    let _turn = V2_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let m = Manager::fresh_v2("cgm-v2-refused");
    let control = m.v2_root().join("cgroup.subtree_control");
    let _restore = RestoreSubtree(control.clone(), read(&control));
    let mut clean = Cleanup::default();
    let t = name("v2refused");
    let tdir = clean.dir(m.own_v2_dir().join(&t));
    let ctrl = some_v2_controller(&m);
    // Made without controllers: nothing is enabled on the way down.
    let (x, deleg) = (format!("{t}/x"), format!("{t}/deleg"));
    m.ok("Create", &[&s("freezer"), &s(&x)]);
    m.ok("Create", &[&s("freezer"), &s(&deleg)]);
    m.ok("Chown", &[&s("freezer"), &s(&deleg), &i(65534), &i(65534)]);
    let subtree = |d: &Path| read(&d.join("cgroup.subtree_control"));
    let before = [
        subtree(&m.v2_root()),
        subtree(&m.own_v2_dir()),
        subtree(&tdir),
    ];
    let now = || {
        [
            subtree(&m.v2_root()),
            subtree(&m.own_v2_dir()),
            subtree(&tdir),
        ]
    };

    // A refused SetValue on root's cgroup leaves its ancestors alone...
    let key = format!("{ctrl}.max");
    let (ok, out) = m.as_nobody("SetValue", &[&s(&ctrl), &s(&x), &s(&key), &s("1")]);
    assert!(!ok, "{out}");
    assert_eq!(now(), before, "a refused SetValue enabled controllers");
    // ...and so does a refused Create below a delegated cgroup whose
    // ancestors are root's.
    let (ok, out) = m.as_nobody("Create", &[&s(&ctrl), &s(&format!("{deleg}/c"))]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    assert_eq!(now(), before, "a refused Create enabled controllers");
    assert!(
        !tdir.join("deleg/c").exists(),
        "a refused Create made a cgroup"
    );

    // So root can still put a process in T.
    let pid = clean.sleeper();
    m.ok("MovePid", &[&s("freezer"), &s(&t), &i(pid)]);
    assert!(cgroup_of(&pid.to_string(), "", false).ends_with(&t));
    m.ok("MovePidAbs", &[&s("freezer"), &s("/"), &i(pid)]);
}

#[test]
fn moving_needs_the_targets_real_or_saved_uid() {
    let m = Manager::host("cgm-uids");
    let ctl = host_limit().1;
    let mut clean = Cleanup::default();
    let t = name("uids");
    clean.dir(m.own_dir(ctl).join(&t));
    // The processes wait in T/from, to be moved to T/to: T, their common
    // ancestor, is nobody's, as a move on v2 needs too.
    let (from, to) = (format!("{t}/from"), format!("{t}/to"));
    m.ok("Create", &[&s(ctl), &s(&from)]);
    m.ok("Create", &[&s(ctl), &s(&to)]);
    for cg in [&t, &to] {
        m.ok("Chown", &[&s(ctl), &s(cg), &i(65534), &i(65534)]);
    }

    // Real and saved uid root, effective nobody: not nobody's to move.
    let borrowed = with_uids(0, 65534, 0);
    let _reap = Reap(borrowed);
    let borrowed = borrowed.as_raw() as u32;
    wait_for_uids(borrowed, "0\t65534\t0\t65534");
    m.ok("MovePid", &[&s(ctl), &s(&from), &i(borrowed)]);
    let (ok, out) = m.as_nobody("MovePid", &[&s(ctl), &s(&to), &i(borrowed)]);
    assert!(!ok && out.contains("AccessDenied"), "{out}");
    assert!(cgroup_of(&borrowed.to_string(), ctl, m.is_v1(ctl)).ends_with(&from));

    // Saved uid nobody: nobody's, whatever its real and effective uid
    // (so is one whose real uid is nobody's).
    let lent = with_uids(0, 0, 65534);
    let _reap_lent = Reap(lent);
    let lent = lent.as_raw() as u32;
    wait_for_uids(lent, "0\t0\t65534\t0");
    m.ok("MovePid", &[&s(ctl), &s(&from), &i(lent)]);
    let (ok, out) = m.as_nobody("MovePid", &[&s(ctl), &s(&to), &i(lent)]);
    assert!(ok, "{out}");
    assert!(cgroup_of(&lent.to_string(), ctl, m.is_v1(ctl)).ends_with(&to));
    for pid in [borrowed, lent] {
        m.ok("MovePidAbs", &[&s(ctl), &s("/"), &i(pid)]);
    }
    m.ok("Remove", &[&s(ctl), &s(&t), &i(1)]);
}

/// Fork a process with these real, effective and saved uids that waits
/// to be killed. Only raw system calls after the fork.
fn with_uids(real: u32, effective: u32, saved: u32) -> nix::unistd::Pid {
    // SAFETY: the child makes only async-signal-safe calls.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Parent { child } => child,
        nix::unistd::ForkResult::Child => unsafe {
            if libc::setresuid(real, effective, saved) != 0 {
                libc::_exit(1);
            }
            loop {
                libc::pause();
            }
        },
    }
}

/// Kills and reaps a forked process when dropped.
struct Reap(nix::unistd::Pid);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.0, None);
    }
}

#[test]
fn the_manager_raises_its_descriptor_limit_for_its_clients() {
    let m = Manager::start("cgm-nofile", Some("prlimit --nofile=1024:4096 --pid $$"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", m.child.id())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], &["4096", "4096"], "{line}");
}
