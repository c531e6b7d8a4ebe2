//! Which changes in the job directories make a reload. A job file is
//! read once its writer has closed it (or it was renamed into place), as
//! Upstart does: its creation and each write are seen but wait for the
//! close, so a reload never catches a file that is still being written
//! by the change that woke it.

use nix::sys::inotify::{AddWatchFlags, InotifyEvent};

use crate::config::is_job_file;

/// The changes watched in each job directory.
pub fn watch_flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_CLOSE_WRITE
}

/// Whether `ev` calls for a reload: anything but the creation of an
/// entry named as a job file, whose close follows (a link made under such
/// a name waits for the next reload: changes to links are not followed).
/// A directory made, a file closed, renamed or deleted, and lost events
/// (the queue overflowed) all do.
pub fn makes_reload(ev: &InotifyEvent) -> bool {
    let created_file =
        ev.mask.contains(AddWatchFlags::IN_CREATE) && !ev.mask.contains(AddWatchFlags::IN_ISDIR);
    let job_file = ev
        .name
        .as_ref()
        .is_some_and(|n| is_job_file(&n.to_string_lossy()).is_some());
    !(created_file && job_file)
}
