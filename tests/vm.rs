//! The static build as a whole system: build the static binaries, pack an
//! initramfs with busybox and the shipped jobs.d, then
//!
//! * boot Debian's cloud kernel with it in qemu and read what the jobs
//!   printed on the serial console; the machine ends itself (`poweroff`);
//! * boot the image as shipped with a command on the kernel command line
//!   (`outset.run=`), whose exit status `vm-boot.sh` returns;
//! * unpack the same image as a container's root and run its /init as PID
//!   1 of new namespaces, with a console that is a plain file.
//!
//! Needs qemu-system-x86, linux-image-cloud-amd64, busybox-static and cpio
//! (`.ci/run` installs them) and root; fails, never skips, without them.

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
/// /etc/init.d/rc that shows which runlevels the rc job entered. `vm`:
/// also the jobs that only a machine of its own may run.
fn write_overlay(dir: &TempDir, vm: bool) {
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
    // A job placed in cgroups by the shipped manager job, with a limit.
    dir.write(
        "overlay/etc/init/vmtest-cgroup.conf",
        "start on stopped vmtest-nobody\ntask\nconsole output\n\
         cgroup memory $UPSTART_CGROUP max 67108864\ncgroup pids\n\
         exec /bin/sh -c 'echo \"vmtest: cgroup $(cat /proc/self/cgroup) \
         memory.max $(cat /sys/fs/cgroup/upstart/vmtest-cgroup/memory.max)\"'\n",
    );
    // What the shipped network-lo job announces.
    dir.write(
        "overlay/etc/init/vmtest-lo.conf",
        "start on net-device-up IFACE=lo\ntask\nconsole output\n\
         exec echo \"vmtest: net-device-up $IFACE $LOGICAL $ADDRFAM $METHOD\"\n",
    );
    if vm {
        write_fork_exhaustion(dir);
    }
    dir.write(
        "overlay/etc/init/vmtest.conf",
        r#"start on stopped vmtest-cgroup and stopped vmtest-eagain
task
console output
# From the kernel command line, through init's environment.
env VMTEST_FROM_KERNEL
script
    echo "vmtest: kernel env $VMTEST_FROM_KERNEL, unlisted ${VMTEST_UNLISTED:-unset}"
    echo "vmtest: lo flags $(cat /sys/class/net/lo/flags)"
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
}

/// PID 1 in a cgroup v2 pids cgroup with no room for one task more, on a
/// machine where cgroup2 is the only cgroup file system (as on most
/// current distributions): the spawn of a job fails, init answers. The
/// same as the chaos test on the host, whose pids controller may be held
/// by a v1 hierarchy.
fn write_fork_exhaustion(dir: &TempDir) {
    dir.write(
        "overlay/etc/init/vmtest-forkfail.conf",
        "start on vmtest-eagain-go\ntask\nconsole output\nexec echo vmtest: forkfail ran\n",
    );
    dir.write(
        "overlay/etc/init/vmtest-eagain.conf",
        r#"start on stopped vmtest-cgroup
task
console output
script
    echo "vmtest: cgroup file systems $(awk '$9 ~ /^cgroup/ { printf "%s=%s ", $5, $9 }' /proc/self/mountinfo)"
    cg=/sys/fs/cgroup/vmtest-eagain
    mkdir $cg
    echo +pids > /sys/fs/cgroup/cgroup.subtree_control
    echo 1 > $cg/cgroup.procs
    cat $cg/pids.current > $cg/pids.max
    # Job scripts run under `sh -e`: the failure is taken, not fatal.
    rc=0
    initctl emit vmtest-eagain-go || rc=$?
    echo "vmtest: eagain emit $rc"
    echo "vmtest: eagain status $(initctl status vmtest-forkfail)"
    echo max > $cg/pids.max
    echo 1 > /sys/fs/cgroup/cgroup.procs
    rmdir $cg
end script
"#,
    );
}

/// Boot `initramfs` with `kernel_args`; what `vm-boot.sh` returned and
/// how long it took.
fn boot(
    initramfs: &Path,
    log: &Path,
    kernel_args: &[&str],
) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    let status = Command::new(source_dir().join("scripts/vm-boot.sh"))
        .arg("--timeout")
        .arg(BOOT_DEADLINE.as_secs().to_string())
        .arg(initramfs)
        .arg(log)
        .arg("loglevel=4")
        .args(kernel_args)
        .stdin(Stdio::null())
        .status()
        .expect("start qemu");
    assert_ne!(
        status.code(),
        Some(124),
        "the VM did not power off; console:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    (status, started.elapsed())
}

/// The console's line from `prefix` on: getty's prompt (no newline) may
/// come first on the same line.
fn line_of(console: &str, prefix: &str) -> String {
    console
        .lines()
        .find_map(|l| l.find(prefix).map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("no {prefix:?} line; console:\n{console}"))
}

/// Build the static binaries and pack them with the overlay in `dir` (if
/// any), with the example jobs when `examples`.
fn build_image(dir: &TempDir, examples: bool) -> PathBuf {
    let src = source_dir();
    run(
        Command::new(src.join("scripts/build-static.sh")).current_dir(&src),
        "static build",
    );
    let bindir = src.join("target/static/x86_64-unknown-linux-gnu/release");
    let initramfs = dir.0.join("initramfs.cpio");
    let mut mk = Command::new(src.join("scripts/mkinitramfs.sh"));
    if examples {
        mk.arg("--examples");
    }
    mk.arg(&initramfs).arg(&bindir);
    let overlay = dir.0.join("overlay");
    if overlay.exists() {
        mk.arg(overlay);
    }
    run(&mut mk, "mkinitramfs");
    initramfs
}

#[test]
fn vm_boots_runs_the_shipped_jobs_and_powers_off() {
    let dir = TempDir::new("vm");
    write_overlay(&dir, true);
    let initramfs = build_image(&dir, true);
    let log = dir.0.join("console.log");
    let (status, took) = boot(
        &initramfs,
        &log,
        &["VMTEST_FROM_KERNEL=kernel-value", "VMTEST_UNLISTED=x"],
    );
    let console = std::fs::read_to_string(&log)
        .expect("console log")
        .replace('\r', "");
    eprintln!("VM ran for {took:?}");
    assert!(status.success(), "qemu: {status}; console:\n{console}");
    assert!(!console.contains("Kernel panic"), "{console}");

    let line = |prefix: &str| line_of(&console, prefix);
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
        line("vmtest: cgroup "),
        "vmtest: cgroup 0::/upstart/vmtest-cgroup memory.max 67108864"
    );
    // cgroup v2 alone, and its pids controller full: the job's spawn
    // failed, the event with it, and init answered throughout.
    assert_eq!(
        line("vmtest: cgroup file systems "),
        "vmtest: cgroup file systems /sys/fs/cgroup=cgroup2 "
    );
    assert_eq!(line("vmtest: eagain emit "), "vmtest: eagain emit 1");
    assert_eq!(
        line("vmtest: eagain status "),
        "vmtest: eagain status vmtest-forkfail stop/waiting"
    );
    assert_eq!(line("initctl: "), "initctl: Event failed");
    assert!(!console.contains("vmtest: forkfail ran"), "{console}");
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
    // The kernel's KEY=VALUE parameters reach a job that names them with a
    // bare `env KEY`, and no other (as in Upstart).
    assert_eq!(
        line("vmtest: kernel env "),
        "vmtest: kernel env kernel-value, unlisted unset"
    );
    // lo is up (IFF_UP | IFF_LOOPBACK), and was announced as Upstart's
    // ifupdown jobs did.
    assert_eq!(line("vmtest: lo flags "), "vmtest: lo flags 0x9");
    assert_eq!(
        line("vmtest: net-device-up "),
        "vmtest: net-device-up lo lo inet loopback"
    );
    // outset's poweroff: runlevel 0 (rc ran for it), every job stopped,
    // then the machine switched itself off and qemu exited on its own.
    line("vmtest: poweroff");
    assert_eq!(
        line("rc: entering runlevel 0"),
        "rc: entering runlevel 0 (from 2)"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
}

/// The image as shipped (no overlay, no examples) runs the command of
/// `outset.run=` once runlevel 2 is up, then powers off; qemu's
/// isa-debug-exit device carries the command's status to the host.
#[test]
fn vm_runs_the_kernel_command_line_command_and_returns_its_status() {
    let dir = TempDir::new("vmrun");
    let initramfs = build_image(&dir, false);
    let log = dir.0.join("console.log");
    let (status, took) = boot(
        &initramfs,
        &log,
        &[
            r#"outset.run="echo runner: jobs $(ls /etc/init); echo runner: lo $(cat /sys/class/net/lo/flags); exit 3""#,
        ],
    );
    let console = std::fs::read_to_string(&log)
        .expect("console log")
        .replace('\r', "");
    eprintln!("VM ran for {took:?}");
    assert_eq!(
        status.code(),
        Some(3),
        "qemu: {status}; console:\n{console}"
    );
    let line = |prefix: &str| line_of(&console, prefix);
    // The examples are left out unless asked for.
    let jobs = line("runner: jobs ");
    assert!(jobs.contains(" outset-run.conf "), "{jobs}");
    assert!(!jobs.contains("hello.conf"), "{jobs}");
    assert!(!jobs.contains("ticker.conf"), "{jobs}");
    assert_eq!(line("runner: lo "), "runner: lo 0x9");
    // The stop ran as for any power-off: runlevel 0, then the machine
    // ended through the device, not the power-off.
    assert!(
        line("outset-run: ").ends_with(": exit status 3"),
        "{console}"
    );
    assert!(!console.contains("reboot: Power down"), "{console}");
}

/// The image's own /init as PID 1 of new PID, mount, UTS, IPC and network
/// namespaces, chrooted into the unpacked image: a container whose /dev
/// the "engine" populated (so outset mounts no devtmpfs) and whose /proc,
/// /sys and /run are empty (so outset mounts them).
#[test]
fn the_image_runs_as_a_container_and_stops_on_poweroff() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root for namespaces and chroot (run the suite as root, as CI does)"
    );
    let dir = TempDir::new("ctr");
    write_overlay(&dir, false);
    dir.write(
        "overlay/etc/init/vmtest.conf",
        r#"start on stopped vmtest-nobody and stopped console
task
console output
script
    echo "ctest: container=$container"
    echo "ctest: mounts $(awk '{ printf "%s=%s ", $5, $9 }' /proc/self/mountinfo)"
    echo "ctest: pid $$ parent $PPID"
    echo "ctest: $(status console)"
    echo "ctest: $(status ticker)"
    echo "ctest: lo flags $(cat /sys/class/net/lo/flags)"
    /sbin/poweroff
end script
"#,
    );
    let initramfs = build_image(&dir, true);
    let root = dir.0.join("root");
    std::fs::create_dir(&root).expect("mkdir root");
    run(
        Command::new("cpio")
            .args(["-id", "--quiet"])
            .current_dir(&root)
            .stdin(std::fs::File::open(&initramfs).expect("open image")),
        "unpack",
    );
    // What a container engine provides: device nodes, a terminal-less
    // console (here a file, read as the console log).
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    for (name, major, minor) in [("null", 1, 3), ("ptmx", 5, 2), ("zero", 1, 5)] {
        mknod(
            &root.join("dev").join(name),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .expect("mknod");
    }
    std::fs::create_dir(root.join("dev/pts")).expect("mkdir pts");
    // The console is a pipe the test reads (each job opens it anew).
    nix::unistd::mkfifo(&root.join("dev/console"), Mode::from_bits_truncate(0o600))
        .expect("mkfifo console");
    let console_text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        // Opened for writing too, so it never sees end-of-file.
        let mut fifo = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(root.join("dev/console"))
            .expect("open console");
        let text = console_text.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = fifo.read(&mut buf) {
                if let Ok(mut t) = text.lock() {
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
    }
    let console_now = || console_text.lock().map(|t| t.clone()).unwrap_or_default();

    let log = std::fs::File::create(dir.0.join("init.log")).expect("log");
    let mut ctr = Command::new("unshare")
        .args([
            "--pid", "--mount", "--uts", "--ipc", "--net", "--fork", "--",
        ])
        .arg("chroot")
        .arg(&root)
        .args(["/init", "--container"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the container");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = ctr.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = ctr.kill();
            let _ = ctr.wait();
            panic!(
                "the container did not stop; console:\n{}\nlog:\n{}",
                console_now(),
                std::fs::read_to_string(dir.0.join("init.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the last job wrote is in the pipe: give the reader a moment.
    std::thread::sleep(Duration::from_millis(200));
    let console = console_now();
    let init_log = std::fs::read_to_string(dir.0.join("init.log")).expect("log");
    let all = format!("console:\n{console}\ninit log:\n{init_log}");
    assert!(status.success(), "{status}; {all}");
    // Nothing to warn about: every mount was either there or possible.
    // The only messages say which mode was chosen and, as Upstart
    // reported it, that the bridges (which do not catch SIGTERM) were
    // stopped by it.
    let messages: Vec<&str> = init_log
        .lines()
        .filter(|l| l.starts_with("init: "))
        .collect();
    assert_eq!(
        messages.first().copied(),
        Some("init: container mode: --container given"),
        "{all}"
    );
    // vmtest itself asked for the power-off: the stop may reach it before
    // its shell has ended.
    for l in messages.iter().skip(1) {
        assert!(
            (l.starts_with("init: upstart-") || l.starts_with("init: vmtest main process"))
                && l.ends_with(" killed by TERM signal"),
            "{all}"
        );
    }

    let line = |prefix: &str| -> String {
        console
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line; {all}"))
            .to_string()
    };
    assert_eq!(line("ctest: container="), "ctest: container=outset");
    let mounts = line("ctest: mounts ");
    for m in [
        "/proc=proc ",
        "/sys=sysfs ",
        "/dev/pts=devpts ",
        "/run=tmpfs ",
    ] {
        assert!(mounts.contains(m), "{m} missing: {mounts}");
    }
    assert!(!mounts.contains("/dev=devtmpfs "), "{mounts}");
    assert!(line("ctest: pid ").ends_with(" parent 1"), "{all}");
    assert_eq!(
        line("rc: entering runlevel 2"),
        "rc: entering runlevel 2 (from N)"
    );
    assert_eq!(line("vmtest: uid "), "vmtest: uid 65534");
    // No terminal for a login prompt: the console job said so and stopped.
    line("console: no /dev/console, no login prompt");
    assert_eq!(line("ctest: console "), "ctest: console stop/waiting");
    assert!(
        line("ctest: ticker ").starts_with("ctest: ticker start/running, process "),
        "{all}"
    );
    // The new network namespace's lo was down: the shipped job set it up.
    assert_eq!(line("ctest: lo flags "), "ctest: lo flags 0x9");
    assert_eq!(
        line("vmtest: net-device-up "),
        "vmtest: net-device-up lo lo inet loopback"
    );
    // poweroff in a container: runlevel 0, jobs stopped, PID 1 exits 0.
    assert_eq!(
        line("rc: entering runlevel 0"),
        "rc: entering runlevel 0 (from 2)"
    );
}
