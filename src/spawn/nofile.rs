//! Init's own descriptor limit and the one its jobs get.
//!
//! Every running job can cost init a descriptor or two (a log pty, a
//! status pipe while it starts), so a soft limit of 1024 would fail jobs
//! long before the machine runs out. Init raises its own soft limit to the
//! hard one at start; jobs still get the limit init was started with
//! (programs using `select()` rely on descriptors below 1024), unless
//! their `limit nofile` stanza says otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The limit jobs get (soft, hard), once recorded; until then jobs simply
/// inherit init's.
static RECORDED: AtomicBool = AtomicBool::new(false);
static JOB_SOFT: AtomicU64 = AtomicU64::new(0);
static JOB_HARD: AtomicU64 = AtomicU64::new(0);

/// Record the current limit as the jobs' one (unless one was recorded
/// already) and raise init's soft limit to the hard one.
pub fn raise() -> std::io::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if job_limit().is_none() {
        set_job_limit(soft, hard);
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(())
}

/// The limit jobs get when their class sets none, if it differs from
/// init's own.
pub fn job_limit() -> Option<(u64, u64)> {
    RECORDED.load(Ordering::Acquire).then(|| {
        (
            JOB_SOFT.load(Ordering::Relaxed),
            JOB_HARD.load(Ordering::Relaxed),
        )
    })
}

/// Set the limit jobs get (a re-exec'd image takes its predecessor's).
pub fn set_job_limit(soft: u64, hard: u64) {
    JOB_SOFT.store(soft, Ordering::Relaxed);
    JOB_HARD.store(hard, Ordering::Relaxed);
    RECORDED.store(true, Ordering::Release);
}
