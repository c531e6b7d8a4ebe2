//! The job log directory: chosen, created if missing, checked, and locked
//! so that a second init writing to it is named instead of silently
//! interleaving its lines with ours.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::cli::Args;

/// The directory for job logs. Only the default of a session init (under
/// the user's cache directory) is private; others are created 0755.
pub fn choose(args: &Args) -> Result<(PathBuf, u32), String> {
    if !args.user {
        if let Some(dir) = std::env::var_os("UPSTART_LOGDIR") {
            return Ok((PathBuf::from(dir), 0o755));
        }
    }
    if let Some(dir) = &args.logdir {
        return Ok((dir.clone(), 0o755));
    }
    if !args.user {
        return Ok((PathBuf::from("/var/log/upstart"), 0o755));
    }
    let cache = match std::env::var("XDG_CACHE_HOME")
        .ok()
        .filter(|d| d.starts_with('/'))
    {
        Some(d) => PathBuf::from(d),
        None => match std::env::var("HOME").ok().filter(|h| h.starts_with('/')) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => return Err("Unable to determine log directory: HOME is not set".into()),
        },
    };
    Ok((cache.join("upstart"), 0o700))
}

/// Create `dir` (and its parents) if missing and check that job logs can
/// be written there; the error names the reason. With `boot`, a read-only
/// file system is expected and is not one (logs are kept in memory until
/// `initctl notify-disk-writeable`).
pub fn prepare(dir: &Path, mode: u32, boot: bool) -> Result<(), String> {
    let rofs = |e: nix::errno::Errno| boot && e == nix::errno::Errno::EROFS;
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(nix::errno::Errno::ENOTDIR.desc().to_string());
    }
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
    {
        Err(e) if rofs(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))) => return Ok(()),
        Err(e) => return Err(strerror(&e)),
        Ok(()) => {}
    }
    match nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    ) {
        Ok(()) => Ok(()),
        Err(e) if rofs(e) => Ok(()),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// The strerror text of an I/O error, without Rust's "(os error N)".
fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Take the log directory's lock without ever waiting. Returns the held
/// lock (keep it open: closing it releases the lock) and, if another
/// process holds one, that process's pid (0 when it cannot be told).
///
/// The lock is on the directory itself, so that nothing is left in it: a
/// log directory can be removed as soon as its init is gone, however it
/// ended (Upstart's own tests remove theirs right after SIGKILL). Every
/// init takes a shared lock; another init's shows as a conflict with an
/// exclusive one. A POSIX record lock, not flock(): it is not shared with
/// the children outset forks (a re-exec's state writer keeps running while
/// the new image takes the lock again), and F_GETLK names the holder.
pub fn lock(dir: &Path) -> (Option<File>, Option<i32>) {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
    else {
        return (None, None);
    };
    let mut probe = whole_file_lock(libc::F_WRLCK);
    // SAFETY: fcntl on our own descriptor with a valid flock struct;
    // F_GETLK fills it in.
    let holder = if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut probe) } == 0
        && probe.l_type != libc::F_UNLCK as libc::c_short
    {
        // In another PID namespace the holder's pid reads as 0.
        Some(probe.l_pid.max(0))
    } else {
        None
    };
    let shared = whole_file_lock(libc::F_RDLCK);
    // SAFETY: as above.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &shared) } != 0 {
        return (None, holder);
    }
    (Some(file), holder)
}

fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}
