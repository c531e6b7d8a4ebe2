//! outset: an Upstart-compatible, PID-1-capable job supervisor.
//!
//! The library holds everything the binaries share. Today that is the
//! job-file language (`config`); the engine, control plane and PID-1 duties
//! build on it.

pub mod cgroup;
pub mod config;
pub mod control;
pub mod daemon;
pub mod env;
pub mod event;
pub mod job;
pub mod reexec;
pub mod spawn;
pub mod utmp;
