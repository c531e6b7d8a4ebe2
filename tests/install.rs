//! scripts/install.sh, staged under a DESTDIR: every binary and name where
//! Upstart put it, man pages, completion, the bus policy and the jobs, and
//! an administrator's own job file left alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;

fn bindir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_outset"))
        .parent()
        .expect("binary directory")
        .to_path_buf()
}

fn install(dest: &Path, args: &[&str]) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .arg("--bindir")
        .arg(bindir())
        .args(args)
        .env("DESTDIR", dest)
        .output()
        .expect("run install.sh")
}

fn link_target(p: &Path) -> String {
    std::fs::read_link(p)
        .unwrap_or_else(|e| panic!("{} is not a link: {e}", p.display()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn installs_everything_where_upstart_put_it() {
    let dest = TempDir::new("install");
    let out = install(&dest.0, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = &dest.0;
    for bin in [
        "outset",
        "initctl",
        "telinit",
        "runlevel",
        "shutdown",
        "outset-cgmanager",
    ] {
        let p = d.join("sbin").join(bin);
        let same = std::fs::read(&p).expect("installed binary")
            == std::fs::read(bindir().join(bin)).expect("built binary");
        assert!(same, "{} differs from the build", p.display());
    }
    assert!(d.join("usr/bin/init-checkconf").is_file());
    for name in ["start", "stop", "restart", "reload", "status"] {
        assert_eq!(link_target(&d.join("sbin").join(name)), "initctl");
    }
    for name in ["reboot", "halt", "poweroff"] {
        assert_eq!(link_target(&d.join("sbin").join(name)), "shutdown");
    }
    // The system's init is replaced only when asked.
    assert!(!d.join("sbin/init").exists());
    assert!(d.join("usr/share/man/man5/init.5").is_file());
    assert!(d.join("usr/share/man/man8/initctl.8").is_file());
    assert!(d
        .join("usr/share/bash-completion/completions/initctl")
        .is_file());
    assert!(d.join("etc/dbus-1/system.d/Upstart.conf").is_file());
    assert!(d.join("etc/init/rc-sysinit.conf").is_file());
    // The examples only when asked for.
    assert!(!d.join("etc/init/hello.conf").exists());
    assert!(!d.join("etc/init/ticker.conf").exists());

    // A second install keeps a job file the administrator changed, and
    // --init makes outset the system's init.
    std::fs::write(d.join("etc/init/hello.conf"), "# mine\n").expect("edit job");
    let out = install(&dest.0, &["--init", "--examples"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello.conf"));
    assert_eq!(
        std::fs::read_to_string(d.join("etc/init/hello.conf")).expect("job"),
        "# mine\n"
    );
    assert!(d.join("etc/init/ticker.conf").is_file());
    assert_eq!(link_target(&d.join("sbin/init")), "outset");
}

#[test]
fn an_unknown_option_is_refused() {
    let dest = TempDir::new("install-bad");
    let out = install(&dest.0, &["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option: --bogus"));
    assert!(!dest.0.join("sbin").exists(), "nothing is installed");
}
