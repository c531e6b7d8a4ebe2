//! `init 2` run by hand (not as PID 1): as Upstart's init does, become
//! telinit with the same arguments.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// `telinit` beside the running binary, else the first one on `PATH`.
fn find_telinit() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("telinit")));
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("telinit"))
            .collect::<Vec<_>>()
    });
    beside.into_iter().chain(on_path).find(|p| {
        nix::unistd::access(p.as_path(), nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file()
    })
}

/// Exec telinit with `argv` (argv[0] kept, as Upstart does). Returns only
/// if that failed.
pub fn hand_off(argv: &[String]) {
    let Some(telinit) = find_telinit() else {
        return;
    };
    let mut cmd = std::process::Command::new(telinit);
    if let Some(arg0) = argv.first() {
        cmd.arg0(arg0);
    }
    let _ = cmd.args(argv.iter().skip(1)).exec();
}
