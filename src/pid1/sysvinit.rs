//! The last resort of `shutdown` when no init answers on the control
//! socket (say, just after moving from sysvinit, before the reboot): the
//! runlevel request sysvinit reads from its FIFO, `/run/initctl` or
//! `/dev/initctl`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// sysvinit's request magic and its "change runlevel" command.
const MAGIC: i32 = 0x0309_1969;
const CMD_RUNLVL: i32 = 1;
/// The request's fixed size: four ints and 368 bytes of data.
pub const REQUEST_SIZE: usize = 384;

/// The request asking sysvinit to change to `level`.
pub fn request(level: char) -> [u8; REQUEST_SIZE] {
    let mut buf = [0u8; REQUEST_SIZE];
    let fields = [MAGIC, CMD_RUNLVL, level as i32, 5];
    for (chunk, v) in buf.chunks_exact_mut(4).zip(fields) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    buf
}

/// The FIFOs tried, in order (`OUTSET_INITCTL_FIFO` names one instead,
/// for tests).
fn fifos() -> Vec<std::path::PathBuf> {
    match std::env::var_os("OUTSET_INITCTL_FIFO") {
        Some(p) => vec![p.into()],
        None => vec!["/run/initctl".into(), "/dev/initctl".into()],
    }
}

/// Hand the request to whichever FIFO has a reader; true if one took it.
/// Opening without a reader fails at once (non-blocking), so this never
/// waits.
pub fn change_runlevel(level: char) -> bool {
    let req = request(level);
    fifos().into_iter().any(|path| {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .and_then(|mut f| f.write_all(&req))
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_layout() {
        let r = super::request('6');
        assert_eq!(&r[0..4], &0x0309_1969i32.to_ne_bytes());
        assert_eq!(&r[4..8], &1i32.to_ne_bytes());
        assert_eq!(&r[8..12], &(b'6' as i32).to_ne_bytes());
        assert_eq!(&r[12..16], &5i32.to_ne_bytes());
        assert!(r[16..].iter().all(|&b| b == 0));
    }
}
