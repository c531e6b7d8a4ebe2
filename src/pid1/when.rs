//! The TIME argument of `shutdown`: `now`, `+MINUTES`, or `HH:MM` (the
//! next time the wall clock shows it).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("illegal time value: {0}")]
pub struct BadTime(pub String);

/// Seconds to wait before acting on `spec`, given the local time of day
/// `now` in seconds since midnight.
pub fn delay(spec: &str, now_of_day: u64) -> Result<u64, BadTime> {
    let bad = || BadTime(spec.to_string());
    if spec == "now" {
        return Ok(0);
    }
    if let Some(m) = spec.strip_prefix('+') {
        let minutes: u64 = m.parse().map_err(|_| bad())?;
        return minutes.checked_mul(60).ok_or_else(bad);
    }
    if let Some((h, m)) = spec.split_once(':') {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || !digits(m) {
            return Err(bad());
        }
        let (h, m): (u64, u64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        let target = h * 3600 + m * 60;
        let now = now_of_day % 86_400;
        return Ok(if target >= now {
            target - now
        } else {
            target + 86_400 - now
        });
    }
    // A bare number of minutes, as sysvinit's shutdown also took.
    spec.parse::<u64>()
        .ok()
        .and_then(|m| m.checked_mul(60))
        .ok_or_else(bad)
}

/// Local time of day in seconds (localtime from libc, so TZ applies).
pub fn local_time_of_day() -> u64 {
    // SAFETY: time and localtime_r write into values we own.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return (now % 86_400) as u64;
        }
        (tm.tm_hour as u64) * 3600 + (tm.tm_min as u64) * 60 + tm.tm_sec as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(delay("now", 1234), Ok(0));
        assert_eq!(delay("+0", 1234), Ok(0));
        assert_eq!(delay("+5", 1234), Ok(300));
        assert_eq!(delay("10", 0), Ok(600));
        // 10:30 at 10:00:00 is half an hour away; at 11:00 it is tomorrow.
        assert_eq!(delay("10:30", 36_000), Ok(1800));
        assert_eq!(delay("10:30", 39_600), Ok(86_400 - 1800));
        assert_eq!(delay("0:00", 0), Ok(0));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "", "+", "+x", "24:00", "12:60", "1:2:3", "soon", "-5", "123:1",
        ] {
            assert_eq!(delay(bad, 0), Err(BadTime(bad.to_string())), "{bad}");
        }
    }
}
