//! outset as /init of a virtual machine: build the static binaries, pack an
//! initramfs with busybox and the shipped jobs.d, boot Debian's cloud
//! kernel in qemu, and read what the jobs printed on the serial console.
//! The machine ends by itself through `poweroff`.
//!
//! Needs qemu-system-x86, linux-image-cloud-amd64, busybox-static and cpio
//! (`.ci/run` installs them); fails, never skips, without them.

mod common;

use common::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A VM under TCG boots in seconds; this only bounds a hung one.
const BOOT_DEADLINE: Duration = Duration::from_secs(240);

fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's own jobs, next to the shipped ones in /etc/init, and an
/// /etc/init.d/rc that shows which runlevels the rc job entered.
fn write_overlay(dir: &TempDir) -> PathBuf {
    dir.write(
        "overlay/etc/init.d/rc",
        "#!/bin/sh\necho \"rc: entering runlevel $1 (from $PREVLEVEL)\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.0.join("overlay/etc/init.d/rc"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod rc");
    // A job with another identity: user lookups work in the static binary
    // without /etc/nsswitch.conf.
    dir.write(
        "overlay/etc/init/vmtest-nobody.conf",
        "start on stopped rc RUNLEVEL=2\ntask\nsetuid nobody\nconsole output\n\
         exec /bin/sh -c 'echo \"vmtest: uid $(id -u)\"'\n",
    );
    dir.write(
        "overlay/etc/init/vmtest.conf",
        r#"start on stopped vmtest-nobody
task
console output
script
    echo "vmtest: mounts $(awk '{ printf "%s=%s ", $5, $9 }' /proc/self/mountinfo)"
    echo "vmtest: devkmsg $(cat /proc/sys/kernel/printk_devkmsg)"
    echo "vmtest: pid1 stdin $(readlink /proc/1/fd/0)"
    echo "vmtest: hello.log $(tr -d '\r' < /var/log/upstart/hello.log)"
    echo "vmtest: $(status ticker)"
    echo "vmtest: $(initctl status rc-sysinit)"
    echo "vmtest: runlevel $(runlevel)"
    echo "vmtest: poweroff"
    # busybox's shell runs its own applets first: name outset's.
    /sbin/poweroff
end script
"#,
    );
    dir.0.join("overlay")
}

fn boot(initramfs: &Path, log: &Path) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    let mut qemu = Command::new(source_dir().join("scripts/vm-boot.sh"))
        .arg(initramfs)
        .arg(log)
        .arg("loglevel=4")
        .stdin(Stdio::null())
        .spawn()
        .expect("start qemu");
    loop {
        if let Some(status) = qemu.try_wait().expect("wait for qemu") {
            return (status, started.elapsed());
        }
        if started.elapsed() > BOOT_DEADLINE {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!(
                "the VM did not power off; console:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn vm_boots_runs_the_shipped_jobs_and_powers_off() {
    let src = source_dir();
    run(
        Command::new(src.join("scripts/build-static.sh")).current_dir(&src),
        "static build",
    );
    let bindir = src.join("target/static/x86_64-unknown-linux-gnu/release");
    let dir = TempDir::new("vm");
    let overlay = write_overlay(&dir);
    let initramfs = dir.0.join("initramfs.cpio");
    run(
        Command::new(src.join("scripts/mkinitramfs.sh"))
            .arg(&initramfs)
            .arg(&bindir)
            .arg(&overlay),
        "mkinitramfs",
    );
    let log = dir.0.join("console.log");
    let (status, took) = boot(&initramfs, &log);
    let console = std::fs::read_to_string(&log)
        .expect("console log")
        .replace('\r', "");
    eprintln!("VM ran for {took:?}");
    assert!(status.success(), "qemu: {status}; console:\n{console}");
    assert!(!console.contains("Kernel panic"), "{console}");

    // The line from `prefix` on: getty's prompt (no newline) may come
    // first on the same line.
    let line = |prefix: &str| -> String {
        console
            .lines()
            .find_map(|l| l.find(prefix).map(|at| l[at..].to_string()))
            .unwrap_or_else(|| panic!("no {prefix:?} line; console:\n{console}"))
    };
    // outset mounted what the initramfs lacked.
    let mounts = line("vmtest: mounts ");
    for m in [
        "/proc=proc ",
        "/sys=sysfs ",
        "/dev=devtmpfs ",
        "/dev/pts=devpts ",
        "/run=tmpfs ",
    ] {
        assert!(mounts.contains(m), "{m} missing: {mounts}");
    }
    assert_eq!(line("vmtest: devkmsg "), "vmtest: devkmsg on");
    assert_eq!(line("vmtest: pid1 stdin "), "vmtest: pid1 stdin /dev/null");
    // The shipped chain: startup -> mountall -> filesystem -> rc-sysinit
    // -> telinit 2 -> rc 2 -> the test's jobs; hello and ticker as well.
    assert_eq!(
        line("rc: entering runlevel 2"),
        "rc: entering runlevel 2 (from N)"
    );
    assert_eq!(line("vmtest: uid "), "vmtest: uid 65534");
    assert_eq!(
        line("vmtest: hello.log "),
        "vmtest: hello.log hello from outset (job hello)"
    );
    // initctl inside the machine, over PID 1's private socket.
    assert!(
        line("vmtest: ticker ").starts_with("vmtest: ticker start/running, process "),
        "{console}"
    );
    assert_eq!(
        line("vmtest: rc-sysinit "),
        "vmtest: rc-sysinit stop/waiting"
    );
    assert_eq!(line("vmtest: runlevel "), "vmtest: runlevel N 2");
    // outset's poweroff: runlevel 0 (rc ran for it), every job stopped,
    // then the machine switched itself off and qemu exited on its own.
    line("vmtest: poweroff");
    assert_eq!(
        line("rc: entering runlevel 0"),
        "rc: entering runlevel 0 (from 2)"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
}
