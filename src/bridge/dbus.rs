//! upstart-dbus-bridge: D-Bus signals on a message bus as `dbus` events
//! (dbus-event.7). The bus is asked only for the signals jobs name in
//! `start on dbus ...` / `stop on dbus ...` (one match rule per such
//! condition), or for every signal with `--always`; init then matches the
//! event against each job's condition as for any other event.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use zbus::connection::Builder;
use zbus::message::Type as MessageType;
use zbus::{Connection, Message, MessageStream, Structure, Variant};

use super::link::{Emitter, Serves};
use super::log::{DEBUG, INFO, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;
use crate::control::paths::MANAGER_IFACE;

/// The event this bridge emits.
pub const EVENT: &str = "dbus";

/// Which message bus to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    System,
    Session,
}

pub struct DbusBridge {
    pub bus: Which,
    /// `--bus-name`: set as `BUS` in every event.
    pub bus_name: Option<String>,
    /// `--always`: every signal, whether a job asks or not.
    pub always: bool,
    rules: Option<UnboundedSender<BTreeSet<String>>>,
}

impl DbusBridge {
    pub fn new(bus: Which, bus_name: Option<String>, always: bool) -> DbusBridge {
        DbusBridge {
            bus,
            bus_name,
            always,
            rules: None,
        }
    }
}

impl Bridge for DbusBridge {
    const SERVES: Serves = |e| e == EVENT;

    fn start(&mut self, ctx: &mut Ctx) -> std::io::Result<()> {
        let (tx, rx) = unbounded();
        let listener = Listener {
            bus: self.bus,
            bus_name: self.bus_name.clone(),
            emitter: ctx.emitter(),
        };
        if self.always {
            let _ = tx.unbounded_send(BTreeSet::from(["type='signal'".to_string()]));
        } else {
            self.rules = Some(tx);
        }
        std::thread::Builder::new()
            .name("message-bus".into())
            .spawn(move || listener.run(rx))?;
        Ok(())
    }

    fn jobs(&mut self, wanted: &[Wanted], _ctx: &mut Ctx) {
        if let Some(tx) = &self.rules {
            let rules = wanted.iter().map(match_rule).collect();
            let _ = tx.unbounded_send(rules);
        }
    }
}

/// The match rule for one `dbus ...` condition: the named values that the
/// bus can compare as they are (a glob pattern, `!=`, or a positional
/// value is left to init).
pub fn match_rule(wanted: &Wanted) -> String {
    let mut rule = String::from("type='signal'");
    let keys = [
        ("SIGNAL", "member".to_string()),
        ("INTERFACE", "interface".to_string()),
        ("OBJPATH", "path".to_string()),
        ("SENDER", "sender".to_string()),
        ("DESTINATION", "destination".to_string()),
    ];
    let args = (0..64u8).map(|n| (format!("ARG{n}"), format!("arg{n}")));
    let all = keys
        .into_iter()
        .map(|(k, r)| (k.to_string(), r))
        .chain(args);
    for (key, field) in all {
        let Some(value) = wanted.named(&key) else {
            continue;
        };
        if value.contains(['*', '?', '[', '$']) {
            continue;
        }
        rule.push_str(&format!(",{field}={}", quote(value)));
    }
    rule
}

/// A value quoted for a match rule (a quote inside ends the quoted part,
/// is escaped, and a new one begins).
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

struct Listener {
    bus: Which,
    bus_name: Option<String>,
    emitter: Emitter,
}

/// Back-off between attempts to reach the bus: doubling from one second
/// up to this bound.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Listener {
    /// Listen for ever, reconnecting with back-off.
    fn run(self, mut rules: UnboundedReceiver<BTreeSet<String>>) {
        let mut wanted = BTreeSet::new();
        let mut delay = Duration::from_secs(1);
        loop {
            let builder = match self.bus {
                Which::System => Builder::system(),
                Which::Session => Builder::session(),
            };
            match zbus::block_on(builder.build()) {
                Ok(conn) => {
                    delay = Duration::from_secs(1);
                    bridge_log!(INFO, "Connected to the D-Bus {:?} bus", self.bus);
                    if !zbus::block_on(self.listen(&conn, &mut rules, &mut wanted)) {
                        return;
                    }
                    bridge_log!(WARN, "Disconnected from D-Bus, reconnecting");
                }
                Err(e) => bridge_log!(
                    WARN,
                    "Could not connect to D-Bus: {e}; retrying in {}s",
                    delay.as_secs()
                ),
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Serve one connection until it is lost (true) or the bridge's loop
    /// has gone (false).
    async fn listen(
        &self,
        conn: &Connection,
        rules: &mut UnboundedReceiver<BTreeSet<String>>,
        wanted: &mut BTreeSet<String>,
    ) -> bool {
        let mut stream = MessageStream::from(conn);
        let mut added = BTreeSet::new();
        sync_rules(conn, &mut added, wanted).await;
        loop {
            match select(stream.next(), rules.next()).await {
                Either::Left((Some(Ok(msg)), _)) => {
                    // Nothing asked for: nothing to pass on (a signal for
                    // the bridge's own connection comes regardless).
                    if !added.is_empty() {
                        self.pass_on(&msg);
                    }
                }
                Either::Left(_) => return true,
                Either::Right((Some(next), _)) => {
                    *wanted = next;
                    sync_rules(conn, &mut added, wanted).await;
                }
                Either::Right((None, _)) => return false,
            }
        }
    }

    /// One signal as a `dbus` event.
    fn pass_on(&self, msg: &Message) {
        let h = msg.header();
        if h.message_type() != MessageType::Signal {
            return;
        }
        let interface = h.interface().map(|i| i.to_string());
        // Never init's own signals: a job started by one could make init
        // send another.
        if interface.as_deref() == Some(MANAGER_IFACE)
            || interface
                .as_deref()
                .is_some_and(|i| i.starts_with(&format!("{MANAGER_IFACE}.")))
        {
            return;
        }
        let Some(member) = h.member() else {
            return;
        };
        let mut env = vec![format!("SIGNAL={member}")];
        if let Some(name) = &self.bus_name {
            env.push(format!("BUS={name}"));
        }
        if let Some(i) = interface {
            env.push(format!("INTERFACE={i}"));
        }
        if let Some(p) = h.path() {
            env.push(format!("OBJPATH={p}"));
        }
        if let Some(s) = h.sender() {
            env.push(format!("SENDER={s}"));
        }
        if let Some(d) = h.destination() {
            env.push(format!("DESTINATION={d}"));
        }
        for (n, arg) in arguments(msg).into_iter().enumerate() {
            if let Some(text) = arg {
                env.push(format!("ARG{n}={text}"));
            }
        }
        bridge_log!(DEBUG, "Received D-Bus signal: {}", env.join(" "));
        self.emitter.emit(EVENT, env);
    }
}

/// Ask the bus for exactly the `wanted` rules: add the new ones, remove
/// those no job needs any more.
async fn sync_rules(conn: &Connection, added: &mut BTreeSet<String>, wanted: &BTreeSet<String>) {
    let gone: Vec<String> = added.difference(wanted).cloned().collect();
    for rule in gone {
        let _ = bus_call(conn, "RemoveMatch", &rule).await;
        added.remove(&rule);
    }
    let new: Vec<String> = wanted.difference(added).cloned().collect();
    for rule in new {
        match bus_call(conn, "AddMatch", &rule).await {
            Ok(()) => {
                bridge_log!(DEBUG, "Listening for {rule}");
                added.insert(rule);
            }
            Err(e) => bridge_log!(WARN, "The bus refused the match rule {rule}: {e}"),
        }
    }
}

async fn bus_call(conn: &Connection, method: &str, rule: &str) -> zbus::Result<()> {
    conn.call_method(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        Some("org.freedesktop.DBus"),
        method,
        &(rule,),
    )
    .await
    .map(|_| ())
}

/// The signal's arguments in order, as [`simple`] writes them.
fn arguments(msg: &Message) -> Vec<Option<String>> {
    let body = msg.body();
    if body.signature().to_string().is_empty() {
        return Vec::new();
    }
    if let Ok(s) = body.deserialize::<Structure>() {
        return s.fields().iter().map(simple).collect();
    }
    body.deserialize::<Variant>()
        .map(|v| vec![simple(&v)])
        .unwrap_or_default()
}

/// An argument of a simple type as text (as Upstart's bridge wrote it);
/// other types give none, but still count.
fn simple(arg: &Variant) -> Option<String> {
    Some(match arg {
        Variant::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Variant::I16(n) => n.to_string(),
        Variant::U16(n) => n.to_string(),
        Variant::I32(n) => n.to_string(),
        Variant::U32(n) => n.to_string(),
        Variant::I64(n) => n.to_string(),
        Variant::U64(n) => n.to_string(),
        Variant::F64(x) => format!("{x:.6}"),
        Variant::Str(s) => s.to_string(),
        Variant::ObjectPath(p) => p.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(args: &[&str]) -> Wanted {
        Wanted {
            job: "/j".into(),
            event: EVENT.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_condition_becomes_a_match_rule() {
        assert_eq!(
            match_rule(&wanted(&[
                "SIGNAL=Ping",
                "INTERFACE=org.example.Test",
                "OBJPATH=/org/example",
                "ARG0=it's",
                "ARG1=a*",
                "SENDER!=x",
            ])),
            "type='signal',member='Ping',interface='org.example.Test',\
             path='/org/example',arg0='it'\\''s'"
        );
        assert_eq!(match_rule(&wanted(&[])), "type='signal'");
    }
}
