//! outset as PID 1 of a new PID (and mount, network) namespace: it runs the
//! system's jobs and reaps every orphan. Needs root (CI runs as root).

mod common;

use common::namespace::Namespace;

#[test]
fn pid1_in_a_namespace_runs_jobs_and_reaps_orphans() {
    let orphans = "start on startup\ntask\nconsole none\nscript\n  \
         for i in 1 2 3 4 5; do sh -c 'sleep 0.1' & done\n  echo $$ > @DIR@/orphans.pid\nend script\n";
    let count = "start on stopped orphans\ntask\nconsole none\nscript\n  sleep 0.5\n  z=0\n  \
         for s in /proc/[0-9]*/stat; do\n    \
         case \"$(cut -d' ' -f3 $s 2>/dev/null)\" in Z) z=$((z+1));; esac\n  done\n  \
         echo \"pid1=$(cut -d' ' -f1 /proc/1/stat) zombies=$z\" > @DIR@/count.out\nend script\n";
    // Unknown kernel-style arguments are ignored, not fatal.
    let mut ns = Namespace::start(
        "pid1",
        &[("orphans", orphans), ("count", count)],
        &["splash", "quiet=1", "--no-such-option"],
    );
    assert_eq!(
        ns.wait_file("count.out"),
        "pid1=1 zombies=0\n",
        "{}",
        ns.log()
    );

    // SIGTERM stops a container's PID 1 cleanly.
    ns.signal(libc::SIGTERM);
    let status = ns.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        ns.log()
    );
}
