//! The connection to init, on a thread of its own: connect (retrying with
//! back-off, and saying so), learn which jobs need the bridge (`GetAllJobs`
//! and each job's `start_on` / `stop_on`, then `JobAdded` / `JobRemoved`),
//! re-read them after a re-exec (`Restarted`, or the connection lost and
//! made again), and send the events the bridge asks for.
//!
//! The loop hears of changes through a channel plus a `mio::Waker`; events
//! go the other way through an unbounded channel, so neither side ever
//! waits for the other.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use zbus::connection::Builder;
use zbus::message::Type as MessageType;
use zbus::{Connection, MessageStream, OwnedObjectPath, OwnedVariant};

use super::log::{DEBUG, INFO, WARN};
use super::wanted::{matches, Wanted};
use crate::bridge_log;
use crate::control::paths::{JOB_IFACE, MANAGER_IFACE, MANAGER_PATH};

/// An event for init.
#[derive(Debug)]
pub struct Emit {
    pub name: String,
    pub env: Vec<String>,
    /// Ask init to answer only when the event has finished; the loop then
    /// hears [`Update::Done`] with `tag`.
    pub wait: bool,
    /// A descriptor to attach (`EmitEventWithFile`).
    pub file: Option<OwnedFd>,
    pub tag: u64,
}

/// What the link tells the loop.
#[derive(Debug)]
pub enum Update {
    /// Every match of the bridge's events in every job, after any change.
    Jobs(Vec<Wanted>),
    /// A waited-for event has finished (or failed, or init went away).
    Done(u64),
}

/// Which events a bridge serves.
pub type Serves = fn(&str) -> bool;

/// Back-off between connection attempts: doubling from one second up to
/// this bound.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Start the link thread.
pub fn spawn(
    address: String,
    serves: Serves,
    updates: Sender<Update>,
    waker: Arc<mio::Waker>,
    mut emits: UnboundedReceiver<Emit>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("init-link".into())
        .spawn(move || {
            let notify = Notify { updates, waker };
            let mut delay = Duration::from_secs(1);
            loop {
                match zbus::block_on(Builder::address(address.as_str()).p2p().build()) {
                    Ok(conn) => {
                        delay = Duration::from_secs(1);
                        bridge_log!(INFO, "Connected to init at {address}");
                        if !zbus::block_on(session(&conn, serves, &notify, &mut emits)) {
                            return;
                        }
                        bridge_log!(WARN, "Disconnected from init, reconnecting");
                        continue;
                    }
                    Err(e) => bridge_log!(
                        WARN,
                        "Could not connect to init at {address}: {e}; retrying in {}s",
                        delay.as_secs()
                    ),
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(MAX_BACKOFF);
                // Events raised while init is unreachable are dropped.
                while let Ok(e) = emits.try_recv() {
                    bridge_log!(WARN, "init unreachable, dropped event {}", e.name);
                    if e.wait {
                        notify.send(Update::Done(e.tag));
                    }
                }
            }
        })
}

struct Notify {
    updates: Sender<Update>,
    waker: Arc<mio::Waker>,
}

impl Notify {
    fn send(&self, u: Update) {
        if self.updates.send(u).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Serve one connection until it is lost (true) or the loop has gone
/// (false).
async fn session(
    conn: &Connection,
    serves: Serves,
    notify: &Notify,
    emits: &mut UnboundedReceiver<Emit>,
) -> bool {
    // Subscribe before asking, so that no JobAdded falls in between.
    let mut stream = MessageStream::from(conn);
    let mut table = match read_all(conn, serves).await {
        Ok(t) => t,
        Err(e) => {
            bridge_log!(WARN, "Could not obtain job list: {e}");
            return true;
        }
    };
    publish(&table, notify);
    loop {
        match select(stream.next(), emits.next()).await {
            Either::Left((Some(Ok(msg)), _)) => {
                let header = msg.header();
                if header.message_type() != MessageType::Signal
                    || header.interface().map(|i| i.as_str()) != Some(MANAGER_IFACE)
                {
                    continue;
                }
                let member = header.member().map(|m| m.to_string()).unwrap_or_default();
                match member.as_str() {
                    "JobAdded" | "JobRemoved" => {
                        let Ok(path) = msg.body().deserialize::<OwnedObjectPath>() else {
                            continue;
                        };
                        let path = path.to_string();
                        table.remove(&path);
                        if member == "JobAdded" {
                            match conditions(conn, &path, serves).await {
                                Ok(w) if !w.is_empty() => {
                                    bridge_log!(DEBUG, "Job got added {path}");
                                    table.insert(path, w);
                                }
                                Ok(_) => continue,
                                Err(e) => {
                                    bridge_log!(WARN, "Could not read conditions of {path}: {e}");
                                    continue;
                                }
                            }
                        } else {
                            bridge_log!(DEBUG, "Job went away {path}");
                        }
                        publish(&table, notify);
                    }
                    "Restarted" => {
                        bridge_log!(INFO, "init restarted, reading its jobs again");
                        match read_all(conn, serves).await {
                            Ok(t) => table = t,
                            Err(_) => return true,
                        }
                        publish(&table, notify);
                    }
                    _ => {}
                }
            }
            Either::Left(_) => return true,
            Either::Right((Some(emit), _)) => send(conn.clone(), emit, notify),
            Either::Right((None, _)) => return false,
        }
    }
}

fn publish(table: &BTreeMap<String, Vec<Wanted>>, notify: &Notify) {
    notify.send(Update::Jobs(table.values().flatten().cloned().collect()));
}

async fn read_all(
    conn: &Connection,
    serves: Serves,
) -> zbus::Result<BTreeMap<String, Vec<Wanted>>> {
    let reply = conn
        .call_method(
            None::<&str>,
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            "GetAllJobs",
            &(),
        )
        .await?;
    let paths: Vec<OwnedObjectPath> = reply.body().deserialize()?;
    let mut table = BTreeMap::new();
    for path in paths {
        let path = path.to_string();
        // A job removed meanwhile is simply not there.
        if let Ok(w) = conditions(conn, &path, serves).await {
            if !w.is_empty() {
                table.insert(path, w);
            }
        }
    }
    Ok(table)
}

/// The served matches of one job's `start on` and `stop on`.
async fn conditions(conn: &Connection, path: &str, serves: Serves) -> zbus::Result<Vec<Wanted>> {
    let mut all = Vec::new();
    for prop in ["start_on", "stop_on"] {
        let reply = conn
            .call_method(
                None::<&str>,
                path,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(JOB_IFACE, prop),
            )
            .await?;
        let v: OwnedVariant = reply.body().deserialize()?;
        let cond = Vec::<Vec<String>>::try_from(v)?;
        all.extend(matches(path, &cond, &serves));
    }
    Ok(all)
}

/// Send one event without holding up the link.
fn send(conn: Connection, e: Emit, notify: &Notify) {
    let updates = notify.updates.clone();
    let waker = notify.waker.clone();
    zruntime::spawn(async move {
        let result = match e.file {
            None => {
                conn.call_method(
                    None::<&str>,
                    MANAGER_PATH,
                    Some(MANAGER_IFACE),
                    "EmitEvent",
                    &(&e.name, &e.env, e.wait),
                )
                .await
            }
            Some(fd) => {
                conn.call_method(
                    None::<&str>,
                    MANAGER_PATH,
                    Some(MANAGER_IFACE),
                    "EmitEventWithFile",
                    &(&e.name, &e.env, e.wait, zbus::Fd::from(fd)),
                )
                .await
            }
        };
        match result {
            Ok(_) => bridge_log!(DEBUG, "Event {} done", e.name),
            Err(err) => bridge_log!(WARN, "Error emitting {} event: {err}", e.name),
        }
        if e.wait && updates.send(Update::Done(e.tag)).is_ok() {
            let _ = waker.wake();
        }
    })
    .detach();
}

/// A handle other threads of a bridge use to send events.
#[derive(Clone)]
pub struct Emitter(pub(crate) UnboundedSender<Emit>);

impl Emitter {
    /// Emit without waiting, as Upstart's bridges mostly did.
    pub fn emit(&self, name: &str, env: Vec<String>) {
        bridge_log!(DEBUG, "emit {name} {}", env.join(" "));
        let _ = self.0.unbounded_send(Emit {
            name: name.to_string(),
            env,
            wait: false,
            file: None,
            tag: 0,
        });
    }
}
