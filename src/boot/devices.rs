//! The device nodes PID 1 needs before anything else works: a console for
//! its messages, /dev/null for jobs, /dev/kmsg for its log, /dev/ptmx for
//! pseudo-terminals.

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A character device PID 1 creates when it is missing.
#[derive(Debug, Clone, Copy)]
pub struct DeviceNode {
    /// Relative to the root directory.
    pub path: &'static str,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
}

/// Created if missing, in this order (pid1.md §2 step 5.8).
pub const DEVICE_NODES: &[DeviceNode] = &[
    DeviceNode {
        path: "dev/null",
        major: 1,
        minor: 3,
        mode: 0o666,
    },
    DeviceNode {
        path: "dev/tty",
        major: 5,
        minor: 0,
        mode: 0o666,
    },
    DeviceNode {
        path: "dev/console",
        major: 5,
        minor: 1,
        mode: 0o600,
    },
    DeviceNode {
        path: "dev/kmsg",
        major: 1,
        minor: 11,
        mode: 0o600,
    },
];

const PTMX: DeviceNode = DeviceNode {
    path: "dev/ptmx",
    major: 5,
    minor: 2,
    mode: 0o666,
};

fn is_char_device(path: &Path, major: u64, minor: u64) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.file_type().is_char_device()
            && nix::sys::stat::major(m.rdev()) == major
            && nix::sys::stat::minor(m.rdev()) == minor
    })
}

/// Whether `ROOT/dev` lacks what a devtmpfs provides: a real `/dev/ptmx`
/// (character 5:2) and a `/dev/pts` directory.
pub fn needs_dev_mount(root: &Path) -> bool {
    !is_char_device(&root.join(PTMX.path), PTMX.major, PTMX.minor) || !root.join("dev/pts").is_dir()
}

fn make_node(root: &Path, node: &DeviceNode) -> nix::Result<()> {
    mknod(
        &root.join(node.path),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(node.mode),
        makedev(node.major, node.minor),
    )
}

/// Create `/dev/ptmx`, `/dev/pts` and the nodes of [`DEVICE_NODES`] under
/// `root` where they are missing. Returns the warnings to log.
pub fn create_device_nodes(root: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let exists = |p: &str| std::fs::symlink_metadata(root.join(p)).is_ok();
    if !exists(PTMX.path) && make_node(root, &PTMX).is_err() {
        warnings.push(format!("Unable to create device: /{}", PTMX.path));
    }
    if !exists("dev/pts") {
        use std::os::unix::fs::DirBuilderExt;
        if std::fs::DirBuilder::new()
            .mode(0o755)
            .create(root.join("dev/pts"))
            .is_err()
        {
            warnings.push("Cannot create directory: /dev/pts".to_string());
        }
    }
    for node in DEVICE_NODES {
        if !exists(node.path) && make_node(root, node).is_err() {
            warnings.push(format!("Unable to create device: /{}", node.path));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("outset-dev-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dev")).expect("mkdir dev");
        dir
    }

    #[test]
    fn the_hosts_dev_needs_nothing() {
        assert!(!needs_dev_mount(Path::new("/")));
    }

    #[test]
    fn an_empty_dev_needs_a_devtmpfs() {
        let root = temp_root("empty");
        assert!(needs_dev_mount(&root));
        // A regular file named ptmx is not the device.
        std::fs::write(root.join("dev/ptmx"), "").expect("write");
        std::fs::create_dir(root.join("dev/pts")).expect("mkdir");
        assert!(needs_dev_mount(&root));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn missing_nodes_are_created_with_their_numbers_and_modes() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "mknod needs root (run the suite as root, as CI does)"
        );
        let root = temp_root("nodes");
        // An existing entry is left as it is, whatever it is.
        std::fs::write(root.join("dev/tty"), "keep").expect("write");
        let warnings = create_device_nodes(&root);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!needs_dev_mount(&root));
        for node in DEVICE_NODES.iter().chain([&PTMX]) {
            let meta = std::fs::symlink_metadata(root.join(node.path)).expect(node.path);
            if node.path == "dev/tty" {
                assert!(meta.is_file());
                continue;
            }
            assert!(is_char_device(
                &root.join(node.path),
                node.major,
                node.minor
            ));
            // umask may clear bits; never more than asked for.
            assert_eq!(meta.mode() & 0o777 & !node.mode, 0, "{}", node.path);
        }
        assert!(root.join("dev/pts").is_dir());
        let _ = std::fs::remove_dir_all(&root);
    }
}
