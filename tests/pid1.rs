//! outset as PID 1 of a new PID (and mount, network) namespace: it runs the
//! system's jobs and reaps every orphan. Needs root (CI runs as root).

mod common;

use common::TempDir;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The host pid of the namespace's PID 1 (unshare's only child).
fn init_pid(unshare_pid: u32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

#[test]
fn pid1_in_a_namespace_runs_jobs_and_reaps_orphans() {
    assert!(
        is_root(),
        "this test needs root to create PID namespaces (run the suite as root, as CI does)"
    );
    let dir = TempDir::new("pid1");
    let d = dir.0.display().to_string();
    dir.write(
        "conf/orphans.conf",
        &format!(
            "start on startup\ntask\nconsole none\nscript\n  for i in 1 2 3 4 5; do sh -c 'sleep 0.1' & done\n  echo $$ > {d}/orphans.pid\nend script\n"
        ),
    );
    dir.write(
        "conf/count.conf",
        &format!(
            "start on stopped orphans\ntask\nconsole none\nscript\n  sleep 0.5\n  z=0\n  for s in /proc/[0-9]*/stat; do\n    case \"$(cut -d' ' -f3 $s 2>/dev/null)\" in Z) z=$((z+1));; esac\n  done\n  echo \"pid1=$(cut -d' ' -f1 /proc/1/stat) zombies=$z\" > {d}/count.out\nend script\n"
        ),
    );
    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--mount", "--net", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_outset"))
        // Unknown kernel-style arguments are ignored, not fatal.
        .args(["splash", "quiet=1", "--container", "--no-such-option"])
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run unshare");

    let out = dir.0.join("count.out");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n')) {
        if Instant::now() > deadline || unshare.try_wait().ok().flatten().is_some() {
            let _ = unshare.kill();
            panic!(
                "no result; init log:\n{}",
                std::fs::read_to_string(dir.0.join("init.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&out).expect("count"),
        "pid1=1 zombies=0\n",
        "init log:\n{}",
        std::fs::read_to_string(dir.0.join("init.log")).unwrap_or_default()
    );

    // SIGTERM stops PID 1 cleanly.
    let init = init_pid(unshare.id()).expect("init pid");
    // SAFETY: kill(2) on the namespace's init.
    unsafe { libc::kill(init, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = unshare.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "PID 1 did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
