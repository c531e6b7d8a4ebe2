//! The loop's orderings around its children, played on the fake kernel:
//! real status pipes and epoll, no processes.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use mio::{Events, Poll};

use super::super::logger::slog_level;
use super::super::world::World;
use super::{apply, next_exit, run_queue};
use crate::config::{parse_job, ClassDefaults};
use crate::job::{Engine, EngineOptions, JobKey, Level, State};
use crate::spawn::SpawnSettings;
use crate::sys::fake::{Call, FakeSyscall};
use crate::sys::{ChildState, Errno};

/// Every log line, for the assertions.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl slog::Drain for Lines {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        self.0.lock().expect("lines").push(record.msg().to_string());
        Ok(())
    }
}

/// The engine and the world on a fake kernel, turned like the loop does.
struct Loop {
    engine: Engine,
    world: World,
    fake: FakeSyscall,
    poll: Poll,
    lines: Lines,
}

impl Loop {
    fn new(jobs: &[(&str, &str)]) -> Self {
        let fake = FakeSyscall::new(4242);
        let poll = Poll::new().expect("poll");
        let lines = Lines::default();
        let logger = slog::Logger::root(slog::Drain::fuse(lines.clone()), slog::o!());
        let priority = Arc::new(AtomicUsize::new(slog_level(Level::Debug).as_usize()));
        let settings = SpawnSettings {
            user_mode: true,
            no_log: true,
            debug: false,
            self_exe: None,
            terminal: None,
        };
        let mut world = World::new(
            Box::new(fake.clone()),
            poll.registry().try_clone().expect("registry"),
            logger,
            priority,
            settings,
            std::env::temp_dir(),
        );
        let mut engine = Engine::new(EngineOptions::default(), vec![], vec![]);
        let classes = jobs
            .iter()
            .map(|(name, text)| {
                parse_job(
                    name,
                    &format!("{name}.conf"),
                    text,
                    &ClassDefaults::default(),
                )
                .expect("parse")
            })
            .collect();
        engine.set_classes(&mut world, classes);
        Loop {
            engine,
            world,
            fake,
            poll,
            lines,
        }
    }

    fn start(&mut self, job: &str) {
        self.engine
            .start_job(&mut self.world, job, vec![], None)
            .expect("start");
        run_queue(&mut self.engine, &mut self.world);
    }

    fn stop(&mut self, job: &str) {
        self.engine
            .stop_job(&mut self.world, job, vec![], None)
            .expect("stop");
        run_queue(&mut self.engine, &mut self.world);
    }

    /// The part of a turn that follows the wait: ready descriptors (status
    /// pipes the fake has closed), then reaping (what the fake reports).
    fn turn(&mut self, descriptors: bool, reap: bool) {
        if descriptors {
            self.world.watch_recent_spawns();
            let mut events = Events::with_capacity(16);
            self.poll
                .poll(&mut events, Some(std::time::Duration::ZERO))
                .expect("poll");
            for ev in events.iter() {
                if let Some(outcome) = self.world.ready(ev.token()) {
                    apply(&mut self.engine, &mut self.world, outcome);
                }
            }
        }
        if reap {
            while let Some((pid, exit)) = next_exit(&mut self.engine, &mut self.world) {
                self.engine.child_exited(&mut self.world, pid, exit);
            }
        }
        run_queue(&mut self.engine, &mut self.world);
    }

    fn state(&self, job: &str) -> Option<State> {
        self.engine.instance(&JobKey::new(job, "")).map(|i| i.state)
    }

    fn main_pid(&self, job: &str) -> Option<i32> {
        self.engine
            .instance(&JobKey::new(job, ""))
            .map(|i| i.pid(crate::config::ProcessType::Main))
    }

    fn lines(&self) -> Vec<String> {
        self.lines.0.lock().expect("lines").clone()
    }

    fn logged(&self, text: &str) -> bool {
        self.lines().iter().any(|l| l.contains(text))
    }
}

const SERVICE: &str = "exec /bin/true\n";

/// A failed exec ends the same way whether the loop reads the status
/// record before it reaps the process, or reaps it first.
fn failed_exec(pipe_first: bool) -> Vec<String> {
    let mut l = Loop::new(&[("svc", SERVICE)]);
    l.start("svc");
    assert_eq!(l.state("svc"), Some(State::Spawned));
    let pid = l.main_pid("svc").expect("pid");
    l.fake.exec_fails(pid, libc::ENOENT);
    if pipe_first {
        l.turn(true, false);
        assert!(l.logged("Failed to spawn svc main process: unable to execute"));
    }
    l.fake.exit(pid, ChildState::Exited(255));
    // A turn that only reaps: the pipe is drained then, in the same turn.
    l.turn(false, true);
    assert_eq!(l.state("svc"), None, "{:#?}", l.lines());
    assert!(
        l.logged("Failed to spawn svc main process: unable to execute: No such file or directory"),
        "{:#?}",
        l.lines()
    );
    assert!(!l.logged("terminated with status 255"), "{:#?}", l.lines());
    assert!(l.fake.unreaped().is_empty());
    l.lines()
        .into_iter()
        .filter(|s| !s.contains(&format!("({pid})")))
        .collect()
}

#[test]
fn exit_reaped_before_its_status_pipe_is_read() {
    assert_eq!(failed_exec(false), failed_exec(true));
}

/// A process that exec'd and then exited: its exec is seen first in
/// either order, so the instance goes through running and ends as a
/// normal exit.
fn exec_then_exit(pipe_first: bool) -> Vec<String> {
    let mut l = Loop::new(&[("task", &format!("task\n{SERVICE}"))]);
    l.start("task");
    let pid = l.main_pid("task").expect("pid");
    l.fake.exec(pid);
    if pipe_first {
        l.turn(true, false);
        assert_eq!(l.state("task"), Some(State::Running));
    }
    l.fake.exit(pid, ChildState::Exited(0));
    l.turn(false, true);
    assert_eq!(l.state("task"), None, "{:#?}", l.lines());
    let lines = l.lines();
    assert!(
        lines
            .iter()
            .any(|s| s == "task state changed from post-start to running"),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|s| s.contains("Failed")), "{lines:#?}");
    // The event queue drains at other points of the turns; the job's own
    // course is the same.
    lines
        .into_iter()
        .filter(|s| s.starts_with("task "))
        .collect()
}

#[test]
fn exec_and_exit_seen_in_either_order() {
    assert_eq!(exec_then_exit(false), exec_then_exit(true));
}

#[test]
fn clone_failing_with_eagain_is_retried() {
    let mut l = Loop::new(&[("svc", SERVICE)]);
    l.fake.script_spawn(Err(Errno::EAGAIN));
    l.fake.script_spawn(Err(Errno::EAGAIN));
    l.start("svc");
    let spawns: Vec<Call> = l
        .fake
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Spawn(_)))
        .collect();
    assert_eq!(
        spawns,
        [
            Call::Spawn(Err(Errno::EAGAIN)),
            Call::Spawn(Err(Errno::EAGAIN)),
            Call::Spawn(Ok(100)),
        ]
    );
    let temporary = l
        .lines()
        .iter()
        .filter(|s| *s == "Temporary process spawn error: Resource temporarily unavailable")
        .count();
    assert_eq!(temporary, 2);
    // The failed attempts left no status pipe behind.
    assert_eq!(l.world.io.len(), 1);
    l.fake.exec(100);
    l.turn(true, true);
    assert_eq!(l.state("svc"), Some(State::Running));
}

#[test]
fn clone_failing_every_time_fails_the_job() {
    let mut l = Loop::new(&[("svc", SERVICE)]);
    for _ in 0..8 {
        l.fake.script_spawn(Err(Errno::EAGAIN));
    }
    l.start("svc");
    assert!(
        l.logged("Failed to spawn svc main process: Resource temporarily unavailable"),
        "{:#?}",
        l.lines()
    );
    assert_eq!(l.state("svc"), None);
    assert!(l.world.io.is_empty());
    // Nothing was started, so nothing is reaped.
    l.turn(true, true);
    assert!(l.fake.unreaped().is_empty());
}

#[test]
fn a_reused_pid_belongs_to_its_new_process() {
    let mut l = Loop::new(&[("first", SERVICE), ("second", SERVICE)]);
    l.fake.script_spawn(Ok(300));
    l.start("first");
    // The first process exits before its exec was seen, and is reaped.
    l.fake.exec(300);
    l.fake.exit(300, ChildState::Exited(0));
    l.turn(false, true);
    assert_eq!(l.state("first"), None);
    // The kernel hands the same pid to the next process.
    l.fake.script_spawn(Ok(300));
    l.start("second");
    assert_eq!(l.main_pid("second"), Some(300));
    // The first process's finished pipe was not taken for the new one's.
    l.turn(true, true);
    assert_eq!(l.state("second"), Some(State::Spawned));
    l.fake.exec(300);
    l.turn(true, true);
    assert_eq!(l.state("second"), Some(State::Running));
    // Signals reach it through a pidfd of its own.
    l.stop("second");
    assert_eq!(l.state("second"), Some(State::Killed));
    let calls = l.fake.calls();
    assert!(
        calls.contains(&Call::PidfdSignal(300, libc::SIGTERM, 1 << 2)),
        "{calls:?}"
    );
    // Its exit is its own, not the first job's again.
    l.fake.exit(300, ChildState::Killed(libc::SIGTERM));
    l.turn(true, true);
    assert_eq!(l.state("second"), None);
    let ends: Vec<String> = l
        .lines()
        .into_iter()
        .filter(|s| s.contains("main process (300) "))
        .collect();
    assert_eq!(
        ends,
        [
            "first main process (300) exited normally",
            "second main process (300) killed by TERM signal"
        ]
    );
}

#[test]
fn a_pidfd_of_an_ended_process_never_signals_its_successor() {
    let mut l = Loop::new(&[("svc", SERVICE)]);
    l.start("svc");
    let pid = l.main_pid("svc").expect("pid");
    let fd = super::super::pidfd::open(&*l.world.sys, pid).expect("pidfd");
    l.fake.exec(pid);
    l.fake.exit(pid, ChildState::Exited(0));
    l.turn(true, true);
    l.fake.script_spawn(Ok(pid));
    l.start("svc");
    assert_eq!(l.main_pid("svc"), Some(pid));
    assert_eq!(
        super::super::pidfd::kill(&*l.world.sys, &fd, pid, libc::SIGTERM, true),
        Err(libc::ESRCH)
    );
    assert!(!l.fake.calls().contains(&Call::Kill(-pid, libc::SIGTERM)));
}
