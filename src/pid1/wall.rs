//! What `shutdown` tells logged-in users: the warning text (Upstart's
//! wording, byte for byte) and its delivery to every user terminal that
//! utmp lists, as `wall` would.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// What the coming stop will do, in the words of the warning.
pub fn purpose(level: char, init_halt: Option<&str>) -> &'static str {
    match (level, init_halt) {
        ('0', Some("POWEROFF")) => "power off",
        ('0', _) => "halt",
        ('6', _) => "reboot",
        _ => "maintenance",
    }
}

/// The warning for a stop `minutes` away (0: now), followed by the
/// administrator's `message` (already ending in CR LF, or empty).
pub fn warning(purpose: &str, minutes: u64, message: &str) -> String {
    let when = match minutes {
        0 => "NOW".to_string(),
        1 => "in 1 minute".to_string(),
        n => format!("in {n} minutes"),
    };
    format!("\rThe system is going down for {purpose} {when}!\r\n{message}")
}

/// The banner that heads a broadcast: who sends it, from which terminal,
/// at what time of day (hours, minutes).
pub fn banner(user: &str, host: &str, tty: &str, hour: u64, minute: u64) -> String {
    format!("\x07\r\nBroadcast message from {user}@{host}\r\n\t({tty}) at {hour}:{minute:02} ...\r\n\r\n")
}

/// The terminals of the user sessions recorded in the utmp file `path`.
pub fn user_terminals(path: &str) -> Vec<String> {
    crate::utmp::user_lines(path)
        .into_iter()
        .map(|line| {
            if line.starts_with("/dev/") {
                line
            } else {
                format!("/dev/{line}")
            }
        })
        .collect()
}

/// Write `banner` and `text` to every user terminal. A terminal that
/// cannot take it at once is skipped: nothing here waits.
pub fn wall(banner: &str, text: &str) {
    for tty in user_terminals(&crate::utmp::utmp_path()) {
        let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&tty)
        else {
            continue;
        };
        if !nix::unistd::isatty(&f).unwrap_or(false) {
            continue;
        }
        let _ = f.write_all(banner.as_bytes());
        let _ = f.write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstart_wording() {
        assert_eq!(
            warning(purpose('6', None), 0, ""),
            "\rThe system is going down for reboot NOW!\r\n"
        );
        assert_eq!(
            warning(purpose('0', Some("POWEROFF")), 1, "bye \r\n"),
            "\rThe system is going down for power off in 1 minute!\r\nbye \r\n"
        );
        assert_eq!(
            warning(purpose('0', None), 5, ""),
            "\rThe system is going down for halt in 5 minutes!\r\n"
        );
        assert_eq!(
            warning(purpose('1', None), 0, ""),
            "\rThe system is going down for maintenance NOW!\r\n"
        );
        assert_eq!(
            banner("root", "box", "/dev/pts/3", 9, 5),
            "\x07\r\nBroadcast message from root@box\r\n\t(/dev/pts/3) at 9:05 ...\r\n\r\n"
        );
    }
}
