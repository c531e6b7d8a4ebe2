//! The measurements, each on its own freshly started session init.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::raw;
use super::session::{Binaries, Failure, JobSet, Session, GO_TASK};
use super::stats::median;

/// How big each workload is.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Task counts for `initctl emit go` against raw spawning.
    pub emit: Vec<usize>,
    /// Repetitions of each timed run (the median is reported).
    pub rounds: usize,
    /// Classes loaded for the control-plane and memory figures.
    pub classes: usize,
    /// `initctl status` calls timed while idle.
    pub status_calls: usize,
    /// `initctl status` calls timed during the storm (each can take long).
    pub storm_status_calls: usize,
    /// Tasks started per emit when comparing few and many loaded classes.
    pub scaling_tasks: usize,
    /// Idle classes loaded: few, then many.
    pub scaling_classes: (usize, usize),
    /// Running `sleep` instances during the re-exec.
    pub reexec_instances: usize,
    /// `initctl status` calls (and `/bin/true` runs) for the one-call figure.
    pub one_call_runs: usize,
    /// Runs of `outset run -- true` (the median is reported).
    pub run_rounds: usize,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            emit: vec![200, 1000, 10000],
            rounds: 5,
            classes: 2000,
            status_calls: 200,
            storm_status_calls: 50,
            scaling_tasks: 200,
            scaling_classes: (10, 10000),
            reexec_instances: 1000,
            one_call_runs: 31,
            run_rounds: 21,
        }
    }

    /// Tiny sizes: proves every workload runs, measures nothing.
    pub fn smoke() -> Sizes {
        Sizes {
            emit: vec![5],
            rounds: 1,
            classes: 5,
            status_calls: 3,
            storm_status_calls: 3,
            scaling_tasks: 3,
            scaling_classes: (1, 5),
            reexec_instances: 3,
            one_call_runs: 3,
            run_rounds: 1,
        }
    }
}

/// One emit figure.
pub struct EmitFigure {
    pub tasks: usize,
    pub emit: Duration,
    pub raw: Duration,
}

/// Time `initctl emit go` for `n` `/bin/true` tasks against spawning and
/// reaping the same processes directly.
pub fn emit(bins: &Binaries, n: usize, rounds: usize) -> Result<EmitFigure, Failure> {
    let mut session = Session::start(
        bins,
        &[JobSet {
            prefix: "t",
            count: n,
            text: GO_TASK,
        }],
        &format!("t{}", n - 1),
    )?;
    let mut emits = Vec::new();
    let mut raws = Vec::new();
    for _ in 0..rounds {
        let run = session.initctl(&["emit", "go"])?;
        if !run.ok {
            return Err(session.failure(&format!("initctl emit go with {n} tasks")));
        }
        emits.push(run.elapsed);
        raws.push(raw::spawn_and_reap_apart("/bin/true", n)?);
    }
    session.stop();
    Ok(EmitFigure {
        tasks: n,
        emit: median(&emits),
        raw: median(&raws),
    })
}

/// Control-plane latency and memory with many classes loaded.
pub struct ControlFigures {
    pub classes: usize,
    pub list: Vec<Duration>,
    pub status_idle: Vec<Duration>,
    /// VmRSS and its anonymous part (heap, stacks), idle.
    pub rss_idle_kib: u64,
    pub anon_idle_kib: u64,
    /// A baseline for the client side: `initctl version`, one call.
    pub version: Vec<Duration>,
    /// One `initctl status` call and one run of `/bin/true`, taken in
    /// turns (the same minute), through the same harness.
    pub one_call: Vec<Duration>,
    pub true_exec: Vec<Duration>,
    /// Everything measured in and after the spawn storm, which an init
    /// may not survive.
    pub storm: Result<StormFigures, Failure>,
}

/// `initctl status` during the spawn storm, and memory after it.
pub struct StormFigures {
    pub status: Vec<Duration>,
    /// `initctl emit go` runs completed during the storm.
    pub emits: usize,
    pub rss_after_kib: u64,
    pub anon_after_kib: u64,
}

/// `initctl status` of one of the loaded classes, timed.
fn status_of(session: &Session, classes: usize, i: usize) -> Result<Duration, String> {
    let job = format!("c{}", (i * 7919) % classes);
    let run = session.initctl(&["status", &job])?;
    if !run.ok {
        return Err(format!("initctl status {job}"));
    }
    Ok(run.elapsed)
}

pub fn control(bins: &Binaries, sizes: &Sizes) -> Result<ControlFigures, Failure> {
    let classes = sizes.classes;
    let mut session = Session::start(
        bins,
        &[JobSet {
            prefix: "c",
            count: classes,
            text: GO_TASK,
        }],
        &format!("c{}", classes - 1),
    )?;
    // Memory is sampled after a quiet spell, when a supervisor that
    // hands free memory back (outset: after a second) has done so.
    std::thread::sleep(Duration::from_millis(1500));
    let rss_idle_kib = session.memory_kib("VmRSS").unwrap_or(0);
    let anon_idle_kib = session.memory_kib("RssAnon").unwrap_or(0);
    let mut list = Vec::new();
    for _ in 0..sizes.rounds.max(5) {
        let run = session.initctl(&["list"])?;
        let lines = run.stdout.lines().count();
        if !run.ok || lines != classes {
            return Err(Failure::Failed(format!(
                "initctl list printed {lines} lines for {classes} classes"
            )));
        }
        list.push(run.elapsed);
    }
    let mut version = Vec::new();
    for _ in 0..sizes.status_calls.min(50) {
        version.push(session.initctl(&["version"])?.elapsed);
    }
    let status_idle = (0..sizes.status_calls)
        .map(|i| status_of(&session, classes, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| session.failure(&e))?;
    let (one_call, true_exec) = one_call(&session, sizes.one_call_runs)?;
    let storm = storm(&mut session, sizes);
    session.stop();
    Ok(ControlFigures {
        classes,
        list,
        status_idle,
        rss_idle_kib,
        anon_idle_kib,
        version,
        one_call,
        true_exec,
        storm,
    })
}

/// `initctl status JOB` and `/bin/true`, `runs` times each, in turns:
/// what a script calling initctl in a loop pays per call, against the
/// least any command costs.
fn one_call(session: &Session, runs: usize) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let mut calls = Vec::with_capacity(runs);
    let mut trues = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut status = std::process::Command::new(&session.bins.initctl);
        status
            .args(["status", "c0"])
            .env("UPSTART_SESSION", &session.address);
        calls.push(timed(&mut status)?);
        trues.push(timed(&mut std::process::Command::new("/bin/true"))?);
    }
    Ok((calls, trues))
}

/// One run of `cmd` (output captured), timed; it must succeed.
fn timed(cmd: &mut std::process::Command) -> Result<Duration, String> {
    cmd.stdin(std::process::Stdio::null());
    let start = Instant::now();
    let out = cmd.output().map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", out.status));
    }
    Ok(elapsed)
}

/// The storm: every class started again and again while status is asked.
fn storm(session: &mut Session, sizes: &Sizes) -> Result<StormFigures, Failure> {
    let classes = sizes.classes;
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let stop = stop.clone();
        let initctl = session.bins.initctl.clone();
        let address = session.address.clone();
        std::thread::spawn(move || {
            let mut done = 0;
            while !stop.load(Ordering::Relaxed) {
                let ok = std::process::Command::new(&initctl)
                    .args(["emit", "go"])
                    .env("UPSTART_SESSION", &address)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return Err(done);
                }
                done += 1;
            }
            Ok(done)
        })
    };
    // Into the storm before sampling.
    std::thread::sleep(Duration::from_millis(50));
    let status: Result<Vec<_>, _> = (0..sizes.storm_status_calls)
        .map(|i| status_of(session, classes, i))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let emits = storm.join().unwrap_or(Err(0));
    let (status, emits) = match (status, emits) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(e), _) => return Err(session.failure(&format!("{e} during the storm"))),
        (Ok(_), Err(done)) => {
            return Err(session.failure(&format!(
                "initctl emit go of {classes} tasks, after {done} in the storm"
            )))
        }
    };
    if emits == 0 {
        return Err(Failure::Failed(
            "the spawn storm did not complete one emit".into(),
        ));
    }
    // The control thread may still be sending the storm's signals: a
    // status call is answered behind them, so it returns once they are out.
    session.initctl(&["status", "c0"])?;
    std::thread::sleep(Duration::from_millis(1500));
    Ok(StormFigures {
        status,
        emits,
        rss_after_kib: session.memory_kib("VmRSS").unwrap_or(0),
        anon_after_kib: session.memory_kib("RssAnon").unwrap_or(0),
    })
}

/// Per-task emit cost with few and with many idle classes loaded.
pub struct ScalingFigure {
    pub tasks: usize,
    pub few: (usize, Duration),
    pub many: (usize, Duration),
    /// VmRSS and its anonymous part with the many classes loaded, idle
    /// (before any emit).
    pub rss_many_kib: u64,
    pub anon_many_kib: u64,
}

pub fn scaling(bins: &Binaries, sizes: &Sizes) -> Result<ScalingFigure, Failure> {
    let tasks = sizes.scaling_tasks;
    let run_with = |idle: usize| -> Result<(Duration, u64, u64), Failure> {
        let mut session = Session::start(
            bins,
            &[
                JobSet {
                    prefix: "t",
                    count: tasks,
                    text: GO_TASK,
                },
                JobSet {
                    prefix: "idle",
                    count: idle,
                    text: "task\nstart on never-emitted\nexec /bin/true\n",
                },
            ],
            &format!("idle{}", idle - 1),
        )?;
        // As in the control workload: memory after a quiet spell.
        std::thread::sleep(Duration::from_millis(1500));
        let rss = session.memory_kib("VmRSS").unwrap_or(0);
        let anon = session.memory_kib("RssAnon").unwrap_or(0);
        let mut v = Vec::new();
        for _ in 0..sizes.rounds {
            let run = session.initctl(&["emit", "go"])?;
            if !run.ok {
                return Err(session.failure(&format!(
                    "initctl emit go with {tasks} tasks and {idle} idle classes"
                )));
            }
            v.push(run.elapsed);
        }
        session.stop();
        Ok((median(&v), rss, anon))
    };
    let (few, many) = sizes.scaling_classes;
    let (few_time, ..) = run_with(few)?;
    let (many_time, rss_many_kib, anon_many_kib) = run_with(many)?;
    Ok(ScalingFigure {
        tasks,
        few: (few, few_time),
        many: (many, many_time),
        rss_many_kib,
        anon_many_kib,
    })
}

/// The stateful re-exec pause with running instances.
pub struct ReexecFigure {
    pub instances: usize,
    pub pause: Duration,
    /// Instances still running afterwards.
    pub survivors: usize,
}

/// Ask for a re-exec (D-Bus `Restart()`), then time until a new
/// connection's call is answered again.
pub fn reexec(bins: &Binaries, sizes: &Sizes) -> Result<ReexecFigure, Failure> {
    use outset::control::client::Client;
    let n = sizes.reexec_instances;
    let mut session = Session::start(
        bins,
        &[JobSet {
            prefix: "s",
            count: n,
            text: "start on go\nexec sleep 100000\n",
        }],
        &format!("s{}", n - 1),
    )?;
    if !session.initctl(&["emit", "go"])?.ok {
        return Err(session.failure(&format!("initctl emit go of {n} sleep jobs")));
    }
    // Answered only once the new image has its jobs back (a property such
    // as `version` needs no state and could be answered earlier).
    let last = format!("s{}", n - 1);
    let answers = || {
        Client::connect(&session.address).is_ok_and(|c| {
            c.manager::<_, zbus::OwnedObjectPath>("GetJobByName", &(last.as_str(),))
                .is_ok()
        })
    };
    if !answers() {
        return Err(session.failure("no answer before the re-exec"));
    }
    let pid = session.pid();
    let client = Client::connect(&session.address).map_err(|e| Failure::Failed(e.message))?;
    let start = Instant::now();
    // The reply may never come: the connection closes with the exec.
    let _ = client.manager::<_, ()>("Restart", &());
    drop(client);
    let deadline = start + Duration::from_secs(60);
    // The image that answers must be a new one: wait for the exec first
    // (the command line gains `--restart`).
    let restarted = || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"--restart"))
    };
    while !(restarted() && answers()) {
        if Instant::now() > deadline {
            return Err(session.failure("no answer within 60 s of the re-exec"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let pause = start.elapsed();
    let list = session.initctl(&["list"])?;
    let survivors = list
        .stdout
        .lines()
        .filter(|l| l.contains("start/running"))
        .count();
    session.stop();
    Ok(ReexecFigure {
        instances: n,
        pause,
        survivors,
    })
}

/// `outset run -- true` on no jobs against `sh -c true`.
pub struct RunFigure {
    pub rounds: usize,
    pub run: Duration,
    pub shell: Duration,
}

/// Time `program args` to its exit, which must be a success.
fn time_once(program: &std::path::Path, args: &[&std::ffi::OsStr]) -> Result<Duration, Failure> {
    let start = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| Failure::Failed(format!("{}: {e}", program.display())))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(Failure::Failed(format!(
            "{} exited with {status}",
            program.display()
        )));
    }
    Ok(took)
}

/// The whole of a run around a command that does nothing: start-up,
/// settling, the command, the teardown; the baseline is the shell
/// starting `true`, measured in the same run (alternating).
pub fn run_true(bins: &Binaries, sizes: &Sizes) -> Result<RunFigure, Failure> {
    let dir = std::env::temp_dir().join(format!("outset-bench-run-{}", std::process::id()));
    let conf = dir.join("conf");
    std::fs::create_dir_all(&conf).map_err(|e| Failure::Failed(e.to_string()))?;
    let logs = dir.join("logs");
    let run_args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--confdir".as_ref(),
        conf.as_os_str(),
        "--logdir".as_ref(),
        logs.as_os_str(),
        "--".as_ref(),
        "true".as_ref(),
    ];
    let shell_args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), "true".as_ref()];
    let mut run = Vec::new();
    let mut shell = Vec::new();
    let result: Result<(), Failure> = (|| {
        for _ in 0..sizes.run_rounds {
            run.push(time_once(&bins.init, &run_args)?);
            shell.push(time_once("/bin/sh".as_ref(), &shell_args)?);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    Ok(RunFigure {
        rounds: sizes.run_rounds,
        run: median(&run),
        shell: median(&shell),
    })
}
