//! The daemon's own log: slog, with Upstart's priorities mapped onto slog
//! levels and records written as `init: MESSAGE`.

use slog::{o, Drain, Logger};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::job::Level;

/// Map Upstart priorities onto slog's levels (slog has no "message").
pub fn slog_level(level: Level) -> slog::Level {
    match level {
        Level::Debug => slog::Level::Trace,
        Level::Info => slog::Level::Debug,
        Level::Message => slog::Level::Info,
        Level::Warn => slog::Level::Warning,
        Level::Error => slog::Level::Error,
        Level::Fatal => slog::Level::Critical,
    }
}

/// Writes each record as one `init: MESSAGE` line, at or above a priority
/// that can change at run time: on stderr, or as PID 1 to the kernel log
/// (`<N>init: MESSAGE`, one record per write).
struct StderrDrain {
    min: Arc<AtomicUsize>,
    kmsg: Arc<AtomicBool>,
}

/// The kernel log priority of an Upstart priority (pid1.md §6).
fn kmsg_priority(level: slog::Level) -> u8 {
    match level {
        slog::Level::Trace => 7,
        slog::Level::Debug => 6,
        slog::Level::Info => 5,
        slog::Level::Warning => 4,
        slog::Level::Error => 3,
        slog::Level::Critical => 2,
    }
}

/// Write one record to /dev/kmsg; false if that is not possible.
fn write_kmsg(level: slog::Level, msg: &str) -> bool {
    let record = format!("<{}>init: {msg}\n", kmsg_priority(level));
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/kmsg")
    {
        Ok(mut f) => f.write_all(record.as_bytes()).is_ok(),
        Err(_) => false,
    }
}

/// Whether a record at `level` is written under the priority `min` (the
/// handle `initctl log-priority` sets).
fn written(min: &AtomicUsize, level: slog::Level) -> bool {
    let min = slog::Level::from_usize(min.load(Ordering::Relaxed)).unwrap_or(slog::Level::Info);
    level.is_at_least(min)
}

/// Whether a message at `level` is written under the priority `min`.
pub fn enabled(min: &AtomicUsize, level: Level) -> bool {
    written(min, slog_level(level))
}

impl Drain for StderrDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if written(&self.min, record.level()) {
            if self.kmsg.load(Ordering::Relaxed)
                && write_kmsg(record.level(), &record.msg().to_string())
            {
                return Ok(());
            }
            let line = format!("init: {}\n", record.msg());
            // One write per record; a failed log write is not fatal.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Ok(())
    }
}

/// Handles that steer the logger at run time.
#[derive(Clone)]
pub struct LogControl {
    pub priority: Arc<AtomicUsize>,
    /// Send records to the kernel log instead of stderr.
    pub kmsg: Arc<AtomicBool>,
}

/// The logger and its controls.
pub fn stderr_logger(min: Level) -> (Logger, LogControl) {
    let control = LogControl {
        priority: Arc::new(AtomicUsize::new(slog_level(min).as_usize())),
        kmsg: Arc::new(AtomicBool::new(false)),
    };
    let drain = StderrDrain {
        min: control.priority.clone(),
        kmsg: control.kmsg.clone(),
    };
    (Logger::root(drain.fuse(), o!()), control)
}

/// Upstart's priority names, as `initctl log-priority` uses them.
pub const PRIORITY_NAMES: [(&str, Level); 6] = [
    ("debug", Level::Debug),
    ("info", Level::Info),
    ("message", Level::Message),
    ("warn", Level::Warn),
    ("error", Level::Error),
    ("fatal", Level::Fatal),
];

pub fn priority_name(handle: &AtomicUsize) -> &'static str {
    let current = handle.load(Ordering::Relaxed);
    PRIORITY_NAMES
        .iter()
        .find(|(_, l)| slog_level(*l).as_usize() == current)
        .map_or("message", |(n, _)| n)
}

pub fn set_priority(handle: &AtomicUsize, name: &str) -> bool {
    match PRIORITY_NAMES.iter().find(|(n, _)| *n == name) {
        Some((_, l)) => {
            handle.store(slog_level(*l).as_usize(), Ordering::Relaxed);
            true
        }
        None => false,
    }
}

pub fn log(logger: &Logger, level: Level, message: &str) {
    match slog_level(level) {
        slog::Level::Trace => slog::trace!(logger, "{}", message),
        slog::Level::Debug => slog::debug!(logger, "{}", message),
        slog::Level::Info => slog::info!(logger, "{}", message),
        slog::Level::Warning => slog::warn!(logger, "{}", message),
        slog::Level::Error => slog::error!(logger, "{}", message),
        slog::Level::Critical => slog::crit!(logger, "{}", message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_follows_the_priority() {
        let (_, control) = stderr_logger(Level::Message);
        assert!(enabled(&control.priority, Level::Warn));
        assert!(enabled(&control.priority, Level::Message));
        assert!(!enabled(&control.priority, Level::Info));
        assert!(set_priority(&control.priority, "debug"));
        assert!(enabled(&control.priority, Level::Debug));
    }

    #[test]
    fn kernel_log_records() {
        assert_eq!(kmsg_priority(slog_level(Level::Warn)), 4);
        assert_eq!(kmsg_priority(slog_level(Level::Message)), 5);
        assert_eq!(kmsg_priority(slog_level(Level::Debug)), 7);
        assert!(
            nix::unistd::geteuid().is_root(),
            "writing /dev/kmsg needs root (CI runs as root)"
        );
        let marker = format!("outset-kmsg-test-{}", std::process::id());
        assert!(write_kmsg(slog::Level::Warning, &marker));
        let dmesg = std::process::Command::new("dmesg").output().expect("dmesg");
        let text = String::from_utf8_lossy(&dmesg.stdout);
        assert!(
            text.contains(&format!("init: {marker}")),
            "not in the kernel log"
        );
    }
}
