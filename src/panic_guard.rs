//! Panic containment that any layer may use (extensions.md §6), below the
//! daemon that installs the hook and recovers (daemon/panic.rs).
//!
//! [`contain`] marks the current thread while it runs a piece of work
//! whose panic concerns one client only; the daemon's hook asks
//! [`in_contained_section`] and then leaves the rest of init alone.

use std::panic::AssertUnwindSafe;

thread_local! {
    /// This thread runs library code under [`contain`]: its panics end
    /// only that piece of work.
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`, turning a panic inside it into `None` without any recovery:
/// for work whose failure concerns one client only (a third-party library
/// handling that client's bytes). The panic is still logged.
pub fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f)).ok();
    CONTAINED.with(|c| c.set(outer));
    result
}

/// Is the current thread inside [`contain`]? (For harnesses with panic
/// hooks of their own, such as the fuzzers'.)
pub fn in_contained_section() -> bool {
    CONTAINED.with(|c| c.get())
}

/// The hidden trigger of the `panic-trigger` feature (never in release
/// builds): emitting the event `outset-panic-SITE` panics at SITE, `main`
/// (the loop, while serving the request) or `control` (the D-Bus thread
/// that received the call).
#[cfg(feature = "panic-trigger")]
#[allow(clippy::panic)] // The whole point; compiled only into test builds.
pub fn trigger(event: &str, site: &str) {
    if event.strip_prefix("outset-panic-") == Some(site) {
        panic!("panic trigger {event}");
    }
}
