//! A plain job whose program, or a PATH directory searched before it, lies
//! on a mount that hangs holds up that job, never init. A FUSE mount whose
//! daemon never answers stands in for a dead NFS server: every lookup in
//! it waits until the connection is aborted.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A FUSE file system mounted at a directory, whose device nobody reads.
/// Dropping it unmounts it and aborts the connection, which ends every
/// wait in it.
struct HungMount {
    dir: PathBuf,
    _device: OwnedFd,
}

impl HungMount {
    fn new(dir: &Path) -> Self {
        use nix::mount::{mount, MsFlags};
        std::fs::create_dir_all(dir).expect("mount point");
        let device: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .expect("/dev/fuse (the fuse module)")
            .into();
        let options = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            device.as_raw_fd()
        );
        mount(
            Some("outset-hung"),
            dir,
            Some("fuse"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .expect("mount fuse");
        HungMount {
            dir: dir.to_path_buf(),
            _device: device,
        }
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `initctl ARGS` bounded at 20 s (status 124 when init does not answer).
fn ctl(init: &common::Started, args: &[&str]) -> (i32, String) {
    let mut bounded = vec!["20", env!("CARGO_BIN_EXE_initctl")];
    bounded.extend_from_slice(args);
    let o = init.cmd("timeout", &bounded);
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

fn out_of(init: &common::Started, job: &str) -> String {
    ctl(init, &["status", job]).1
}

#[test]
fn a_plain_job_on_a_hung_mount_holds_up_the_job_not_init() {
    common::assert_root();
    let mnt = common::TempDir::new("hungmnt");
    let hung = mnt.0.join("hung");
    let m = hung.display();
    let init = common::start_session(
        "hungmount",
        &[
            ("onmount", &format!("console none\nexec {m}/prog\n")),
            (
                "onpath",
                &format!("console none\nenv PATH={m}/bin:/usr/bin:/bin\nexec sleep 100000\n"),
            ),
            (
                "other",
                "task\nconsole none\nexec /bin/sh -c 'echo ran >> @DIR@/other.out'\n",
            ),
        ],
        &[],
    );
    // Mounted after init started: init must learn of it by itself.
    let _mount = HungMount::new(&hung);

    for (n, job) in ["onmount", "onpath"].into_iter().enumerate() {
        let (code, out) = ctl(&init, &["start", "--no-wait", job]);
        assert_eq!(code, 0, "{job}: {out}\nlog:\n{}", init.log());
        // The job's own process waits in its exec; init answers and
        // starts other jobs meanwhile.
        let (code, out) = ctl(&init, &["status", job]);
        assert_eq!(code, 0, "{job}: {out}\nlog:\n{}", init.log());
        assert!(
            out.starts_with(&format!("{job} start/spawned, process ")),
            "{out}"
        );
        let (code, out) = ctl(&init, &["start", "other"]);
        assert_eq!(
            code,
            0,
            "{job}: init stopped answering: {out}\nlog:\n{}",
            init.log()
        );
        assert_eq!(
            std::fs::read_to_string(init.dir.0.join("other.out")).unwrap_or_default(),
            "ran\n".repeat(n + 1)
        );
        // As in Upstart, a stop waits for the spawn to end; the operator
        // ends the waiting process, and init sees it end.
        let pid = common::pid_of(&out_of(&init, job));
        assert_eq!(ctl(&init, &["stop", "--no-wait", job]).0, 0);
        // SAFETY: kill(2) of the job's process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        init.wait_for("the job to stop", || {
            out_of(&init, job) == format!("{job} stop/waiting\n")
        });
    }
}
