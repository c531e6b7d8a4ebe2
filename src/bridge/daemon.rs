//! `--daemon`: detach the way init's `expect daemon` counts on (fork,
//! new session, fork again), before any thread exists.

use nix::unistd::{fork, setsid, ForkResult};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("Unable to become daemon: {0}")]
    Fork(#[from] nix::Error),
}

/// Returns in the grandchild only; the parents exit at once. Standard
/// error stays open (it is the job's log under init), standard input and
/// output go to /dev/null, the working directory becomes `/`.
pub fn daemonise() -> Result<(), DaemonError> {
    // SAFETY: called from main before any thread is spawned.
    if let ForkResult::Parent { .. } = unsafe { fork() }? {
        std::process::exit(0);
    }
    setsid()?;
    // SAFETY: as above; still single-threaded.
    if let ForkResult::Parent { .. } = unsafe { fork() }? {
        std::process::exit(0);
    }
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto the standard descriptors of this process.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    Ok(())
}
