//! The status-pipe record a child writes when its setup fails
//! (process-spawning.md §4): three native-endian C ints.

/// Size of one record on the wire.
pub const RECORD_SIZE: usize = 12;

/// Error types, numbered as in the reference (records survive re-exec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(i32)]
pub enum ErrorType {
    Dup = 0,
    Console = 1,
    Rlimit = 2,
    Priority = 3,
    OomAdj = 4,
    Chroot = 5,
    Chdir = 6,
    Ptrace = 7,
    Exec = 8,
    Getpwnam = 9,
    Getgrnam = 10,
    Getpwuid = 11,
    BadSetuid = 12,
    BadSetgid = 13,
    Setuid = 14,
    Setgid = 15,
    Chown = 16,
    Unlockpt = 17,
    Grantpt = 18,
    Ptsname = 19,
    OpenptSlave = 20,
    Signal = 21,
    Alloc = 22,
    Initgroups = 23,
    Getgrgid = 24,
    Security = 25,
    CgroupMgrConnect = 26,
    CgroupSetup = 27,
    CgroupEnter = 28,
    CgroupClear = 29,
}

/// `RLIMIT_*` numbers on Linux, named as the reference names them.
const RLIMIT_NAMES: [&str; 16] = [
    "cpu",
    "fsize",
    "data",
    "stack",
    "core",
    "rss",
    "nproc",
    "nofile",
    "memlock",
    "as",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];

pub fn encode(kind: ErrorType, arg: i32, errnum: i32) -> [u8; RECORD_SIZE] {
    let mut out = [0u8; RECORD_SIZE];
    out[0..4].copy_from_slice(&(kind as i32).to_ne_bytes());
    out[4..8].copy_from_slice(&arg.to_ne_bytes());
    out[8..12].copy_from_slice(&errnum.to_ne_bytes());
    out
}

/// The log message for a record, or `None` if the bytes are not a record.
pub fn message(bytes: &[u8]) -> Option<String> {
    let int = |i: usize| -> Option<i32> {
        bytes
            .get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_ne_bytes)
    };
    if bytes.len() != RECORD_SIZE {
        return None;
    }
    let (kind, arg, errnum) = (int(0)?, int(4)?, int(8)?);
    let err = strerror(errnum);
    let text = match kind {
        0 => format!("unable to move script fd: {err}"),
        1 => format!("unable to open console: {err}"),
        2 => {
            let res = usize::try_from(arg)
                .ok()
                .and_then(|i| RLIMIT_NAMES.get(i))
                .unwrap_or(&"?");
            format!("unable to set \"{res}\" resource limit: {err}")
        }
        3 => format!("unable to set priority: {err}"),
        4 => format!("unable to set oom adjustment: {err}"),
        5 => format!("unable to change root directory: {err}"),
        6 => format!("unable to change working directory: {err}"),
        7 => format!("unable to set trace: {err}"),
        8 => format!("unable to execute: {err}"),
        9 => format!("unable to getpwnam: {err}"),
        10 => format!("unable to getgrnam: {err}"),
        11 => format!("unable to getpwuid: {err}"),
        12 => "unable to find setuid user".to_string(),
        13 => "unable to find setgid group".to_string(),
        14 => format!("unable to setuid: {err}"),
        15 => format!("unable to setgid: {err}"),
        16 => format!("unable to chown: {err}"),
        17 => format!("unable to unlockpt: {err}"),
        18 => format!("unable to granpt: {err}"),
        19 => format!("unable to get ptsname: {err}"),
        20 => format!("unable to open pty slave: {err}"),
        21 => format!("unable to modify signal handler: {err}"),
        22 => format!("unable to allocate memory: {err}"),
        23 => format!("unable to initgroups: {err}"),
        24 => format!("unable to getgrgid: {err}"),
        25 => format!("unable to switch security profile: {err}"),
        26 => format!("unable to connect to CGManager: {err}"),
        27 => format!("unable to setup cgroup: {err}"),
        28 => format!("unable to enter cgroup: {err}"),
        29 => format!("unable to mark cgroups for removal: {err}"),
        _ => return None,
    };
    Some(text)
}

pub use crate::os_error::strerror;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_messages() {
        let r = encode(ErrorType::Exec, 0, 2);
        assert_eq!(
            message(&r).as_deref(),
            Some("unable to execute: No such file or directory")
        );
        let r = encode(ErrorType::Rlimit, 7, 1);
        assert_eq!(
            message(&r).as_deref(),
            Some("unable to set \"nofile\" resource limit: Operation not permitted")
        );
        assert_eq!(
            message(&encode(ErrorType::BadSetuid, 0, 0)).as_deref(),
            Some("unable to find setuid user")
        );
        assert_eq!(message(&r[..11]), None);
        assert_eq!(
            message(&encode(ErrorType::Chdir, 0, 2)).as_deref(),
            Some("unable to change working directory: No such file or directory")
        );
    }
}
