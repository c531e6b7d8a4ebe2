//! The private D-Bus server: one thread accepts peer connections, another
//! keeps the list of connections and sends every one the signals of the
//! engine's changes. Calls are served by each connection's dispatcher
//! (dispatch.rs). The engine thread only ever sends on channels.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::{mpsc, Arc, Mutex};

use zbus::connection::Builder;
use zbus::{Connection, Message};

use super::dispatch::{serve, Objects};
use super::guard::{self, Watchdog};
use super::paths::{
    instance_path, job_path, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH,
};
use super::peer::guid;
use super::protocol::{Broadcast, EngineHandle, Value};
use super::subscriptions::Subscriptions;

/// Messages for the thread that owns the connections.
pub enum ToBroadcaster {
    Change(Broadcast),
    /// Several changes in order (what one turn of the engine's loop made:
    /// one wake-up of the broadcaster instead of one per change).
    Changes(Vec<Broadcast>),
    /// A client that authenticated (its calls are already being served),
    /// to be sent signals from now on; the socket is a second handle on
    /// the client's.
    Authenticated(Connection, Arc<UnixStream>, Arc<Subscriptions>),
    /// A client's connection closed: drop it now, so that its
    /// descriptors are not held until the next sweep.
    Closed,
    /// Join the message bus at this address as `com.ubuntu.Upstart`
    /// (no-op when already on a bus); the outcome goes to the caller.
    ConnectBus(
        String,
        futures_channel::oneshot::Sender<super::protocol::Answer>,
    ),
}

/// The well-known name init owns on a message bus.
pub const BUS_NAME: &str = "com.ubuntu.Upstart";

/// Bind the abstract socket `name` and start serving. Returns the sender
/// the engine uses for changes. While the address is taken, binding is
/// tried again for up to `patience` (after a re-exec, a process that
/// inherited the previous image's socket may not have closed it yet).
pub fn start(
    name: &str,
    engine: EngineHandle,
    patience: std::time::Duration,
) -> std::io::Result<mpsc::Sender<ToBroadcaster>> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let deadline = std::time::Instant::now() + patience;
    let listener = loop {
        match UnixListener::bind_addr(&addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => break other?,
        }
    };
    let guid = guid().ok_or_else(|| std::io::Error::other("no random GUID"))?;
    let (tx, rx) = mpsc::channel::<ToBroadcaster>();
    let watchdog = Watchdog::start()?;
    let objects = Arc::new(Objects::new(engine, &guid).map_err(std::io::Error::other)?);

    let accept_tx = tx.clone();
    let bus_objects = objects.clone();
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || {
            let own_uid = nix::unistd::getuid().as_raw();
            // Handshakes still in progress, oldest first.
            let mut handshakes: std::collections::VecDeque<Handshake> = Default::default();
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    // Out of descriptors (or similar): do not spin on it.
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                };
                // Abstract sockets have no permissions: only init's own
                // user may connect (control.md §1.1).
                let peer = nix::sys::socket::getsockopt(
                    &stream,
                    nix::sys::socket::sockopt::PeerCredentials,
                );
                if peer.map(|c| c.uid()) != Ok(own_uid) {
                    continue;
                }
                // Idle connections cannot crowd out initctl: beyond the
                // limit, the oldest handshake still waiting is cut.
                handshakes.retain(|h| h.lock().is_ok_and(|s| s.is_some()));
                if handshakes.len() >= guard::MAX_HANDSHAKES {
                    if let Some(sock) = handshakes.pop_front().and_then(|h| h.lock().ok()?.take()) {
                        guard::cut(&sock);
                    }
                }
                handshakes.extend(authenticate(stream, &objects, &guid, &accept_tx));
            }
        })?;

    std::thread::Builder::new()
        .name("control-signals".into())
        .spawn(move || broadcaster(rx, bus_objects, watchdog))?;
    Ok(tx)
}

/// A connection that receives signals. `sock` is a second handle on a
/// private client's socket, to check and cut it.
struct Peer {
    conn: Connection,
    sock: Option<Arc<UnixStream>>,
    /// A private client's choice of signals (none: on a bus, which filters).
    subscriptions: Option<Arc<Subscriptions>>,
}

impl Peer {
    /// Whether any signal may be sent to this connection (a bus filters
    /// by itself: everything goes to it).
    fn wants_signals(&self) -> bool {
        self.subscriptions.as_ref().is_none_or(|s| s.wants_any())
    }

    fn close(&self) {
        if let Some(sock) = &self.sock {
            guard::cut(sock);
        }
    }

    /// Send `msgs`, in order; false if the connection is gone or its
    /// client does not read what it is sent.
    fn send(&self, msgs: &[Message], watchdog: &Watchdog) -> bool {
        let msgs = match &self.subscriptions {
            Some(s) => s.select(msgs),
            None => std::borrow::Cow::Borrowed(msgs),
        };
        // Slices keep one write (and the watchdog's patience) bounded.
        msgs.chunks(SEND_SLICE).all(|slice| {
            let write = || zbus::block_on(self.conn.send_all(slice));
            match &self.sock {
                Some(sock) => guard::writable(sock) && watchdog.guard(sock, write).is_ok(),
                None => write().is_ok(),
            }
        })
    }
}

/// Signals handed to a connection in one write at most.
const SEND_SLICE: usize = 256;

/// A client authenticating on its own thread: a second handle on its
/// socket, to cut it, which the thread takes away once it is done (so that
/// it keeps no connection open).
type Handshake = Arc<Mutex<Option<UnixStream>>>;

/// Keeps the connections that receive signals and sends them.
fn broadcaster(rx: mpsc::Receiver<ToBroadcaster>, objects: Arc<Objects>, watchdog: Watchdog) {
    let mut conns: Vec<Peer> = Vec::new();
    let mut on_bus = false;
    // Work was done since the heap was last trimmed.
    let mut busy = false;
    loop {
        // Wake at least once a second to drop connections whose client
        // has gone, even when nothing changes.
        let msg = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(msg) => Some(msg),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // A quiet second after work (such as a spawn storm's signals):
        // hand the memory it freed back.
        if std::mem::replace(&mut busy, msg.is_some()) && msg.is_none() {
            trim_heap();
        }
        conns.retain(|p| !p.conn.is_closed());
        let Some(msg) = msg else { continue };
        match msg {
            // A client gone before this point sent its `Closed` already.
            ToBroadcaster::Authenticated(conn, _, _) if conn.is_closed() => {}
            ToBroadcaster::Authenticated(conn, sock, subscriptions) => conns.push(Peer {
                conn,
                sock: Some(sock),
                subscriptions: Some(subscriptions),
            }),
            // Swept above.
            ToBroadcaster::Closed => {}
            ToBroadcaster::Change(change) => broadcast(&mut conns, &[change], &watchdog),
            // What one turn of the engine's loop changed: one write to each
            // connection for all of it.
            ToBroadcaster::Changes(changes) => broadcast(&mut conns, &changes, &watchdog),
            ToBroadcaster::ConnectBus(address, tx) => {
                if on_bus {
                    let _ = tx.send(Ok(Value::Unit));
                    continue;
                }
                match join_bus(&address, &objects) {
                    Ok(conn) => {
                        on_bus = true;
                        conns.push(Peer {
                            conn,
                            sock: None,
                            subscriptions: None,
                        });
                        let _ = tx.send(Ok(Value::Unit));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(super::protocol::CallError::new(
                            "org.freedesktop.DBus.Error.Failed",
                            e.to_string(),
                        )));
                    }
                }
            }
        }
    }
}

/// Give free heap memory back to the kernel (glibc keeps it otherwise).
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Send the signals of `changes` to every connection, each message built
/// once for all of them; drop the connections that do not take them.
/// Nothing is built while no connection takes any signal (in a spawn
/// storm driven by `initctl emit`, building them was most of this
/// thread's work, on a processor the spawned jobs wanted).
fn broadcast(conns: &mut Vec<Peer>, changes: &[Broadcast], watchdog: &Watchdog) {
    if !conns.iter().any(Peer::wants_signals) {
        return;
    }
    let msgs: Vec<Message> = changes.iter().filter_map(|c| signal(c).ok()).collect();
    conns.retain(|p| {
        let ok = p.send(&msgs, watchdog);
        if !ok {
            p.close();
        }
        ok
    });
}

/// The signal that announces one change (control.md §2, §3).
fn signal(change: &Broadcast) -> zbus::Result<Message> {
    let path = |p: String| zbus::ObjectPath::try_from(p);
    match change {
        Broadcast::JobAdded(job) => {
            Message::signal(MANAGER_PATH, MANAGER_IFACE, "JobAdded").build(&(path(job_path(job))?,))
        }
        Broadcast::JobRemoved(job) => Message::signal(MANAGER_PATH, MANAGER_IFACE, "JobRemoved")
            .build(&(path(job_path(job))?,)),
        Broadcast::InstanceAdded(job, inst) => {
            Message::signal(job_path(job).as_str(), JOB_IFACE, "InstanceAdded")
                .build(&(path(instance_path(job, inst))?,))
        }
        Broadcast::InstanceRemoved(job, inst) => {
            Message::signal(job_path(job).as_str(), JOB_IFACE, "InstanceRemoved")
                .build(&(path(instance_path(job, inst))?,))
        }
        Broadcast::GoalChanged(job, inst, goal) => Message::signal(
            instance_path(job, inst).as_str(),
            INSTANCE_IFACE,
            "GoalChanged",
        )
        .build(&(*goal,)),
        Broadcast::StateChanged(job, inst, state) => Message::signal(
            instance_path(job, inst).as_str(),
            INSTANCE_IFACE,
            "StateChanged",
        )
        .build(&(*state,)),
        Broadcast::Failed(job, inst, status) => {
            Message::signal(instance_path(job, inst).as_str(), INSTANCE_IFACE, "Failed")
                .build(&(*status,))
        }
        Broadcast::Restarted => {
            Message::signal(MANAGER_PATH, MANAGER_IFACE, "Restarted").build(&())
        }
        Broadcast::EventEmitted(name, env) => {
            Message::signal(MANAGER_PATH, MANAGER_IFACE, "EventEmitted")
                .build(&(name.as_str(), env))
        }
    }
}

/// Authenticate a client on a thread of its own (a client that never
/// speaks must not hold up the others; one that has not finished within
/// `HANDSHAKE_TIMEOUT` is dropped), then serve its calls at once and have
/// the broadcaster send it signals.
fn authenticate(
    stream: UnixStream,
    objects: &Arc<Objects>,
    guid: &zbus::Guid<'static>,
    tx: &mpsc::Sender<ToBroadcaster>,
) -> Option<Handshake> {
    let sock = stream.try_clone().ok()?;
    let handle = Arc::new(stream.try_clone().ok()?);
    let subscriptions = Arc::new(Subscriptions::default());
    let builder = Builder::unix_stream(stream).server(guid.clone()).p2p();
    let (tx, objects) = (tx.clone(), objects.clone());
    let slot: Handshake = Arc::new(Mutex::new(Some(sock)));
    let finished = slot.clone();
    std::thread::Builder::new()
        .name("control-auth".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            // zbus's handshake code can panic on some malformed input (an
            // empty line): that ends this client's handshake, not init.
            let conn = crate::daemon::contain(|| {
                zbus::block_on(async {
                    let runtime = zruntime::SharedRuntime::current().ok()?;
                    let handshake = builder.build_message_stream();
                    let stream = runtime
                        .timeout(guard::HANDSHAKE_TIMEOUT, handshake)
                        .await
                        .ok()?
                        .ok()?;
                    let conn = Connection::from(&stream);
                    let private = (handle.clone(), subscriptions.clone());
                    zruntime::spawn(serve(stream, objects, Some(private))).detach();
                    let (closed, tx) = (conn.clone(), tx.clone());
                    zruntime::spawn(async move {
                        closed.closed().await;
                        let _ = tx.send(ToBroadcaster::Closed);
                    })
                    .detach();
                    Some(conn)
                })
            })
            .flatten();
            if let Ok(mut s) = finished.lock() {
                s.take();
            }
            match conn {
                Some(conn) => {
                    let _ = tx.send(ToBroadcaster::Authenticated(conn, handle, subscriptions));
                }
                None => guard::cut(&handle),
            }
        })
        .ok()?;
    Some(slot)
}

/// Connect to a message bus owning `com.ubuntu.Upstart`, and serve it.
fn join_bus(address: &str, objects: &Arc<Objects>) -> zbus::Result<Connection> {
    let builder = Builder::address(address).name(BUS_NAME);
    zbus::block_on(async {
        let stream = builder.build_message_stream().await?;
        let conn = Connection::from(&stream);
        zruntime::spawn(serve(stream, objects.clone(), None)).detach();
        Ok(conn)
    })
}
