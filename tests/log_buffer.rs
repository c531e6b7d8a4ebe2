//! Output of a `console log` job whose log file cannot be written is held
//! in memory only up to a bound; what is held is written once the file
//! can be, and what was dropped is said once.

mod common;

use common::procs::status_field;

/// A field of /proc/PID/status in KiB.
fn kib(pid: i32, label: &str) -> u64 {
    status_field(pid, label)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The bound on output held per log (documented in outset(8)).
const HELD: usize = 1 << 20;

#[test]
fn output_held_while_the_log_directory_is_missing_is_bounded() {
    let s = common::start_session(
        "logcap",
        &[(
            "flood",
            "script\n  head -c 100000000 /dev/zero\n  touch @DIR@/written\n  \
             while [ ! -e @DIR@/go ]; do sleep 0.05; done\n  echo tail\nend script\n",
        )],
        &[],
    );
    let init = s.child.id() as i32;
    let logs = s.dir.0.join("logs");
    std::fs::remove_dir_all(&logs).expect("remove the log directory");
    let before = kib(init, "VmHWM:");
    assert_eq!(s.ctl(&["start", "--no-wait", "flood"]).0, 0);
    let written = s.dir.0.join("written");
    s.wait_for("the job to write its output", || written.exists());
    let peak = kib(init, "VmHWM:");
    assert!(
        peak < before + 16 * 1024,
        "init's peak memory grew from {before} KiB to {peak} KiB"
    );
    // The disk becomes writeable: what was held comes first, then the rest.
    std::fs::create_dir(&logs).expect("log directory back");
    std::fs::write(s.dir.0.join("go"), "").expect("go");
    let file = logs.join("flood.log");
    s.wait_for("the log to be written", || {
        std::fs::read(&file).is_ok_and(|b| b.ends_with(b"tail\r\n"))
    });
    let text = std::fs::read(&file).expect("log");
    assert_eq!(text.len(), HELD + b"tail\r\n".len());
    assert!(text[..HELD].iter().all(|b| *b == 0), "the early output");
    let dropped = 100_000_000 - HELD;
    s.wait_for("the drop to be logged", || {
        s.log().contains(&format!("dropped {dropped} bytes"))
    });
    assert_eq!(s.log().matches("dropped").count(), 1, "{}", s.log());
}

#[test]
fn output_refused_by_a_planted_symlink_is_dropped_and_said_once() {
    let s = common::start_session(
        "logloop",
        &[(
            "chatty",
            "task\nscript\n  head -c 3000000 /dev/zero\nend script\n",
        )],
        &[],
    );
    let victim = s.dir.write("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, s.dir.0.join("logs/chatty.log")).expect("plant");
    assert_eq!(s.ctl(&["start", "chatty"]).0, 0);
    // The whole output is lost (ELOOP is not cured by the disk becoming
    // writeable): once at the job's end, all of it is counted.
    s.wait_for("the drop to be logged", || {
        s.log().contains("dropped 3000000 bytes")
    });
    assert_eq!(s.log().matches("dropped").count(), 1, "{}", s.log());
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert_eq!(s.ctl(&["status", "chatty"]).1, "chatty stop/waiting\n");
}
