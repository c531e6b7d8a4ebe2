//! The control plane: Upstart's D-Bus API on a private peer-to-peer
//! socket (control.md).

mod admission;
mod bus;
pub mod client;
mod dispatch;
mod error;
mod guard;
mod ifaces;
mod newcomers;
mod outbox;
pub mod paths;
pub mod peer;
pub mod protocol;
mod server;
pub mod showconfig;
mod socket;
mod subscriptions;
pub mod view;
pub mod wire;

pub use bus::{socket_path, BusCall, BusKind, BusOptions};
pub use dispatch::calls_in_flight;
pub use protocol::{
    Answer, CallError, Change, EngineHandle, Envelope, InstanceProps, JobProps, Request, Value,
};
pub use server::{start, ToBroadcaster, BUS_NAME};
