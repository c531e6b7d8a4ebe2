//! State handed over by other inits.
//!
//! outset's own re-exec payload (key `outset`) is read by the daemon
//! itself. This module reads the payload a running Upstart (1.6 to 1.13)
//! passes to its re-exec'd image, so that a machine can move from Upstart
//! to outset with `telinit u` and keep every supervised process
//! (extensions.md §5, reexec.md §4).

pub mod upstart;

pub use upstart::{import, ImportError, ImportSummary, Imported, ImportedLog, PendingScript};
