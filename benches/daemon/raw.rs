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
