//! The listening socket and the connections: every client is served on a
//! thread (and zbus runtime) of its own, so a client that stalls, floods
//! or never finishes authenticating holds up nobody else.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use thiserror::Error;
use zbus::connection::Builder;

use crate::control::peer::{guid, BusStandIn};

use super::auth::Caller;
use super::iface::{Cgmanager, PATH};
use super::service::Service;

/// At most this many clients at once; more are turned away.
const MAX_CLIENTS: usize = 1024;
/// At most this many at once per user other than root, so that one user
/// cannot use up the connections init's jobs need.
const MAX_CLIENTS_PER_USER: usize = 64;

/// Connections being served, in all and per uid.
#[derive(Default)]
struct Counts {
    total: usize,
    per_uid: std::collections::HashMap<u32, usize>,
}

impl Counts {
    fn admit(&mut self, uid: u32) -> bool {
        let mine = self.per_uid.get(&uid).copied().unwrap_or(0);
        if self.total >= MAX_CLIENTS || (uid != 0 && mine >= MAX_CLIENTS_PER_USER) {
            return false;
        }
        self.total += 1;
        self.per_uid.insert(uid, mine + 1);
        true
    }

    fn leave(&mut self, uid: u32) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
    }
}

fn counts(c: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: a manager is already answering on this socket")]
    AlreadyRunning(PathBuf),
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    #[error("no cgroup hierarchy is mounted")]
    NoCgroups,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |source| ServerError::Io { what, source }
}

/// Whether `dir` lies on a cgroup filesystem (where no socket can be made).
fn on_cgroupfs(dir: &Path) -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    statfs(dir)
        .map(|s| {
            let t = s.filesystem_type();
            t == CGROUP2_SUPER_MAGIC || t == CGROUP_SUPER_MAGIC
        })
        .unwrap_or(false)
}

/// Bind the socket: make its directory (a small tmpfs over it when it is
/// on a cgroup filesystem, as `/sys/fs/cgroup/cgmanager` is on a pure v2
/// system), replace a stale socket, refuse to replace a live manager.
pub fn bind(socket: &Path, log: &slog::Logger) -> Result<UnixListener, ServerError> {
    if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        if on_cgroupfs(parent) {
            nix::mount::mount(
                Some("cgmanager"),
                parent,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC,
                Some("mode=0755,size=64k"),
            )
            .map_err(|e| ServerError::Io {
                what: format!("mounting a tmpfs for the socket on {}", parent.display()),
                source: e.into(),
            })?;
            slog::info!(
                log,
                "mounted a tmpfs on {} for the socket",
                parent.display()
            );
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if !meta.file_type().is_socket() {
            return Err(ServerError::NotASocket(socket.to_path_buf()));
        }
        if UnixStream::connect(socket).is_ok() {
            return Err(ServerError::AlreadyRunning(socket.to_path_buf()));
        }
        std::fs::remove_file(socket).map_err(io(format!("removing stale {}", socket.display())))?;
    }
    let listener =
        UnixListener::bind(socket).map_err(io(format!("binding {}", socket.display())))?;
    // Anyone may connect; what they may do is decided per call.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))
        .map_err(io(format!("chmod {}", socket.display())))?;
    Ok(listener)
}

/// Accept clients for ever, each on a thread of its own.
pub fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    log: slog::Logger,
) -> Result<(), ServerError> {
    let guid = guid().ok_or_else(|| ServerError::Io {
        what: "making a server GUID".into(),
        source: std::io::Error::other("getrandom failed"),
    })?;
    let clients = Arc::new(Mutex::new(Counts::default()));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                slog::warn!(log, "accept: {e}");
                // Out of descriptors and the like: let it pass.
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
        };
        let creds =
            match nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
            {
                Ok(c) => c,
                Err(e) => {
                    slog::warn!(log, "no peer credentials: {e}");
                    continue;
                }
            };
        if !counts(&clients).admit(creds.uid()) {
            slog::warn!(
                log,
                "too many clients (uid {}); refusing a connection",
                creds.uid()
            );
            continue;
        }
        let caller = Caller {
            pid: creds.pid(),
            uid: creds.uid(),
            gid: creds.gid(),
        };
        let (service, guid, client_log, count) =
            (service.clone(), guid.clone(), log.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                client(stream, caller, service, guid, &client_log);
                counts(&count).leave(caller.uid);
            });
        if let Err(e) = spawned {
            counts(&clients).leave(caller.uid);
            slog::warn!(log, "cannot serve a client: {e}");
        }
    }
    Ok(())
}

/// Authenticate one client and serve it until it hangs up.
fn client(
    stream: UnixStream,
    caller: Caller,
    service: Arc<Service>,
    guid: zbus::Guid<'static>,
    log: &slog::Logger,
) {
    slog::debug!(
        log,
        "client pid {} uid {} gid {} connected",
        caller.pid,
        caller.uid,
        caller.gid
    );
    let result: zbus::Result<()> = zbus::block_on(async move {
        let conn = Builder::unix_stream(stream)
            .server(guid)
            .p2p()
            .serve_at(PATH, Cgmanager { service, caller })
            .serve_at(
                "/org/freedesktop/DBus",
                BusStandIn {
                    serial: AtomicU64::new(1),
                    subscriptions: None,
                },
            )
            .build()
            .await?;
        conn.closed().await;
        Ok(())
    });
    if let Err(e) = result {
        slog::debug!(log, "client pid {}: {e}", caller.pid);
    }
}
