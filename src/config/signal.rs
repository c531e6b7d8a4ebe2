//! Signal names as Upstart knows them (job-config.md §7.4).

/// Names without `SIG`, in the order used when turning a number back into a
/// name (the first name for a number wins: 6 is ABRT, 29 is IO).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Number of a signal name, with or without the `SIG` prefix
/// (case-sensitive, as in the reference).
pub fn signal_from_name(name: &str) -> Option<i32> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS.iter().find(|(n, _)| *n == bare).map(|&(_, v)| v)
}

/// Name (without `SIG`) of a signal number.
pub fn signal_name(num: i32) -> Option<&'static str> {
    SIGNALS.iter().find(|(_, v)| *v == num).map(|&(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(signal_from_name("TERM"), Some(15));
        assert_eq!(signal_from_name("SIGTERM"), Some(15));
        assert_eq!(signal_from_name("term"), None);
        assert_eq!(signal_from_name("SIG"), None);
        assert_eq!(signal_name(6), Some("ABRT"));
        assert_eq!(signal_name(17), Some("CHLD"));
        assert_eq!(signal_name(29), Some("IO"));
        assert_eq!(signal_name(31), Some("SYS"));
        assert_eq!(signal_name(64), None);
    }
}
