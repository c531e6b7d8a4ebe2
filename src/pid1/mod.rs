//! What outset does because it is (or stands in for) PID 1: which signals
//! mean what in each mode, the built-in system stop's process sweeps and
//! final `reboot(2)`, and the helpers `shutdown`, `reboot`, `halt`,
//! `poweroff` and `telinit` share (extensions.md §2–§4).

pub mod debug_exit;
pub mod detect;
pub mod reboot;
pub mod runlevel;
pub mod signals;
pub mod sweep;
pub mod sysvinit;
pub mod wall;
pub mod when;

/// How the daemon runs; decides what signals mean and how a system stop
/// ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// PID 1 of a real or virtual machine: a stop ends in `reboot(2)`.
    #[default]
    Machine,
    /// PID 1 of a container: SIGTERM stops the system, PID 1 then exits.
    Container,
    /// A session init (`--user`).
    User,
    /// Upstart's test mode (`--session`): a system init that is not PID 1
    /// and is controlled over the D-Bus session bus; SIGTERM re-execs it.
    Session,
    /// `outset run`: supervise jobs around one command.
    Run,
}

/// What a system stop ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAction {
    Halt,
    PowerOff,
    Reboot,
}

impl StopAction {
    /// The runlevel Upstart's `shutdown` would have switched to.
    pub fn runlevel(self) -> char {
        match self {
            StopAction::Reboot => '6',
            StopAction::Halt | StopAction::PowerOff => '0',
        }
    }

    /// The `INIT_HALT` value Upstart's `shutdown` put in the runlevel event.
    pub fn init_halt(self) -> Option<&'static str> {
        match self {
            StopAction::Halt => Some("HALT"),
            StopAction::PowerOff => Some("POWEROFF"),
            StopAction::Reboot => None,
        }
    }

    /// The action a `runlevel` event asks for: runlevel 0 halts or powers
    /// off (`INIT_HALT=HALT` halts; anything else powers off, as Upstart's
    /// halt script defaulted to), runlevel 6 reboots, others none.
    pub fn from_runlevel_event(env: &[String]) -> Option<StopAction> {
        let get = |key: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
        };
        match get("RUNLEVEL")? {
            "0" => Some(if get("INIT_HALT") == Some("HALT") {
                StopAction::Halt
            } else {
                StopAction::PowerOff
            }),
            "6" => Some(StopAction::Reboot),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopAction::Halt => "halt",
            StopAction::PowerOff => "power-off",
            StopAction::Reboot => "reboot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StopAction;

    fn env(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runlevel_events_map_to_actions() {
        assert_eq!(
            StopAction::from_runlevel_event(&env(&["RUNLEVEL=0", "PREVLEVEL=2"])),
            Some(StopAction::PowerOff)
        );
        assert_eq!(
            StopAction::from_runlevel_event(&env(&["RUNLEVEL=0", "INIT_HALT=HALT"])),
            Some(StopAction::Halt)
        );
        assert_eq!(
            StopAction::from_runlevel_event(&env(&["RUNLEVEL=6"])),
            Some(StopAction::Reboot)
        );
        assert_eq!(StopAction::from_runlevel_event(&env(&["RUNLEVEL=2"])), None);
        assert_eq!(
            StopAction::from_runlevel_event(&env(&["RUNLEVELX=0"])),
            None
        );
    }
}
