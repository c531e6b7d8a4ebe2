//! Daemon performance: outset against raw process spawning, and
//! (optionally) against an Upstart build, on the same workloads.
//!
//! `cargo bench --bench daemon` runs, in one go:
//! - `initctl emit go` for N `task` jobs running /bin/true (N = 200, 1000,
//!   10000; median of 5) against `posix_spawn` + `waitpid` of the same N
//!   processes, measured in the same run;
//! - `initctl list` and `initctl status` latency with 2000 classes loaded,
//!   one `initctl status` call against one exec of /bin/true (31 each, in
//!   turns), status again while a spawn storm runs, and the init's VmRSS
//!   idle and after the storm;
//! - the per-task cost of an emit with 10 and with 10000 classes loaded,
//!   and VmRSS with the 10000 idle classes (and 200 tasks) loaded;
//! - the stateful re-exec pause (`Restart()` until a new connection is
//!   answered) with 1000 running `sleep` instances;
//! - `outset run -- true` on no jobs (median of 21) against `sh -c
//!   true`, alternating in the same run (outset only: Upstart has no run
//!   mode).
//!
//! Every figure is printed with its baseline or target and the ratio.
//! `-- --against-upstart PREFIX` runs the same workloads on the Upstart
//! under PREFIX (`PREFIX/sbin/init`, `PREFIX/sbin/initctl`) as well
//! (scripts/build-upstart.sh builds one). An init that dies under a
//! workload gets `crashed` for that figure, and the run goes on.
//! `-- --sizes 200,1000` limits the emit sizes; `-- --only emit,control`
//! runs only the named workloads (emit, control, scaling, reexec, run).
//!
//! Run without `--bench` (as `cargo test --all-targets` does), every
//! workload runs once with tiny sizes as a smoke test. Nothing here
//! asserts anything about time.

mod raw;
mod report;
mod session;
mod stats;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use session::{Binaries, Failure};
use workload::Sizes;

struct Options {
    bench: bool,
    upstart: Option<PathBuf>,
    sizes: Option<Vec<usize>>,
    /// Workloads to run (emit, control, scaling, reexec, run); all if empty.
    only: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut opts = Options {
        bench: false,
        upstart: None,
        sizes: None,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => opts.bench = true,
            "--against-upstart" => {
                let p = args.next().ok_or("--against-upstart needs a PREFIX")?;
                opts.upstart = Some(PathBuf::from(p));
            }
            "--sizes" => {
                let list = args.next().ok_or("--sizes needs N,N,...")?;
                let sizes = list
                    .split(',')
                    .map(|s| s.trim().parse::<usize>().map_err(|e| format!("{s}: {e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                if sizes.contains(&0) {
                    return Err("sizes must be positive".into());
                }
                opts.sizes = Some(sizes);
            }
            "--only" => {
                let list = args
                    .next()
                    .ok_or("--only needs emit,control,scaling,reexec,run")?;
                opts.only = list.split(',').map(|s| s.trim().to_string()).collect();
                let known = ["emit", "control", "scaling", "reexec", "run"];
                if let Some(bad) = opts.only.iter().find(|w| !known.contains(&w.as_str())) {
                    return Err(format!("unknown workload {bad}"));
                }
            }
            // libtest-style arguments cargo may pass along.
            a if a.starts_with('-') => {}
            _ => {}
        }
    }
    Ok(opts)
}

fn outset() -> Binaries {
    Binaries {
        label: "outset".into(),
        init: PathBuf::from(env!("CARGO_BIN_EXE_outset")),
        initctl: PathBuf::from(env!("CARGO_BIN_EXE_initctl")),
    }
}

/// Whether a failure means the benchmark itself did not work: any
/// failure of outset, or Upstart failing other than by crashing (a crash
/// of the reference is one of its figures).
fn broken(bins: &Binaries, f: &Failure) -> bool {
    bins.label == "outset" || matches!(f, Failure::Failed(_))
}

/// Every workload on one supervisor; a failed workload is reported and
/// the next one runs. Returns whether the benchmark worked.
fn run_all(bins: &Binaries, sizes: &Sizes, only: &[String], out: &mut report::Report) -> bool {
    let wanted = |w: &str| only.is_empty() || only.iter().any(|o| o == w);
    // Printed with the control figures; counted with the rest.
    let mut lost_storm = None;
    // Figures the run could not take; whether that breaks it is decided
    // at the end.
    let mut failures: Vec<Failure> = Vec::new();
    let mut lost = |out: &mut report::Report, what: &str, key: Option<&str>, f: Failure| {
        out.failed(bins, what, key, &f);
        failures.push(f);
    };
    for &n in sizes.emit.iter().filter(|_| wanted("emit")) {
        match workload::emit(bins, n, sizes.rounds) {
            Ok(f) => out.emit(bins, &f),
            Err(f) => lost(
                out,
                &format!("initctl emit go, {n} tasks"),
                Some(&format!("emit {n}")),
                f,
            ),
        }
    }
    if wanted("control") {
        match workload::control(bins, sizes) {
            Ok(c) => {
                out.control(bins, &c);
                if let Err(f) = c.storm {
                    lost_storm = Some(f);
                }
            }
            Err(f) => lost(
                out,
                &format!("control plane, {} classes", sizes.classes),
                Some("list"),
                f,
            ),
        }
    }
    if wanted("scaling") {
        match workload::scaling(bins, sizes) {
            Ok(s) => out.scaling(bins, &s),
            Err(f) => lost(out, "emit with few and many idle classes", None, f),
        }
    }
    if wanted("reexec") {
        match workload::reexec(bins, sizes) {
            Ok(r) => out.reexec(bins, &r),
            Err(f) => lost(
                out,
                &format!("re-exec pause, {} instances", sizes.reexec_instances),
                Some("re-exec"),
                f,
            ),
        }
    }
    if wanted("run") && bins.label == "outset" {
        match workload::run_true(bins, sizes) {
            Ok(r) => out.run_true(bins, &r),
            Err(f) => lost(out, "outset run -- true, no jobs", Some("run"), f),
        }
    }
    failures.extend(lost_storm);
    !failures.iter().any(|f| broken(bins, f))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some((first, rest)) = args.split_first() {
        if first == raw::RAW_LOOP {
            raw::raw_loop_main(rest);
        }
    }
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("daemon bench: {e}");
            return ExitCode::from(2);
        }
    };
    let mut sizes = if opts.bench {
        Sizes::full()
    } else {
        Sizes::smoke()
    };
    if let Some(s) = opts.sizes {
        sizes.emit = s;
    }
    let mut supervisors = vec![outset()];
    if let Some(prefix) = &opts.upstart {
        match Binaries::upstart(prefix) {
            Ok(b) => supervisors.push(b),
            Err(e) => {
                eprintln!("daemon bench: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut out = report::Report::new(opts.bench);
    out.header();
    let mut failed = false;
    for bins in &supervisors {
        failed |= !run_all(bins, &sizes, &opts.only, &mut out);
    }
    out.summary();
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
