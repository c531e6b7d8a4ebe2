//! Moving the re-exec payload from one image to the next (reexec.md §2–3).
//!
//! The old image forks a writer and execs at once: the child, a frozen copy
//! of the state, builds and writes the payload into a pipe while the new
//! image starts, and the new image parses it as it arrives. Building,
//! writing, exec and parsing overlap instead of adding up, which is most of
//! the pause a re-exec costs. Should no child be had, the old image writes
//! the payload into a memory file itself before it execs.
//!
//! Both ends wait at most `UPSTART_STATE_WAIT_SECS` seconds (default 3,
//! negative: no limit) for the other, so a writer that never comes (or a
//! reader that never reads) ends in the stateless fallback, not a hang.

use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// How long either end waits for the other.
pub fn state_wait() -> Option<Duration> {
    wait_from(std::env::var("UPSTART_STATE_WAIT_SECS").ok().as_deref())
}

fn wait_from(value: Option<&str>) -> Option<Duration> {
    match value.and_then(|v| v.trim().parse::<i64>().ok()) {
        Some(n) if n < 0 => None,
        Some(n) => Some(Duration::from_secs(n.unsigned_abs())),
        None => Some(Duration::from_secs(3)),
    }
}

/// Wait until `fd` is ready for `events`, at most `wait` (`None`: forever).
fn wait_ready(fd: &impl AsFd, events: PollFlags, wait: Option<Duration>) -> std::io::Result<()> {
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => return Err(gone()),
            // Ready, or hung up / in error: the read or write says which.
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the other image did not come")
}

/// Reads the payload, waiting for each part at most the state wait, and
/// keeps a copy of everything read (for `LOGDIR/upstart.state`, and for
/// a reader of another layout).
pub struct StateReader {
    file: File,
    wait: Option<Duration>,
    /// Once the writer is given up on, it stays given up on (a parser may
    /// read again after an error).
    gave_up: bool,
    pub kept: Vec<u8>,
}

impl StateReader {
    pub fn new(file: File, wait: Option<Duration>) -> Self {
        StateReader {
            file,
            wait,
            gave_up: false,
            kept: Vec::new(),
        }
    }

    /// Read what is left, up to the end.
    pub fn drain(&mut self) -> std::io::Result<()> {
        let mut buf = [0u8; 1 << 16];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }
}

impl Read for StateReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.gave_up {
            return Err(gone());
        }
        if let Err(e) = wait_ready(&self.file, PollFlags::POLLIN, self.wait) {
            self.gave_up = true;
            return Err(e);
        }
        let n = self.file.read(buf)?;
        self.kept
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Writes into the pipe, waiting for room at most the state wait.
struct TimedWriter {
    file: File,
    wait: Option<Duration>,
}

impl Write for TimedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        wait_ready(&self.file, PollFlags::POLLOUT, self.wait)?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A pipe holds this much before its writer has to wait for the reader.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// What [`hand_over`] gives: the descriptor to pass to the next image as
/// `--state-fd` (inheritable), and, while a writer child runs, the write
/// end of a pipe whose closing at the exec tells the writer the exec has
/// happened (close-on-exec; dropped after a failed exec, which tells it
/// the same).
pub struct Handed {
    pub state: OwnedFd,
    _exec_watch: Option<OwnedFd>,
}

/// Hand `payload` over: fed by a child process, or a memory file written
/// here when no child can be had. The child keeps `linger` open until
/// this image has executed (or given up): those descriptors are not
/// passed on, but closing one can wait for the kernel (an inotify
/// descriptor waits for a grace period, milliseconds), and the exec must
/// not be the last close of them; the writer's exit is.
pub fn hand_over<T: Serialize>(payload: &T, linger: &[RawFd]) -> std::io::Result<Handed> {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    // A bigger pipe, fewer switches between writer and reader; the
    // default size works too.
    let _ = nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    let (watch_read, watch_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let wait = state_wait();
    // SAFETY: the child only builds and writes the payload and exits; see
    // `write_and_exit` for why that is sound in a threaded process.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            write_and_exit(payload, write_end, watch_read, linger, wait)
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop((write_end, watch_read));
            // Inheritable: the next image reads it.
            let _ = nix::fcntl::fcntl(
                &read_end,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
            Ok(Handed {
                state: read_end,
                _exec_watch: Some(watch_write),
            })
        }
        Err(_) => {
            drop((read_end, write_end, watch_read, watch_write));
            write_memfd(payload).map(|state| Handed {
                state,
                _exec_watch: None,
            })
        }
    }
}

/// The writer child. Only the thread that forked exists here, and locks
/// other threads held at the fork stay held: it touches nothing but the
/// payload (plain data), the allocator (which the C library makes usable
/// in the child of a fork) and the pipes, then leaves without running any
/// exit handler. Once the payload is written it waits (at most the state
/// wait) for the old image's exec, seen as the end of `exec_watch`, before
/// it lets go of the descriptors in `linger`.
fn write_and_exit<T: Serialize>(
    payload: &T,
    write_end: OwnedFd,
    exec_watch: OwnedFd,
    linger: &[RawFd],
    wait: Option<Duration>,
) -> ! {
    // Nothing else of the parent's may stay open here: the control socket
    // would keep its address taken from the next image, and a script pipe
    // held open would delay its shell's end of input.
    let mut kept: Vec<RawFd> = linger.to_vec();
    kept.extend([write_end.as_raw_fd(), exec_watch.as_raw_fd()]);
    close_all_but(&kept);
    let writer = TimedWriter {
        file: File::from(write_end),
        wait,
    };
    let mut out = BufWriter::with_capacity(1 << 16, writer);
    let ok = serde_json::to_writer(&mut out, payload).is_ok() && out.flush().is_ok();
    drop(out);
    // Hung up (or readable, never): the old image has executed or ended.
    let _ = wait_ready(&exec_watch, PollFlags::POLLIN, wait);
    // SAFETY: _exit ends this process without touching shared state.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

/// Close every descriptor from 3 up, but those in `keep`.
fn close_all_but(keep: &[RawFd]) {
    let close = |first: libc::c_uint, last: libc::c_uint| {
        if first <= last {
            // SAFETY: close_range on this process's own table.
            unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
        }
    };
    let mut kept: Vec<libc::c_uint> = keep
        .iter()
        .filter_map(|fd| libc::c_uint::try_from(*fd).ok())
        .filter(|fd| *fd >= 3)
        .collect();
    kept.sort_unstable();
    let mut next: libc::c_uint = 3;
    for fd in kept {
        if fd > next {
            close(next, fd - 1);
        }
        next = next.max(fd.saturating_add(1));
    }
    close(next, libc::c_uint::MAX);
}

/// The payload in an inheritable memory file, positioned at its start.
fn write_memfd<T: Serialize>(payload: &T) -> std::io::Result<OwnedFd> {
    let fd = nix::sys::memfd::memfd_create(c"outset-state", nix::sys::memfd::MFdFlags::empty())
        .map_err(std::io::Error::from)?;
    let mut out = BufWriter::with_capacity(1 << 16, File::from(fd));
    serde_json::to_writer(&mut out, payload)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_setting() {
        assert_eq!(wait_from(None), Some(Duration::from_secs(3)));
        assert_eq!(wait_from(Some("10")), Some(Duration::from_secs(10)));
        assert_eq!(wait_from(Some("0")), Some(Duration::ZERO));
        assert_eq!(wait_from(Some("-1")), None);
        assert_eq!(wait_from(Some("soon")), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_forked_writer_feeds_the_reader() {
        let payload = serde_json::json!({ "a": [1, 2, 3], "b": "x".repeat(300_000) });
        let fd = hand_over(&payload, &[]).expect("hand over").state;
        let mut reader = StateReader::new(File::from(fd), Some(Duration::from_secs(10)));
        let back: serde_json::Value = serde_json::from_reader(&mut reader).expect("parse");
        assert_eq!(back, payload);
        assert_eq!(reader.kept, serde_json::to_vec(&payload).expect("text"));
    }

    #[test]
    fn a_writer_that_never_comes_times_out() {
        let (read_end, _write_end) = nix::unistd::pipe().expect("pipe");
        let mut reader = StateReader::new(File::from(read_end), Some(Duration::from_millis(50)));
        let started = Instant::now();
        let err = reader.drain().expect_err("nothing comes");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        // Asked again, it does not wait again.
        let err = reader.drain().expect_err("still nothing");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
