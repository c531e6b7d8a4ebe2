//! `console log` output files (process-spawning.md §7.3): opened lazily,
//! re-created when unlinked, buffered while they cannot be opened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

pub struct JobLog {
    pub path: PathBuf,
    file: Option<File>,
    buffer: Vec<u8>,
}

impl JobLog {
    pub fn new(path: PathBuf) -> Self {
        JobLog {
            path,
            file: None,
            buffer: Vec::new(),
        }
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

    /// Append job output, keeping it in memory while the file cannot be
    /// written (except on ENOSPC, where it is dropped).
    pub fn write(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
        self.flush();
    }

    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let result = self.open().and_then(|()| match &mut self.file {
            Some(f) => f.write_all(&self.buffer),
            None => Ok(()),
        });
        match result {
            Ok(()) => self.buffer.clear(),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => self.buffer.clear(),
            Err(_) => self.file = None,
        }
    }
}
