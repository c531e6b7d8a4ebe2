//! Handing an exit status to the host of a qemu machine through its
//! `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4`): a write
//! to the device's port ends qemu at once with status `(N << 1) | 1`.
//! This is how `EXIT_CODE=N` in the `runlevel` event of a system stop
//! reaches the host (scripts/vm-boot.sh decodes it).

use std::path::Path;

/// The device's I/O port, as scripts/vm-boot.sh places it.
pub const PORT: u16 = 0xf4;

/// The largest status the host can tell apart: qemu's `(N << 1) | 1`
/// goes through an 8-bit process exit status.
pub const LARGEST_STATUS: u8 = 127;

/// Why no status was handed over.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DebugExitError {
    /// The machine is not qemu (or its firmware tables do not say so):
    /// no port is touched on real hardware.
    #[error("not a qemu machine")]
    NotQemu,
    /// qemu without the device: the port reads as unassigned.
    #[error("no isa-debug-exit device at port {PORT:#x}")]
    NoDevice,
    /// `ioperm(2)` refused (no CAP_SYS_RAWIO, kernel lockdown).
    #[error("no access to port {PORT:#x}: {0}")]
    NoAccess(String),
    /// The write did not end the machine.
    #[error("the isa-debug-exit device did not end the machine")]
    StillRunning,
    #[error("I/O ports are not available on this architecture")]
    Unsupported,
}

/// The status written for `code`: statuses above [`LARGEST_STATUS`]
/// would come out on the host as a different (possibly zero) status, so
/// they are written as [`LARGEST_STATUS`], which still means failure.
pub fn status_for(code: u8) -> u8 {
    code.min(LARGEST_STATUS)
}

/// The firmware's vendor string (`/sys/class/dmi/id/sys_vendor`) names
/// qemu. `sys` is where sysfs is mounted.
pub fn is_qemu(sys: &Path) -> bool {
    std::fs::read_to_string(sys.join("class/dmi/id/sys_vendor")).is_ok_and(|v| v.trim() == "QEMU")
}

/// Write `code` (see [`status_for`]) to the device, which ends qemu.
/// Returns only when there is no device or the write could not be done;
/// the caller then powers off as usual.
pub fn exit(code: u8) -> DebugExitError {
    if !is_qemu(Path::new("/sys")) {
        return DebugExitError::NotQemu;
    }
    write_port(status_for(code))
}

#[cfg(target_arch = "x86_64")]
fn write_port(value: u8) -> DebugExitError {
    // SAFETY: ioperm(2) only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(libc::c_ulong::from(PORT), 1, 1) } != 0 {
        return DebugExitError::NoAccess(std::io::Error::last_os_error().to_string());
    }
    // The device reads as 0; a port nothing claims reads as all ones.
    // SAFETY: the port was granted above; on qemu (checked by the caller)
    // reading it has no side effect.
    let probe: u8 = unsafe {
        let v: u8;
        std::arch::asm!("in al, dx", out("al") v, in("dx") PORT,
            options(nomem, nostack, preserves_flags));
        v
    };
    if probe != 0 {
        return DebugExitError::NoDevice;
    }
    // SAFETY: as above; the write is the request to end the machine.
    unsafe {
        std::arch::asm!("out dx, al", in("dx") PORT, in("al") value,
            options(nomem, nostack, preserves_flags));
    }
    DebugExitError::StillRunning
}

#[cfg(not(target_arch = "x86_64"))]
fn write_port(_value: u8) -> DebugExitError {
    DebugExitError::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_the_host_cannot_tell_apart_become_127() {
        assert_eq!(status_for(0), 0);
        assert_eq!(status_for(3), 3);
        assert_eq!(status_for(127), 127);
        // 128 would reach the host as 0, success.
        assert_eq!(status_for(128), 127);
        assert_eq!(status_for(255), 127);
    }

    #[test]
    fn only_a_qemu_vendor_string_counts() {
        let dir = std::env::temp_dir().join(format!("outset-dmi-{}", std::process::id()));
        let id = dir.join("class/dmi/id");
        std::fs::create_dir_all(&id).expect("mkdir");
        assert!(!is_qemu(&dir));
        std::fs::write(id.join("sys_vendor"), "QEMU\n").expect("write");
        assert!(is_qemu(&dir));
        std::fs::write(id.join("sys_vendor"), "LENOVO\n").expect("write");
        assert!(!is_qemu(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
