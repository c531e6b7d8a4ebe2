//! `outset run --ipc-ns --net-ns`: private SysV IPC (with a private
//! `/dev/shm`) and a private network with only `lo`, up, so that runs in
//! parallel cannot meet on ports or shared memory. Done before anything
//! else starts (still one thread), and before `--pid-ns`'s fork, so the
//! whole run is inside.

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Enter the namespaces asked for.
pub fn isolate(ipc: bool, net: bool) -> Result<(), String> {
    let mut flags = CloneFlags::empty();
    if ipc {
        // /dev/shm is POSIX shared memory: a mount of our own for it.
        flags |= CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS;
    }
    if net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|e| format!("unable to create namespaces: {}", e.desc()))?;
    if ipc {
        private_dev_shm()?;
    }
    if net {
        loopback_up()?;
    }
    Ok(())
}

/// Make every mount of this mount namespace private, so that mounts made
/// here do not show up outside.
pub fn make_mounts_private() -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("unable to make mounts private: {}", e.desc()))
}

/// A fresh tmpfs on `/dev/shm`, seen by nobody outside.
fn private_dev_shm() -> Result<(), String> {
    make_mounts_private()?;
    let _ = std::fs::create_dir_all("/dev/shm");
    mount(
        Some("tmpfs"),
        "/dev/shm",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|e| format!("unable to mount /dev/shm: {}", e.desc()))
}

/// `ip link set lo up`: a new network namespace has `lo` down.
fn loopback_up() -> Result<(), String> {
    let fail = |what: &str| {
        format!(
            "unable to bring lo up ({what}): {}",
            std::io::Error::last_os_error()
        )
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(fail("socket"));
    }
    // SAFETY: the descriptor was just opened and is ours alone.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero ifreq is valid; the name fits (3 of 16 bytes).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(fail("SIOCGIFFLAGS"));
    }
    // SAFETY: the flags member is the one SIOCGIFFLAGS filled.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(fail("SIOCSIFFLAGS"));
    }
    Ok(())
}
