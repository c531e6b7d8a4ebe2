//! Method calls on a control connection, routed by outset instead of by
//! zbus's object server.
//!
//! An object server keeps a node, with its interfaces, for every job and
//! instance on every connection: a new connection would cost milliseconds
//! and hundreds of kilobytes per thousand classes, and every instance
//! created or destroyed would be registered on every connection. Here an object
//! is made from the call's path when a call arrives and dropped after it;
//! whether its job or instance exists is the engine's answer to the call
//! (`UnknownMethod` once it has gone, control.md §2). The methods and
//! properties themselves are zbus's generated code (ifaces.rs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use zbus::fdo;
use zbus::interface;
use zbus::message::{Header, Type};
use zbus::names::InterfaceName;
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::{BoxDBusError, Connection, Message, MessageStream, ObjectServer, OwnedVariant};

use super::ifaces::{Instance, Job, Manager, OutsetInstance};
use super::paths::{
    unescape, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH, OUTSET_INSTANCE_IFACE,
};
use super::peer::BusStandIn;
use super::protocol::{EngineHandle, Request, Value};
use super::socket::ControlSocket;
use super::subscriptions::Subscriptions;

const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";
const PEER: &str = "org.freedesktop.DBus.Peer";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// What every connection's calls are served with.
pub struct Objects {
    engine: EngineHandle,
    /// zbus's `Interface` methods take the object server they run in, which
    /// only a connection can provide; ours never use it. This connection
    /// (one end of a socket pair that carries nothing) provides one.
    anchor: Connection,
    _anchor_peer: Connection,
}

impl Objects {
    /// Built on the control runtime, over outset's own socket type (no
    /// name-service lookups for the peer, socket.rs).
    pub async fn new(
        runtime: &zruntime::SharedRuntime,
        engine: EngineHandle,
        guid: &zbus::Guid<'static>,
    ) -> zbus::Result<Objects> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        let idle = || std::sync::Arc::new(super::guard::Activity::new());
        let (a, b) = (
            ControlSocket::new(runtime, std::sync::Arc::new(a), idle())?,
            ControlSocket::new(runtime, std::sync::Arc::new(b), idle())?,
        );
        let server = zbus::connection::Builder::socket(a)
            .server(guid.clone())
            .p2p()
            .build();
        let client = zbus::connection::Builder::socket(b).p2p().build();
        let (anchor, peer) = futures_util::future::join(server, client).await;
        Ok(Objects {
            engine,
            anchor: anchor?,
            _anchor_peer: peer?,
        })
    }

    fn server(&self) -> &ObjectServer {
        self.anchor.object_server()
    }
}

/// A connection being served: private connections also have the
/// `org.freedesktop.DBus` stand-in, with its own `Hello` serials.
pub struct Served {
    objects: Arc<Objects>,
    stand_in: Option<BusStandIn>,
}

/// Serve the method calls arriving on `stream` until its connection
/// closes, each on a task of its own (a waiting call holds up no other).
/// `private` is a second handle on a private client's socket: it is shut
/// down as soon as the connection fails (on garbage, say), so the client
/// learns at once.
/// Method calls read but not yet answered, on every connection.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One call being served, from when it is read until its reply has been
/// written (or the call dropped).
struct InFlight;

impl InFlight {
    fn new() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many method calls have been read and not yet answered. An init
/// about to exit waits (briefly) for this to fall to zero, so that the
/// call that ended it (EndSession, a runlevel) still gets its reply.
pub fn calls_in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

pub async fn serve(
    stream: MessageStream,
    objects: Arc<Objects>,
    private: Option<(Arc<std::os::unix::net::UnixStream>, Arc<Subscriptions>)>,
) {
    let conn = Connection::from(&stream);
    let served = Arc::new(Served {
        objects,
        stand_in: private.as_ref().map(|(_, subscriptions)| BusStandIn {
            serial: AtomicU64::new(1),
            subscriptions: Some(subscriptions.clone()),
        }),
    });
    let mut stream = stream;
    while let Some(Ok(msg)) = stream.next().await {
        if msg.message_type() != Type::MethodCall {
            continue;
        }
        let (conn, served) = (conn.clone(), served.clone());
        let in_flight = InFlight::new();
        zruntime::spawn(async move {
            let _in_flight = in_flight;
            let hdr = msg.header();
            if let Err(e) = route(served, &conn, &msg, &hdr).await {
                let _ = conn.reply_dbus_error(&hdr, e).await;
            }
        })
        .detach();
    }
    if let Some((sock, _)) = private {
        super::guard::cut(&sock);
    }
}

/// What an object path names.
#[derive(Clone)]
enum Target {
    /// A path leading to objects, with only the standard interfaces.
    Node(&'static [&'static str]),
    /// Every class (children: the classes).
    Jobs,
    StandIn,
    Manager,
    Job(String),
    Instance(String, String),
}

impl Target {
    fn resolve(path: &str, private: bool) -> Option<Target> {
        let fixed = match path {
            "/" if private => Target::Node(&["com", "org"]),
            "/" => Target::Node(&["com"]),
            "/com" => Target::Node(&["ubuntu"]),
            "/com/ubuntu" => Target::Node(&["Upstart"]),
            "/org" if private => Target::Node(&["freedesktop"]),
            "/org/freedesktop" if private => Target::Node(&["DBus"]),
            "/org/freedesktop/DBus" if private => Target::StandIn,
            MANAGER_PATH => Target::Manager,
            _ => {
                let rest = path.strip_prefix(MANAGER_PATH)?.strip_prefix("/jobs")?;
                if rest.is_empty() {
                    return Some(Target::Jobs);
                }
                let mut parts = rest.strip_prefix('/')?.split('/');
                let job = unescape(parts.next()?)?;
                let target = match parts.next() {
                    None => Target::Job(job),
                    Some(inst) => Target::Instance(job, unescape(inst)?),
                };
                return parts.next().is_none().then_some(target);
            }
        };
        Some(fixed)
    }

    /// The object behind the path, made for this call.
    fn object<'a>(&self, served: &'a Served) -> Option<Object<'a>> {
        let engine = &served.objects.engine;
        Some(match self {
            Target::Node(_) | Target::Jobs => return None,
            Target::StandIn => Object::StandIn(served.stand_in.as_ref()?),
            Target::Manager => Object::Manager(Manager {
                engine: engine.clone(),
            }),
            Target::Job(job) => Object::Job(Job::new(engine.clone(), job.clone())),
            Target::Instance(job, inst) => Object::Instance(
                Instance::new(engine.clone(), job.clone(), inst.clone()),
                OutsetInstance::new(engine.clone(), job.clone(), inst.clone()),
            ),
        })
    }

    /// The names of the objects below, for introspection; an error when
    /// the job or instance does not exist.
    async fn children(&self, engine: &EngineHandle) -> Result<Vec<String>, BoxDBusError> {
        let last = |paths: Vec<String>| {
            paths
                .iter()
                .filter_map(|p| p.rsplit('/').next().map(str::to_string))
                .collect()
        };
        let gone = |e: super::protocol::CallError| -> BoxDBusError {
            fdo::Error::UnknownMethod(e.message).into()
        };
        match self {
            Target::Node(names) => Ok(names.iter().map(|n| n.to_string()).collect()),
            Target::Manager => Ok(vec!["jobs".to_string()]),
            Target::Jobs => match engine.call(Request::GetAllJobs).await.map_err(gone)? {
                Value::Paths(p) => Ok(last(p)),
                _ => Ok(Vec::new()),
            },
            Target::Job(job) => {
                let req = Request::GetAllInstances { job: job.clone() };
                match engine.call(req).await.map_err(gone)? {
                    Value::Paths(p) => Ok(last(p)),
                    _ => Ok(Vec::new()),
                }
            }
            Target::Instance(job, instance) => {
                let req = Request::InstanceProperties {
                    job: job.clone(),
                    instance: instance.clone(),
                };
                engine.call(req).await.map_err(gone)?;
                Ok(Vec::new())
            }
            Target::StandIn => Ok(Vec::new()),
        }
    }
}

/// An object made for one call.
enum Object<'a> {
    StandIn(&'a BusStandIn),
    Manager(Manager),
    Job(Job),
    /// Upstart's interface and outset's own.
    Instance(Instance, OutsetInstance),
}

impl Object<'_> {
    /// The object's own interfaces, with their names.
    fn ifaces(&self) -> Vec<(&'static str, &dyn Interface)> {
        match self {
            Object::StandIn(o) => vec![("org.freedesktop.DBus", *o)],
            Object::Manager(o) => vec![(MANAGER_IFACE, o)],
            Object::Job(o) => vec![(JOB_IFACE, o)],
            Object::Instance(upstart, outset) => {
                vec![(INSTANCE_IFACE, upstart), (OUTSET_INSTANCE_IFACE, outset)]
            }
        }
    }

    /// The object's own interface named `name`.
    fn named(&self, name: &str) -> Result<&dyn Interface, BoxDBusError> {
        self.ifaces()
            .into_iter()
            .find_map(|(n, iface)| (n == name).then_some(iface))
            .ok_or_else(|| {
                fdo::Error::UnknownInterface(format!("Unknown interface '{name}'")).into()
            })
    }

    /// Ask the engine once for a job's or instance's properties, so that
    /// a `GetAll` on one that has gone fails instead of answering nothing.
    async fn exists(&self) -> Result<(), BoxDBusError> {
        match self {
            Object::Job(j) => j.props().await.map(|_| ()).map_err(Into::into),
            Object::Instance(i, _) => i.props().await.map(|_| ()).map_err(Into::into),
            Object::StandIn(_) | Object::Manager(_) => Ok(()),
        }
    }
}

/// Hand one call to the interface it names on the object its path names.
async fn route(
    served: Arc<Served>,
    conn: &Connection,
    msg: &Message,
    hdr: &Header<'_>,
) -> Result<(), BoxDBusError> {
    let failed =
        |what: &str| -> BoxDBusError { fdo::Error::Failed(format!("Missing {what}")).into() };
    let path = hdr.path().ok_or_else(|| failed("object path"))?;
    let iface = hdr.interface().ok_or_else(|| failed("interface"))?;
    let member = hdr.member().ok_or_else(|| failed("member"))?;
    let server = served.objects.server();
    // Peer answers on every path (D-Bus specification).
    if iface.as_str() == PEER {
        return call(&StandardPeer, server, conn, msg, member).await;
    }
    let private = served.stand_in.is_some();
    let Some(target) = Target::resolve(path.as_str(), private) else {
        return Err(fdo::Error::UnknownMethod(format!("No object at '{path}'")).into());
    };
    match iface.as_str() {
        INTROSPECTABLE => {
            let xml = Introspection {
                served: served.clone(),
                target,
            };
            call(&xml, server, conn, msg, member).await
        }
        PROPERTIES => {
            let props = Properties {
                served: served.clone(),
                target,
            };
            call(&props, server, conn, msg, member).await
        }
        name => {
            let obj = target.object(&served).ok_or_else(|| {
                fdo::Error::UnknownInterface(format!("Unknown interface '{name}'"))
            })?;
            call(obj.named(name)?, server, conn, msg, member).await
        }
    }
}

/// Run one method of one interface; it replies itself.
async fn call(
    obj: &dyn Interface,
    server: &ObjectServer,
    conn: &Connection,
    msg: &Message,
    member: &zbus::names::MemberName<'_>,
) -> Result<(), BoxDBusError> {
    match obj.call(server, conn, msg, member.clone()) {
        DispatchResult::Async(f) => f.await,
        // Nothing here needs `&mut self`.
        DispatchResult::NotFound | DispatchResult::RequiresMut => {
            Err(fdo::Error::UnknownMethod(format!("Unknown method '{member}'")).into())
        }
    }
}

/// `org.freedesktop.DBus.Peer`.
struct StandardPeer;

#[interface(name = "org.freedesktop.DBus.Peer", introspection_docs = false)]
impl StandardPeer {
    fn ping(&self) {}

    fn get_machine_id(&self) -> fdo::Result<String> {
        ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|id| id.trim().to_string())
            .ok_or_else(|| fdo::Error::IOError("no machine id".into()))
    }
}

/// `org.freedesktop.DBus.Introspectable` of one object.
struct Introspection {
    served: Arc<Served>,
    target: Target,
}

#[interface(
    name = "org.freedesktop.DBus.Introspectable",
    introspection_docs = false
)]
impl Introspection {
    async fn introspect(&self) -> Result<String, BoxDBusError> {
        let children = self.target.children(&self.served.objects.engine).await?;
        let mut xml = String::from(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
        );
        let props = Properties {
            served: self.served.clone(),
            target: self.target.clone(),
        };
        self.introspect_to_writer(&mut xml, 2);
        StandardPeer.introspect_to_writer(&mut xml, 2);
        props.introspect_to_writer(&mut xml, 2);
        if let Some(obj) = self.target.object(&self.served) {
            for (_, iface) in obj.ifaces() {
                iface.introspect_to_writer(&mut xml, 2);
            }
        }
        for child in children {
            xml.push_str(&format!("  <node name=\"{child}\"/>\n"));
        }
        xml.push_str("</node>\n");
        Ok(xml)
    }
}

/// `org.freedesktop.DBus.Properties` of one object.
struct Properties {
    served: Arc<Served>,
    target: Target,
}

impl Properties {
    fn object(&self) -> Result<Object<'_>, BoxDBusError> {
        self.target.object(&self.served).ok_or_else(|| {
            fdo::Error::UnknownInterface("This object has no properties".into()).into()
        })
    }
}

fn unknown_property(name: &str) -> BoxDBusError {
    fdo::Error::UnknownProperty(format!("Unknown property '{name}'")).into()
}

#[interface(name = "org.freedesktop.DBus.Properties", introspection_docs = false)]
impl Properties {
    async fn get(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedVariant, BoxDBusError> {
        let obj = self.object()?;
        let iface = obj.named(interface_name.as_str())?;
        iface
            .get(property_name, server, conn, Some(&hdr), &emitter)
            .await
            .unwrap_or_else(|| Err(unknown_property(property_name)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn set(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        value: zbus::Variant<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BoxDBusError> {
        let obj = self.object()?;
        let iface = obj.named(interface_name.as_str())?;
        let result = match iface.set(property_name, &value, server, conn, Some(&hdr), &emitter) {
            DispatchResult::Async(f) => f.await,
            // Nothing here needs `&mut self`; read-only properties say so.
            DispatchResult::NotFound | DispatchResult::RequiresMut => {
                Err(unknown_property(property_name))
            }
        };
        result
    }

    async fn get_all(
        &self,
        interface_name: InterfaceName<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<HashMap<String, OwnedVariant>, BoxDBusError> {
        let obj = self.object()?;
        let iface = obj.named(interface_name.as_str())?;
        obj.exists().await?;
        Ok(iface.get_all(server, conn, Some(&hdr), &emitter).await?)
    }

    #[zbus(signal)]
    async fn properties_changed(
        emitter: &SignalEmitter<'_>,
        interface_name: InterfaceName<'_>,
        changed_properties: HashMap<&str, zbus::Variant<'_>>,
        invalidated_properties: &[&str],
    ) -> zbus::Result<()>;
}
