//! Events: glob matching, `start on`/`stop on` trees and the event record.

pub mod fnmatch;
mod tree;

pub use fnmatch::fnmatch;
pub use tree::{leaf_matches, EventRef, EventTree, Node, NodeKind};

/// Events are referred to by a number unique for the daemon's lifetime.
pub type EventId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Handling,
    Finished,
}
