//! Stateful re-exec (reexec.md): hand the whole state to a new image of
//! outset, which carries on supervising the same processes.
//!
//! The state travels as JSON on the descriptor passed with `--state-fd`:
//! a pipe that a forked writer fills while the new image starts, or a
//! memory file when no writer could be forked (see [`super::state_pipe`]);
//! every descriptor that must survive (status and script pipes of spawns in
//! flight, log ptys, files carried by events) is made inheritable first.
//! The payload is Upstart 1.13's layout (see [`crate::reexec::outset`]).

use mio::Interest;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use thiserror::Error;

use super::joblog::JobLog;
use super::world::Io;
use super::Daemon;
use crate::job::{Engine, Level};
use crate::reexec::{ExportInput, Handover, LiveLog, Payload, ReadError};

#[derive(Debug, Error)]
pub enum ReexecError {
    #[error("unable to serialise state: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An I/O object of the [`World`](super::world::World), by descriptor number.
#[derive(Debug, Serialize, Deserialize)]
enum IoState {
    Status {
        pid: i32,
        fd: RawFd,
        buf: Vec<u8>,
    },
    Log {
        pid: i32,
        fd: RawFd,
        path: PathBuf,
        pending: Vec<u8>,
    },
    Script {
        fd: RawFd,
        data: Vec<u8>,
        done: usize,
    },
}

/// The daemon's own part of the payload (`outset.daemon`); the engine and
/// the configuration sources travel in Upstart's layout.
#[derive(Debug, Serialize, Deserialize)]
struct DaemonState {
    io: Vec<IoState>,
    /// Scripts not sent yet: pid, text, write end of the script pipe.
    scripts: Vec<(i32, String, RawFd)>,
    /// Logs of ended processes held until the disk is writeable.
    unflushed: Vec<(PathBuf, Vec<u8>)>,
    disk_writeable: bool,
    event_fds: Vec<RawFd>,
    /// The job environment table `reset-env` goes back to.
    job_env: Vec<String>,
    log_priority: String,
    /// The descriptor limit jobs get (the one the first image was started
    /// with, before it raised its own).
    #[serde(default)]
    job_nofile: Option<(u64, u64)>,
    /// The sd_notify socket of `expect notify` jobs.
    #[serde(default)]
    notify_fd: Option<RawFd>,
}

/// outset's own payload, decoded: `None` if it is not outset's (an
/// Upstart payload, say).
/// The engine, the sources, the daemon's extras and the notified bus.
type Decoded = Option<(
    Engine,
    Vec<crate::config::ConfSource>,
    DaemonState,
    Option<String>,
)>;

/// Read the payload from the previous image, importing it as it arrives,
/// and decode it. Also gives every byte read (the whole text, unless
/// reading failed).
fn receive(file: File) -> (Result<Decoded, String>, Vec<u8>) {
    let mut reader = super::state_pipe::StateReader::new(file, super::state_pipe::state_wait());
    let read = {
        let buffered = std::io::BufReader::with_capacity(1 << 16, &mut reader);
        let mut de = serde_json::Deserializer::from_reader(buffered);
        crate::reexec::read_from(&mut de)
    };
    let outcome = match read {
        Ok(restored) => decode_restored(restored),
        // The previous image (or its writer) stopped sending.
        Err(ReadError::Json(e)) if e.is_io() => Err(format!("unable to read the state: {e}")),
        // Not JSON as it came, or not a state outset can take: the text as
        // a whole decides (it may need a lossy reading, or be Upstart's),
        // as with any other payload.
        Err(_) => match reader.drain() {
            Ok(()) => decode(&reader.kept),
            Err(e) => Err(format!("unable to read the state: {e}")),
        },
    };
    (outcome, reader.kept)
}

/// Decode and check outset's own payload (what `--state-fd` hands over).
/// Not outset's (no top-level `outset`): `None`, for the Upstart reader.
fn decode(data: &[u8]) -> Result<Decoded, String> {
    let text = String::from_utf8_lossy(data);
    let own = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| e.to_string())?
        .get(crate::reexec::outset::EXTRA_KEY)
        .is_some();
    if !own {
        return Ok(None);
    }
    decode_restored(crate::reexec::read(&text).map_err(|e| e.to_string())?)
}

fn decode_restored(restored: Option<crate::reexec::Restored>) -> Result<Decoded, String> {
    let Some(restored) = restored else {
        return Ok(None);
    };
    let state: DaemonState = serde_json::from_value(restored.daemon).map_err(|e| e.to_string())?;
    restored.imported.engine.validate()?;
    Ok(Some((
        restored.imported.engine,
        restored.imported.sources,
        state,
        restored.imported.bus_address,
    )))
}

/// The engine a previous image's payload carries, decoded and checked as
/// the restore does (for fuzzing the restore parser).
pub fn decode_state(data: &[u8]) -> Result<Engine, String> {
    decode(data)?
        .map(|(engine, ..)| engine)
        .ok_or_else(|| "not an outset payload".to_string())
}

impl Daemon {
    /// A session init's notified bus address, which the next image joins
    /// again (Upstart's `control_bus_address`); none for a system init,
    /// whose bus is always the system bus (in test mode the session bus of
    /// its environment).
    fn notified_bus(&self) -> Option<String> {
        if !self.config.user_mode {
            return None;
        }
        self.bus_address.lock().ok().and_then(|a| a.clone())
    }

    /// Join the bus the previous image was notified of (a session init).
    fn rejoin_bus(&mut self, address: Option<String>) {
        let Some(address) = address.filter(|_| self.config.user_mode) else {
            return;
        };
        self.log(
            Level::Debug,
            &format!("Joining notified D-Bus bus {address}"),
        );
        let _ = self.bus_call(crate::control::BusCall::Join {
            address,
            kind: crate::control::BusKind::Notified,
            reply: None,
        });
    }

    /// The state as JSON text (D-Bus `GetState()`).
    pub(super) fn state_json(&self) -> Result<String, ReexecError> {
        let (handover, daemon, _) = self.capture_daemon();
        let bus_address = self.notified_bus();
        let input = ExportInput {
            engine: &self.engine,
            sources: &self.config.sources,
            handover: &handover,
            daemon,
            bus_address: bus_address.as_deref(),
        };
        Ok(serde_json::to_string(&Payload::new(&input))?)
    }

    /// The daemon's part of the state: the descriptors the Upstart layout
    /// names, the daemon's own extras, and every descriptor handed over.
    fn capture_daemon(&self) -> (Handover, serde_json::Value, Vec<RawFd>) {
        let mut io = Vec::new();
        let mut handover = Handover {
            uid: nix::unistd::getuid().as_raw(),
            ..Handover::default()
        };
        for entry in self.world.io.values() {
            match entry {
                Io::Status { pid, file, buf } => {
                    handover.status.insert(*pid, file.as_raw_fd());
                    io.push(IoState::Status {
                        pid: *pid,
                        fd: file.as_raw_fd(),
                        buf: buf.clone(),
                    })
                }
                Io::Log { pid, file, log } => {
                    handover.logs.insert(
                        *pid,
                        LiveLog {
                            pty_fd: file.as_raw_fd(),
                            path: log.path.to_string_lossy().into_owned(),
                            unflushed: log.held().to_vec(),
                        },
                    );
                    io.push(IoState::Log {
                        pid: *pid,
                        fd: file.as_raw_fd(),
                        path: log.path.clone(),
                        pending: log.held().to_vec(),
                    })
                }
                Io::Script { file, data, done } => io.push(IoState::Script {
                    fd: file.as_raw_fd(),
                    data: data.clone(),
                    done: *done,
                }),
            }
        }
        // The same state gives the same text (GetState, tests).
        io.sort_by_key(|s| match s {
            IoState::Status { fd, .. } | IoState::Log { fd, .. } | IoState::Script { fd, .. } => {
                *fd
            }
        });
        let mut scripts: Vec<(i32, String, RawFd)> = self
            .world
            .scripts
            .iter()
            .map(|(pid, (text, fd))| (*pid, text.clone(), fd.as_raw_fd()))
            .collect();
        scripts.sort();
        for (pid, text, fd) in &scripts {
            handover.scripts.insert(*pid, (text.clone(), *fd));
        }
        let mut event_fds: Vec<RawFd> = self.world.event_fds.keys().copied().collect();
        event_fds.sort_unstable();
        let mut fds: Vec<RawFd> = io
            .iter()
            .map(|s| match s {
                IoState::Status { fd, .. }
                | IoState::Log { fd, .. }
                | IoState::Script { fd, .. } => *fd,
            })
            .collect();
        fds.extend(scripts.iter().map(|(_, _, fd)| *fd));
        let notify_fd = self.notify.as_ref().map(|n| n.raw_fd());
        fds.extend(notify_fd);
        let daemon = DaemonState {
            notify_fd,
            io,
            scripts,
            unflushed: self
                .world
                .unflushed
                .iter()
                .map(|l| (l.path.clone(), l.held().to_vec()))
                .collect(),
            disk_writeable: self.world.disk_writeable,
            event_fds,
            job_env: self.config.job_env.clone(),
            log_priority: super::logger::priority_name(&self.log_priority).to_string(),
            job_nofile: crate::spawn::nofile::job_limit(),
        };
        let daemon = serde_json::to_value(&daemon).unwrap_or(serde_json::Value::Null);
        (handover, daemon, fds)
    }

    /// Clear close-on-exec on every descriptor the payload names (files
    /// carried by events already are inheritable).
    fn make_inheritable(&self, fds: &[RawFd]) {
        for fd in fds {
            let _ = self.world.sys.set_cloexec(*fd, false);
        }
    }

    /// The command line for the next image: the original one without
    /// earlier `--state-fd N` and log-level flags, plus the new state fd,
    /// the current log level and `--restart`.
    fn next_argv(&self, state_fd: Option<RawFd>) -> Vec<String> {
        let mut out = Vec::new();
        let mut args = self.config.argv.iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--state-fd" => {
                    args.next();
                }
                "--debug" | "--verbose" | "-v" | "--error" | "--restart" => {}
                s if s.starts_with("--state-fd=") => {}
                _ => out.push(a.clone()),
            }
        }
        if let Some(fd) = state_fd {
            out.push("--state-fd".into());
            out.push(fd.to_string());
        }
        match super::logger::priority_name(&self.log_priority) {
            "debug" => out.push("--debug".into()),
            "info" => out.push("--verbose".into()),
            "error" | "fatal" => out.push("--quiet".into()),
            _ => {}
        }
        out.push("--restart".into());
        out
    }

    /// Re-exec statefully; returns only if that failed (PID 1 then simply
    /// carries on).
    pub(super) fn reexec(&mut self) {
        self.log(Level::Info, "Performing stateful re-exec");
        // Signals stay blocked from here on, in the writer child too.
        let _ = all_signals().thread_block();
        let (handover, daemon, fds) = self.capture_daemon();
        let bus_address = self.notified_bus();
        let input = ExportInput {
            engine: &self.engine,
            sources: &self.config.sources,
            handover: &handover,
            daemon,
            bus_address: bus_address.as_deref(),
        };
        self.make_inheritable(&fds);
        // The writer holds the job directories' watch until this image has
        // executed, so that the exec does not make the last close of it
        // (which waits for a kernel grace period, milliseconds).
        let linger: Vec<RawFd> = self.inotify.iter().map(|i| i.as_fd().as_raw_fd()).collect();
        let handed = super::state_pipe::hand_over(&Payload::new(&input), &linger);
        let state_fd = match handed {
            Ok(fd) => Some(fd),
            Err(e) => {
                self.log(
                    Level::Error,
                    &format!("Failed to generate serialisation data - reverting to stateless re-exec: {e}"),
                );
                None
            }
        };
        let argv = self.next_argv(state_fd.as_ref().map(|h| h.state.as_raw_fd()));
        self.exec_next(&argv, &fds);
        drop(state_fd);
    }

    /// Re-exec without state (after a stateful attempt failed): the new
    /// image starts afresh but never emits the startup event again.
    pub(super) fn reexec_stateless(&mut self) {
        self.log(Level::Info, "Performing stateless re-exec");
        let argv = self.next_argv(None);
        self.exec_next(&argv, &[]);
    }

    /// Exec the next image; returns only if that failed.
    fn exec_next(&mut self, argv: &[String], fds: &[RawFd]) {
        // Signals stay blocked across exec; the new image unblocks them.
        let _ = all_signals().thread_block();
        let cargs: Vec<std::ffi::CString> = argv
            .iter()
            .filter_map(|a| std::ffi::CString::new(a.as_str()).ok())
            .collect();
        let exe = std::ffi::CString::new("/proc/self/exe").unwrap_or_default();
        let path = cargs.first().cloned().unwrap_or(exe.clone());
        // argv[0] as started, so that an upgraded binary is picked up; only
        // if that path is gone, this very image.
        let err = if super::panic::exec_disabled() {
            Some(nix::Error::ENOEXEC)
        } else {
            match nix::unistd::execvp(&path, &cargs) {
                Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => {
                    nix::unistd::execv(&exe, &cargs).err()
                }
                other => other.err(),
            }
        };
        let reason = err.map_or("unknown error".to_string(), |e| e.desc().to_string());
        self.log(
            Level::Error,
            &format!(
                "Failed to re-execute {}: {reason}",
                argv.first().map_or("", String::as_str)
            ),
        );
        // Carry on as before (extensions.md §6): the descriptors handed
        // over become close-on-exec again, or every job spawned from now on
        // would inherit them (a script pipe held open by another process
        // never ends its shell's input). The control server was never
        // closed, so it keeps answering.
        for fd in fds {
            let _ = self.world.sys.set_cloexec(*fd, true);
        }
        let _ = self.handled_signals().thread_set_mask();
    }

    /// Restore the state a previous image left on `fd`. On failure the raw
    /// data is kept in LOGDIR/upstart.state and outset continues without it.
    pub(super) fn restore(&mut self, fd: RawFd) -> bool {
        // SAFETY: the previous image handed this descriptor to us.
        let file = unsafe { File::from_raw_fd(fd) };
        let (parsed, data) = receive(file);
        if self.config.write_state_file {
            self.keep_state(&data);
        }
        let (mut engine, sources, state, bus_address) = match parsed {
            Ok(Some(decoded)) => decoded,
            // Not outset's own payload: a live Upstart handing over.
            Ok(None) if self.restore_upstart(&data) => return true,
            Ok(None) => return self.restore_failed(&data, "not a usable Upstart payload"),
            Err(e) => return self.restore_failed(&data, &e),
        };
        // Options that describe this image, not the old one.
        engine.options.session_address = self.engine.options.session_address.clone();
        engine.options.no_cgroups = self.config.no_cgroups;
        engine.init_env = self.engine.init_env.clone();
        self.engine = engine;
        self.config.sources = sources;
        self.config.job_env = state.job_env;
        self.rejoin_bus(bus_address);
        let _ = super::logger::set_priority(&self.log_priority, &state.log_priority);
        self.world.disk_writeable = state.disk_writeable;
        if let Some((soft, hard)) = state.job_nofile {
            crate::spawn::nofile::set_job_limit(soft, hard);
        }
        for (path, pending) in state.unflushed {
            if self.keeps_held_output(&path) {
                self.world
                    .unflushed
                    .push(JobLog::with_pending(path, &pending));
            }
        }
        // Only descriptors really inherited are adopted, each once: a
        // payload naming others (or one twice) must not make outset close
        // descriptors it opened itself.
        let mut inherited = self.inherited_fds();
        let mut stray = 0usize;
        let mut adopt = |fd: RawFd| {
            let ok = inherited.remove(&fd);
            stray += usize::from(!ok);
            ok
        };
        for fd in state.event_fds.into_iter().filter(|fd| adopt(*fd)) {
            // SAFETY: inherited from the previous image, owned by us now.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            self.world.event_fds.insert(fd, owned);
        }
        for (pid, text, fd) in state.scripts.into_iter().filter(|s| adopt(s.2)) {
            // SAFETY: as above.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            let _ = self.world.sys.set_cloexec(fd, true);
            self.world.scripts.insert(pid, (text, owned));
        }
        let items: Vec<IoState> = state
            .io
            .into_iter()
            .filter(|item| match item {
                IoState::Status { fd, .. }
                | IoState::Log { fd, .. }
                | IoState::Script { fd, .. } => adopt(*fd),
            })
            .collect();
        let notify_fd = state.notify_fd.filter(|fd| adopt(*fd));
        if stray > 0 {
            self.log(
                Level::Warn,
                &format!("Ignoring {stray} descriptors the state names but did not hand over"),
            );
        }
        for item in items {
            let (fd, io, interest) = match item {
                IoState::Status { pid, fd, buf } => (
                    fd,
                    Io::Status {
                        pid,
                        file: own(fd),
                        buf,
                    },
                    Interest::READABLE,
                ),
                IoState::Log {
                    pid,
                    fd,
                    path,
                    pending,
                } => {
                    let owner = self.owner_of(pid);
                    let Some(path) = self.restored_log_path(pid, path, owner.as_ref()) else {
                        drop(own(fd));
                        continue;
                    };
                    let log = JobLog::with_pending(path, &pending);
                    (
                        fd,
                        Io::Log {
                            pid,
                            file: own(fd),
                            log,
                        },
                        Interest::READABLE,
                    )
                }
                IoState::Script { fd, data, done } => (
                    fd,
                    Io::Script {
                        file: own(fd),
                        data,
                        done,
                    },
                    Interest::WRITABLE,
                ),
            };
            let _ = self.world.sys.set_cloexec(fd, true);
            self.world.register_restored(io, interest);
        }
        if let Some(fd) = notify_fd {
            let _ = self.world.sys.set_cloexec(fd, true);
            // SAFETY: inherited from the previous image, owned by us now.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            match super::notify::NotifySocket::adopt(owned) {
                Ok(sock) => self.use_notify(sock),
                Err(e) => self.log(
                    Level::Warn,
                    &format!("Unable to take over the notify socket: {e}"),
                ),
            }
        }
        // Kill and readiness timers restored from the payload.
        let spawns = self.engine.spawns_in_flight();
        self.engine.reindex(&spawns);
        self.log(Level::Info, "Stateful re-exec completed");
        true
    }
}

impl Daemon {
    /// The state could not be used: keep the raw data in
    /// LOGDIR/upstart.state for post-mortem and carry on without it.
    fn restore_failed(&mut self, data: &[u8], why: &str) -> bool {
        self.keep_state(data);
        self.log(
            Level::Error,
            &format!("Failed to read serialisation data - reverting to stateless re-exec: {why}"),
        );
        false
    }

    /// Write the state received from the previous image to
    /// LOGDIR/upstart.state (mode 0400), for post-mortem or debugging.
    fn keep_state(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // A link planted at the name is replaced, never followed.
        let kept = super::replace_file::open_dir(&self.config.logdir)
            .and_then(|dir| super::replace_file::replace(&dir, "upstart.state", data, 0o400));
        if let Err(e) = kept {
            self.log(
                Level::Warn,
                &format!(
                    "Unable to keep the state in {}: {e}",
                    self.config.logdir.join("upstart.state").display()
                ),
            );
        }
    }

    /// The descriptors outset really inherited across the exec, never the
    /// standard ones: the only ones a payload may hand over.
    fn inherited_fds(&self) -> std::collections::HashSet<RawFd> {
        self.config
            .inherited_fds
            .iter()
            .copied()
            .filter(|fd| *fd > 2)
            .collect()
    }

    /// Take over from Upstart 1.6-1.13 (its JSON layout). Returns false if
    /// the data is not such a payload.
    fn restore_upstart(&mut self, data: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let imported = match crate::reexec::import(text) {
            Ok(i) => i,
            Err(e) => {
                self.log(
                    Level::Error,
                    &format!("Unable to import Upstart state: {e}"),
                );
                return false;
            }
        };
        // Adopt only descriptors that really were inherited (never the
        // standard ones): a stale payload must not make outset take over,
        // and later close, descriptors it opened itself.
        let inherited = self.inherited_fds();
        let ok = |fd: RawFd| inherited.contains(&fd);
        let mut engine = imported.engine;
        for ev in &mut engine.events {
            ev.fd = ev.fd.filter(|fd| ok(*fd));
        }
        engine.options.session_address = self.engine.options.session_address.clone();
        engine.options.user_mode = self.config.user_mode;
        engine.options.no_cgroups = self.config.no_cgroups;
        engine.options.cgroup_manager = imported.cgroup_manager;
        engine.init_env = self.engine.init_env.clone();
        let pid_of = |e: &Engine, job: &crate::job::JobKey, p: crate::config::ProcessType| {
            e.instance(job).map_or(0, |i| i.pid(p))
        };
        for (fd, job, process) in imported.spawns.iter().filter(|(fd, ..)| ok(*fd)) {
            let pid = pid_of(&engine, job, *process);
            let _ = self.world.sys.set_cloexec(*fd, true);
            self.world.register_restored(
                Io::Status {
                    pid,
                    file: own(*fd),
                    buf: Vec::new(),
                },
                Interest::READABLE,
            );
        }
        for log in imported.logs.into_iter().filter(|l| ok(l.pty_fd)) {
            let pid = pid_of(&engine, &log.job, log.process);
            if let Some(f) = log.file_fd.filter(|f| ok(*f)) {
                // Reopened when the next output arrives.
                drop(own(f));
            }
            let named = PathBuf::from(log.path);
            let Some(path) = self.restored_log_path(pid, named, Some(&log.job)) else {
                drop(own(log.pty_fd));
                continue;
            };
            let jl = JobLog::with_pending(path, &log.unflushed);
            let _ = self.world.sys.set_cloexec(log.pty_fd, true);
            self.world.register_restored(
                Io::Log {
                    pid,
                    file: own(log.pty_fd),
                    log: jl,
                },
                Interest::READABLE,
            );
        }
        for script in imported.scripts.into_iter().filter(|s| ok(s.shell_fd)) {
            let pid = pid_of(&engine, &script.job, script.process);
            let _ = self.world.sys.set_cloexec(script.shell_fd, true);
            // SAFETY: inherited from Upstart, owned by us now.
            let fd = unsafe { OwnedFd::from_raw_fd(script.shell_fd) };
            self.world.scripts.insert(pid, (script.script, fd));
        }
        for ev in &engine.events {
            if let Some(fd) = ev.fd {
                // SAFETY: as above.
                self.world
                    .event_fds
                    .insert(fd, unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        for fd in imported.stray_fds.into_iter().filter(|fd| ok(*fd)) {
            drop(own(fd));
        }
        self.engine = engine;
        self.rejoin_bus(imported.bus_address);
        if !imported.sources.is_empty() {
            self.config.sources = imported.sources;
        }
        if !imported.job_env.is_empty() {
            self.config.job_env = imported.job_env.clone();
            self.engine.global_env = imported.job_env;
        }
        self.log(
            Level::Info,
            &format!(
                "Stateful re-exec from Upstart completed: {}",
                imported.summary
            ),
        );
        true
    }
}

fn own(fd: RawFd) -> File {
    // SAFETY: inherited from the previous image, owned by us from now on.
    unsafe { File::from_raw_fd(fd) }
}

/// Every signal that can be blocked.
fn all_signals() -> nix::sys::signal::SigSet {
    let mut all = nix::sys::signal::SigSet::all();
    all.remove(nix::sys::signal::Signal::SIGKILL);
    all.remove(nix::sys::signal::Signal::SIGSTOP);
    all
}
