//! The signal table (pid1.md §5, extensions.md §2, §3): which signals the
//! daemon reads from its signalfd in each mode, and what each one means.

use nix::sys::signal::{SigSet, Signal};

use super::{Mode, StopAction};

/// SIGRTMIN+3: container managers (and systemd's tools) use it to ask for
/// a halt.
pub fn sigrtmin_3() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Signals forwarded to the command's process group in run mode.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Queue this event.
    Event(&'static str),
    /// Reload the configuration.
    Reload,
    /// Stateful re-exec.
    Reexec,
    /// Start the built-in system stop.
    Stop(StopAction),
    /// End the session (Upstart's quiesce).
    Quiesce,
    /// Join the bus now if not on it (SIGUSR1).
    JoinBus,
    /// Run mode: pass it on to the command (or stop if none runs yet).
    Forward(i32),
    /// Woken only to reap, or not meaningful here.
    Nothing,
}

/// The signals read through the signalfd in `mode` (all others keep
/// their default disposition). `keyboard` says whether the console
/// accepted `KDSIGACCEPT` (only then does SIGWINCH mean anything).
pub fn handled(mode: Mode, keyboard: bool) -> SigSet {
    let mut list = vec![Signal::SIGCHLD, Signal::SIGHUP, Signal::SIGTERM];
    let mut rt3 = false;
    match mode {
        Mode::Machine | Mode::Container => {
            list.extend([Signal::SIGINT, Signal::SIGPWR, Signal::SIGUSR1]);
            if keyboard {
                list.push(Signal::SIGWINCH);
            }
            rt3 = mode == Mode::Container;
        }
        // Ctrl-C ends a session started from a terminal.
        Mode::User => list.push(Signal::SIGINT),
        Mode::Run => list.extend(FORWARDED),
        // No console, no keyboard, no power supply of its own; SIGUSR1
        // asks it to join its bus, as Upstart's did.
        Mode::Session => list.push(Signal::SIGUSR1),
    }
    // SAFETY: a zeroed sigset_t is emptied before use; sigaddset with
    // valid signal numbers.
    unsafe {
        let mut raw: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut raw);
        for sig in list {
            libc::sigaddset(&mut raw, sig as i32);
        }
        if rt3 {
            libc::sigaddset(&mut raw, sigrtmin_3());
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// The meaning of signal `signo` in `mode`.
pub fn meaning(mode: Mode, signo: i32) -> Meaning {
    if mode == Mode::Container && signo == sigrtmin_3() {
        return Meaning::Stop(StopAction::Halt);
    }
    let Ok(sig) = Signal::try_from(signo) else {
        return Meaning::Nothing;
    };
    match (mode, sig) {
        (_, Signal::SIGCHLD) => Meaning::Nothing,
        (Mode::Run, s) if FORWARDED.contains(&s) => Meaning::Forward(signo),
        (_, Signal::SIGHUP) => Meaning::Reload,
        (Mode::Machine | Mode::Session, Signal::SIGTERM) => Meaning::Reexec,
        (Mode::Session, Signal::SIGUSR1) => Meaning::JoinBus,
        (Mode::Container, Signal::SIGTERM) => Meaning::Stop(StopAction::PowerOff),
        (Mode::User, Signal::SIGTERM | Signal::SIGINT) => Meaning::Quiesce,
        (Mode::Machine | Mode::Container, Signal::SIGINT) => Meaning::Event("control-alt-delete"),
        (Mode::Machine | Mode::Container, Signal::SIGWINCH) => Meaning::Event("keyboard-request"),
        (Mode::Machine | Mode::Container, Signal::SIGPWR) => Meaning::Event("power-status-changed"),
        (Mode::Machine | Mode::Container, Signal::SIGUSR1) => Meaning::JoinBus,
        _ => Meaning::Nothing,
    }
}

/// PID 1 of a machine: route Ctrl-Alt-Del to SIGINT instead of an
/// immediate reboot, and ask the console's keyboard driver for SIGWINCH
/// on the "keyboard request" key. Returns whether the keyboard accepted.
pub fn take_keyboard_signals() -> bool {
    // SAFETY: reboot with the CAD command and an ioctl on fd 0 take no
    // pointers we own.
    unsafe {
        libc::reboot(libc::RB_DISABLE_CAD);
        // KDSIGACCEPT from <linux/kd.h>.
        const KDSIGACCEPT: libc::c_ulong = 0x4B4E;
        libc::ioctl(0, KDSIGACCEPT as _, libc::SIGWINCH as libc::c_long) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_means_what_the_mode_says() {
        let term = libc::SIGTERM;
        assert_eq!(meaning(Mode::Machine, term), Meaning::Reexec);
        assert_eq!(
            meaning(Mode::Container, term),
            Meaning::Stop(StopAction::PowerOff)
        );
        assert_eq!(meaning(Mode::User, term), Meaning::Quiesce);
        assert_eq!(meaning(Mode::Run, term), Meaning::Forward(term));
        assert_eq!(meaning(Mode::Session, term), Meaning::Reexec);
    }

    #[test]
    fn session_test_mode_leaves_sigint_alone() {
        assert!(!handled(Mode::Session, false).contains(Signal::SIGINT));
        assert_eq!(meaning(Mode::Session, libc::SIGINT), Meaning::Nothing);
        assert!(handled(Mode::Session, false).contains(Signal::SIGUSR1));
        assert_eq!(meaning(Mode::Session, libc::SIGUSR1), Meaning::JoinBus);
    }

    #[test]
    fn pid1_signals_queue_events() {
        for mode in [Mode::Machine, Mode::Container] {
            assert_eq!(
                meaning(mode, libc::SIGINT),
                Meaning::Event("control-alt-delete")
            );
            assert_eq!(
                meaning(mode, libc::SIGPWR),
                Meaning::Event("power-status-changed")
            );
            assert_eq!(
                meaning(mode, libc::SIGWINCH),
                Meaning::Event("keyboard-request")
            );
            assert_eq!(meaning(mode, libc::SIGHUP), Meaning::Reload);
            assert_eq!(meaning(mode, libc::SIGUSR1), Meaning::JoinBus);
            assert!(handled(mode, false).contains(Signal::SIGUSR1));
        }
    }

    #[test]
    fn sigrtmin_3_halts_a_container_only() {
        assert_eq!(
            meaning(Mode::Container, sigrtmin_3()),
            Meaning::Stop(StopAction::Halt)
        );
        assert_eq!(meaning(Mode::Machine, sigrtmin_3()), Meaning::Nothing);
        assert!(!handled(Mode::Machine, false).contains(Signal::SIGWINCH));
        assert!(handled(Mode::Machine, true).contains(Signal::SIGWINCH));
        assert!(handled(Mode::Run, false).contains(Signal::SIGUSR2));
        assert!(!handled(Mode::User, false).contains(Signal::SIGUSR1));
    }
}
