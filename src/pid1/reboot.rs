//! The last step of a stop on a machine: `reboot(2)`.

use crate::pid1::StopAction;

/// `sync()` (unless `no_sync`) then `reboot(2)` with the command for
/// `action`. Returns only if the kernel refused (on a machine a successful
/// call does not return; inside a PID namespace the kernel kills the
/// namespace's init instead, which then appears to its parent as killed by
/// SIGHUP for a reboot or SIGINT otherwise).
pub fn reboot(action: StopAction, no_sync: bool) -> std::io::Error {
    let cmd = match action {
        StopAction::Halt => libc::RB_HALT_SYSTEM,
        StopAction::PowerOff => libc::RB_POWER_OFF,
        StopAction::Reboot => libc::RB_AUTOBOOT,
    };
    if !no_sync {
        nix::unistd::sync();
    }
    // SAFETY: reboot(2) takes no pointers.
    unsafe { libc::reboot(cmd) };
    std::io::Error::last_os_error()
}

/// `reboot -f COMMAND`: restart handing `command` to the firmware or boot
/// loader (`LINUX_REBOOT_CMD_RESTART2`). Returns only if the kernel
/// refused.
pub fn reboot_with_command(command: &str, no_sync: bool) -> std::io::Error {
    let Ok(arg) = std::ffi::CString::new(command) else {
        return std::io::Error::from(std::io::ErrorKind::InvalidInput);
    };
    if !no_sync {
        nix::unistd::sync();
    }
    // SAFETY: reboot(2) reads the NUL-terminated string, which outlives
    // the call.
    unsafe {
        libc::syscall(
            libc::SYS_reboot,
            libc::LINUX_REBOOT_MAGIC1,
            libc::LINUX_REBOOT_MAGIC2,
            libc::LINUX_REBOOT_CMD_RESTART2,
            arg.as_ptr(),
        );
    }
    std::io::Error::last_os_error()
}
