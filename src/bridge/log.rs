//! Messages of a bridge on its standard error (a job's log when init runs
//! it), each line prefixed with the program's name, filtered by level.

use std::sync::atomic::{AtomicU8, Ordering};

pub const DEBUG: u8 = 0;
pub const INFO: u8 = 1;
pub const WARN: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(WARN);

pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    level >= LEVEL.load(Ordering::Relaxed)
}

/// The program's name as invoked, for the prefix.
pub fn program() -> String {
    std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "bridge".into())
}

#[macro_export]
macro_rules! bridge_log {
    ($level:expr, $($arg:tt)*) => {
        if $crate::bridge::log::enabled($level) {
            eprintln!("{}: {}", $crate::bridge::log::program(), format_args!($($arg)*));
        }
    };
}
