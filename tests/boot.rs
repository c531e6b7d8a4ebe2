//! Start-up checks of system mode that need no namespace.

use std::process::Command;

#[test]
fn system_mode_needs_root() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root to drop to another user (run the suite as root, as CI does)"
    );
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_outset"))
        .output()
        .expect("run setpriv");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "init: Need to be root\n"
    );
}
