//! The daemon's own log: slog, with Upstart's priorities mapped onto slog
//! levels and records written as `init: MESSAGE`.

use slog::{o, Drain, Logger};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Writes each record as one `init: MESSAGE` line on stderr, at or above
/// a priority that can change at run time.
struct StderrDrain {
    min: Arc<AtomicUsize>,
}

impl Drain for StderrDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let min =
            slog::Level::from_usize(self.min.load(Ordering::Relaxed)).unwrap_or(slog::Level::Info);
        if record.level().is_at_least(min) {
            let line = format!("init: {}\n", record.msg());
            // One write per record; a failed log write is not fatal.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Ok(())
    }
}

/// The logger and the handle that changes its priority.
pub fn stderr_logger(min: Level) -> (Logger, Arc<AtomicUsize>) {
    let handle = Arc::new(AtomicUsize::new(slog_level(min).as_usize()));
    let drain = StderrDrain {
        min: handle.clone(),
    };
    (Logger::root(drain.fuse(), o!()), handle)
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
