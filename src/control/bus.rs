//! init on a message bus: joining it, and staying on it.
//!
//! One task on the control runtime, the keeper, owns init's bus
//! connection. It joins when asked (the system bus at start-up,
//! `NotifyDBusAddress`, SIGUSR1), and also by itself: when the connection
//! drops it says so and tries again, and while it is off the bus it
//! watches the directory of the bus socket with inotify, so that a bus
//! started or restarted later is joined without anyone sending a signal.
//! Addresses without a socket file (abstract, tcp) are tried again with
//! back-off instead. Nothing here runs on the engine's thread.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_channel::{mpsc as channel, oneshot};
use futures_util::StreamExt;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use zbus::connection::Builder;
use zbus::Connection;
use zruntime::{AsyncIo, Shared, SharedRuntime};

use super::dispatch::{serve, Objects};
use super::outbox::Outbox;
use super::protocol::{Answer, CallError, Value};
use super::server::{Subscriber, ToBroadcaster, BUS_NAME};
use crate::job::Level;

/// How long one attempt to join (connect, authenticate, `Hello`, own the
/// name) may take: a bus daemon that is stopped must not hold the keeper.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry after a failed attempt; each next one waits twice as
/// long.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// With a socket file to watch, retries stop once they would wait longer
/// than this (the watch takes over); without one, they go on at this
/// interval.
const LAST_RETRY: Duration = Duration::from_secs(30);
const WATCHED_LAST_RETRY: Duration = Duration::from_secs(4);

/// Which bus, as init's messages name it (control.md §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusKind {
    /// The system bus (system init).
    System,
    /// The session bus (Upstart's test mode, `--session`).
    Session,
    /// The bus `NotifyDBusAddress` named (session init).
    Notified,
}

impl BusKind {
    fn name(self) -> &'static str {
        match self {
            BusKind::System => "D-Bus system bus",
            BusKind::Session => "D-Bus session bus",
            BusKind::Notified => "notified D-Bus bus",
        }
    }
}

/// What the keeper is asked to do.
pub enum BusCall {
    /// Join the bus at `address` unless on a bus already (then this is a
    /// no-op); the outcome goes to `reply`. The address is kept: a failed
    /// join is tried again when its socket appears.
    Join {
        address: String,
        kind: BusKind,
        reply: Option<oneshot::Sender<Answer>>,
    },
    /// SIGUSR1: off the bus, try now, and say so.
    Retry,
}

/// What the keeper hears.
enum Input {
    Call(BusCall),
    /// The connection of this generation ended.
    Closed(u64),
    /// The watched directory changed.
    Changed,
    /// A retry timer of this round fired.
    Tick(u64),
}

/// How the keeper reports and what it shares.
pub struct BusOptions {
    pub log: slog::Logger,
    /// The address of the bus init is on or wants to be on (what a
    /// re-exec hands over).
    pub address: Arc<Mutex<Option<String>>>,
}

/// Start the keeper; calls go through the returned sender.
pub(super) fn spawn(
    rt: &SharedRuntime,
    objects: Arc<Objects>,
    subscribers: mpsc::Sender<ToBroadcaster>,
    options: BusOptions,
) -> channel::UnboundedSender<BusCall> {
    let (calls_tx, calls) = channel::unbounded();
    let (inputs_tx, inputs) = channel::unbounded();
    let keeper = Keeper {
        rt: rt.clone(),
        objects,
        subscribers,
        options,
        inputs: inputs_tx,
        target: None,
        connected: false,
        generation: 0,
        round: 0,
        delay: FIRST_RETRY,
        watch: None,
    };
    let all = futures_util::stream::select(calls.map(Input::Call), inputs);
    rt.spawn("control bus keeper", keeper.run(all)).detach();
    calls_tx
}

struct Keeper {
    rt: SharedRuntime,
    objects: Arc<Objects>,
    subscribers: mpsc::Sender<ToBroadcaster>,
    options: BusOptions,
    /// The keeper's own inputs (closed connections, the watch, timers).
    inputs: channel::UnboundedSender<Input>,
    target: Option<(String, BusKind)>,
    connected: bool,
    /// Counts connections, so that a late `Closed` of an old one is
    /// told apart.
    generation: u64,
    /// Counts retry rounds, so that an old round's timer is ignored.
    round: u64,
    delay: Duration,
    watch: Option<Watch>,
}

impl Keeper {
    async fn run(mut self, mut inputs: impl futures_util::Stream<Item = Input> + Unpin) {
        while let Some(input) = inputs.next().await {
            match input {
                Input::Call(BusCall::Join {
                    address,
                    kind,
                    reply,
                }) => self.join(address, kind, reply).await,
                Input::Call(BusCall::Retry) => self.retry().await,
                Input::Closed(generation) => {
                    if generation == self.generation && self.connected {
                        self.connected = false;
                        if let Some((_, kind)) = &self.target {
                            let msg = format!("Disconnected from {}", kind.name());
                            self.log(Level::Warn, &msg);
                        }
                        self.fresh_round();
                        self.attempt_quietly().await;
                    }
                }
                Input::Changed => {
                    self.rewatch();
                    if !self.connected && self.socket_present() {
                        self.fresh_round();
                        self.attempt_quietly().await;
                    }
                }
                Input::Tick(round) => {
                    if round == self.round && !self.connected {
                        self.attempt_quietly().await;
                    }
                }
            }
        }
    }

    fn log(&self, level: Level, msg: &str) {
        crate::daemon::logger::log(&self.options.log, level, msg);
    }

    async fn join(
        &mut self,
        address: String,
        kind: BusKind,
        reply: Option<oneshot::Sender<Answer>>,
    ) {
        if self.connected {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(Value::Unit));
            }
            return;
        }
        if let Ok(mut kept) = self.options.address.lock() {
            *kept = Some(address.clone());
        }
        self.target = Some((address, kind));
        // A different address may live elsewhere.
        self.watch = None;
        self.fresh_round();
        let outcome = self.attempt().await;
        if outcome.is_err() {
            self.schedule();
        }
        if let Some(reply) = reply {
            let _ = reply.send(
                outcome
                    .map(|()| Value::Unit)
                    .map_err(|e| CallError::new("org.freedesktop.DBus.Error.Failed", e)),
            );
        }
    }

    /// SIGUSR1 (pid1.md §5): when off the bus, try at once.
    async fn retry(&mut self) {
        let Some((_, kind)) = self.target.clone() else {
            return;
        };
        if self.connected {
            return;
        }
        self.log(Level::Info, &format!("Reconnecting to {}", kind.name()));
        self.fresh_round();
        if let Err(e) = self.attempt().await {
            let msg = format!("Unable to connect to the {}: {e}", kind.name());
            self.log(Level::Warn, &msg);
            self.schedule();
        }
    }

    fn fresh_round(&mut self) {
        self.round += 1;
        self.delay = FIRST_RETRY;
    }

    async fn attempt_quietly(&mut self) {
        if self.attempt().await.is_err() {
            self.schedule();
        }
    }

    /// One attempt to join the target bus.
    async fn attempt(&mut self) -> Result<(), String> {
        let Some((address, kind)) = self.target.clone() else {
            return Err("no bus address".into());
        };
        let joined = self
            .rt
            .timeout(JOIN_TIMEOUT, join_bus(&self.rt, &address, &self.objects))
            .await;
        let (subscriber, closed) = match joined {
            Ok(Ok(joined)) => joined,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out".into()),
        };
        self.connected = true;
        self.generation += 1;
        let (generation, inputs) = (self.generation, self.inputs.clone());
        self.rt
            .spawn("control bus watch", async move {
                let _ = closed.await;
                let _ = inputs.unbounded_send(Input::Closed(generation));
            })
            .detach();
        let _ = self.subscribers.send(ToBroadcaster::Subscribed(subscriber));
        // On the bus, the directory need not be watched.
        self.unwatch();
        self.log(Level::Debug, &format!("Connected to {}", kind.name()));
        Ok(())
    }

    /// After a failure: watch the socket's directory, and try again after
    /// a while. With a socket file to watch, only while the file is there
    /// and for a few seconds (a bus that just made its socket may not
    /// listen yet); the watch does the rest.
    fn schedule(&mut self) {
        let watched = self.ensure_watch();
        let last = if watched {
            WATCHED_LAST_RETRY
        } else {
            LAST_RETRY
        };
        if watched && (self.delay > last || !self.socket_present()) {
            return;
        }
        let delay = self.delay.min(last);
        self.delay = (self.delay * 2).min(LAST_RETRY);
        let (round, inputs, rt) = (self.round, self.inputs.clone(), self.rt.clone());
        self.rt
            .spawn("control bus retry", async move {
                rt.sleep(delay).await;
                let _ = inputs.unbounded_send(Input::Tick(round));
            })
            .detach();
    }

    fn socket_path(&self) -> Option<PathBuf> {
        self.target.as_ref().and_then(|(a, _)| socket_path(a))
    }

    fn socket_present(&self) -> bool {
        self.socket_path()
            .is_some_and(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()))
    }

    /// Watch the nearest existing directory on the way to the socket;
    /// false when there is nothing to watch.
    fn ensure_watch(&mut self) -> bool {
        let Some(socket) = self.socket_path() else {
            return false;
        };
        if self.watch.is_none() {
            self.watch = Watch::start(&self.rt, self.inputs.clone());
        }
        match &mut self.watch {
            Some(w) => w.follow(&socket),
            None => false,
        }
    }

    fn rewatch(&mut self) {
        if !self.connected {
            self.ensure_watch();
        }
    }

    fn unwatch(&mut self) {
        if let Some(w) = &mut self.watch {
            w.stop();
        }
    }
}

/// An inotify watch on one directory, whose events a task of its own
/// turns into `Input::Changed`.
struct Watch {
    io: Arc<AsyncIo<Inotify, Shared>>,
    current: Option<(PathBuf, WatchDescriptor)>,
    /// The reading task; it ends when this handle is dropped.
    _reader: zruntime::Task<(), Shared>,
}

impl Watch {
    fn start(rt: &SharedRuntime, inputs: channel::UnboundedSender<Input>) -> Option<Watch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let io = Arc::new(AsyncIo::new(rt, ino).ok()?);
        let reading = io.clone();
        let reader = rt.spawn("control bus socket watch", async move {
            while reading
                .read_with(|i| i.read_events().map_err(std::io::Error::from))
                .await
                .is_ok()
            {
                if inputs.unbounded_send(Input::Changed).is_err() {
                    return;
                }
            }
        });
        Some(Watch {
            io,
            current: None,
            _reader: reader,
        })
    }

    /// Watch the nearest existing ancestor directory of `socket`.
    fn follow(&mut self, socket: &Path) -> bool {
        let Some(dir) = socket.ancestors().skip(1).find(|d| d.is_dir()) else {
            return false;
        };
        if self.current.as_ref().is_some_and(|(d, _)| d == dir) {
            return true;
        }
        self.stop();
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        match self.io.get_ref().add_watch(dir, flags) {
            Ok(wd) => {
                self.current = Some((dir.to_path_buf(), wd));
                true
            }
            Err(_) => false,
        }
    }

    fn stop(&mut self) {
        if let Some((_, wd)) = self.current.take() {
            let _ = self.io.get_ref().rm_watch(wd);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The socket file of a `unix:path=` address (the first such entry of an
/// address list), with D-Bus's `%XX` escapes undone.
pub fn socket_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|entry| {
        let rest = entry.strip_prefix("unix:")?;
        let value = rest.split(',').find_map(|kv| kv.strip_prefix("path="))?;
        let mut bytes = Vec::with_capacity(value.len());
        let mut it = value.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex = [it.next()?, it.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
            } else {
                bytes.push(b);
            }
        }
        use std::os::unix::ffi::OsStringExt;
        Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    })
}

/// Connect to a message bus owning `com.ubuntu.Upstart`, and serve it.
/// The receiver completes when the connection has ended.
async fn join_bus(
    rt: &SharedRuntime,
    address: &str,
    objects: &Arc<Objects>,
) -> zbus::Result<(Subscriber, oneshot::Receiver<()>)> {
    let stream = Builder::address(address)
        .name(BUS_NAME)
        .build_message_stream()
        .await?;
    let conn = Connection::from(&stream);
    let (ended, closed) = oneshot::channel::<()>();
    let objects = objects.clone();
    rt.spawn("control bus calls", async move {
        serve(stream, objects, None).await;
        drop(ended);
    })
    .detach();
    Ok((
        Subscriber::on_bus(conn.clone(), Outbox::start(rt, conn, None)),
        closed,
    ))
}

#[cfg(test)]
mod tests {
    use super::socket_path;
    use std::path::PathBuf;

    #[test]
    fn the_socket_file_of_an_address() {
        assert_eq!(
            socket_path("unix:path=/run/dbus/system_bus_socket"),
            Some(PathBuf::from("/run/dbus/system_bus_socket"))
        );
        assert_eq!(
            socket_path("unix:abstract=/x;unix:guid=1,path=/tmp/a%20b"),
            Some(PathBuf::from("/tmp/a b"))
        );
        assert_eq!(socket_path("unix:abstract=/tmp/x"), None);
        assert_eq!(socket_path("tcp:host=localhost,port=1"), None);
        assert_eq!(socket_path("unix:path=/bad%2"), None);
    }
}
