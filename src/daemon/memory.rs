//! Keeping init's resident memory small. glibc's allocator keeps freed
//! memory in its heaps (one per thread that allocates, by default) until
//! told to give it back, so after loading hundreds of job files or
//! serving a storm of spawns the memory stays resident although free.
//! Likewise the program text that work faulted in stays mapped
//! (mapped_text.rs). Init runs for the lifetime of the machine, so it
//! hands both back once things are quiet again.

use std::time::Duration;

/// How long the loop must have been quiet before memory is handed back.
pub const QUIET: Duration = Duration::from_secs(1);

/// Allocator settings for a long-lived, mostly idle process: two arenas
/// (the engine and the control threads) instead of one per thread.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Give free heap memory back to the kernel, and drop the program text
/// mapped since the last quiet spell.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    crate::mapped_text::release();
}
