//! Bridges: small daemons that turn outside happenings (files, sockets,
//! uevents, D-Bus signals, a system init's events, lines on a socket) into
//! events through init's D-Bus API, as Upstart 1.13's `upstart-*-bridge`
//! programs did.
//!
//! Shared parts: [`options`] (the options every bridge takes), [`daemon`]
//! (detaching), [`link`] (the connection to init: retry, re-connect, the
//! jobs that need the bridge), [`wanted`] (reading those jobs' `start on` /
//! `stop on`), [`run`] (the loop a bridge's sources live in). Each bridge's
//! own logic is in its own module.

pub mod daemon;
pub mod dbus;
pub mod event;
pub mod file;
pub mod link;
pub mod local;
pub mod log;
pub mod options;
pub mod run;
pub mod socket;
pub mod udev;
pub mod wanted;
