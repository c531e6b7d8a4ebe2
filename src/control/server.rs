//! The private D-Bus server. One thread, `control`, runs the runtime that
//! serves every connection: it accepts clients, authenticates them, reads
//! and answers their calls and writes their signals, each connection a
//! few tasks, so an idle client costs its socket and no thread. A second
//! thread, `control-signals`, keeps the list of connections that take
//! signals and queues the engine's changes for each of them (outbox.rs);
//! it takes new private connections when it next wakes (newcomers.rs).
//! The engine thread only ever sends on channels.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::{mpsc, Arc};

use zbus::connection::Builder;
use zbus::{Connection, Message};
use zruntime::{AsyncIo, SharedRuntime};

use super::admission::{Admission, Ticket};
use super::bus::{self, BusCall, BusOptions};
use super::dispatch::{serve, Objects};
use super::guard::{self, Activity, Contained};
use super::newcomers::Newcomers;
use super::outbox::{Outbox, Queued};
use super::paths::{
    instance_path, job_path, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH,
};
use super::peer::guid;
use super::protocol::{Change, EngineHandle};
use super::socket::ControlSocket;
use super::subscriptions::Subscriptions;

/// Messages for the thread that owns the connections.
pub enum ToBroadcaster {
    Change(Change),
    /// Several changes in order (what one turn of the engine's loop made:
    /// one wake-up of the broadcaster instead of one per change).
    Changes(Vec<Change>),
    /// A connection that takes signals from now on (its calls are already
    /// being served).
    Subscribed(Subscriber),
    /// A client's connection the broadcaster had taken closed: drop it
    /// now, so that its descriptors are not held until the next sweep.
    Closed,
    /// For the keeper of init's bus connection (bus.rs).
    Bus(BusCall),
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
    bus: BusOptions,
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
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let accept_tx = tx.clone();
    let newcomers = Arc::new(Newcomers::default());
    let waiting = newcomers.clone();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || run(listener, engine, guid, (accept_tx, waiting), ready_tx))?;
    let (runtime, objects) = ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the control thread ended"))??;
    let bus_tx = tx.clone();
    std::thread::Builder::new()
        .name("control-signals".into())
        .spawn(move || {
            let keeper = bus::spawn(&runtime, objects, bus_tx, bus);
            broadcaster(rx, &newcomers, keeper)
        })?;
    Ok(tx)
}

type Ready = std::io::Result<(SharedRuntime, Arc<Objects>)>;

/// The `control` thread: run the runtime every connection is served on.
/// zbus builds its connections on `SharedRuntime::current()`, which inside
/// this `block_on` is this very runtime.
fn run(
    listener: UnixListener,
    engine: EngineHandle,
    guid: zbus::Guid<'static>,
    to_broadcaster: ToTheBroadcaster,
    ready: mpsc::SyncSender<Ready>,
) {
    let runtime = match SharedRuntime::current() {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let rt = runtime.clone();
    runtime.block_on(async move {
        let setup = async {
            let objects = Arc::new(
                Objects::new(&rt, engine, &guid)
                    .await
                    .map_err(std::io::Error::other)?,
            );
            let listener = AsyncIo::new(&rt, listener)?;
            Ok::<_, std::io::Error>((objects, listener))
        };
        let (objects, listener) = match setup.await {
            Ok(v) => v,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok((rt.clone(), objects.clone())));
        accept(&rt, listener, objects, guid, to_broadcaster).await;
    });
}

/// Take every client of init's own user; each is served by a task.
async fn accept(
    rt: &SharedRuntime,
    listener: AsyncIo<UnixListener, zruntime::Shared>,
    objects: Arc<Objects>,
    guid: zbus::Guid<'static>,
    (tx, newcomers): ToTheBroadcaster,
) {
    let own_uid = nix::unistd::getuid().as_raw();
    let admission = Arc::new(Admission::default());
    loop {
        let stream = match listener.read_with(|l| l.accept()).await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors (or similar): do not spin on it.
                rt.sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Abstract sockets have no permissions: only init's own user may
        // connect (control.md §1.1).
        let peer =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
        if peer.map(|c| c.uid()) != Ok(own_uid) {
            continue;
        }
        let sock = Arc::new(stream);
        let activity = Arc::new(Activity::new());
        let Some(ticket) = admission.admit(sock.clone(), activity.clone()) else {
            continue;
        };
        let client = Client {
            ticket,
            rt: rt.clone(),
            sock,
            activity,
            objects: objects.clone(),
            guid: guid.clone(),
            tx: tx.clone(),
            newcomers: newcomers.clone(),
        };
        rt.spawn("control client", client.serve()).detach();
    }
}

/// One accepted client, before its handshake.
struct Client {
    /// Its place among the connections, given up when it goes.
    ticket: Ticket,
    rt: SharedRuntime,
    sock: Arc<UnixStream>,
    activity: Arc<Activity>,
    objects: Arc<Objects>,
    guid: zbus::Guid<'static>,
    tx: mpsc::Sender<ToBroadcaster>,
    newcomers: Arc<Newcomers>,
}

/// How connections reach the broadcaster: the channel, and the list new
/// private connections wait in.
type ToTheBroadcaster = (mpsc::Sender<ToBroadcaster>, Arc<Newcomers>);

impl Client {
    /// Authenticate the client (it has `HANDSHAKE_TIMEOUT`), then serve
    /// its calls until it goes, and have the broadcaster send it signals.
    async fn serve(self) -> Option<()> {
        let Client {
            ticket,
            rt,
            sock,
            activity,
            objects,
            guid,
            tx,
            newcomers,
        } = self;
        let stream = async {
            let socket = ControlSocket::new(&rt, sock.clone(), activity).ok()?;
            let builder = Builder::socket(socket).server(guid).p2p();
            // zbus's handshake code can panic on some malformed input (an
            // empty line): that ends this client's handshake, not init.
            let handshake = Contained::new(builder.build_message_stream());
            rt.timeout(guard::HANDSHAKE_TIMEOUT, handshake)
                .await
                .ok()??
                .ok()
        }
        .await;
        let Some(stream) = stream else {
            guard::cut(&sock);
            return None;
        };
        ticket.authenticated();
        let conn = Connection::from(&stream);
        let subscriptions = Arc::new(Subscriptions::default());
        let mut outbox = Outbox::start(&rt, conn.clone(), Some(sock.clone()));
        let id = newcomers.add(Subscriber {
            conn,
            sock: Some(sock.clone()),
            subscriptions: Some(subscriptions.clone()),
            outbox: outbox.clone(),
        });
        serve(stream, objects, Some((sock, subscriptions))).await;
        outbox.close();
        if !newcomers.withdraw(id) {
            let _ = tx.send(ToBroadcaster::Closed);
        }
        Some(())
    }
}

/// A connection that receives signals.
pub struct Subscriber {
    conn: Connection,
    /// A private client's socket, to cut it.
    sock: Option<Arc<UnixStream>>,
    /// A private client's choice of signals (none: on a bus, which filters).
    subscriptions: Option<Arc<Subscriptions>>,
    outbox: Outbox,
}

impl Subscriber {
    /// init's connection to a message bus.
    pub(super) fn on_bus(conn: Connection, outbox: Outbox) -> Subscriber {
        Subscriber {
            conn,
            sock: None,
            subscriptions: None,
            outbox,
        }
    }

    /// Whether any signal may be sent to this connection (a bus filters
    /// by itself: everything goes to it).
    fn wants_signals(&self) -> bool {
        self.subscriptions.as_ref().is_none_or(|s| s.wants_any())
    }

    /// Queue `msgs`, in order; false if the connection is gone or its
    /// client has fallen too far behind (it is then cut).
    fn send(&mut self, msgs: &[Message]) -> bool {
        let msgs = match &self.subscriptions {
            Some(s) => s.select(msgs),
            None => std::borrow::Cow::Borrowed(msgs),
        };
        for msg in msgs.iter() {
            match self.outbox.push(msg.clone()) {
                Queued::Yes => {}
                Queued::Gone => return false,
                // The bus reads what it is sent; what it cannot take now
                // is dropped rather than losing the bus.
                Queued::Full => {
                    if let Some(sock) = &self.sock {
                        guard::cut(sock);
                        self.outbox.close();
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// Keeps the connections that receive signals and queues their signals.
fn broadcaster(
    rx: mpsc::Receiver<ToBroadcaster>,
    newcomers: &Newcomers,
    keeper: futures_channel::mpsc::UnboundedSender<BusCall>,
) {
    let mut conns: Vec<Subscriber> = Vec::new();
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
            trim_memory();
        }
        conns.extend(newcomers.take());
        conns.retain(|p| !p.conn.is_closed());
        let Some(msg) = msg else { continue };
        match msg {
            // A client gone before this point sent its `Closed` already.
            ToBroadcaster::Subscribed(s) if s.conn.is_closed() => {}
            ToBroadcaster::Subscribed(s) => conns.push(s),
            // Swept above.
            ToBroadcaster::Closed => {}
            ToBroadcaster::Change(change) => broadcast(&mut conns, &[change]),
            // What one turn of the engine's loop changed: queued for each
            // connection in one go.
            ToBroadcaster::Changes(changes) => broadcast(&mut conns, &changes),
            ToBroadcaster::Bus(call) => {
                let _ = keeper.unbounded_send(call);
            }
        }
    }
}

/// Give free heap memory back to the kernel (glibc keeps it otherwise),
/// and drop the program text the calls mapped (crate::mapped_text).
fn trim_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    crate::mapped_text::release();
}

/// Queue the signals of `changes` for every connection, each message built
/// once for all of them; drop the connections that do not take them.
/// Nothing is built while no connection takes any signal (in a spawn
/// storm driven by `initctl emit`, building them would be most of this
/// thread's work, on a processor the spawned jobs wanted).
fn broadcast(conns: &mut Vec<Subscriber>, changes: &[Change]) {
    if !conns.iter().any(Subscriber::wants_signals) {
        return;
    }
    let msgs: Vec<Message> = changes.iter().filter_map(|c| signal(c).ok()).collect();
    conns.retain_mut(|p| p.send(&msgs));
}

/// The signal that announces one change (control.md §2, §3).
fn signal(change: &Change) -> zbus::Result<Message> {
    let path = |p: String| zbus::ObjectPath::try_from(p);
    match change {
        Change::JobAdded(job) => {
            Message::signal(MANAGER_PATH, MANAGER_IFACE, "JobAdded").build(&(path(job_path(job))?,))
        }
        Change::JobRemoved(job) => Message::signal(MANAGER_PATH, MANAGER_IFACE, "JobRemoved")
            .build(&(path(job_path(job))?,)),
        Change::InstanceAdded(job, inst) => {
            Message::signal(job_path(job).as_str(), JOB_IFACE, "InstanceAdded")
                .build(&(path(instance_path(job, inst))?,))
        }
        Change::InstanceRemoved(job, inst) => {
            Message::signal(job_path(job).as_str(), JOB_IFACE, "InstanceRemoved")
                .build(&(path(instance_path(job, inst))?,))
        }
        Change::GoalChanged(job, inst, goal) => Message::signal(
            instance_path(job, inst).as_str(),
            INSTANCE_IFACE,
            "GoalChanged",
        )
        .build(&(*goal,)),
        Change::StateChanged(job, inst, state) => Message::signal(
            instance_path(job, inst).as_str(),
            INSTANCE_IFACE,
            "StateChanged",
        )
        .build(&(*state,)),
        Change::Failed(job, inst, status) => {
            Message::signal(instance_path(job, inst).as_str(), INSTANCE_IFACE, "Failed")
                .build(&(*status,))
        }
        Change::Restarted => Message::signal(MANAGER_PATH, MANAGER_IFACE, "Restarted").build(&()),
        Change::EventEmitted(name, env) => {
            Message::signal(MANAGER_PATH, MANAGER_IFACE, "EventEmitted")
                .build(&(name.as_str(), env))
        }
    }
}
