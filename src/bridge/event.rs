//! upstart-event-bridge: the system init's events, forwarded into a
//! session init as `:sys:NAME` with the same environment; the system
//! init's re-exec (`Restarted`) as `:sys:restarted`. Root's sessions hear
//! them on the system init's private socket, everybody else's through
//! the system bus.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::connection::Builder;
use zbus::message::Type as MessageType;
use zbus::{MatchRule, MessageStream};

use super::link::{Emitter, Serves};
use super::log::{INFO, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;
use crate::control::paths::{MANAGER_IFACE, MANAGER_PATH};
use crate::control::BUS_NAME;

pub struct EventBridge {
    /// The system init's address.
    pub system: String,
}

impl Bridge for EventBridge {
    /// It forwards everything and needs no job's conditions.
    const SERVES: Serves = |_| false;

    fn start(&mut self, ctx: &mut Ctx) -> std::io::Result<()> {
        let (address, emitter) = (self.system.clone(), ctx.emitter());
        std::thread::Builder::new()
            .name("system-init".into())
            .spawn(move || forward(&address, &emitter))?;
        Ok(())
    }

    fn jobs(&mut self, _wanted: &[Wanted], _ctx: &mut Ctx) {}
}

/// Listen to the system init for ever, reconnecting with back-off: on
/// its private socket when it lets the bridge in (root), else through
/// the system bus, as Upstart's bridge always did.
fn forward(address: &str, emitter: &Emitter) {
    let mut delay = Duration::from_secs(1);
    loop {
        let failed = match zbus::block_on(Builder::address(address).p2p().build()) {
            Ok(conn) => {
                delay = Duration::from_secs(1);
                bridge_log!(INFO, "Connected to system init at {address}");
                zbus::block_on(listen_private(&conn, emitter));
                None
            }
            // Only init's own user may use the private socket.
            Err(private) => match zbus::block_on(Builder::system().build()) {
                Ok(conn) => {
                    bridge_log!(INFO, "Connected to system init through the system bus");
                    match zbus::block_on(listen_bus(&conn, emitter)) {
                        Ok(()) => {
                            delay = Duration::from_secs(1);
                            None
                        }
                        Err(e) => Some(format!("on the system bus: {e}")),
                    }
                }
                Err(bus) => Some(format!(
                    "at {address}: {private}; nor on the system bus: {bus}"
                )),
            },
        };
        match failed {
            None => bridge_log!(WARN, "Disconnected from system init, reconnecting"),
            Some(why) => bridge_log!(
                WARN,
                "Could not reach system init {why}; retrying in {}s",
                delay.as_secs()
            ),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// The signals of a private connection, until it ends.
async fn listen_private(conn: &zbus::Connection, emitter: &Emitter) {
    let mut stream = MessageStream::from(conn);
    while let Some(Ok(msg)) = stream.next().await {
        pass_on(&msg, emitter);
    }
}

/// What the bus delivers to the bridge.
enum OnBus {
    Owner(zbus::Message),
    Signal(zbus::Message),
}

/// The system init's signals on the bus, until the connection ends.
/// Anybody may send a signal there: only those whose sender is the
/// current owner of `com.ubuntu.Upstart` are passed on.
async fn listen_bus(conn: &zbus::Connection, emitter: &Emitter) -> zbus::Result<()> {
    let owners = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender("org.freedesktop.DBus")
        .interface("org.freedesktop.DBus")
        .member("NameOwnerChanged")
        .arg(0, BUS_NAME)
        .build()?;
    let signals = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .interface(MANAGER_IFACE)
        .path(MANAGER_PATH)
        .build()?;
    let owners = MessageStream::for_match_rule(owners, conn, None).await?;
    let signals = MessageStream::for_match_rule(signals, conn, None).await?;
    let mut owner: Option<String> = conn
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "GetNameOwner",
            &(BUS_NAME,),
        )
        .await
        .ok()
        .and_then(|reply| reply.body().deserialize::<String>().ok());
    let mut all = futures_util::stream::select(
        owners.map(|m| m.map(OnBus::Owner)),
        signals.map(|m| m.map(OnBus::Signal)),
    );
    while let Some(Ok(item)) = all.next().await {
        match item {
            OnBus::Owner(msg) => {
                if let Ok((_, _, new)) = msg.body().deserialize::<(String, String, String)>() {
                    owner = Some(new).filter(|n| !n.is_empty());
                }
            }
            OnBus::Signal(msg) => {
                let sender = msg.header().sender().map(|s| s.to_string());
                if sender.is_some() && sender == owner {
                    pass_on(&msg, emitter);
                }
            }
        }
    }
    Ok(())
}

/// One of the system init's signals, as an event of the session.
fn pass_on(msg: &zbus::Message, emitter: &Emitter) {
    let h = msg.header();
    if h.message_type() != MessageType::Signal
        || h.interface().map(|i| i.as_str()) != Some(MANAGER_IFACE)
    {
        return;
    }
    match h.member().map(|m| m.as_str()) {
        Some("EventEmitted") => {
            if let Ok((name, env)) = msg.body().deserialize::<(String, Vec<String>)>() {
                emitter.emit(&format!(":sys:{name}"), env);
            }
        }
        Some("Restarted") => emitter.emit(":sys:restarted", Vec::new()),
        _ => {}
    }
}
