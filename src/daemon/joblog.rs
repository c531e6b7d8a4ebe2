//! `console log` output files (process-spawning.md §7.3): opened lazily,
//! re-created when unlinked, buffered while they cannot be opened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

pub struct JobLog {
    pub path: PathBuf,
    file: Option<File>,
    pub buffer: Vec<u8>,
    /// errno of the last failure to open or write the file.
    last_error: Option<i32>,
}

impl JobLog {
    pub fn new(path: PathBuf) -> Self {
        JobLog {
            path,
            file: None,
            buffer: Vec::new(),
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
