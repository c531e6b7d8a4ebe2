//! Runlevel records in utmp and wtmp (control.md §10, §11).
//!
//! The files default to the system's; `OUTSET_UTMP_FILE` and
//! `OUTSET_WTMP_FILE` point the tools elsewhere (used by the tests).

use std::ffi::CString;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UtmpError {
    #[error("{0}: {1}")]
    Io(String, String),
}

pub fn utmp_path() -> String {
    std::env::var("OUTSET_UTMP_FILE").unwrap_or_else(|_| "/var/run/utmp".to_string())
}

pub fn wtmp_path() -> String {
    std::env::var("OUTSET_WTMP_FILE").unwrap_or_else(|_| "/var/log/wtmp".to_string())
}

/// `'N'` is stored as 0.
fn encode(level: char) -> i32 {
    if level == 'N' {
        0
    } else {
        level as i32
    }
}

fn decode(v: i32) -> char {
    if v == 0 {
        'N'
    } else {
        char::from_u32(v as u32).unwrap_or('N')
    }
}

fn fill(dst: &mut [libc::c_char], src: &str) {
    for (d, s) in dst.iter_mut().zip(src.bytes()) {
        *d = s as libc::c_char;
    }
}

/// The most recent runlevel record of a utmp-format file: (previous, current).
pub fn read_runlevel(path: &str) -> Result<Option<(char, char)>, UtmpError> {
    let bytes =
        std::fs::read(path).map_err(|e| UtmpError::Io(path.to_string(), e.kind().to_string()))?;
    Ok(parse(&bytes)
        .iter()
        .rev()
        .find(|rec| rec.ut_type == libc::RUN_LVL)
        .map(|rec| (decode(rec.ut_pid / 256), decode(rec.ut_pid % 256))))
}

/// The text of a fixed-size, NUL-padded utmp field.
fn text(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every record of a utmp-format file (a missing or unreadable file has
/// none).
fn records(path: &str) -> Vec<libc::utmpx> {
    std::fs::read(path).map(|b| parse(&b)).unwrap_or_default()
}

/// The records in the bytes of a utmp-format file.
fn parse(bytes: &[u8]) -> Vec<libc::utmpx> {
    bytes
        .chunks_exact(std::mem::size_of::<libc::utmpx>())
        // SAFETY: utmpx is plain old data; every bit pattern is valid, and
        // read_unaligned copes with the Vec's alignment.
        .map(|chunk| unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) })
        .collect()
}

/// The terminal lines of the user sessions a utmp file records.
pub fn user_lines(path: &str) -> Vec<String> {
    records(path)
        .iter()
        .filter(|r| r.ut_type == libc::USER_PROCESS && r.ut_user.first().is_some_and(|&c| c != 0))
        .map(|r| text(&r.ut_line))
        .filter(|line| !line.is_empty())
        .collect()
}

fn record(kind: libc::c_short, pid: i32, user: &str) -> libc::utmpx {
    // SAFETY: an all-zero utmpx is a valid empty record.
    let mut ut: libc::utmpx = unsafe { std::mem::zeroed() };
    ut.ut_type = kind;
    ut.ut_pid = pid;
    fill(&mut ut.ut_line, "~");
    fill(&mut ut.ut_id, "~~");
    fill(&mut ut.ut_user, user);
    if let Ok(uname) = nix::sys::utsname::uname() {
        fill(&mut ut.ut_host, &uname.release().to_string_lossy());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ut.ut_tv.tv_sec = now.as_secs() as _;
    ut.ut_tv.tv_usec = now.subsec_micros() as _;
    ut
}

extern "C" {
    /// glibc's wtmp appender (not bound by the libc crate).
    fn updwtmpx(wtmp_file: *const libc::c_char, ut: *const libc::utmpx);
}

/// Write a record to utmp (replacing the matching entry) and append it to
/// wtmp.
fn write(ut: &libc::utmpx) {
    let (Ok(utmp), Ok(wtmp)) = (CString::new(utmp_path()), CString::new(wtmp_path())) else {
        return;
    };
    // SAFETY: the utmpx API works on the global utmp stream; the record and
    // path strings outlive the calls.
    unsafe {
        libc::utmpxname(utmp.as_ptr());
        libc::setutxent();
        libc::pututxline(ut);
        libc::endutxent();
        updwtmpx(wtmp.as_ptr(), ut);
    }
}

/// Record a runlevel change, preceded by a boot record when the previous
/// runlevel on file is not `prev`.
pub fn record_runlevel(level: char, prev: char) {
    let on_file = read_runlevel(&utmp_path())
        .ok()
        .flatten()
        .map(|(_, cur)| cur)
        .unwrap_or('N');
    if on_file != prev {
        let mut boot = record(libc::BOOT_TIME, 0, "reboot");
        boot.ut_host = [0; 256];
        write(&boot);
    }
    write(&record(
        libc::RUN_LVL,
        encode(level) + 256 * encode(prev),
        "runlevel",
    ));
}

/// Record that the system is going down: the special runlevel record
/// with user `shutdown` that `last` reads as "system down".
pub fn record_shutdown() {
    write(&record(libc::RUN_LVL, 0, "shutdown"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode('N'), 0);
        assert_eq!(decode(0), 'N');
        assert_eq!(decode(encode('2')), '2');
        assert_eq!(decode(encode('S')), 'S');
    }
}
