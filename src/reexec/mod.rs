//! Re-exec payloads in Upstart 1.13's JSON layout.
//!
//! [`upstart`] reads the payload a running Upstart (1.6 to 1.13) passes to
//! its re-exec'd image, so that a machine can move from Upstart to outset
//! with `telinit u` and keep every supervised process (extensions.md §5,
//! reexec.md §4). [`outset`] writes outset's own payload in the same layout,
//! with outset-only data under extra `outset` keys, and reads it back
//! through the same importer.

pub mod outset;
mod outset_write;
mod tree;
pub mod upstart;

pub use outset::{export, read, read_from, ExportInput, Handover, LiveLog, Payload, Restored};
pub use upstart::{
    import, ImportError, ImportSummary, Imported, ImportedLog, PendingScript, ReadError,
};
