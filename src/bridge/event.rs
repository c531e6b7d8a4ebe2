//! upstart-event-bridge: the system init's events, forwarded into a
//! session init as `:sys:NAME` with the same environment; the system
//! init's re-exec (`Restarted`) as `:sys:restarted`.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::connection::Builder;
use zbus::message::Type as MessageType;
use zbus::MessageStream;

use super::link::{Emitter, Serves};
use super::log::{INFO, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;
use crate::control::paths::MANAGER_IFACE;

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

/// Listen to the system init for ever, reconnecting with back-off.
fn forward(address: &str, emitter: &Emitter) {
    let mut delay = Duration::from_secs(1);
    loop {
        match zbus::block_on(Builder::address(address).p2p().build()) {
            Ok(conn) => {
                delay = Duration::from_secs(1);
                bridge_log!(INFO, "Connected to system init at {address}");
                zbus::block_on(async {
                    let mut stream = MessageStream::from(&conn);
                    while let Some(Ok(msg)) = stream.next().await {
                        let h = msg.header();
                        if h.message_type() != MessageType::Signal
                            || h.interface().map(|i| i.as_str()) != Some(MANAGER_IFACE)
                        {
                            continue;
                        }
                        match h.member().map(|m| m.as_str()) {
                            Some("EventEmitted") => {
                                if let Ok((name, env)) =
                                    msg.body().deserialize::<(String, Vec<String>)>()
                                {
                                    emitter.emit(&format!(":sys:{name}"), env);
                                }
                            }
                            Some("Restarted") => emitter.emit(":sys:restarted", Vec::new()),
                            _ => {}
                        }
                    }
                });
                bridge_log!(WARN, "Disconnected from system init, reconnecting");
            }
            Err(e) => bridge_log!(
                WARN,
                "Could not connect to system init at {address}: {e}; retrying in {}s",
                delay.as_secs()
            ),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}
