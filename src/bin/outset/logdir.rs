//! The job log directory: chosen, created if missing, checked, and locked
//! so that a second init writing to it is named instead of silently
//! interleaving its lines with ours.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::cli::Args;

/// The lock file every init using a log directory holds (and writes its
/// pid to).
const LOCK_NAME: &str = ".outset.lock";

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
/// lock (keep it open: closing the file releases it) and, if another
/// process holds it, that process's pid.
pub fn lock(dir: &Path) -> (Option<File>, Option<i32>) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(dir.join(LOCK_NAME))
    else {
        return (None, None);
    };
    // A POSIX record lock, not flock(): it is not shared with the children
    // outset forks (a re-exec's state writer keeps running while the new
    // image takes the lock again), and F_GETLK names the holder.
    let mut fl = whole_file_lock();
    // SAFETY: fcntl on our own descriptor with a valid flock struct.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        return (Some(file), None);
    }
    // SAFETY: as above; F_GETLK fills in `fl`.
    let holder = if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) } == 0
        && fl.l_type != libc::F_UNLCK as libc::c_short
        && fl.l_pid > 0
    {
        Some(fl.l_pid)
    } else {
        // In another PID namespace the holder's pid reads as 0: fall back
        // to the pid it wrote.
        std::fs::read_to_string(dir.join(LOCK_NAME))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    };
    (None, Some(holder.unwrap_or(0)))
}

fn whole_file_lock() -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}
