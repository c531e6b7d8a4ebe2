//! What the tests read about processes from /proc: the tree (shared with
//! the daemon's own sweep) and single fields of one process.

pub use outset::pid1::sweep::{descendants, pids};

/// The children of `pid`, from the kernel's list.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The first child of `pid`.
pub fn child_of(pid: i32) -> Option<i32> {
    children(pid).into_iter().next()
}

/// The one-letter state of a process.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z')
}

/// A line of /proc/PID/status after its label.
pub fn status_field(pid: i32, label: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
}

/// Whether `pid` ignores signal `sig` (its `SigIgn` mask).
pub fn ignores(pid: i32, sig: i32) -> bool {
    status_field(pid, "SigIgn:")
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// The pid a process has inside its own (innermost) PID namespace.
pub fn ns_pid(pid: i32) -> Option<i32> {
    status_field(pid, "NSpid:")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Whether a process's command line holds `word` as a whole argument.
pub fn cmdline_has(pid: i32, word: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmd| cmd.split(|&b| b == 0).any(|w| w == word.as_bytes()))
}

/// Size and resident size, in kB, of the executable mappings of a
/// process's own program (its text), from /proc/PID/smaps.
pub fn program_text_kib(pid: i32) -> (u64, u64) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut size, mut rss, mut ours) = (0, 0, false);
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let mut kib = || {
            words
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match first {
            "Size:" if ours => size += kib(),
            "Rss:" if ours => rss += kib(),
            f if !f.ends_with(':') => {
                let fields: Vec<&str> = line.splitn(6, ' ').collect();
                let path = fields.get(5).map_or("", |p| p.trim_start());
                ours = path == exe && fields.get(1).is_some_and(|p| p.contains('x'));
            }
            _ => {}
        }
    }
    (size, rss)
}

/// Kill (SIGKILL) every process whose environment names the session
/// `address` (`UPSTART_SESSION=address`): the jobs of a session init that
/// has ended, which a session's end leaves running when they would not
/// stop (as Upstart does).
pub fn kill_session_leftovers(address: &str) {
    let wanted = format!("UPSTART_SESSION={address}");
    for pid in pids() {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
            // SAFETY: kill(2) on a process this test's session started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}
