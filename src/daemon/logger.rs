//! The daemon's own log: slog, with Upstart's priorities mapped onto slog
//! levels and records written as `init: MESSAGE`.

use slog::{o, Drain, Logger};
use std::io::Write;

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

/// Writes each record as one `init: MESSAGE` line on stderr.
struct StderrDrain {
    min: slog::Level,
}

impl Drain for StderrDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if record.level().is_at_least(self.min) {
            let line = format!("init: {}\n", record.msg());
            // One write per record; a failed log write is not fatal.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Ok(())
    }
}

pub fn stderr_logger(min: Level) -> Logger {
    Logger::root(
        StderrDrain {
            min: slog_level(min),
        }
        .fuse(),
        o!(),
    )
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
