//! The engine's logging macro, shared by its files.

/// Log through `sys`, formatting the message only if `sys` would write
/// it (a task's start and stop log a dozen Info lines nobody reads at the
/// default priority).
macro_rules! log {
    ($sys:expr, $level:expr, $($arg:tt)+) => {{
        let level = $level;
        if $sys.logs(level) {
            $sys.log(level, format!($($arg)+));
        }
    }};
}
