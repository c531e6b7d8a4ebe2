//! Every program answers `--help` and `--version` on standard output with
//! exit status 0, under each of its names.

mod common;

use std::process::Command;

#[test]
fn every_binary_answers_help_and_version() {
    let t = common::TempDir::new("names");
    let mut programs: Vec<(String, std::path::PathBuf)> = [
        ("initctl", env!("CARGO_BIN_EXE_initctl")),
        ("telinit", env!("CARGO_BIN_EXE_telinit")),
        ("runlevel", env!("CARGO_BIN_EXE_runlevel")),
        ("shutdown", env!("CARGO_BIN_EXE_shutdown")),
        ("init-checkconf", env!("CARGO_BIN_EXE_init-checkconf")),
        ("outset-cgmanager", env!("CARGO_BIN_EXE_outset-cgmanager")),
        ("outset", env!("CARGO_BIN_EXE_outset")),
    ]
    .iter()
    .map(|(n, p)| (n.to_string(), p.into()))
    .collect();
    // shutdown's other names, and initctl's command names.
    for (name, target) in [
        ("reboot", env!("CARGO_BIN_EXE_shutdown")),
        ("halt", env!("CARGO_BIN_EXE_shutdown")),
        ("poweroff", env!("CARGO_BIN_EXE_shutdown")),
        ("start", env!("CARGO_BIN_EXE_initctl")),
        ("status", env!("CARGO_BIN_EXE_initctl")),
    ] {
        let link = t.0.join(name);
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        programs.push((name.to_string(), link));
    }
    for (name, path) in &programs {
        for option in ["--help", "--version"] {
            let o = Command::new(path)
                .arg(option)
                .env_remove("UPSTART_SESSION")
                .output()
                .expect("run");
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name} {option}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.stderr.is_empty(), "{name} {option} wrote to stderr");
            if option == "--help" {
                assert!(out.contains("Usage:"), "{name} --help: {out}");
            } else {
                assert!(
                    out.contains(env!("CARGO_PKG_VERSION")),
                    "{name} --version: {out}"
                );
            }
        }
    }
}
