//! `console log` output files (process-spawning.md §7.3): opened lazily,
//! re-created when unlinked, buffered while they cannot be opened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// Output held per log while its file cannot be written (the log
/// directory is missing, the disk read-only, the name refused): early boot
/// output survives until the disk is writeable, but a job that writes on
/// and on cannot make init grow without end. Beyond it output is dropped
/// and counted.
pub const MAX_HELD: usize = 1 << 20;

pub struct JobLog {
    pub path: PathBuf,
    file: Option<File>,
    buffer: Vec<u8>,
    /// Bytes of output dropped since this was last reported.
    dropped: u64,
    /// errno of the last failure to open or write the file.
    last_error: Option<i32>,
}

impl JobLog {
    pub fn new(path: PathBuf) -> Self {
        JobLog {
            path,
            file: None,
            buffer: Vec::new(),
            dropped: 0,
            last_error: None,
        }
    }

    /// The job (and instance) the output is from, as its log file is
    /// named: `JOB` or `JOB-INSTANCE`.
    pub fn label(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy())
            .map(|n| n.strip_suffix(".log").unwrap_or(&n).to_string())
            .unwrap_or_default()
    }

    /// A log that already holds `pending` (from a previous image's
    /// state), bounded like output that arrives.
    pub fn with_pending(path: PathBuf, pending: &[u8]) -> Self {
        let mut log = JobLog::new(path);
        log.hold(pending);
        log
    }

    /// The output held, not yet written.
    pub fn held(&self) -> &[u8] {
        &self.buffer
    }

    /// Standard-output mode: the held bytes are the unfinished line.
    pub fn unfinished_line(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(f) = &self.file {
            // Rotated away: start a new file.
            if f.metadata().map(|m| m.nlink() == 0).unwrap_or(true) {
                self.file = None;
            }
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&self.path)?;
            self.file = Some(f);
        }
        Ok(())
    }

    /// Keep `data` after what is held, up to [`MAX_HELD`]; count the rest.
    fn hold(&mut self, data: &[u8]) {
        let room = MAX_HELD.saturating_sub(self.buffer.len()).min(data.len());
        let (kept, lost) = data.split_at(room);
        self.buffer.extend_from_slice(kept);
        self.dropped += lost.len() as u64;
    }

    /// Append job output, keeping it in memory while the file cannot be
    /// written (except on ENOSPC, where it is dropped).
    pub fn write(&mut self, data: &[u8]) {
        // A full buffer first makes room if the file can be written now.
        if self.buffer.len() + data.len() > MAX_HELD {
            let _ = self.flush();
        }
        self.hold(data);
        let _ = self.flush();
    }

    /// Try to write out what is buffered; returns the error if that failed.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.open().and_then(|()| match &mut self.file {
            Some(f) => f.write_all(&self.buffer),
            None => Ok(()),
        });
        match result {
            Ok(()) => {
                self.buffer.clear();
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                self.last_error = e.raw_os_error();
                if e.raw_os_error() == Some(libc::ENOSPC) {
                    self.buffer.clear();
                } else {
                    self.file = None;
                }
                Err(e)
            }
        }
    }

    /// Give up what is still held (the log is closed for good): it counts
    /// as dropped.
    pub fn discard(&mut self) {
        self.dropped += self.buffer.len() as u64;
        self.buffer = Vec::new();
    }

    /// How much output was dropped since the last call, once nothing more
    /// is held (the file became writeable) or `ended` (the log is being
    /// closed or set aside): the moments to say so, once.
    pub fn take_dropped(&mut self, ended: bool) -> u64 {
        if ended || self.buffer.is_empty() {
            std::mem::take(&mut self.dropped)
        } else {
            0
        }
    }

    /// Output is still held because the disk refused it in a way that a
    /// later `notify-disk-writeable` can cure (read-only, no permission).
    pub fn waiting_for_disk(&self) -> bool {
        !self.buffer.is_empty()
            && matches!(
                self.last_error,
                Some(libc::EROFS | libc::EPERM | libc::EACCES)
            )
    }
}
