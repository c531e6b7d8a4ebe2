//! The daemon: one thread, one mio loop around the pure engine
//! (ARCHITECTURE.md "The loop"). Each iteration: wait, service ready
//! descriptors, handle signals, reap children, fire timers, drain the event
//! queue.

mod children;
mod conf_watch;
mod control;
mod fatal_signals;
mod joblog;
mod lifecycle;
pub mod logger;
mod memory;
mod notify;
mod panic;
mod pidfd;
mod reexec;
mod replace_file;
mod restore_checks;
mod run_mode;
mod session_end;
mod state_pipe;
mod stdout_log;
mod system_stop;
mod tokens;
mod world;

pub use run_mode::RunSpec;

pub use reexec::decode_state;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll};
use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

use crate::config::{load_sources_watching, ClassDefaults, ConfSource};
use crate::job::{Engine, EngineOptions, Level};
use crate::lifecycle::Requester;
use crate::pid1::signals::Meaning;
use crate::pid1::Mode;
use crate::spawn::SpawnSettings;
use world::{Outcome, World};

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
    /// Keep the state received from the previous image in
    /// LOGDIR/upstart.state (`--write-state-file`).
    pub write_state_file: bool,
    /// Descriptors open when outset started (what a previous image or
    /// Upstart handed over); only these may be adopted from a payload.
    pub inherited_fds: Vec<i32>,
}

pub struct Daemon {
    engine: Engine,
    world: World,
    poll: Poll,
    signals: SignalFd,
    inotify: Option<nix::sys::inotify::Inotify>,
    /// What the last load said about directories it left out.
    skipped_dirs: Vec<String>,
    config: DaemonConfig,
    /// A session init's end (pid1.md §8).
    session_end: crate::lifecycle::SessionEnd,
    /// A stateful re-exec was asked for (Restart(), SIGTERM as PID 1).
    reexec_requested: bool,
    requests: Option<std::sync::mpsc::Receiver<crate::control::Envelope>>,
    /// The copy of classes and instances the control side reads.
    view: Option<crate::control::view::SharedView>,
    pending: control::Pending,
    session_file: Option<PathBuf>,
    log_priority: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The built-in system stop.
    system_stop: crate::lifecycle::SystemStop,
    /// `outset run` progress.
    run: Option<crate::lifecycle::RunMode>,
    /// A lifecycle machine said to exit with this status.
    exit_status: Option<i32>,
    /// The console accepted KDSIGACCEPT: SIGWINCH is handled.
    keyboard: bool,
    /// Work was done since memory was last handed back (see memory.rs).
    busy_since_trim: bool,
    /// The sd_notify socket of `expect notify` jobs.
    notify: Option<notify::NotifySocket>,
    /// The bus init is on or wants to be on (the control plane keeps it).
    bus_address: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Daemon {
    pub fn new(config: DaemonConfig) -> Result<Self, DaemonError> {
        memory::tune();
        fatal_signals::install();
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
            tokens::SIGNAL,
            Interest::READABLE,
        )?;
        let settings = SpawnSettings {
            user_mode: config.user_mode,
            no_log: config.no_log,
            debug: config.debug,
            self_exe: None,
            terminal: config.run.as_ref().and_then(|r| r.terminal),
        };
        let world = World::new(
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
        let mut daemon = Daemon {
            engine,
            world,
            poll,
            signals,
            inotify: None,
            skipped_dirs: Vec::new(),
            config,
            session_end: Default::default(),
            reexec_requested: false,
            requests: None,
            view: None,
            pending: control::Pending::default(),
            session_file: None,
            log_priority,
            system_stop: Default::default(),
            run: None,
            exit_status: None,
            keyboard,
            busy_since_trim: true,
            notify: None,
            bus_address: Default::default(),
        };
        let now = daemon.now_ms();
        daemon.run = daemon.config.run.as_ref().map(|spec| spec.machine(now));
        if daemon.run.is_some() || daemon.config.mode == Mode::Container {
            daemon.world.failures = Some(Vec::new());
        }
        if daemon.run.is_some() {
            daemon.world.run_logs = Some(Default::default());
        }
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
        let waker = std::sync::Arc::new(mio::Waker::new(self.poll.registry(), tokens::WAKER)?);
        panic::set_waker(waker.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let name = if let Some(name) = &self.config.control_name {
            name.clone()
        } else if self.config.user_mode {
            let uid = nix::unistd::getuid();
            format!("/com/ubuntu/upstart-session/{uid}/{}", std::process::id())
        } else if self.config.mode == Mode::Session {
            // Several test inits may run at once, beside a real one: each
            // keeps its private socket to itself.
            let uid = nix::unistd::getuid();
            format!("/com/ubuntu/upstart-test/{uid}/{}", std::process::id())
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
        let bus = crate::control::BusOptions {
            log: self.world.logger.clone(),
            address: self.bus_address.clone(),
        };
        match crate::control::start(&name, handle, patience, bus) {
            Ok(broadcast) => {
                self.world.control = Some(broadcast);
                if !self.config.user_mode && !self.config.no_dbus {
                    // Early in boot there is no bus yet; failing is silent,
                    // and the bus is joined once its socket appears.
                    self.join_bus();
                }
                self.requests = Some(rx);
                self.world.view = Some(view.clone());
                self.view = Some(view);
                let address = format!("unix:abstract={name}");
                if self.config.user_mode {
                    if self.config.mode == Mode::User {
                        self.write_session_file(&address);
                    }
                    self.engine.options.session_address = Some(address);
                }
            }
            // Abstract addresses belong to the network namespace: a
            // container sharing one with another init finds it taken.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => self.log(
                Level::Error,
                &format!(
                    "Unable to listen on unix:abstract={name}: another init in this network \
                     namespace holds it (containers sharing a network namespace?); initctl, \
                     shutdown and telinit here reach that init, not this one, so this init \
                     cannot be controlled; its jobs keep running"
                ),
            ),
            Err(e) => self.log(
                Level::Warn,
                &format!("Unable to listen for private connections: {e}"),
            ),
        }
        Ok(())
    }

    /// Join the bus of a system init (no-op when already on one).
    fn join_bus(&mut self) {
        if let Some((address, kind)) = self.bus_address() {
            let _ = self.bus_call(crate::control::BusCall::Join {
                address,
                kind,
                reply: None,
            });
        }
    }

    /// The message bus a system init joins: the system bus, or in
    /// Upstart's test mode (`--session`) the session bus, which must be
    /// named in the environment.
    fn bus_address(&mut self) -> Option<(String, crate::control::BusKind)> {
        use crate::control::BusKind;
        if self.config.mode != Mode::Session {
            let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|_| "unix:path=/run/dbus/system_bus_socket".to_string());
            return Some((address, BusKind::System));
        }
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok();
        if address.is_none() {
            self.log(
                Level::Warn,
                "Unable to connect to the D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set",
            );
        }
        address.map(|a| (a, BusKind::Session))
    }

    /// Hand `call` to the keeper of the bus connection; gives it back
    /// when there is no control server to take it.
    pub(super) fn bus_call(
        &self,
        call: crate::control::BusCall,
    ) -> Option<crate::control::BusCall> {
        use crate::control::ToBroadcaster;
        let Some(control) = &self.world.control else {
            return Some(call);
        };
        match control.send(ToBroadcaster::Bus(call)) {
            Ok(()) => None,
            Err(std::sync::mpsc::SendError(ToBroadcaster::Bus(call))) => Some(call),
            Err(_) => None,
        }
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
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&runtime);
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let name = format!("{}.session", std::process::id());
        let dir = runtime.join("upstart/sessions");
        let written = replace_file::open_dir(&runtime)
            .and_then(|d| replace_file::own_subdir(&d, "upstart", uid))
            .and_then(|d| replace_file::own_subdir(&d, "sessions", uid))
            .and_then(|d| {
                let text = format!("UPSTART_SESSION={address}\n");
                replace_file::replace(&d, &name, text.as_bytes(), 0o644)
            });
        let file = dir.join(name);
        match written {
            Ok(()) => {
                fatal_signals::remember_session_file(&file);
                self.session_file = Some(file);
            }
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

    /// Send `console log` output to init's standard output, each line
    /// prefixed with its job's name, instead of files.
    pub fn log_to_stdout(&mut self) {
        match stdout_log::StdoutLog::open(&self.world.registry) {
            Ok(out) => self.world.stdout = Some(out),
            Err(e) => self.log(
                Level::Warn,
                &format!("Unable to log job output to standard output: {e}"),
            ),
        }
    }

    /// A start-up message for whoever reads init's log (shown unless
    /// `--quiet`).
    pub fn announce(&mut self, msg: &str) {
        self.log(Level::Message, msg);
    }

    fn log(&mut self, level: Level, msg: &str) {
        logger::log(&self.world.logger, level, msg);
    }

    /// Set up the inotify descriptor that makes any change in the job
    /// directories a reload. The directories themselves are watched as each
    /// load reads them (`reload`), so that ones made later are watched too;
    /// for a single-file source, its directory.
    fn watch_sources(&mut self) {
        use nix::sys::inotify::{InitFlags, Inotify};
        let Ok(ino) = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) else {
            return;
        };
        for source in &self.config.sources {
            if source.kind == crate::config::SourceKind::File {
                if let Some(parent) = source.path.parent() {
                    let _ = ino.add_watch(parent, conf_watch::watch_flags());
                }
            }
        }
        let fd = ino.as_fd().as_raw_fd();
        if self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), tokens::INOTIFY, Interest::READABLE)
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
        // Each directory is watched just before it is read: a file written
        // after the read is a change the watch reports. Watching a
        // directory again keeps its one watch.
        let inotify = self.inotify.as_ref();
        let loaded =
            load_sources_watching(&self.config.sources, &self.config.defaults, &mut |dir| {
                if let Some(ino) = inotify {
                    let _ = ino.add_watch(dir, conf_watch::watch_flags());
                }
            });
        for e in &loaded.source_errors {
            self.log(Level::Warn, &e.to_string());
        }
        // A loop or second name is said when it first appears, not again
        // on every reload while it stays.
        let skipped: Vec<String> = loaded.skipped_dirs.iter().map(|e| e.to_string()).collect();
        for line in skipped.iter().filter(|l| !self.skipped_dirs.contains(l)) {
            logger::log(&self.world.logger, Level::Warn, line);
        }
        self.skipped_dirs = skipped;
        let registered: std::collections::HashSet<&str> = loaded
            .registered()
            .into_iter()
            .map(|j| j.name.as_str())
            .collect();
        for (i, e) in loaded.errors.iter().enumerate() {
            self.log(Level::Error, &e.to_string());
            // Say what the error costs, unless another directory provides
            // the job anyway.
            let rejected = loaded.rejected.iter().find(|(at, _)| *at == i);
            if let Some((_, name)) = rejected.filter(|(_, n)| !registered.contains(n.as_str())) {
                self.log(
                    Level::Error,
                    &format!("job {name} not loaded: {} has errors", e.path()),
                );
            }
        }
        // Copies, made while the load's scratch memory is still held, so
        // that what init keeps sits together above it and the scratch,
        // freed below, goes back to the kernel in whole pages. The name
        // is copied too: one shared with the parse would pin a page of
        // scratch per class.
        let mut classes: Vec<_> = loaded
            .registered()
            .into_iter()
            .map(|j| crate::config::JobClass {
                name: std::sync::Arc::from(&*j.class.name),
                ..j.class.clone()
            })
            .collect();
        classes.extend(self.run_classes());
        self.engine.set_classes(&mut self.world, classes);
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
                self.drop_lost_processes();
                // Answer about the restored jobs at once, not only after
                // the configuration has been read again: callers that
                // came during the restore, too.
                self.rebuild_view();
                self.serve_requests();
                if let Some(tx) = &self.world.control {
                    let _ = tx.send(crate::control::ToBroadcaster::Change(
                        crate::control::Change::Restarted,
                    ));
                }
            }
        } else if self.config.restart {
            self.log(
                Level::Warn,
                "Stateful re-exec supported but stateless re-exec requested",
            );
        }
        // Not handed over (a stateless start, an Upstart payload): a new one.
        if self.notify.is_none() {
            self.open_notify();
        } else if let Some(n) = &self.notify {
            self.engine.options.notify_socket = Some(n.address.clone());
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
            if let Err(e) = self.world.sys.set_child_subreaper() {
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
            self.engine.fire_timers(&mut self.world);
            loop {
                // Once the stop sweeps processes away, nothing new starts.
                if !self.system_stop.sweeping() {
                    self.run_queue();
                }
                self.flush_replies();
                self.answer_after_queue();
                // Run mode may start its command or the stop, a failed
                // job the container's stop: handle what that queued
                // before waiting.
                if !self.check_run() && !self.check_container_failures() {
                    break;
                }
            }
            if let Some(status) = self.check_system_stop() {
                self.finish_calls();
                return status;
            }
            if let Some(status) = self.check_quiesce() {
                if let Some(f) = self.session_file.take() {
                    let _ = std::fs::remove_file(f);
                }
                self.finish_calls();
                return status;
            }
            self.publish();
            self.world.watch_recent_spawns();
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
                    self.engine.release_spares();
                    memory::trim();
                }
            } else {
                self.busy_since_trim = true;
            }
            let mut signalled = false;
            let mut conf_changed = false;
            let mut notified = self.notify.as_ref().is_some_and(|n| n.backlog);
            for ev in events.iter() {
                match ev.token() {
                    tokens::SIGNAL => signalled = true,
                    tokens::INOTIFY => conf_changed = true,
                    tokens::WAKER => {}
                    tokens::NOTIFY => notified = true,
                    token => {
                        if let Some(outcome) = self.world.ready(token) {
                            self.apply(outcome);
                        }
                    }
                }
            }
            self.engine.set_time(self.now_ms());
            if conf_changed {
                let mut reload = false;
                if let Some(ino) = &self.inotify {
                    while let Ok(batch) = ino.read_events() {
                        if batch.is_empty() {
                            break;
                        }
                        reload |= batch.iter().any(conf_watch::makes_reload);
                    }
                }
                if reload {
                    self.reload();
                }
            }
            if signalled {
                self.handle_signals();
            }
            // Before reaping: a sender that has just exited is still known.
            if notified {
                self.read_notifications();
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
                // Restart() is answered before the execution cuts its
                // connection.
                self.write_replies();
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
        if let Some(d) = self.lifecycle_deadline() {
            let d = Duration::from_millis(d.saturating_sub(now));
            t = Some(t.map_or(d, |t| t.min(d)));
        }
        if self.notify.as_ref().is_some_and(|n| n.backlog) {
            t = Some(Duration::ZERO);
        }
        t
    }

    /// Drain the event queue, handing the engine the outcomes of spawns
    /// that were complete at once (which can queue more events).
    fn run_queue(&mut self) {
        children::run_queue(&mut self.engine, &mut self.world);
    }

    fn apply(&mut self, outcome: Outcome) {
        children::apply(&mut self.engine, &mut self.world, outcome);
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
                Meaning::JoinBus if !self.config.no_dbus && !self.config.user_mode => {
                    let _ = self.bus_call(crate::control::BusCall::Retry);
                }
                Meaning::Reexec | Meaning::Quiesce | Meaning::Stop(_) => last = Some(m),
                Meaning::Reload | Meaning::JoinBus | Meaning::Nothing => {}
            }
        }
        match last {
            Some(Meaning::Quiesce) => self.start_quiesce(Requester::System),
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
        while let Some((pid, exit)) = children::next_exit(&mut self.engine, &mut self.world) {
            self.run_child_exited(pid, exit);
            self.engine.child_exited(&mut self.world, pid, exit);
        }
    }
}
