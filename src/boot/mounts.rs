//! The kernel filesystems PID 1 mounts when nobody did it before it (an
//! initramfs, a container engine): only where they are missing.

use nix::mount::{mount, MsFlags};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One filesystem PID 1 may have to mount.
#[derive(Debug, Clone, Copy)]
pub struct EarlyMount {
    pub fstype: &'static str,
    pub target: &'static str,
    pub flags: MsFlags,
    pub data: Option<&'static str>,
    /// Create the mount point when it does not exist.
    pub mkdir: bool,
    /// Never hide files: mount only on an empty directory.
    pub only_if_empty: bool,
}

/// `/dev` as devtmpfs (only when `/dev` lacks what PID 1 needs).
pub const DEV: EarlyMount = EarlyMount {
    fstype: "devtmpfs",
    target: "/dev",
    flags: MsFlags::MS_NOEXEC.union(MsFlags::MS_NOSUID),
    data: None,
    mkdir: false,
    only_if_empty: false,
};

/// Pseudo-terminals: group tty (5), owner read/write, group write.
pub const DEVPTS: EarlyMount = EarlyMount {
    fstype: "devpts",
    target: "/dev/pts",
    flags: MsFlags::MS_NOEXEC.union(MsFlags::MS_NOSUID),
    data: Some("gid=5,mode=0620"),
    mkdir: false,
    only_if_empty: false,
};

const KERNEL_FS: MsFlags = MsFlags::MS_NODEV
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOSUID);

/// Mounted after the console is set up, in this order.
pub const EARLY_MOUNTS: &[EarlyMount] = &[
    EarlyMount {
        fstype: "proc",
        target: "/proc",
        flags: KERNEL_FS,
        data: None,
        mkdir: false,
        only_if_empty: false,
    },
    EarlyMount {
        fstype: "sysfs",
        target: "/sys",
        flags: KERNEL_FS,
        data: None,
        mkdir: false,
        only_if_empty: false,
    },
    // Runtime state (sockets, pid files) starts empty on every boot. A
    // container engine may have put files in a plain /run directory
    // (/run/.containerenv, secrets): those stay visible.
    EarlyMount {
        fstype: "tmpfs",
        target: "/run",
        flags: MsFlags::MS_NODEV.union(MsFlags::MS_NOSUID),
        data: Some("mode=0755"),
        mkdir: true,
        only_if_empty: true,
    },
];

/// What `mount_if_missing` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mounted {
    /// Something is mounted there already.
    Already,
    /// We mounted it.
    Now,
    /// Not a mount point, but it holds files a mount would hide.
    Kept,
}

/// Whether `path` is a mount point: its device differs from its parent's,
/// or it is its own parent (`/`).
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    let parent = std::fs::metadata(path.join(".."))?;
    Ok(meta.dev() != parent.dev() || meta.ino() == parent.ino())
}

/// Mount `m` unless its target already is a mount point. The error is the
/// message to log (`Unable to mount TARGET filesystem: REASON`).
pub fn mount_if_missing(m: &EarlyMount) -> Result<Mounted, String> {
    let target = Path::new(m.target);
    let fail = |reason: &dyn std::fmt::Display| {
        format!("Unable to mount {} filesystem: {reason}", m.target)
    };
    if m.mkdir && !target.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(target)
            .map_err(|e| fail(&e))?;
    }
    match is_mount_point(target) {
        Ok(true) => return Ok(Mounted::Already),
        Ok(false) => {}
        Err(e) => return Err(fail(&e)),
    }
    if m.only_if_empty
        && std::fs::read_dir(target)
            .map_err(|e| fail(&e))?
            .next()
            .is_some()
    {
        return Ok(Mounted::Kept);
    }
    mount(Some(m.fstype), target, Some(m.fstype), m.flags, m.data).map_err(|e| fail(&e))?;
    Ok(Mounted::Now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_proc_are_mount_points_a_plain_directory_is_not() {
        assert!(is_mount_point(Path::new("/")).expect("stat /"));
        assert!(is_mount_point(Path::new("/proc")).expect("stat /proc"));
        let dir = std::env::temp_dir().join(format!("outset-mnt-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        let plain = is_mount_point(&dir.join("sub"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!plain.expect("stat sub"));
    }

    #[test]
    fn a_missing_target_is_an_error_message_not_a_panic() {
        let m = EarlyMount {
            fstype: "tmpfs",
            target: "/nonexistent/outset/target",
            flags: MsFlags::empty(),
            data: None,
            mkdir: false,
            only_if_empty: false,
        };
        let e = mount_if_missing(&m).expect_err("no such directory");
        assert!(
            e.starts_with("Unable to mount /nonexistent/outset/target filesystem: "),
            "{e}"
        );
    }

    #[test]
    fn a_directory_with_files_is_not_hidden_by_a_mount() {
        let dir = std::env::temp_dir().join(format!("outset-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(".containerenv"), "").expect("write");
        let m = EarlyMount {
            fstype: "tmpfs",
            target: Box::leak(dir.display().to_string().into_boxed_str()),
            flags: MsFlags::empty(),
            data: None,
            mkdir: true,
            only_if_empty: true,
        };
        let got = mount_if_missing(&m);
        let still_there = dir.join(".containerenv").exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, Ok(Mounted::Kept));
        assert!(still_there);
    }

    #[test]
    fn an_existing_mount_is_left_alone() {
        // /proc is mounted on every system these tests run on.
        let proc_mount = EARLY_MOUNTS
            .iter()
            .find(|m| m.target == "/proc")
            .expect("proc entry");
        assert_eq!(mount_if_missing(proc_mount), Ok(Mounted::Already));
    }
}
