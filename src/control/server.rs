//! The private D-Bus server: one thread accepts peer connections, another
//! keeps every connection's objects in step with the engine and sends the
//! signals. The engine thread only ever sends on channels.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;

use zbus::connection::Builder;
use zbus::Connection;

use super::ifaces::{BusStandIn, Instance, Job, Manager};
use super::paths::{
    instance_path, job_path, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH,
};
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
    NewClient(std::os::unix::net::UnixStream),
    /// Join the message bus at this address as `com.ubuntu.Upstart`
    /// (no-op when already on a bus); the outcome goes to the caller.
    ConnectBus(
        String,
        futures_channel::oneshot::Sender<super::protocol::Answer>,
    ),
}

/// The well-known name init owns on a message bus.
pub const BUS_NAME: &str = "com.ubuntu.Upstart";

/// A server GUID from the kernel's RNG without waiting for it to be
/// seeded (PID 1 starts before that).
fn guid() -> Option<zbus::Guid<'static>> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom fills our buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), libc::GRND_INSECURE) };
    if n != bytes.len() as isize {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    zbus::Guid::try_from(hex).ok()
}

/// Bind the abstract socket `name` and start serving. Returns the sender
/// the engine uses for changes.
pub fn start(name: &str, engine: EngineHandle) -> std::io::Result<mpsc::Sender<ToBroadcaster>> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr)?;
    let guid = guid().ok_or_else(|| std::io::Error::other("no random GUID"))?;
    let (tx, rx) = mpsc::channel::<ToBroadcaster>();

    let accept_tx = tx.clone();
    std::thread::Builder::new()
        .name("control-accept".into())
        .spawn(move || {
            // SAFETY: getuid has no preconditions.
            let own_uid = unsafe { libc::getuid() };
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
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

    std::thread::Builder::new()
        .name("control-signals".into())
        .spawn(move || broadcaster(rx, engine, guid))?;
    Ok(tx)
}

/// Removed objects stay registered for a while so that calls racing with
/// their removal fail with `UnknownMethod`, as Upstart's clients expect
/// (an unregistered path would answer `UnknownObject`); the oldest are
/// really removed beyond this many.
const TOMBSTONES: usize = 1024;

fn broadcaster(rx: mpsc::Receiver<ToBroadcaster>, engine: EngineHandle, guid: zbus::Guid<'static>) {
    let mut conns: Vec<Connection> = Vec::new();
    let mut tombstones: std::collections::VecDeque<(String, bool)> = Default::default();
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
        let before = conns.len();
        conns.retain(|c| !c.is_closed());
        if conns.len() < before {
            // A connection's objects were just freed: hand the memory back
            // (the engine thread only trims after its own work).
            trim_heap();
        }
        let Some(msg) = msg else { continue };
        match msg {
            ToBroadcaster::NewClient(stream) => {
                if let Some(conn) = connect(stream, &engine, &guid, &tombstones) {
                    conns.push(conn);
                }
            }
            ToBroadcaster::Change(change) => {
                zbus::block_on(apply_change(&mut conns, &engine, &mut tombstones, &change))
            }
            // One turn of the runtime for the whole batch: handing the
            // runtime over costs more than sending a signal.
            ToBroadcaster::Changes(changes) => zbus::block_on(async {
                for change in &changes {
                    apply_change(&mut conns, &engine, &mut tombstones, change).await;
                }
            }),
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
                        conns.push(conn);
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

/// Apply one engine change to every connection and keep the tombstones.
async fn apply_change(
    conns: &mut Vec<Connection>,
    engine: &EngineHandle,
    tombstones: &mut std::collections::VecDeque<(String, bool)>,
    change: &Broadcast,
) {
    // A change whose signal cannot be built is not sent anywhere (names
    // and paths come from the engine and are valid).
    if let Ok(signal) = signal(change) {
        let mut live = Vec::with_capacity(conns.len());
        for c in conns.drain(..) {
            if apply(&c, engine, change, &signal).await {
                live.push(c);
            }
        }
        *conns = live;
    }
    match change {
        Broadcast::JobRemoved(job) => tombstones.push_back((job_path(job), true)),
        Broadcast::InstanceRemoved(job, inst) => {
            tombstones.push_back((instance_path(job, inst), false))
        }
        Broadcast::JobAdded(job) => {
            let path = job_path(job);
            tombstones.retain(|(p, _)| *p != path)
        }
        Broadcast::InstanceAdded(job, inst) => {
            let path = instance_path(job, inst);
            tombstones.retain(|(p, _)| *p != path)
        }
        _ => {}
    }
    while tombstones.len() > TOMBSTONES {
        let Some((path, is_job)) = tombstones.pop_front() else {
            break;
        };
        for c in conns.iter() {
            let server = c.object_server();
            let _ = if is_job {
                server.remove::<Job, _>(path.as_str()).await
            } else {
                server.remove::<Instance, _>(path.as_str()).await
            };
        }
    }
}

/// Authenticate a client and register every current object before the
/// connection serves its first call. Changes queued meanwhile are applied
/// afterwards, in order, so the objects end up in step with the engine.
fn connect(
    stream: std::os::unix::net::UnixStream,
    engine: &EngineHandle,
    guid: &zbus::Guid<'static>,
    tombstones: &std::collections::VecDeque<(String, bool)>,
) -> Option<Connection> {
    let builder = Builder::unix_stream(stream)
        .server(guid.clone())
        .p2p()
        .serve_at(
            "/org/freedesktop/DBus",
            BusStandIn {
                serial: AtomicU64::new(1),
            },
        );
    zbus::block_on(with_objects(builder, engine, tombstones).build()).ok()
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
    // Live paths are only needed to tell tombstones from live objects.
    let track = !tombstones.is_empty();
    let mut live = std::collections::HashSet::new();
    if let Ok(Value::Snapshot(jobs)) = zbus::block_on(engine.call(Request::Snapshot)) {
        for (job, instances) in jobs {
            let path = job_path(&job);
            if track {
                live.insert(path.clone());
            }
            builder = builder.serve_at(
                path,
                Job {
                    engine: engine.clone(),
                    job: job.clone(),
                },
            );
            for inst in instances {
                let path = instance_path(&job, &inst);
                if track {
                    live.insert(path.clone());
                }
                builder = builder.serve_at(
                    path,
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

async fn add_job(conn: &Connection, engine: &EngineHandle, job: &str) {
    let iface = Job {
        engine: engine.clone(),
        job: job.to_string(),
    };
    let _ = conn.object_server().at(job_path(job), iface).await;
}

async fn add_instance(conn: &Connection, engine: &EngineHandle, job: &str, instance: &str) {
    let iface = Instance {
        engine: engine.clone(),
        job: job.to_string(),
        instance: instance.to_string(),
    };
    let _ = conn
        .object_server()
        .at(instance_path(job, instance), iface)
        .await;
}

/// The signal announcing a change, built once for every connection (no
/// sender: peers have none, and a bus fills in its own).
fn signal(change: &Broadcast) -> zbus::Result<zbus::Message> {
    use zbus::ObjectPath;
    let build = |path: &str, iface: &'static str, member: &'static str| {
        zbus::Message::signal(path.to_owned(), iface, member)
    };
    match change {
        Broadcast::JobAdded(job) => {
            let p = job_path(job);
            build(MANAGER_PATH, MANAGER_IFACE, "JobAdded")
                .build(&(ObjectPath::from_str_unchecked(&p),))
        }
        Broadcast::JobRemoved(job) => {
            let p = job_path(job);
            build(MANAGER_PATH, MANAGER_IFACE, "JobRemoved")
                .build(&(ObjectPath::from_str_unchecked(&p),))
        }
        Broadcast::InstanceAdded(job, inst) => {
            let p = instance_path(job, inst);
            build(&job_path(job), JOB_IFACE, "InstanceAdded")
                .build(&(ObjectPath::from_str_unchecked(&p),))
        }
        Broadcast::InstanceRemoved(job, inst) => {
            let p = instance_path(job, inst);
            build(&job_path(job), JOB_IFACE, "InstanceRemoved")
                .build(&(ObjectPath::from_str_unchecked(&p),))
        }
        Broadcast::GoalChanged(job, inst, goal) => {
            build(&instance_path(job, inst), INSTANCE_IFACE, "GoalChanged").build(&(goal.as_str(),))
        }
        Broadcast::StateChanged(job, inst, state) => {
            build(&instance_path(job, inst), INSTANCE_IFACE, "StateChanged")
                .build(&(state.as_str(),))
        }
        Broadcast::Failed(job, inst, status) => {
            build(&instance_path(job, inst), INSTANCE_IFACE, "Failed").build(&(*status,))
        }
        Broadcast::Restarted => build(MANAGER_PATH, MANAGER_IFACE, "Restarted").build(&()),
        Broadcast::EventEmitted(name, env) => {
            build(MANAGER_PATH, MANAGER_IFACE, "EventEmitted").build(&(name.as_str(), env))
        }
    }
}

/// Apply one change to one connection: add the object it announces (a
/// removed one stays as a tombstone, see TOMBSTONES), then send the
/// signal. False if the connection is gone.
async fn apply(
    conn: &Connection,
    engine: &EngineHandle,
    change: &Broadcast,
    signal: &zbus::Message,
) -> bool {
    match change {
        Broadcast::JobAdded(job) => add_job(conn, engine, job).await,
        Broadcast::InstanceAdded(job, inst) => add_instance(conn, engine, job, inst).await,
        _ => {}
    }
    conn.send(signal).await.is_ok()
}
