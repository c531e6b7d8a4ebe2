//! SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT sent to init by a process
//! (`kill`, `abort`), as opposed to raised by a fault of init's own.
//!
//! Left alone, Rust's own SIGSEGV/SIGBUS handler (there to report stack
//! overflows) swallowed the first one sent and reset itself, so that the
//! second killed init without a word. Instead every such signal is
//! handled the same way: it is logged (`init: Received SIGSEGV from
//! process N: ...` on standard error, the only output a signal handler
//! can use safely) and then process 1 ignores it (it must never die),
//! while any other init (a session init, `outset run`) ends by that
//! signal's default action, as any program would. Faults are passed on to
//! the handler that was there before (Rust's) or to the default action.

use std::sync::OnceLock;

const FATAL: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// The actions in place before ours, in the order of `FATAL`.
static PREVIOUS: OnceLock<[libc::sigaction; 5]> = OnceLock::new();

/// The session file, removed when a session init ends by such a signal.
static SESSION_FILE: OnceLock<std::ffi::CString> = OnceLock::new();

/// Remember the session file to remove should init end by a signal.
pub(super) fn remember_session_file(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        let _ = SESSION_FILE.set(c);
    }
}

fn name(sig: libc::c_int) -> &'static [u8] {
    match sig {
        libc::SIGSEGV => b"SEGV",
        libc::SIGBUS => b"BUS",
        libc::SIGILL => b"ILL",
        libc::SIGFPE => b"FPE",
        _ => b"ABRT",
    }
}

/// A fixed buffer a line is built in without allocating.
struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Line {
    fn push(&mut self, bytes: &[u8]) {
        for b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = *b;
                self.len += 1;
            }
        }
    }

    fn push_number(&mut self, n: i32) {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || at == 0 {
                break;
            }
        }
        if n < 0 {
            self.push(b"-");
        }
        self.push(digits.get(at..).unwrap_or_default());
    }
}

/// Hand a fault to the action that was in place before ours.
///
/// # Safety
/// Called from the signal handler with its arguments.
unsafe fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let index = FATAL.iter().position(|s| *s == sig);
    let previous = PREVIOUS.get().zip(index).and_then(|(p, i)| p.get(i));
    match previous.map(|p| (p.sa_sigaction, p.sa_flags)) {
        Some((handler, flags)) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(handler);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                f(sig);
            }
        }
        // The default action: the faulting instruction runs again and
        // the kernel ends the process.
        _ => {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

extern "C" fn on_fatal(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler;
    // everything below is async-signal-safe (no allocation, no locks).
    unsafe {
        // Positive codes are the kernel's own: a fault (or SI_KERNEL).
        if info.is_null() || (*info).si_code > 0 {
            pass_on(sig, info, ctx);
            return;
        }
        let pid1 = libc::getpid() == 1;
        let mut line = Line {
            buf: [0; 128],
            len: 0,
        };
        line.push(b"init: Received SIG");
        line.push(name(sig));
        line.push(b" from process ");
        line.push_number((*info).si_pid());
        line.push(if pid1 {
            b": ignored\n"
        } else {
            b": ending with that signal\n"
        });
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        if pid1 {
            return;
        }
        if let Some(path) = SESSION_FILE.get() {
            libc::unlink(path.as_ptr());
        }
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
        // Only if the signal could not end us.
        libc::_exit(128 + sig);
    }
}

/// Handle the fatal signals as the module documentation says. Called once
/// at start-up, before any job is spawned (a child puts every signal init
/// handles back to its default).
pub(super) fn install() {
    // SAFETY: sigaction with structures we own; the handler is
    // async-signal-safe.
    unsafe {
        let mut previous: [libc::sigaction; 5] = std::mem::zeroed();
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fatal as *const () as usize;
        // On the alternate stack Rust sets up: a stack overflow must
        // still reach Rust's report.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        for (sig, old) in FATAL.iter().zip(previous.iter_mut()) {
            libc::sigaction(*sig, std::ptr::null(), old);
        }
        if PREVIOUS.set(previous).is_err() {
            // Installed already (a second daemon in one process).
            return;
        }
        for sig in FATAL {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}
