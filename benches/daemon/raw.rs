//! The baseline: what starting and reaping the same processes costs
//! without any supervisor, measured in the same run.

use std::ffi::CString;
use std::time::{Duration, Instant};

/// `posix_spawn` `exe` `n` times (no arguments, the current environment),
/// then reap all of them: the same pattern as a supervisor starting `n`
/// tasks for one event. Returns the elapsed time.
pub fn spawn_and_reap(exe: &str, n: usize) -> Result<Duration, String> {
    let path = CString::new(exe).map_err(|e| e.to_string())?;
    let argv = [path.as_ptr(), std::ptr::null()];
    extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let start = Instant::now();
    let mut pids = Vec::with_capacity(n);
    let mut failure = None;
    for _ in 0..n {
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call; file actions and
        // attributes are left at their defaults (null).
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                path.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr() as *const *mut libc::c_char,
                environ,
            )
        };
        if rc != 0 {
            failure = Some(std::io::Error::from_raw_os_error(rc).to_string());
            break;
        }
        pids.push(pid);
    }
    // By pid: the benchmark's other children (daemons) are not ours to reap.
    for pid in &pids {
        let mut status = 0;
        // SAFETY: waits for a child we spawned.
        unsafe { libc::waitpid(*pid, &mut status, 0) };
    }
    let elapsed = start.elapsed();
    match failure {
        Some(e) => Err(format!("posix_spawn failed after {}: {e}", pids.len())),
        None => Ok(elapsed),
    }
}

/// [`spawn_and_reap`] in a process of its own that leads a session of its
/// own, which reports the time it measured.
///
/// The kernel's scheduler gives each session a group (autogroup), and
/// shares the processors between groups first. Run by the benchmark
/// itself, the loop and its children loaded the benchmark's group, which
/// the supervisor under test shares (it is the benchmark's child): the
/// emit that followed ran with the group's weight still spread over both
/// processors, against tasks that each lead a session, so a group, of
/// their own, and took 5-6% longer than with the loop kept apart.
pub fn spawn_and_reap_apart(exe: &str, n: usize) -> Result<Duration, String> {
    use std::os::unix::process::CommandExt;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(me);
    cmd.args([RAW_LOOP, exe, &n.to_string()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    // SAFETY: setsid is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("the raw loop failed: {}", text.trim()));
    }
    text.trim()
        .parse::<u64>()
        .map(Duration::from_nanos)
        .map_err(|e| format!("the raw loop said {text:?}: {e}"))
}

/// The argument that makes the benchmark binary the raw loop's process.
pub const RAW_LOOP: &str = "--raw-loop";

/// The raw loop's process: `--raw-loop EXE N` prints the nanoseconds
/// [`spawn_and_reap`] took (or the failure, and exits 1).
pub fn raw_loop_main(args: &[String]) -> ! {
    let result = match args {
        [exe, n] => n
            .parse::<usize>()
            .map_err(|e| e.to_string())
            .and_then(|n| spawn_and_reap(exe, n)),
        _ => Err(format!("usage: {RAW_LOOP} EXE N")),
    };
    match result {
        Ok(d) => {
            println!("{}", d.as_nanos());
            std::process::exit(0)
        }
        Err(e) => {
            println!("{e}");
            std::process::exit(1)
        }
    }
}
