//! `outset-cgmanager`: a cgroup manager speaking cgmanager's D-Bus API
//! (`org.linuxcontainers.cgmanager0_0`, cgroups.md §7) on a peer-to-peer
//! socket, over cgroup v1, v2 or both (extensions.md §1).

mod auth;
mod connections;
mod error;
mod fsops;
mod guarded_socket;
mod iface;
mod layout;
mod mounts;
mod path;
mod reaper;
mod server;
mod service;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::CgError;
pub use iface::{API_VERSION, IFACE, PATH};
pub use server::ServerError;

/// The socket the manager listens on unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/sys/fs/cgroup/cgmanager/sock";

/// How the manager runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    /// How often empty remove-on-empty cgroups are looked for.
    pub sweep_interval: Duration,
}

/// Records as `outset-cgmanager: MESSAGE` lines on stderr.
struct StderrDrain {
    min: slog::Level,
}

impl slog::Drain for StderrDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if record.level().is_at_least(self.min) {
            let line = format!("outset-cgmanager: {}\n", record.msg());
            // One write per record; a failed log write is not fatal.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        Ok(())
    }
}

pub fn logger(debug: bool) -> slog::Logger {
    let min = if debug {
        slog::Level::Debug
    } else {
        slog::Level::Info
    };
    slog::Logger::root(StderrDrain { min }, slog::o!())
}

/// Serve until SIGTERM, SIGINT or SIGHUP, then remove the socket.
pub fn run(opts: &Options, log: slog::Logger) -> Result<(), ServerError> {
    use nix::sys::signal::{SigSet, Signal};
    // Block the stop signals in every thread; the main thread waits for them.
    let mut stop = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop.add(s);
    }
    stop.thread_block().map_err(|e| ServerError::Io {
        what: "blocking signals".into(),
        source: e.into(),
    })?;

    let layout = layout::Layout::discover().map_err(|source| ServerError::Io {
        what: "reading /proc/self/mountinfo".into(),
        source,
    })?;
    if layout.mounts.is_empty() {
        return Err(ServerError::NoCgroups);
    }
    for m in &layout.mounts {
        match &m.v1 {
            Some(c) => slog::info!(log, "cgroup v1 {} at {}", c.join(","), m.dir.display()),
            None => slog::info!(log, "cgroup v2 at {}", m.dir.display()),
        }
    }
    let listener = server::bind(&opts.socket, &log)?;
    let service = Arc::new(service::Service {
        layout,
        reaper: Default::default(),
        log: log.clone(),
    });
    reaper::spawn(service.reaper.clone(), opts.sweep_interval, log.clone()).map_err(|source| {
        ServerError::Io {
            what: "starting the reaper".into(),
            source,
        }
    })?;
    let accept_log = log.clone();
    std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            if let Err(e) = server::serve(listener, service, accept_log.clone()) {
                slog::error!(accept_log, "{e}");
            }
        })
        .map_err(|source| ServerError::Io {
            what: "starting the accept thread".into(),
            source,
        })?;
    slog::info!(log, "listening on {}", opts.socket.display());
    let sig = stop.wait().map_err(|e| ServerError::Io {
        what: "waiting for signals".into(),
        source: e.into(),
    })?;
    slog::info!(log, "{sig}: exiting");
    let _ = std::fs::remove_file(&opts.socket);
    Ok(())
}
