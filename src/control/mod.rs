//! The control plane: Upstart's D-Bus API on a private peer-to-peer
//! socket (control.md).

mod admission;
pub mod client;
mod dispatch;
mod error;
mod guard;
mod ifaces;
mod outbox;
pub mod paths;
pub mod peer;
pub mod protocol;
mod server;
pub mod showconfig;
mod socket;
mod subscriptions;
pub mod view;

pub use protocol::{
    Answer, CallError, Change, EngineHandle, Envelope, InstanceProps, JobProps, Request, Value,
};
pub use server::{start, ToBroadcaster};
