//! The system console as PID 1's standard input, output and error, and the
//! terminal settings a freshly booted console gets.

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::termios::{
    tcflush, tcgetattr, tcsetattr, ControlFlags, FlushArg, InputFlags, LocalFlags, OutputFlags,
    SetArg, SpecialCharacterIndices as Cc, Termios,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Make `fd` our descriptors 0, 1 and 2.
fn onto_stdio(fd: OwnedFd) -> nix::Result<()> {
    nix::unistd::dup2_stdin(&fd)?;
    nix::unistd::dup2_stdout(&fd)?;
    nix::unistd::dup2_stderr(&fd)?;
    // `fd` itself is dropped (closed) unless it already was 0, 1 or 2.
    if fd.as_raw_fd() <= 2 {
        std::mem::forget(fd);
    }
    Ok(())
}

/// Open `path` (the console) as stdin, stdout and stderr, without making it
/// our controlling terminal; with `reset`, give it sane settings first.
pub fn open_console(path: &Path, reset: bool) -> nix::Result<()> {
    let fd = open(path, OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())?;
    if reset {
        // A console that is not a terminal (a file, /dev/null) is fine.
        if let Ok(mut t) = tcgetattr(fd.as_fd()) {
            sane_termios(&mut t);
            let _ = tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t);
            let _ = tcflush(fd.as_fd(), FlushArg::TCIOFLUSH);
        }
    }
    onto_stdio(fd)
}

/// Point stdin, stdout and stderr at /dev/null (no console, or PID 1 done
/// with it: its messages go to the kernel log from then on).
pub fn stdio_to_null() -> nix::Result<()> {
    let fd = open(
        Path::new("/dev/null"),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    onto_stdio(fd)
}

/// The settings a console gets at boot: line speed, character size, stop
/// bits and parity are kept from what the kernel set; everything else is
/// a plain canonical terminal with the usual control characters.
pub fn sane_termios(t: &mut Termios) {
    let keep = ControlFlags::CBAUD
        | ControlFlags::CBAUDEX
        | ControlFlags::CSIZE
        | ControlFlags::CSTOPB
        | ControlFlags::PARENB
        | ControlFlags::PARODD;
    t.control_flags =
        (t.control_flags & keep) | ControlFlags::HUPCL | ControlFlags::CLOCAL | ControlFlags::CREAD;
    let cc = &mut t.control_chars;
    for (index, value) in [
        (Cc::VINTR, 0o03),   // ^C
        (Cc::VQUIT, 0o34),   // ^\
        (Cc::VERASE, 0o177), // DEL
        (Cc::VKILL, 0o30),   // ^X
        (Cc::VEOF, 0o04),    // ^D
        (Cc::VTIME, 0),
        (Cc::VMIN, 1),
        (Cc::VSTART, 0o21), // ^Q
        (Cc::VSTOP, 0o23),  // ^S
        (Cc::VSUSP, 0o32),  // ^Z
    ] {
        if let Some(slot) = cc.get_mut(index as usize) {
            *slot = value;
        }
    }
    t.input_flags = InputFlags::IGNPAR | InputFlags::ICRNL | InputFlags::IXON | InputFlags::IXANY;
    t.output_flags = OutputFlags::OPOST | OutputFlags::ONLCR;
    t.local_flags = LocalFlags::ISIG
        | LocalFlags::ICANON
        | LocalFlags::ECHO
        | LocalFlags::ECHOCTL
        | LocalFlags::ECHOPRT
        | LocalFlags::ECHOKE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::openpty;
    use nix::sys::termios::BaudRate;

    #[test]
    fn a_scrambled_terminal_comes_back_sane_keeping_its_speed() {
        let pty = openpty(None, None).expect("openpty");
        let mut t = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::cfsetspeed(&mut t, BaudRate::B9600).expect("speed");
        t.control_chars[Cc::VINTR as usize] = b'q';
        tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &t).expect("tcsetattr");

        let mut t = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
        sane_termios(&mut t);
        tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &t).expect("tcsetattr");
        let t = tcgetattr(pty.slave.as_fd()).expect("tcgetattr");

        assert_eq!(nix::sys::termios::cfgetospeed(&t), BaudRate::B9600);
        assert!(t
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
        assert!(t
            .output_flags
            .contains(OutputFlags::OPOST | OutputFlags::ONLCR));
        assert!(t.input_flags.contains(InputFlags::ICRNL | InputFlags::IXON));
        assert!(t
            .control_flags
            .contains(ControlFlags::CREAD | ControlFlags::CLOCAL));
        assert_eq!(t.control_chars[Cc::VINTR as usize], 3);
        assert_eq!(t.control_chars[Cc::VERASE as usize], 127);
        assert_eq!(t.control_chars[Cc::VMIN as usize], 1);
    }
}
