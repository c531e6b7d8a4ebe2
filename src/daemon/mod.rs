//! The daemon: one thread, one mio loop around the pure engine
//! (ARCHITECTURE.md "The loop"). Each iteration: wait, service ready
//! descriptors, handle signals, reap children, fire timers, drain the event
//! queue.

mod children;
mod control;
mod joblog;
pub mod logger;
mod memory;
pub(crate) mod panic;
mod pidfd;
mod reexec;
mod run_mode;
mod shell;
mod state_pipe;
mod system_stop;

pub use run_mode::RunSpec;

pub use panic::{contain, in_contained_section};
pub use reexec::decode_state;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

use crate::config::{load_sources, ClassDefaults, ConfSource};
use crate::job::{Engine, EngineOptions, Level};
use crate::pid1::signals::Meaning;
use crate::pid1::Mode;
use crate::spawn::SpawnSettings;
use shell::{Outcome, Shell};

const SIGNAL_TOKEN: Token = Token(0);
const INOTIFY_TOKEN: Token = Token(1);
const WAKER_TOKEN: Token = Token(2);

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("unable to set up the main loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("unable to set up signal handling: {0}")]
    Signals(#[from] nix::Error),
}

/// How the daemon was asked to run.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub sources: Vec<ConfSource>,
    pub defaults: ClassDefaults,
    pub logdir: PathBuf,
    pub user_mode: bool,
    pub no_log: bool,
    pub debug: bool,
    pub startup_event: Option<String>,
    pub log_level: Level,
    /// The job environment table to start from.
    pub job_env: Vec<String>,
    pub no_cgroups: bool,
    /// Machine, container, session init or `outset run`: decides what
    /// signals mean and how a system stop ends (pid1.md §5, extensions.md).
    pub mode: Mode,
    /// `outset run`: the command and how long to wait for the jobs.
    pub run: Option<RunSpec>,
    /// The private socket's abstract name instead of the mode's default.
    pub control_name: Option<String>,
    /// Log to /dev/kmsg (PID 1 of a machine) instead of stderr.
    pub kmsg: bool,
    /// `--no-dbus`: never join a message bus.
    pub no_dbus: bool,
    /// The command line outset started with (re-exec reuses it).
    pub argv: Vec<String>,
    /// `--restart`: this image was re-exec'd.
    pub restart: bool,
    /// `--state-fd`: where the previous image left its state.
    pub state_fd: Option<i32>,
    /// Descriptors open when outset started (what a previous image or
    /// Upstart handed over); only these may be adopted from a payload.
    pub inherited_fds: Vec<i32>,
}

/// Session-end progress (pid1.md §8).
struct Quiesce {
    /// `shutdown` (SIGTERM) or `logout` (EndSession).
    reason: &'static str,
    started: Instant,
    /// The current phase began; the checks run once a second from it.
    phase_started: Instant,
    last_tick: Instant,
    /// Waiting up to 5 s for jobs started by `session-end`.
    waiting: bool,
    max_kill_timeout: u64,
}

pub struct Daemon {
    engine: Engine,
    shell: Shell,
    poll: Poll,
    signals: SignalFd,
    inotify: Option<nix::sys::inotify::Inotify>,
    config: DaemonConfig,
    quiesce: Option<Quiesce>,
    /// A stateful re-exec was asked for (Restart(), SIGTERM as PID 1).
    reexec_requested: bool,
    requests: Option<std::sync::mpsc::Receiver<crate::control::Envelope>>,
    /// The copy of classes and instances the control side reads.
    view: Option<crate::control::view::SharedView>,
    pending: control::Pending,
    session_file: Option<PathBuf>,
    log_priority: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The built-in system stop, once started.
    system_stop: Option<system_stop::SystemStop>,
    /// `outset run` progress.
    run: Option<run_mode::RunState>,
    /// The console accepted KDSIGACCEPT: SIGWINCH is handled.
    keyboard: bool,
    /// Work was done since memory was last handed back (see memory.rs).
    busy_since_trim: bool,
}

impl Daemon {
    pub fn new(config: DaemonConfig) -> Result<Self, DaemonError> {
        memory::tune();
        let poll = Poll::new()?;
        let (logger, log_control) = logger::stderr_logger(config.log_level);
        let log_priority = log_control.priority.clone();
        if config.kmsg {
            // The kernel rate-limits /dev/kmsg writers unless told not to.
            let _ = std::fs::write("/proc/sys/kernel/printk_devkmsg", "on\n");
            log_control
                .kmsg
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // Exactly the signals the loop reads through the signalfd are
        // blocked (a re-exec'd image arrives with everything blocked).
        let keyboard = config.mode == Mode::Machine
            && std::process::id() == 1
            && crate::pid1::signals::take_keyboard_signals();
        let mask: SigSet = crate::pid1::signals::handled(config.mode, keyboard);
        mask.thread_set_mask()?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNAL_TOKEN,
            Interest::READABLE,
        )?;
        let settings = SpawnSettings {
            user_mode: config.user_mode,
            no_log: config.no_log,
            debug: config.debug,
            self_exe: None,
        };
        let shell = Shell::new(
            Box::new(crate::sys::LinuxSyscall),
            poll.registry().try_clone()?,
            logger,
            log_priority.clone(),
            settings,
            config.logdir.clone(),
        );
        let options = EngineOptions {
            user_mode: config.user_mode,
            no_cgroups: config.no_cgroups,
            ..Default::default()
        };
        let init_env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
        let engine = Engine::new(options, config.job_env.clone(), init_env);
        let run = config.run.clone().map(run_mode::RunState::new);
        let mut daemon = Daemon {
            engine,
            shell,
            poll,
            signals,
            inotify: None,
            config,
            quiesce: None,
            reexec_requested: false,
            requests: None,
            view: None,
            pending: control::Pending::default(),
            session_file: None,
            log_priority,
            system_stop: None,
            run,
            keyboard,
            busy_since_trim: true,
        };
        daemon.watch_sources();
        // Room for a descriptor or two per running job (spawn/nofile.rs).
        if let Err(e) = crate::spawn::nofile::raise() {
            daemon.log(
                Level::Warn,
                &format!("Unable to raise the descriptor limit: {e}"),
            );
        }
        daemon.open_control()?;
        Ok(daemon)
    }

    /// Open the private D-Bus server (control.md §1.1). Failing to listen
    /// is a warning, not fatal.
    fn open_control(&mut self) -> Result<(), DaemonError> {
        let waker = std::sync::Arc::new(mio::Waker::new(self.poll.registry(), WAKER_TOKEN)?);
        panic::set_waker(waker.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let name = if let Some(name) = &self.config.control_name {
            name.clone()
        } else if self.config.user_mode {
            let uid = nix::unistd::getuid();
            format!("/com/ubuntu/upstart-session/{uid}/{}", std::process::id())
        } else {
            "/com/ubuntu/upstart".to_string()
        };
        let root = nix::unistd::getuid().is_root();
        let view = crate::control::view::SharedView::default();
        let handle = crate::control::EngineHandle {
            tx,
            waker,
            anyone_may_control: self.config.user_mode || (!root && std::process::id() != 1),
            view: view.clone(),
        };
        // A re-exec'd image waits a little for the address to come free.
        let patience = std::time::Duration::from_millis(if self.config.restart { 2000 } else { 0 });
        match crate::control::start(&name, handle, patience) {
            Ok(broadcast) => {
                if !self.config.user_mode && !self.config.no_dbus {
                    // Early in boot there is no bus yet; failing is silent.
                    let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                        .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".to_string());
                    let (tx, _rx) = futures_channel::oneshot::channel();
                    let _ = broadcast.send(crate::control::ToBroadcaster::ConnectBus(address, tx));
                }
                self.shell.control = Some(broadcast);
                self.requests = Some(rx);
                self.shell.view = Some(view.clone());
                self.view = Some(view);
                let address = format!("unix:abstract={name}");
                if self.config.user_mode {
                    if self.config.mode == Mode::User {
                        self.write_session_file(&address);
                    }
                    self.engine.options.session_address = Some(address);
                }
            }
            Err(e) => self.log(
                Level::Warn,
                &format!("Unable to listen for private connections: {e}"),
            ),
        }
        Ok(())
    }

    /// `$XDG_RUNTIME_DIR/upstart/sessions/PID.session` for `initctl
    /// list-sessions` and friends.
    fn write_session_file(&mut self, address: &str) {
        let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) else {
            return;
        };
        if !runtime.is_absolute() {
            return;
        }
        use std::os::unix::fs::DirBuilderExt;
        let dir = runtime.join("upstart/sessions");
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir);
        let file = dir.join(format!("{}.session", std::process::id()));
        match std::fs::write(&file, format!("UPSTART_SESSION={address}\n")) {
            Ok(()) => self.session_file = Some(file),
            Err(e) => self.log(
                Level::Warn,
                &format!("Unable to write session file {}: {e}", file.display()),
            ),
        }
    }

    /// The private control address, once listening.
    pub fn address(&self) -> Option<&str> {
        self.engine.options.session_address.as_deref()
    }

    /// The largest `kill timeout` among classes with instances, at least 5.
    fn max_kill_timeout(&self) -> u64 {
        self.engine
            .slots
            .values()
            .filter(|s| !s.instances.is_empty())
            .map(|s| s.class.kill_timeout.max(0) as u64)
            .max()
            .unwrap_or(0)
            .max(5)
    }

    /// Name every instance still alive as having failed to stop.
    fn warn_failed_to_stop(&mut self) {
        let left: Vec<String> = self
            .engine
            .slots
            .iter()
            .flat_map(|(job, s)| {
                s.instances
                    .keys()
                    .map(move |i| crate::job::JobKey::new(job, i).to_string())
            })
            .collect();
        for job in left {
            self.log(Level::Warn, &format!("job {job} failed to stop"));
        }
    }

    fn log(&mut self, level: Level, msg: &str) {
        logger::log(&self.shell.logger, level, msg);
    }

    /// Watch every source directory (and its subdirectories) for changes;
    /// any change triggers a reload.
    fn watch_sources(&mut self) {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let Ok(ino) = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) else {
            return;
        };
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE;
        for source in &self.config.sources {
            let mut dirs = vec![source.path.clone()];
            if let Some(parent) = source
                .path
                .parent()
                .filter(|_| source.kind == crate::config::SourceKind::File)
            {
                dirs = vec![parent.to_path_buf()];
            }
            while let Some(dir) = dirs.pop() {
                if ino.add_watch(&dir, flags).is_err() {
                    continue;
                }
                if let Ok(rd) = std::fs::read_dir(&dir) {
                    // The directory entry's type, not a stat of every job
                    // file (a stat only for symbolic links, which may lead
                    // to a directory).
                    dirs.extend(rd.filter_map(Result::ok).filter_map(|e| {
                        let t = e.file_type().ok()?;
                        let path = e.path();
                        (t.is_dir() || (t.is_symlink() && path.is_dir())).then_some(path)
                    }));
                }
            }
        }
        let fd = ino.as_fd().as_raw_fd();
        if self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), INOTIFY_TOKEN, Interest::READABLE)
            .is_ok()
        {
            self.inotify = Some(ino);
        }
    }

    /// CLOCK_MONOTONIC in milliseconds: one clock for the whole system, so
    /// timers armed before a re-exec still mean the same instant after it.
    fn now_ms(&self) -> u64 {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
            .unwrap_or(0)
    }

    /// Load (or reload) every configuration source.
    pub fn reload(&mut self) {
        let loaded = load_sources(&self.config.sources, &self.config.defaults);
        for e in &loaded.source_errors {
            self.log(Level::Warn, &e.to_string());
        }
        for e in &loaded.errors {
            self.log(Level::Error, &e.to_string());
        }
        let mut classes: Vec<_> = loaded
            .registered()
            .into_iter()
            .map(|j| j.class.clone())
            .collect();
        classes.extend(self.run_classes());
        self.engine.set_classes(&mut self.shell, classes);
        self.rebuild_view();
    }

    /// Run until the session ends, with panics contained (panic.rs):
    /// what the `outset` binary runs. Returns the exit status.
    pub fn run(&mut self) -> i32 {
        self.run_contained()
    }

    /// Run without panic containment, for harnesses that run the daemon
    /// inside their own process and must see its panics (the fuzzers).
    pub fn run_uncontained(&mut self) -> i32 {
        self.run_loop()
    }

    fn run_loop(&mut self) -> i32 {
        if let Some(fd) = self.config.state_fd {
            if self.restore(fd) {
                // Answer about the restored jobs at once, not only after
                // the configuration has been read again: callers that
                // came during the restore, too.
                self.rebuild_view();
                self.serve_requests();
                if let Some(tx) = &self.shell.control {
                    let _ = tx.send(crate::control::ToBroadcaster::Change(
                        crate::control::Broadcast::Restarted,
                    ));
                }
            }
        } else if self.config.restart {
            self.log(
                Level::Warn,
                "Stateful re-exec supported but stateless re-exec requested",
            );
        }
        self.reload();
        if self.config.mode == Mode::User {
            let dirs: Vec<String> = self
                .config
                .sources
                .iter()
                .map(|s| s.path.display().to_string())
                .collect();
            let msg = format!(
                "outset session init running as pid {}; jobs from {}; job logs in {}; \
                 control with UPSTART_SESSION={} initctl ...; \
                 kill -HUP {0} reloads, kill -TERM {0} (or Ctrl-C) ends the session",
                std::process::id(),
                dirs.join(", "),
                self.config.logdir.display(),
                self.address().unwrap_or("(none)")
            );
            self.log(Level::Message, &msg);
        }
        // A re-exec'd image never emits the startup event again.
        if let (Some(name), false) = (self.config.startup_event.clone(), self.config.restart) {
            self.engine.emit(&name, Vec::new());
        }
        if self.config.user_mode {
            // Orphans of the session come back to us.
            if let Err(e) = self.shell.sys.set_child_subreaper() {
                self.log(
                    Level::Warn,
                    &format!("Unable to register as subreaper: {e}"),
                );
                self.engine.emit("child-subreaper-failed", Vec::new());
            }
        }
        let mut events = Events::with_capacity(256);
        loop {
            self.engine.set_time(self.now_ms());
            self.engine.fire_timers(&mut self.shell);
            loop {
                // Once the stop sweeps processes away, nothing new starts.
                if !self.system_stop.as_ref().is_some_and(|s| s.frozen()) {
                    self.run_queue();
                }
                self.flush_replies();
                // Run mode may start its command or the stop: handle what
                // that queued before waiting.
                if !self.check_run() {
                    break;
                }
            }
            if let Some(status) = self.check_system_stop() {
                return status;
            }
            if let Some(status) = self.check_quiesce() {
                if let Some(f) = self.session_file.take() {
                    let _ = std::fs::remove_file(f);
                }
                return status;
            }
            self.publish();
            self.shell.watch_recent_spawns();
            let mut timeout = self.timeout();
            if self.busy_since_trim {
                timeout = Some(timeout.map_or(memory::QUIET, |t| t.min(memory::QUIET)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.log(Level::Error, &format!("poll failed: {e}"));
                }
                continue;
            }
            if events.is_empty() {
                if std::mem::take(&mut self.busy_since_trim) {
                    memory::trim();
                }
            } else {
                self.busy_since_trim = true;
            }
            let mut signalled = false;
            let mut conf_changed = false;
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL_TOKEN => signalled = true,
                    INOTIFY_TOKEN => conf_changed = true,
                    WAKER_TOKEN => {}
                    token => {
                        if let Some(outcome) = self.shell.ready(token) {
                            self.apply(outcome);
                        }
                    }
                }
            }
            self.engine.set_time(self.now_ms());
            if conf_changed {
                if let Some(ino) = &self.inotify {
                    while matches!(ino.read_events(), Ok(ev) if !ev.is_empty()) {}
                }
                self.reload();
            }
            if signalled {
                self.handle_signals();
            }
            self.reap();
            // Requests are cheap to poll for; serving them every iteration
            // also covers wake-ups that raced with another event.
            self.serve_requests();
            if let Some(status) = self.check_other_threads() {
                return status;
            }
            if std::mem::take(&mut self.reexec_requested) {
                self.engine.set_time(self.now_ms());
                self.run_queue();
                self.flush_replies();
                self.reexec();
            }
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let now = self.now_ms();
        let mut t = self
            .engine
            .next_deadline()
            .map(|d| Duration::from_millis(d.saturating_sub(now)));
        if self.quiesce.is_some() {
            let second = Duration::from_secs(1);
            t = Some(t.map_or(second, |t| t.min(second)));
        }
        if self.system_stop.is_some() || self.run_settling() {
            let tick = system_stop::SystemStop::tick();
            t = Some(t.map_or(tick, |t| t.min(tick)));
        }
        t
    }

    /// Drain the event queue, handing the engine the outcomes of spawns
    /// that were complete at once (which can queue more events).
    fn run_queue(&mut self) {
        children::run_queue(&mut self.engine, &mut self.shell);
    }

    fn apply(&mut self, outcome: Outcome) {
        children::apply(&mut self.engine, &mut self.shell, outcome);
    }

    /// The signals the loop reads through its signalfd in this mode.
    fn handled_signals(&self) -> SigSet {
        crate::pid1::signals::handled(self.config.mode, self.keyboard)
    }

    /// Act on the signals read from the signalfd (pid1.md §5): the reload
    /// first, SIGTERM's meaning last.
    fn handle_signals(&mut self) {
        let mut meanings = Vec::new();
        while let Ok(Some(info)) = self.signals.read_signal() {
            meanings.push(crate::pid1::signals::meaning(
                self.config.mode,
                info.ssi_signo as i32,
            ));
        }
        if meanings.contains(&Meaning::Reload) {
            self.log(Level::Info, "Reloading configuration");
            self.reload();
        }
        let mut last = None;
        for m in meanings {
            match m {
                Meaning::Event(name) => {
                    self.engine.emit(name, Vec::new());
                }
                Meaning::Forward(sig) => self.run_forward(sig),
                Meaning::Reexec | Meaning::Quiesce | Meaning::Stop(_) => last = Some(m),
                Meaning::Reload | Meaning::Nothing => {}
            }
        }
        match last {
            Some(Meaning::Quiesce) => self.start_quiesce("shutdown"),
            Some(Meaning::Stop(action)) => self.start_system_stop(action, true, 0),
            Some(Meaning::Reexec) => {
                let argv0 = self.config.argv.first().cloned().unwrap_or_default();
                self.log(Level::Warn, &format!("Re-executing {argv0}"));
                self.reexec_requested = true;
            }
            _ => {}
        }
    }

    /// Reap every exited child (see `children::next_exit`).
    fn reap(&mut self) {
        while let Some((pid, exit)) = children::next_exit(&mut self.engine, &mut self.shell) {
            self.run_child_exited(pid, exit);
            self.engine.child_exited(&mut self.shell, pid, exit);
        }
    }

    /// Start ending the session: SIGTERM (`shutdown`, straight to the kill
    /// phase) or EndSession (`logout`, which first gives jobs that start on
    /// `session-end` up to 5 seconds). Only the first request counts.
    pub(super) fn start_quiesce(&mut self, reason: &'static str) {
        if self.quiesce.is_some() {
            return;
        }
        self.log(Level::Info, &format!("Quiescing due to {reason} request"));
        self.engine.no_respawn = true;
        let env = vec![format!("TYPE={reason}")];
        let interested = reason == "logout"
            && self.engine.slots.values().any(|s| {
                s.start_on.as_ref().is_some_and(|t| {
                    t.could_match(
                        &crate::event::EventRef {
                            id: 0,
                            name: "session-end",
                            env: &env,
                        },
                        &[],
                    )
                })
            });
        self.engine.emit("session-end", env);
        let now = Instant::now();
        self.quiesce = Some(Quiesce {
            reason,
            started: now,
            phase_started: now,
            last_tick: now,
            waiting: interested,
            max_kill_timeout: 5,
        });
        if interested {
            self.engine.stop_all(&mut self.shell);
        } else {
            self.kill_phase();
        }
    }

    /// Stop every instance and allow the longest kill timeout (at least 5 s).
    fn kill_phase(&mut self) {
        let max = self.max_kill_timeout();
        self.engine.stop_all(&mut self.shell);
        if let Some(q) = &mut self.quiesce {
            q.waiting = false;
            q.max_kill_timeout = max;
            q.phase_started = Instant::now();
        }
    }

    /// Returns the exit status once the session is over.
    fn check_quiesce(&mut self) -> Option<i32> {
        let q = self.quiesce.as_ref()?;
        // No instance left after the queue was drained: done at once.
        let mut done = !self.engine.has_instances();
        let mut timed_out = false;
        if !done && q.last_tick.elapsed() >= Duration::from_secs(1) {
            let phase = q.phase_started.elapsed();
            let (waiting, max) = (q.waiting, q.max_kill_timeout);
            if let Some(q) = &mut self.quiesce {
                q.last_tick = Instant::now();
            }
            if waiting && (phase >= Duration::from_secs(5) || !self.engine.has_processes()) {
                self.kill_phase();
            } else if !waiting && phase.as_secs() > max {
                timed_out = true;
            }
            done = timed_out || !self.engine.has_processes();
        }
        if !done {
            return None;
        }
        let q = self.quiesce.as_ref()?;
        let (reason, elapsed) = (q.reason, q.started.elapsed());
        if timed_out {
            self.warn_failed_to_stop();
        }
        let took = match elapsed.as_secs() {
            0 => "<1 second".to_string(),
            1 => "1 second".to_string(),
            n => format!("{n} seconds"),
        };
        self.log(
            Level::Info,
            &format!("Quiesce {reason} sequence took {took}"),
        );
        Some(0)
    }
}
