//! PID-1 start-up duties (pid1.md §2 step 5): what outset does before it
//! loads any job when it is the first process of a machine or a container.
//!
//! Everything here is best effort except the console: a missing `/proc` or
//! a refused mount is logged and start-up goes on, because a PID 1 that
//! gives up leaves nothing running at all.

mod console;
mod devices;
mod mounts;

pub use console::{open_console, sane_termios, stdio_to_null};
pub use devices::{create_device_nodes, needs_dev_mount, DeviceNode, DEVICE_NODES};
pub use mounts::{is_mount_point, mount_if_missing, Mounted, EARLY_MOUNTS};

use std::path::Path;
use thiserror::Error;

/// The search path PID 1 gives itself and every job.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin";
/// `TERM` for jobs when the kernel passed none (the Linux console).
pub const DEFAULT_TERM: &str = "linux";

#[derive(Debug, Error)]
pub enum BootError {
    #[error("Need to be root")]
    NotRoot,
    #[error("Unable to initialize console as /dev/null: {0}")]
    NoConsole(nix::Error),
}

/// How start-up was asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootOptions {
    /// PID 1 of a container: keep the stdio the engine gave us, mount only
    /// what is missing and expect some mounts to be refused.
    pub container: bool,
    /// `--restart`: a re-exec'd image; the terminal was already set up.
    pub restart: bool,
}

/// Run the start-up duties of system mode, in the order of pid1.md §2 step
/// 5. Returns the warnings to log (the daemon's logger does not exist yet;
/// the caller prints them on the console it now has), or the fatal error.
pub fn pid1_setup(opts: BootOptions) -> Result<Vec<String>, BootError> {
    if !nix::unistd::getuid().is_root() {
        return Err(BootError::NotRoot);
    }
    let mut warnings = Vec::new();
    // Drop any controlling terminal an initramfs left us (fails harmlessly
    // when we already lead a session).
    let _ = nix::unistd::setsid();
    // Files init itself creates get exactly the modes it asks for; jobs get
    // their own umask in the child.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    let root = Path::new("/");
    if needs_dev_mount(root) {
        if let Err(e) = mount_if_missing(&mounts::DEV) {
            warnings.push(e);
        }
    }
    warnings.extend(create_device_nodes(root));
    if let Err(e) = mount_if_missing(&mounts::DEVPTS) {
        warnings.push(e);
    }

    if !opts.container {
        match open_console(Path::new("/dev/console"), !opts.restart) {
            Ok(()) => {}
            Err(e) => {
                warnings.push(format!(
                    "Unable to initialize console, will try /dev/null: {e}"
                ));
                stdio_to_null().map_err(BootError::NoConsole)?;
            }
        }
    }

    std::env::set_var("PATH", DEFAULT_PATH);
    if !opts.container && std::env::var_os("TERM").is_none() {
        std::env::set_var("TERM", DEFAULT_TERM);
    }
    if let Err(e) = std::env::set_current_dir("/") {
        warnings.push(format!("Unable to set root directory: {e}"));
    }

    for m in EARLY_MOUNTS {
        if let Err(e) = mount_if_missing(m) {
            warnings.push(e);
        }
    }
    Ok(warnings)
}
