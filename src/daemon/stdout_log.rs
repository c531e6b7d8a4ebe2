//! `console log` output on init's own standard output, one `LABEL: LINE`
//! per line, for `docker logs` and `kubectl logs` (extensions.md §2). The
//! reader may be slow or gone: writes never block the loop, at most
//! [`LIMIT`] bytes wait for it, and lines beyond that are dropped and
//! counted.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use mio::unix::SourceFd;
use mio::{Interest, Registry};

/// How much output may wait for a reader that does not keep up.
pub const LIMIT: usize = 64 * 1024;

/// An unfinished line longer than this goes out as a line of its own (a
/// job that never writes a newline cannot make init hold its output).
pub const LINE_MAX: usize = 4096;

pub struct StdoutLog {
    out: File,
    pending: Vec<u8>,
    /// Lines dropped since the reader last caught up.
    dropped: u64,
}

/// A descriptor of our own on standard output, non-blocking without
/// changing fd 1 (jobs and the engine may share its file description):
/// pipes, FIFOs and terminals reopened through /proc, anything else a
/// duplicate made non-blocking.
fn open_stdout() -> std::io::Result<File> {
    let reopened = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/proc/self/fd/1");
    if let Ok(f) = reopened {
        return Ok(f);
    }
    // SAFETY: fcntl on descriptor 1; the result is a new descriptor we own.
    let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created for us.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: fcntl on the descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    Ok(file)
}

impl StdoutLog {
    /// Open standard output and watch it for room (a regular file or
    /// /dev/null cannot be watched and never needs to be).
    pub fn open(registry: &Registry) -> std::io::Result<StdoutLog> {
        let out = open_stdout()?;
        let _ = registry.register(
            &mut SourceFd(&out.as_raw_fd()),
            super::tokens::STDOUT,
            Interest::WRITABLE,
        );
        Ok(StdoutLog {
            out,
            pending: Vec::new(),
            dropped: 0,
        })
    }

    /// Take job output: complete lines of `partial` + `data` go out as
    /// `LABEL: LINE` (a pty's `\r\n` as `\n`), the unfinished rest stays
    /// in `partial`, or goes out too when `last`. Returns a message for
    /// init's log when output starts being dropped.
    pub fn take(
        &mut self,
        label: &str,
        partial: &mut Vec<u8>,
        data: &[u8],
        last: bool,
    ) -> Option<String> {
        partial.extend_from_slice(data);
        // Room first, so that a reader that caught up gets every line.
        let mut message = self.flush();
        let mut start = 0;
        while let Some(end) = partial
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map(|n| start + n)
        {
            let line = partial.get(start..end).unwrap_or_default();
            message = message.or(self.line(label, line));
            start = end + 1;
        }
        partial.drain(..start.min(partial.len()));
        if (last || partial.len() > LINE_MAX) && !partial.is_empty() {
            let line = std::mem::take(partial);
            message = message.or(self.line(label, &line));
        }
        message.or(self.flush())
    }

    fn line(&mut self, label: &str, line: &[u8]) -> Option<String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let size = label.len() + 2 + line.len() + 1;
        if self.pending.len() + size > LIMIT {
            self.dropped += 1;
            return (self.dropped == 1).then(|| {
                format!(
                    "standard output is not being read: job output beyond {} KiB is dropped \
                     until it is",
                    LIMIT / 1024
                )
            });
        }
        self.pending.extend_from_slice(label.as_bytes());
        self.pending.extend_from_slice(b": ");
        self.pending.extend_from_slice(line);
        self.pending.push(b'\n');
        None
    }

    /// Write what waits, as far as the reader takes it. Returns a message
    /// for init's log when the reader has caught up after lines were
    /// dropped.
    pub fn flush(&mut self) -> Option<String> {
        while !self.pending.is_empty() {
            match self.out.write(&self.pending) {
                Ok(0) => break,
                Ok(n) => {
                    self.pending.drain(..n.min(self.pending.len()));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                // Nobody will ever read it (EPIPE): stop holding it.
                Err(_) => {
                    self.pending.clear();
                    break;
                }
            }
        }
        if self.dropped > 0 && self.pending.is_empty() {
            let n = std::mem::take(&mut self.dropped);
            return Some(format!(
                "standard output is read again; {n} line(s) of job output were dropped"
            ));
        }
        None
    }
}
