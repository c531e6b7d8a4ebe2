//! Containment of panics (extensions.md §6).
//!
//! Nothing reachable from input should panic, but if something does, PID 1
//! must not die with it. The loop runs under `catch_unwind`; a panic on
//! the main thread unwinds to [`Daemon::run`], which then re-execs:
//! statefully first (every job keeps its processes), statelessly if that
//! fails, and if both fail it stays in a minimal loop that only reaps
//! children. A panic on another thread (the control server's) does not
//! unwind the loop: the hook flags it and wakes the loop, which re-execs
//! the same way, bringing the control server back with the new image.
//!
//! A panic while already unwinding, or in the hook itself, aborts: that
//! cannot be contained.

use std::os::fd::AsFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use super::Daemon;
use crate::job::Level;
use crate::panic_guard::in_contained_section;

/// The thread the loop runs on.
static MAIN: OnceLock<ThreadId> = OnceLock::new();
/// Wakes the loop from another thread.
static WAKER: OnceLock<Arc<mio::Waker>> = OnceLock::new();
/// Where the hook logs.
static LOGGER: OnceLock<slog::Logger> = OnceLock::new();
/// Another thread panicked; the loop should re-exec.
static OTHER_THREAD: AtomicBool = AtomicBool::new(false);

/// Remember the loop's waker (set when the control server is opened).
pub(super) fn set_waker(waker: Arc<mio::Waker>) {
    let _ = WAKER.set(waker);
}

/// Install the hook; the calling thread is the loop's.
pub(super) fn install(logger: slog::Logger) {
    let _ = MAIN.set(std::thread::current().id());
    let _ = LOGGER.set(logger);
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = format!("panic in thread {name}: {what}{at}");
        match LOGGER.get() {
            Some(logger) => super::logger::log(logger, Level::Fatal, &msg),
            None => eprintln!("init: {msg}"),
        }
        if in_contained_section() {
            // Only the work `contain` wraps is lost; nothing to recover.
        } else if MAIN.get() != Some(&thread.id()) {
            OTHER_THREAD.store(true, Ordering::SeqCst);
            if let Some(waker) = WAKER.get() {
                let _ = waker.wake();
            }
        }
    }));
}

/// Did a thread other than the loop's panic?
pub(super) fn other_thread_panicked() -> bool {
    OTHER_THREAD.load(Ordering::SeqCst)
}

/// Testing knob: with the `panic-trigger` feature, `OUTSET_TEST_REEXEC_FAIL`
/// in outset's environment makes every re-exec fail as if exec had.
pub(super) fn exec_disabled() -> bool {
    cfg!(feature = "panic-trigger") && std::env::var_os("OUTSET_TEST_REEXEC_FAIL").is_some()
}

impl Daemon {
    /// Run the loop with panics contained (see the module documentation).
    /// Returns only when the session ends, or in user and container mode
    /// when asked to end after containment failed.
    pub(super) fn run_contained(&mut self) -> i32 {
        install(self.world.logger.clone());
        let mut why = match std::panic::catch_unwind(AssertUnwindSafe(|| self.run_loop())) {
            Ok(status) => return status,
            Err(_) => "the main loop panicked",
        };
        // Recovery itself must not unwind out of PID 1 either.
        loop {
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.recover(why))) {
                Ok(status) => return status,
                Err(_) => why = "recovering from a panic panicked",
            }
        }
    }

    /// Called from the loop when another thread panicked.
    pub(super) fn check_other_threads(&mut self) -> Option<i32> {
        if other_thread_panicked() {
            return Some(self.recover("a control thread panicked"));
        }
        None
    }

    /// Stateful re-exec, else stateless, else reap forever.
    fn recover(&mut self, why: &str) -> i32 {
        self.log(
            Level::Fatal,
            &format!("{why}; attempting a stateful re-exec"),
        );
        // Both return only when they fail; a second panic (say, in
        // capturing a corrupted state) counts as failing.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.reexec()));
        self.log(
            Level::Fatal,
            "Stateful re-exec failed; attempting a stateless re-exec",
        );
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.reexec_stateless()));
        self.log(
            Level::Fatal,
            "Stateless re-exec failed too; only reaping children from now on",
        );
        self.reap_forever()
    }

    /// The last resort: no engine, no control server, only reaping, so
    /// that PID 1 neither dies nor fills the process table with zombies.
    /// A session init, run mode or a container's PID 1 ends on
    /// SIGTERM or SIGINT with status 1; init of a machine never ends.
    fn reap_forever(&mut self) -> i32 {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::signal::Signal;
        let _ = self.handled_signals().thread_set_mask();
        loop {
            let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(1000u16));
            let mut term = false;
            while let Ok(Some(info)) = self.signals.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32);
                term |= matches!(sig, Ok(Signal::SIGTERM) | Ok(Signal::SIGINT));
            }
            let reap = crate::sys::WaitFlags::default();
            while let Ok(Some(child)) = self.world.sys.wait(crate::sys::WaitFor::Any, reap) {
                self.log(Level::Info, &format!("Reaped process {}", child.pid));
            }
            if term && self.config.mode != crate::pid1::Mode::Machine {
                self.log(Level::Fatal, "Ending after a failed recovery");
                return 1;
            }
        }
    }
}
