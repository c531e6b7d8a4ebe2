//! The private D-Bus server: one thread accepts peer connections, another
//! keeps every connection's objects in step with the engine and sends the
//! signals. The engine thread only ever sends on channels.

use std::collections::HashMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::AtomicU64;
use std::sync::{mpsc, Arc};

use zbus::connection::Builder;
use zbus::Connection;

use super::guard::{self, Watchdog};
use super::ifaces::{Instance, Job, Manager};
use super::paths::{
    instance_path, job_path, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH,
};
use super::peer::{guid, BusStandIn};
use super::protocol::{Broadcast, EngineHandle, Request, Value};

/// Messages for the thread that owns the connections.
pub enum ToBroadcaster {
    Change(Broadcast),
    /// Several changes in order (what one turn of the engine's loop made:
    /// one wake-up of the broadcaster instead of one per change).
    Changes(Vec<Broadcast>),
    /// An answer to deliver only after every earlier change is applied, so
    /// a caller never hears of an object before it exists on its connection.
    Reply(
        futures_channel::oneshot::Sender<super::protocol::Answer>,
        super::protocol::Answer,
    ),
    /// An accepted socket, to be authenticated and given every object.
    NewClient(UnixStream),
    /// A handshake finished (`None`: it failed); the socket is a second
    /// handle on the client's.
    Authenticated(u64, Option<Connection>, UnixStream),
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
/// the engine uses for changes.
pub fn start(name: &str, engine: EngineHandle) -> std::io::Result<mpsc::Sender<ToBroadcaster>> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr)?;
    let guid = guid().ok_or_else(|| std::io::Error::other("no random GUID"))?;
    let (tx, rx) = mpsc::channel::<ToBroadcaster>();
    let watchdog = Watchdog::start()?;

    let accept_tx = tx.clone();
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || {
            // SAFETY: getuid has no preconditions.
            let own_uid = unsafe { libc::getuid() };
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
                if accept_tx.send(ToBroadcaster::NewClient(stream)).is_err() {
                    return;
                }
            }
        })?;

    let auth_tx = tx.clone();
    std::thread::Builder::new()
        .name("control-signals".into())
        .spawn(move || broadcaster(rx, auth_tx, engine, guid, watchdog))?;
    Ok(tx)
}

/// A connection that serves calls and receives signals. `sock` is a second
/// handle on a private client's socket, to check and cut it.
struct Peer {
    conn: Connection,
    sock: Option<Arc<UnixStream>>,
}

impl Peer {
    fn close(&self) {
        if let Some(sock) = &self.sock {
            guard::cut(sock);
        }
    }
}

/// A client still authenticating on its own thread, and the changes it
/// must be given once it is ready.
struct Handshake {
    sock: UnixStream,
    started: std::time::Instant,
    backlog: Vec<Broadcast>,
}

/// Changes kept for one authenticating client before it is given up.
const MAX_BACKLOG: usize = 65536;

/// The broadcaster's queue, and what it set aside while registering an
/// object.
struct Mailbox {
    rx: mpsc::Receiver<ToBroadcaster>,
    backlog: std::cell::RefCell<std::collections::VecDeque<ToBroadcaster>>,
}

/// How long registration waits before replies may overtake earlier changes.
const REPLY_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

impl Mailbox {
    /// Run an object-server change to completion while still handing out
    /// replies. A method call in progress on the same connection holds the
    /// object server until its reply arrives, and that reply waits in this
    /// very queue: waiting for the change alone deadlocks the broadcaster
    /// (and with it every client) for good. Replies go out in order with
    /// the changes set aside meanwhile, unless the change has waited for
    /// more than `REPLY_HOLD`.
    fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        let started = std::time::Instant::now();
        let mut fut = Box::pin(fut);
        zbus::block_on(std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
            let overtake = started.elapsed() > REPLY_HOLD;
            let mut replied = false;
            let mut backlog = self.backlog.borrow_mut();
            while let Ok(msg) = self.rx.try_recv() {
                match msg {
                    ToBroadcaster::Reply(tx, answer) if overtake || backlog.is_empty() => {
                        let _ = tx.send(answer);
                        replied = true;
                    }
                    other => backlog.push_back(other),
                }
            }
            if overtake && !replied {
                // Deliver replies already set aside too.
                let mut keep = std::collections::VecDeque::new();
                for msg in backlog.drain(..) {
                    match msg {
                        ToBroadcaster::Reply(tx, answer) => {
                            let _ = tx.send(answer);
                        }
                        other => keep.push_back(other),
                    }
                }
                *backlog = keep;
            }
            drop(backlog);
            if !replied {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // Poll again soon: the queue is not something the runtime can
            // wake us for.
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }))
    }
}

/// Removed objects stay registered for a while so that calls racing with
/// their removal fail with `UnknownMethod`, as Upstart's clients expect
/// (an unregistered path would answer `UnknownObject`); the oldest are
/// really removed beyond this many.
const TOMBSTONES: usize = 1024;

fn broadcaster(
    rx: mpsc::Receiver<ToBroadcaster>,
    tx: mpsc::Sender<ToBroadcaster>,
    engine: EngineHandle,
    guid: zbus::Guid<'static>,
    watchdog: Watchdog,
) {
    let mut conns: Vec<Peer> = Vec::new();
    let mut handshakes: HashMap<u64, Handshake> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut tombstones: std::collections::VecDeque<(String, bool)> = Default::default();
    let mut on_bus = false;
    // Work was done since the heap was last trimmed.
    let mut busy = false;
    let mailbox = Mailbox {
        rx,
        backlog: Default::default(),
    };
    loop {
        // Wake at least once a second to drop connections whose client
        // has gone, even when nothing changes.
        let next = mailbox.backlog.borrow_mut().pop_front();
        let msg = match next
            .map(Ok)
            .unwrap_or_else(|| mailbox.rx.recv_timeout(std::time::Duration::from_secs(1)))
        {
            Ok(msg) => Some(msg),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // A quiet second after work (such as a spawn storm's signals):
        // hand the memory it freed back.
        if std::mem::replace(&mut busy, msg.is_some()) && msg.is_none() {
            trim_heap();
        }
        let before = conns.len();
        conns.retain(|p| !p.conn.is_closed());
        if conns.len() < before {
            // A connection's objects were just freed: hand the memory back
            // (the engine thread only trims after its own work).
            trim_heap();
        }
        // A client that has not authenticated in time is cut off; its
        // thread then reports the failure.
        handshakes.retain(|_, h| {
            let keep = h.started.elapsed() < guard::HANDSHAKE_TIMEOUT;
            if !keep {
                guard::cut(&h.sock);
            }
            keep
        });
        let Some(msg) = msg else { continue };
        match msg {
            ToBroadcaster::NewClient(stream) => {
                if handshakes.len() >= guard::MAX_HANDSHAKES {
                    let oldest = handshakes
                        .iter()
                        .min_by_key(|(_, h)| h.started)
                        .map(|(id, _)| *id);
                    if let Some(h) = oldest.and_then(|id| handshakes.remove(&id)) {
                        guard::cut(&h.sock);
                    }
                }
                next_id += 1;
                if let Some(h) = authenticate(next_id, stream, &engine, &guid, &tombstones, &tx) {
                    handshakes.insert(next_id, h);
                }
            }
            ToBroadcaster::Authenticated(id, conn, sock) => {
                let Some(h) = handshakes.remove(&id) else {
                    // Given up meanwhile.
                    guard::cut(&sock);
                    continue;
                };
                let Some(conn) = conn else { continue };
                let peer = Peer {
                    conn,
                    sock: Some(Arc::new(sock)),
                };
                // Changes made while it authenticated, in order.
                if h.backlog
                    .iter()
                    .all(|c| apply(&peer, &engine, c, &watchdog, &mailbox))
                {
                    conns.push(peer);
                } else {
                    peer.close();
                }
            }
            ToBroadcaster::Change(change) => apply_change(
                &mut conns,
                &mut handshakes,
                &mut tombstones,
                &engine,
                &watchdog,
                &mailbox,
                change,
            ),
            // What one turn of the engine's loop changed: one wake-up for all.
            ToBroadcaster::Changes(changes) => {
                for change in changes {
                    apply_change(
                        &mut conns,
                        &mut handshakes,
                        &mut tombstones,
                        &engine,
                        &watchdog,
                        &mailbox,
                        change,
                    );
                }
            }
            ToBroadcaster::Reply(tx, answer) => {
                let _ = tx.send(answer);
            }
            ToBroadcaster::ConnectBus(address, tx) => {
                if on_bus {
                    let _ = tx.send(Ok(Value::Unit));
                    continue;
                }
                match join_bus(&address, &engine, &tombstones) {
                    Ok(conn) => {
                        on_bus = true;
                        conns.push(Peer { conn, sock: None });
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

/// Apply one engine change to every connection (dropping those that do not
/// take it), queue it for clients still authenticating, and keep the
/// tombstones.
fn apply_change(
    conns: &mut Vec<Peer>,
    handshakes: &mut HashMap<u64, Handshake>,
    tombstones: &mut std::collections::VecDeque<(String, bool)>,
    engine: &EngineHandle,
    watchdog: &Watchdog,
    mailbox: &Mailbox,
    change: Broadcast,
) {
    conns.retain(|p| {
        let ok = apply(p, engine, &change, watchdog, mailbox);
        if !ok {
            p.close();
        }
        ok
    });
    handshakes.retain(|_, h| {
        h.backlog.push(change.clone());
        let keep = h.backlog.len() <= MAX_BACKLOG;
        if !keep {
            guard::cut(&h.sock);
        }
        keep
    });
    match &change {
        Broadcast::JobRemoved(job) => tombstones.push_back((job_path(job), true)),
        Broadcast::InstanceRemoved(job, inst) => {
            tombstones.push_back((instance_path(job, inst), false))
        }
        Broadcast::JobAdded(job) => tombstones.retain(|(p, _)| *p != job_path(job)),
        Broadcast::InstanceAdded(job, inst) => {
            tombstones.retain(|(p, _)| *p != instance_path(job, inst))
        }
        _ => {}
    }
    while tombstones.len() > TOMBSTONES {
        let Some((path, is_job)) = tombstones.pop_front() else {
            break;
        };
        for p in conns.iter() {
            let server = p.conn.object_server();
            let _ = if is_job {
                mailbox.block_on(server.remove::<Job, _>(path.as_str()))
            } else {
                mailbox.block_on(server.remove::<Instance, _>(path.as_str()))
            };
        }
    }
}

/// Start authenticating a client on a thread of its own (a client that
/// never speaks must not hold up the others). Every current object is
/// registered before the connection serves its first call; changes made
/// meanwhile are kept in the handshake's backlog and applied, in order,
/// when the connection is handed back.
fn authenticate(
    id: u64,
    stream: UnixStream,
    engine: &EngineHandle,
    guid: &zbus::Guid<'static>,
    tombstones: &std::collections::VecDeque<(String, bool)>,
    tx: &mpsc::Sender<ToBroadcaster>,
) -> Option<Handshake> {
    let sock = stream.try_clone().ok()?;
    let handle = stream.try_clone().ok()?;
    let builder = Builder::unix_stream(stream)
        .server(guid.clone())
        .p2p()
        .serve_at(
            "/org/freedesktop/DBus",
            BusStandIn {
                serial: AtomicU64::new(1),
            },
        );
    let builder = with_objects(builder, engine, tombstones);
    let tx = tx.clone();
    std::thread::Builder::new()
        .name("control-auth".into())
        .stack_size(512 * 1024)
        .spawn(move || {
            // zbus's handshake code can panic on some malformed input (an
            // empty line): that ends this client's handshake, not init.
            let conn = crate::daemon::contain(|| zbus::block_on(builder.build()).ok()).flatten();
            let _ = tx.send(ToBroadcaster::Authenticated(id, conn, handle));
        })
        .ok()?;
    Some(Handshake {
        sock,
        started: std::time::Instant::now(),
        backlog: Vec::new(),
    })
}

/// Connect to a message bus with every object, owning `com.ubuntu.Upstart`.
fn join_bus(
    address: &str,
    engine: &EngineHandle,
    tombstones: &std::collections::VecDeque<(String, bool)>,
) -> zbus::Result<Connection> {
    let builder = Builder::address(address).name(BUS_NAME);
    zbus::block_on(with_objects(builder, engine, tombstones).build())
}

/// Register the manager, every current job and instance, and the recent
/// tombstones on a connection before it serves its first call.
fn with_objects<'a>(
    mut builder: Builder<'a>,
    engine: &EngineHandle,
    tombstones: &std::collections::VecDeque<(String, bool)>,
) -> Builder<'a> {
    builder = builder.serve_at(
        MANAGER_PATH,
        Manager {
            engine: engine.clone(),
        },
    );
    let mut live = std::collections::HashSet::new();
    if let Ok(Value::Snapshot(jobs)) = zbus::block_on(engine.call(Request::Snapshot)) {
        for (job, instances) in jobs {
            live.insert(job_path(&job));
            builder = builder.serve_at(
                job_path(&job),
                Job {
                    engine: engine.clone(),
                    job: job.clone(),
                },
            );
            for inst in instances {
                live.insert(instance_path(&job, &inst));
                builder = builder.serve_at(
                    instance_path(&job, &inst),
                    Instance {
                        engine: engine.clone(),
                        job: job.clone(),
                        instance: inst,
                    },
                );
            }
        }
    }
    // Recently removed objects answer UnknownMethod here too.
    for (path, is_job) in tombstones.iter().filter(|(p, _)| !live.contains(p)) {
        let Some((job, inst)) = unescape_path(path) else {
            continue;
        };
        builder = if *is_job {
            builder.serve_at(
                path.clone(),
                Job {
                    engine: engine.clone(),
                    job,
                },
            )
        } else {
            builder.serve_at(
                path.clone(),
                Instance {
                    engine: engine.clone(),
                    job,
                    instance: inst.unwrap_or_default(),
                },
            )
        };
    }
    builder
}

/// Job and instance names back from an object path.
fn unescape_path(path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix(MANAGER_PATH)?.strip_prefix("/jobs/")?;
    let mut parts = rest.split('/');
    let job = super::paths::unescape(parts.next()?)?;
    let inst = match parts.next() {
        Some(p) => Some(super::paths::unescape(p)?),
        None => None,
    };
    Some((job, inst))
}

fn add_job(conn: &Connection, engine: &EngineHandle, job: &str, mailbox: &Mailbox) {
    let iface = Job {
        engine: engine.clone(),
        job: job.to_string(),
    };
    let _ = mailbox.block_on(conn.object_server().at(job_path(job), iface));
}

fn add_instance(
    conn: &Connection,
    engine: &EngineHandle,
    job: &str,
    instance: &str,
    mailbox: &Mailbox,
) {
    let iface = Instance {
        engine: engine.clone(),
        job: job.to_string(),
        instance: instance.to_string(),
    };
    let _ = mailbox.block_on(conn.object_server().at(instance_path(job, instance), iface));
}

/// Apply one change to one connection; false if the connection is gone
/// or its client does not read what it is sent.
fn apply(
    peer: &Peer,
    engine: &EngineHandle,
    change: &Broadcast,
    watchdog: &Watchdog,
    mailbox: &Mailbox,
) -> bool {
    let conn = &peer.conn;
    let send = |emit: &dyn Fn() -> zbus::Result<()>| match &peer.sock {
        Some(sock) => guard::writable(sock) && watchdog.guard(sock, emit).is_ok(),
        None => emit().is_ok(),
    };
    let emit_path = |path: &str, iface: &str, member: &str, arg: zbus::ObjectPath<'_>| {
        zbus::block_on(conn.emit_signal(None::<&str>, path, iface, member, &(arg,)))
    };
    let emit = || -> zbus::Result<()> {
        match change {
            Broadcast::JobAdded(job) => {
                add_job(conn, engine, job, mailbox);
                let p = job_path(job);
                emit_path(
                    MANAGER_PATH,
                    MANAGER_IFACE,
                    "JobAdded",
                    zbus::ObjectPath::from_str_unchecked(&p),
                )
            }
            Broadcast::JobRemoved(job) => {
                // The object stays as a tombstone (see TOMBSTONES).
                let p = job_path(job);
                emit_path(
                    MANAGER_PATH,
                    MANAGER_IFACE,
                    "JobRemoved",
                    zbus::ObjectPath::from_str_unchecked(&p),
                )
            }
            Broadcast::InstanceAdded(job, inst) => {
                add_instance(conn, engine, job, inst, mailbox);
                let p = instance_path(job, inst);
                emit_path(
                    &job_path(job),
                    JOB_IFACE,
                    "InstanceAdded",
                    zbus::ObjectPath::from_str_unchecked(&p),
                )
            }
            Broadcast::InstanceRemoved(job, inst) => {
                // The object stays as a tombstone (see TOMBSTONES).
                let p = instance_path(job, inst);
                emit_path(
                    &job_path(job),
                    JOB_IFACE,
                    "InstanceRemoved",
                    zbus::ObjectPath::from_str_unchecked(&p),
                )
            }
            Broadcast::GoalChanged(job, inst, goal) => zbus::block_on(conn.emit_signal(
                None::<&str>,
                instance_path(job, inst).as_str(),
                INSTANCE_IFACE,
                "GoalChanged",
                &(goal.as_str(),),
            )),
            Broadcast::StateChanged(job, inst, state) => zbus::block_on(conn.emit_signal(
                None::<&str>,
                instance_path(job, inst).as_str(),
                INSTANCE_IFACE,
                "StateChanged",
                &(state.as_str(),),
            )),
            Broadcast::Failed(job, inst, status) => zbus::block_on(conn.emit_signal(
                None::<&str>,
                instance_path(job, inst).as_str(),
                INSTANCE_IFACE,
                "Failed",
                &(*status,),
            )),
            Broadcast::Restarted => zbus::block_on(conn.emit_signal(
                None::<&str>,
                MANAGER_PATH,
                MANAGER_IFACE,
                "Restarted",
                &(),
            )),
            Broadcast::EventEmitted(name, env) => zbus::block_on(conn.emit_signal(
                None::<&str>,
                MANAGER_PATH,
                MANAGER_IFACE,
                "EventEmitted",
                &(name.as_str(), env),
            )),
        }
    };
    send(&emit)
}
