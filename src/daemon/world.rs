//! The real-world side of the engine's [`Sys`]: processes, their status
//! pipes, script pipes and log ptys, all registered with mio.

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use super::joblog::JobLog;
use super::logger;
use crate::control::{self, ToBroadcaster};
use crate::job::{self, Level, Reply, SpawnError, SpawnRequest, Sys};
use crate::spawn::{
    log_path, needs_helper, open_self_exe, prepare, record, PtyUnavailable, SpawnSettings,
};
use crate::sys::Syscall;

/// What a readiness token belongs to.
pub enum Io {
    /// Status pipe of a spawn in flight.
    Status { pid: i32, file: File, buf: Vec<u8> },
    /// pty master of a `console log` process.
    Log { pid: i32, file: File, log: JobLog },
    /// Script text still to be written to fd 9 of a shell.
    Script {
        file: File,
        data: Vec<u8>,
        done: usize,
    },
}

/// Outcomes that the loop hands to the engine after I/O.
pub enum Outcome {
    SpawnOk(i32),
    SpawnError(i32, String),
    /// A process we follow but did not fork (`expect fork|daemon`) has
    /// exited and was reaped elsewhere; its exit status is unknown.
    Vanished(i32),
}

impl Outcome {
    fn pid(&self) -> i32 {
        match self {
            Outcome::SpawnOk(pid) | Outcome::SpawnError(pid, _) | Outcome::Vanished(pid) => *pid,
        }
    }
}

/// Spawns whose incomplete status pipes are retried at the next spawn.
const RECENT_SPAWNS: usize = 16;

/// Read a non-blocking status pipe into `buf`; true once it is complete
/// (end of file, or an error that ends it), false if it would block.
fn read_to_end(file: &mut File, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; record::RECORD_SIZE];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// The engine's world: the real implementation of its [`Sys`] port.
///
/// Named for what it is to the engine, everything outside it (the
/// kernel through [`Syscall`], the mio registry, logs, the control
/// server), and not `Shell`, which in a supervisor of job scripts reads
/// as /bin/sh; nor `RealSys`, since beyond the port it keeps the loop's
/// own I/O table, pending replies and changes.
pub struct World {
    /// The kernel (a recording fake in unit tests).
    pub sys: Box<dyn Syscall>,
    pub registry: Registry,
    pub logger: slog::Logger,
    /// The logger's priority (see `logger::enabled`).
    pub log_priority: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub settings: SpawnSettings,
    pub logdir: PathBuf,
    pub io: HashMap<Token, Io>,
    next_token: usize,
    /// Scripts to send once a pid's exec succeeded.
    pub scripts: HashMap<i32, (String, OwnedFd)>,
    /// Engine answers to parked control calls, delivered by the loop.
    pub replies: Vec<(u64, Reply)>,
    /// Where object and signal changes go (the control server).
    pub control: Option<std::sync::mpsc::Sender<ToBroadcaster>>,
    /// The control side's copy of the job table: each change is noted in
    /// it at once (see `View::note`), before any process it concerns runs.
    pub view: Option<crate::control::view::SharedView>,
    /// Changes not yet handed to the control server (see `flush_changes`).
    pub(super) changes: Vec<control::Change>,
    /// How many of `changes` the read copy has (see `note_changes`).
    pub(super) noted: usize,
    /// Spawns whose status pipe was already complete when `spawn`
    /// returned, for the loop to hand to the engine.
    settled: std::collections::VecDeque<Outcome>,
    /// Status pipes of the last spawns, still open and not yet watched
    /// by epoll (see `settle_recent_spawns`, `watch_recent_spawns`).
    recent_status: Vec<Token>,
    /// Output of ended processes kept until the disk is writeable
    /// (process-spawning.md §7.4).
    pub unflushed: Vec<JobLog>,
    /// `notify-disk-writeable` has succeeded: logs are no longer kept.
    pub disk_writeable: bool,
    /// Files carried by events, open (and inheritable) while the event lives.
    pub event_fds: HashMap<i32, OwnedFd>,
    /// A pidfd for every process we followed (not our children), until it is
    /// reaped: signals go through it, never to a pid that may be reused.
    pidfds: HashMap<i32, (Token, OwnedFd)>,
    pid_tokens: HashMap<Token, i32>,
    /// Jobs whose `console log` fell back to `none` for want of a pty.
    no_pty: std::collections::HashSet<String>,
    /// `console log` output goes here instead of files.
    pub stdout: Option<super::stdout_log::StdoutLog>,
    /// Run mode: the environments of `stopped` events with a failed
    /// result, for the run-mode machine (`None`: not kept).
    pub failures: Option<Vec<Vec<String>>>,
    /// Run mode: the log files of this run (with their job and
    /// instance), each removed when its first process starts (`None`:
    /// logs are appended to, as Upstart did).
    pub run_logs: Option<std::collections::BTreeMap<PathBuf, (String, String)>>,
    /// Mounts whose lookups can hang: a child that tries a path there is
    /// forked, not waited for (see `spawn::remote_mounts`).
    remote_mounts: crate::spawn::remote_mounts::RemoteMounts,
}

fn file(fd: OwnedFd) -> File {
    File::from(fd)
}

impl World {
    pub fn new(
        sys: Box<dyn Syscall>,
        registry: Registry,
        logger: slog::Logger,
        log_priority: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        settings: SpawnSettings,
        logdir: PathBuf,
    ) -> Self {
        World {
            sys,
            registry,
            logger,
            log_priority,
            settings,
            logdir,
            io: HashMap::new(),
            next_token: super::tokens::FIRST_DYNAMIC,
            scripts: HashMap::new(),
            replies: Vec::new(),
            control: None,
            view: None,
            changes: Vec::new(),
            noted: 0,
            settled: Default::default(),
            recent_status: Vec::new(),
            unflushed: Vec::new(),
            disk_writeable: false,
            event_fds: HashMap::new(),
            pidfds: HashMap::new(),
            failures: None,
            run_logs: None,
            pid_tokens: HashMap::new(),
            no_pty: Default::default(),
            stdout: None,
            remote_mounts: Default::default(),
        }
    }

    /// Run mode's and a container's failures since the last call.
    pub fn take_failures(&mut self) -> Vec<Vec<String>> {
        self.failures
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Watch an I/O object inherited across a re-exec.
    pub fn register_restored(&mut self, io: Io, interest: Interest) {
        match &io {
            Io::Status { file, .. } | Io::Log { file, .. } | Io::Script { file, .. } => {
                let _ = self.sys.set_nonblocking(file.as_raw_fd());
            }
        }
        self.register(io, interest);
    }

    fn register(&mut self, io: Io, interest: Interest) -> Token {
        let token = self.insert_unwatched(io);
        self.watch(token, interest);
        token
    }

    /// Keep an I/O object that epoll does not watch (yet).
    fn insert_unwatched(&mut self, io: Io) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.io.insert(token, io);
        token
    }

    fn watch(&mut self, token: Token, interest: Interest) {
        let Some(io) = self.io.get(&token) else {
            return;
        };
        let fd = match io {
            Io::Status { file, .. } | Io::Log { file, .. } | Io::Script { file, .. } => {
                file.as_raw_fd()
            }
        };
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), token, interest) {
            logger::log(
                &self.logger,
                Level::Warn,
                &format!("Unable to watch descriptor: {e}"),
            );
        }
    }

    fn deregister(&mut self, token: Token) -> Option<Io> {
        let io = self.io.remove(&token)?;
        let fd = match &io {
            Io::Status { file, .. } | Io::Log { file, .. } | Io::Script { file, .. } => {
                file.as_raw_fd()
            }
        };
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        Some(io)
    }

    /// Service a ready token; returns a status-pipe outcome if one arrived.
    pub fn ready(&mut self, token: Token) -> Option<Outcome> {
        if let Some(&pid) = self.pid_tokens.get(&token) {
            return self.pidfd_ready(pid);
        }
        if token == super::tokens::STDOUT {
            if let Some(message) = self.stdout.as_mut().and_then(|out| out.flush()) {
                self.log(Level::Warn, message);
            }
            return None;
        }
        match self.io.get_mut(&token)? {
            Io::Status { .. } => self.read_status(token, true),
            Io::Log { .. } => {
                self.read_log(token, false);
                None
            }
            Io::Script { .. } => {
                self.write_script(token);
                None
            }
        }
    }

    /// Read the status pipe behind `token`; once it is complete, drop it
    /// (and stop watching it if epoll does) and say what it meant.
    fn read_status(&mut self, token: Token, watched: bool) -> Option<Outcome> {
        let Some(Io::Status { pid, file, buf }) = self.io.get_mut(&token) else {
            return None;
        };
        let pid = *pid;
        if !read_to_end(file, buf) {
            return None;
        }
        let io = if watched {
            self.deregister(token)
        } else {
            self.io.remove(&token)
        };
        let data = match io {
            Some(Io::Status { buf, .. }) => buf,
            _ => Vec::new(),
        };
        Some(self.status_outcome(pid, data))
    }

    /// Settle the status pipes of the last spawns that were still open
    /// when `clone` returned. The kernel lets a vfork parent go on before
    /// the child's exec has closed its close-on-exec descriptors, so under
    /// load most pipes are not complete at once; by the next spawn they
    /// usually are. Left to epoll, a whole storm's pipes stayed open until
    /// the turn ended, and every spawn copied and closed them all. Until
    /// then epoll is not told of them (two `epoll_ctl` calls a spawn).
    fn settle_recent_spawns(&mut self) {
        let recent = std::mem::take(&mut self.recent_status);
        let mut still = Vec::new();
        for token in recent {
            match self.read_status(token, false) {
                Some(outcome) => self.settled.push_back(outcome),
                None if self.io.contains_key(&token) => still.push(token),
                None => {}
            }
        }
        // A child that takes long to exec is left to epoll.
        let keep = still.len().saturating_sub(RECENT_SPAWNS);
        self.recent_status = still.split_off(keep);
        for token in still {
            self.watch(token, Interest::READABLE);
        }
    }

    /// Have epoll watch the status pipes of the last spawns that are still
    /// open: the loop calls this before it waits.
    pub fn watch_recent_spawns(&mut self) {
        for token in std::mem::take(&mut self.recent_status) {
            self.watch(token, Interest::READABLE);
        }
    }

    /// What a complete status pipe says: exec succeeded (no data) or the
    /// child's error record.
    fn status_outcome(&mut self, pid: i32, data: Vec<u8>) -> Outcome {
        if data.is_empty() {
            self.send_script(pid);
            return Outcome::SpawnOk(pid);
        }
        self.scripts.remove(&pid);
        let msg = record::message(&data).unwrap_or_else(|| {
            logger::log(
                &self.logger,
                Level::Warn,
                &format!(
                    "Temporary process spawn error: status record of {} bytes",
                    data.len()
                ),
            );
            "unable to read child status".to_string()
        });
        Outcome::SpawnError(pid, msg)
    }

    /// The next outcome that was complete when its spawn returned.
    pub fn take_settled(&mut self) -> Option<Outcome> {
        self.settled.pop_front()
    }

    /// Drain a pid's status pipe (it is dead, so this cannot block).
    pub fn drain_status(&mut self, pid: i32) -> Option<Outcome> {
        if let Some(i) = self.settled.iter().position(|o| o.pid() == pid) {
            return self.settled.remove(i);
        }
        let token = self
            .io
            .iter()
            .find(|(_, io)| matches!(io, Io::Status { pid: p, .. } if *p == pid))
            .map(|(t, _)| *t)?;
        let watched = !self.recent_status.contains(&token);
        self.read_status(token, watched)
    }

    fn send_script(&mut self, pid: i32) {
        let Some((text, fd)) = self.scripts.remove(&pid) else {
            return;
        };
        let _ = self.sys.set_nonblocking(fd.as_raw_fd());
        let data = format!("exec 9<&-\n{text}").into_bytes();
        let token = self.register(
            Io::Script {
                file: file(fd),
                data,
                done: 0,
            },
            Interest::WRITABLE,
        );
        self.write_script(token);
    }

    fn write_script(&mut self, token: Token) {
        let Some(Io::Script { file, data, done }) = self.io.get_mut(&token) else {
            return;
        };
        while let Some(rest) = data.get(*done..).filter(|r| !r.is_empty()) {
            match file.write(rest) {
                Ok(n) => *done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => break,
            }
        }
        self.deregister(token);
    }

    fn read_log(&mut self, token: Token, last: bool) {
        let Some(Io::Log { file, log, .. }) = self.io.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let mut eof = false;
        loop {
            match file.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    let data = chunk.get(..n).unwrap_or_default();
                    match self.stdout.as_mut() {
                        // The log's buffer holds the unfinished line.
                        Some(out) => {
                            let label = log.label();
                            if let Some(m) = out.take(&label, log.unfinished_line(), data, false) {
                                logger::log(&self.logger, Level::Warn, &m);
                            }
                        }
                        None => log.write(data),
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EIO: every slave is closed.
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if self.stdout.is_some() {
            if eof || last {
                if let Some(Io::Log { mut log, .. }) = self.deregister(token) {
                    let label = log.label();
                    let told = self
                        .stdout
                        .as_mut()
                        .and_then(|out| out.take(&label, log.unfinished_line(), &[], true));
                    if let Some(m) = told {
                        logger::log(&self.logger, Level::Warn, &m);
                    }
                }
            }
            return;
        }
        if !(eof || last) {
            let dropped = log.take_dropped(false);
            if dropped > 0 {
                let path = log.path.clone();
                self.report_dropped(&path, dropped);
            }
            return;
        }
        if let Some(Io::Log { mut log, .. }) = self.deregister(token) {
            if log.waiting_for_disk() && !self.disk_writeable {
                let dropped = log.take_dropped(true);
                self.report_dropped(&log.path, dropped);
                self.unflushed.push(log);
            } else {
                if log.flush().is_err() {
                    log.discard();
                }
                let dropped = log.take_dropped(true);
                self.report_dropped(&log.path, dropped);
            }
        }
    }

    /// Say once how much of a log's output was lost (see `JobLog::hold`).
    fn report_dropped(&self, path: &std::path::Path, dropped: u64) {
        if dropped > 0 {
            logger::log(
                &self.logger,
                Level::Warn,
                &format!(
                    "{}: dropped {dropped} bytes of job output that could not be written \
                     (at most {} bytes are held per log)",
                    path.display(),
                    super::joblog::MAX_HELD
                ),
            );
        }
    }

    /// `NotifyDiskWriteable`: write out every held log, stopping at the
    /// first failure.
    pub fn disk_writeable(&mut self) -> std::io::Result<()> {
        // Oldest first, so files fill in the order the output came.
        while !self.unflushed.is_empty() {
            let mut log = self.unflushed.remove(0);
            if let Err(e) = log.flush() {
                self.unflushed.insert(0, log);
                return Err(e);
            }
            let dropped = log.take_dropped(true);
            self.report_dropped(&log.path, dropped);
        }
        self.disk_writeable = true;
        Ok(())
    }

    /// Hold a pidfd for `pid` (a stopped tracee: a job's forked process
    /// that is not our child) and watch it, to learn of its end even if
    /// someone else reaps it.
    fn watch_pid(&mut self, pid: i32) {
        let Some(fd) = super::pidfd::open(&*self.sys, pid) else {
            return;
        };
        let token = Token(self.next_token);
        self.next_token += 1;
        let _ = self
            .registry
            .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE);
        self.pid_tokens.insert(token, pid);
        if let Some((old, fd)) = self.pidfds.insert(pid, (token, fd)) {
            self.pid_tokens.remove(&old);
            let _ = self.registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }

    fn forget_pid(&mut self, pid: i32) {
        if let Some((token, fd)) = self.pidfds.remove(&pid) {
            self.pid_tokens.remove(&token);
            let _ = self.registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }

    /// A watched process has exited. Our own children are reaped by the
    /// loop; anything else will never be, so report it here.
    fn pidfd_ready(&mut self, pid: i32) -> Option<Outcome> {
        let (_, fd) = self.pidfds.get(&pid)?;
        if !super::pidfd::gone_elsewhere(&*self.sys, fd) {
            return None;
        }
        self.forget_pid(pid);
        Some(Outcome::Vanished(pid))
    }

    /// Bring the read copy up to the changes made so far, under one lock
    /// (a task's walk from one process to the next makes a dozen). Done
    /// before anything a job's process could notice follows them: a
    /// spawn, a signal, and before the turn is published (which also
    /// answers callers); so a process that asks finds at least the state
    /// it was started or signalled in.
    pub(super) fn note_changes(&mut self) {
        let Some(new) = self.changes.get(self.noted..).filter(|c| !c.is_empty()) else {
            return;
        };
        if let Some(mut view) = self.view.as_ref().and_then(|v| v.write().ok()) {
            view.note_all(new);
        }
        self.noted = self.changes.len();
    }

    /// Hand the buffered changes to the control server in one message.
    /// Called once per turn of the loop, and before anything sent to it
    /// that must come after them (replies, the re-exec's `Restarted`).
    pub fn flush_changes(&mut self) {
        self.note_changes();
        self.noted = 0;
        if self.changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        if let Some(tx) = &self.control {
            let _ = tx.send(ToBroadcaster::Changes(changes));
        }
    }

    /// A process ended: take the rest of its output and close its log.
    pub fn process_ended(&mut self, pid: i32) {
        self.forget_pid(pid);
        let tokens: Vec<Token> = self
            .io
            .iter()
            .filter(|(_, io)| matches!(io, Io::Log { pid: p, .. } if *p == pid))
            .map(|(t, _)| *t)
            .collect();
        for t in tokens {
            self.read_log(t, true);
        }
        self.scripts.remove(&pid);
    }
}

impl Sys for World {
    fn spawn(&mut self, req: &SpawnRequest) -> Result<i32, SpawnError> {
        self.settle_recent_spawns();
        if self.settings.self_exe.is_none() && needs_helper(req) {
            let exe = open_self_exe().map_err(SpawnError::SelfExe)?;
            self.settings.self_exe = Some(std::sync::Arc::new(exe));
        }
        let mut settings = self.settings.clone();
        settings.no_log |= self.no_pty.contains(&req.job.job);
        let mut spawned = match prepare(req, &settings) {
            Ok(s) => s,
            Err(e) if PtyUnavailable::caused(&e) => {
                // The job logs no more; this attempt fails and the
                // engine's retry runs it with `console none`.
                logger::log(
                    &self.logger,
                    Level::Warn,
                    "Failed to create pty - disabling logging for job",
                );
                self.no_pty.insert(req.job.job.clone());
                return Err(SpawnError::Prepare(e));
            }
            Err(e) => return Err(SpawnError::Prepare(e)),
        };
        self.remote_mounts.refresh();
        let candidates = spawned.prepared.exe.iter().map(|c| c.as_bytes());
        spawned.prepared.fork = self.remote_mounts.holds_any(candidates);
        self.note_changes();
        let pid = self
            .sys
            .spawn(&spawned.prepared)
            .map_err(SpawnError::Fork)?;
        // The child's ends close here with `prepared`.
        drop(spawned.prepared);
        // Non-blocking from its creation (see `status_pipe`).
        let mut status = file(spawned.status_read);
        if let Some(master) = spawned.log_master {
            let path = log_path(&self.logdir, &req.job.job, &req.job.instance);
            let first_of_run = self.run_logs.as_mut().is_some_and(|logs| {
                logs.insert(
                    path.clone(),
                    (req.job.job.clone(), req.job.instance.clone()),
                )
                .is_none()
            });
            if first_of_run {
                // What an earlier run left (unlinked, not truncated: a
                // symlink in its place is not followed).
                let _ = std::fs::remove_file(&path);
            }
            let log = JobLog::new(path);
            self.register(
                Io::Log {
                    pid,
                    file: file(master),
                    log,
                },
                Interest::READABLE,
            );
        }
        if let Some(script) = spawned.script {
            self.scripts.insert(pid, script);
        }
        if let Some(mut view) = self.view.as_ref().and_then(|v| v.write().ok()) {
            view.note_process(&req.job.job, &req.job.instance, req.process.name(), pid);
        }
        // Our own child is not watched through a pidfd: the loop learns of
        // its end from waitid, and a descriptor held for every running job
        // would be copied into, and closed again by, every later spawn (with
        // thousands of jobs running, most of a spawn's cost). `kill` opens
        // one when it is needed.
        // The parent resumes once the child has exec'd or exited, so the
        // status pipe is usually complete already: then there is nothing
        // to watch (and no descriptor kept open across later spawns).
        let mut buf = Vec::new();
        if read_to_end(&mut status, &mut buf) {
            let outcome = self.status_outcome(pid, buf);
            self.settled.push_back(outcome);
        } else {
            let token = self.insert_unwatched(Io::Status {
                pid,
                file: status,
                buf,
            });
            self.recent_status.push(token);
        }
        Ok(pid)
    }

    fn kill(&mut self, pid: i32, signal: i32, group: bool) -> Result<(), Errno> {
        self.note_changes();
        if let Some((_, fd)) = self.pidfds.get(&pid) {
            return super::pidfd::kill(&*self.sys, fd, pid, signal, group).map_err(Errno::from_raw);
        }
        // Our own child: until the loop reaps it (and tells the engine, in
        // the same turn) its pid cannot be reused, so a pidfd opened now is
        // bound to it.
        if let Some(fd) = super::pidfd::open(&*self.sys, pid) {
            return super::pidfd::kill(&*self.sys, &fd, pid, signal, group)
                .map_err(Errno::from_raw);
        }
        // Without a pidfd (a kernel without pidfds) the pid is all there is.
        let pgid = if group {
            self.sys.getpgid(pid).unwrap_or(-1)
        } else {
            -1
        };
        // Never our own group (a reused pid, or a process that has not
        // left it) and never group 1: that would signal init itself, or
        // as PID 1 every process.
        let target = if pgid > 1 && pgid != self.sys.getpgrp() {
            -pgid
        } else {
            pid
        };
        self.sys.kill(target, signal)
    }

    fn log(&mut self, level: Level, message: String) {
        logger::log(&self.logger, level, &message);
    }

    fn apparmor_available(&mut self) -> bool {
        crate::spawn::apparmor::available()
    }

    fn logs(&self, level: Level) -> bool {
        logger::enabled(&self.log_priority, level)
    }

    fn changed(&mut self, change: job::Change) {
        if let (Some(failures), job::Change::EventEmitted(name, env)) =
            (&mut self.failures, &change)
        {
            if name == "stopped" && env.iter().any(|v| v == "RESULT=failed") {
                failures.push(env.clone());
            }
        }
        if self.control.is_none() {
            return;
        }
        let change = match change {
            job::Change::JobAdded(j) => control::Change::JobAdded(j),
            job::Change::JobRemoved(j) => control::Change::JobRemoved(j),
            job::Change::InstanceAdded(k) => control::Change::InstanceAdded(k.job, k.instance),
            job::Change::InstanceRemoved(k) => control::Change::InstanceRemoved(k.job, k.instance),
            job::Change::GoalChanged(k, g) => control::Change::GoalChanged(k.job, k.instance, g),
            job::Change::StateChanged(k, s) => control::Change::StateChanged(k.job, k.instance, s),
            job::Change::Failed(k, status) => control::Change::Failed(k.job, k.instance, status),
            job::Change::EventEmitted(name, env) => control::Change::EventEmitted(name, env),
        };
        self.changes.push(change);
    }

    fn ptrace_setoptions(&mut self, pid: i32, follow: bool) -> Result<(), Errno> {
        let opts = if follow {
            libc::PTRACE_O_TRACEFORK | libc::PTRACE_O_TRACEEXEC
        } else {
            0
        };
        self.sys.ptrace_setoptions(pid, opts)
    }

    fn ptrace_cont(&mut self, pid: i32, signal: i32) -> Result<(), Errno> {
        self.sys.ptrace_cont(pid, signal)
    }

    fn ptrace_detach(&mut self, pid: i32) -> Result<(), Errno> {
        self.sys.ptrace_detach(pid)
    }

    fn ptrace_new_child(&mut self, pid: i32) -> Result<i32, Errno> {
        let msg = self.sys.ptrace_geteventmsg(pid)?;
        // Stopped at its creation and traced by us: nobody can reap it yet.
        self.watch_pid(msg as i32);
        Ok(msg as i32)
    }

    fn watch_process(&mut self, pid: i32) {
        self.watch_pid(pid);
    }

    fn reply(&mut self, token: u64, reply: Reply) {
        self.replies.push((token, reply));
    }

    fn release_fd(&mut self, fd: i32) {
        self.event_fds.remove(&fd);
    }
}
