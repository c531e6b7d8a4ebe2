//! `outset run`'s controlling terminal: the command gets it as its
//! foreground process group (so that it can read keys, open `/dev/tty`
//! and be stopped by Ctrl-Z like any program run from a shell), and the
//! group that had it before gets it back at the end.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Terminal {
    fd: OwnedFd,
    /// The foreground process group when the run began.
    foreground: libc::pid_t,
}

impl Terminal {
    /// Our controlling terminal, if we have one and are in its
    /// foreground (run in the background, we leave it alone).
    pub fn open() -> Option<Terminal> {
        // SAFETY: open of a constant path; the result is checked.
        let fd = unsafe {
            libc::open(
                c"/dev/tty".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: the descriptor was just opened and is ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: tcgetpgrp on a descriptor we own.
        let foreground = unsafe { libc::tcgetpgrp(fd.as_raw_fd()) };
        // SAFETY: getpgrp has no preconditions.
        let ours = unsafe { libc::getpgrp() };
        (foreground > 0 && foreground == ours).then_some(Terminal { fd, foreground })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Give the terminal back to the group that had it. SIGTTOU is
    /// blocked first: a background group may then take the terminal
    /// (instead of being stopped for trying).
    pub fn restore(&self) {
        // SAFETY: sigprocmask and tcsetpgrp on sets and a descriptor we
        // own.
        unsafe {
            let mut ttou: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut ttou);
            libc::sigaddset(&mut ttou, libc::SIGTTOU);
            libc::sigprocmask(libc::SIG_BLOCK, &ttou, std::ptr::null_mut());
            libc::tcsetpgrp(self.fd.as_raw_fd(), self.foreground);
        }
    }
}
