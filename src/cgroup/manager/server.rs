//! The listening socket and the connections: every client is served on
//! one thread, by one runtime, so an idle or stalled client costs a
//! socket and a little memory, never a thread. How many clients may be
//! connected, authenticating or idle is bounded in connections.rs.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use thiserror::Error;
use zbus::connection::Builder;
use zruntime::{AsyncIo, SharedRuntime};

use crate::control::peer::{guid, BusStandIn};

use super::auth::Caller;
use super::connections::{self, Admission, Registry, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT};
use super::guarded_socket::{cut, Activity, GuardedSocket, Io, Limits};
use super::iface::{Cgmanager, PATH};
use super::service::Service;

/// The largest message a client may send. The manager's calls carry a
/// few paths and values: far less than this.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// The most a client's SASL exchange may take.
pub const MAX_HANDSHAKE: usize = 16 * 1024;

const LIMITS: Limits = Limits {
    max_message: MAX_MESSAGE,
    max_handshake: MAX_HANDSHAKE,
};

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

/// Accept and serve clients for ever, all on the calling thread.
pub fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    log: slog::Logger,
) -> Result<(), ServerError> {
    let guid = guid().ok_or_else(|| ServerError::Io {
        what: "making a server GUID".into(),
        source: std::io::Error::other("getrandom failed"),
    })?;
    zbus::block_on(async move {
        let runtime = SharedRuntime::current().map_err(io("starting the runtime"))?;
        let listener = AsyncIo::new(&runtime, listener).map_err(io("watching the socket"))?;
        let registry = Registry::shared();
        loop {
            let stream = match listener.read_with(|l| l.accept()).await {
                Ok((s, _)) => s,
                Err(e) => {
                    slog::warn!(log, "accept: {e}");
                    // Out of descriptors and the like: let it pass.
                    runtime.sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let creds = match nix::sys::socket::getsockopt(
                &stream,
                nix::sys::socket::sockopt::PeerCredentials,
            ) {
                Ok(c) => c,
                Err(e) => {
                    slog::warn!(log, "no peer credentials: {e}");
                    continue;
                }
            };
            let caller = Caller {
                pid: creds.pid(),
                uid: creds.uid(),
                gid: creds.gid(),
            };
            let activity = Arc::new(Activity::new());
            let (socket, io) = match GuardedSocket::new(&runtime, stream, LIMITS, activity.clone())
            {
                Ok(s) => s,
                Err(e) => {
                    slog::warn!(log, "cannot serve a client: {e}");
                    continue;
                }
            };
            let id = match connections::lock(&registry).admit(caller.uid, &io, &activity) {
                Admission::Refused(why) => {
                    slog::warn!(log, "refusing a connection of uid {}: {why}", caller.uid);
                    cut(&io);
                    continue;
                }
                Admission::Admitted { id, evicted } => {
                    for (uid, why) in evicted {
                        slog::debug!(log, "closed a connection of uid {uid}: {why}");
                    }
                    id
                }
            };
            let client = Client {
                caller,
                io,
                activity,
                id,
                registry: registry.clone(),
            };
            let task = client.serve(socket, service.clone(), guid.clone(), log.clone());
            zruntime::spawn(task).detach();
            // Let the new client's handshake start before the next accept:
            // in a burst, handshakes are not left to pile up unstarted.
            YieldOnce(false).await;
        }
    })
}

/// Pending once, so that the runtime runs the other tasks that are ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// One connection being served.
struct Client {
    caller: Caller,
    io: Io,
    activity: Arc<Activity>,
    id: u64,
    registry: connections::Shared,
}

impl Client {
    /// Authenticate (within `HANDSHAKE_TIMEOUT`), then serve calls until
    /// the client hangs up, stays idle too long (users other than
    /// root), or is evicted.
    async fn serve(
        self,
        socket: GuardedSocket,
        service: Arc<Service>,
        guid: zbus::Guid<'static>,
        log: slog::Logger,
    ) {
        let caller = self.caller;
        slog::debug!(
            log,
            "client pid {} uid {} gid {} connected",
            caller.pid,
            caller.uid,
            caller.gid
        );
        let build = Builder::socket(socket)
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
            .build();
        let conn = match SharedRuntime::current() {
            Ok(rt) => match rt.timeout(HANDSHAKE_TIMEOUT, build).await {
                Ok(Ok(conn)) => Some((rt, conn)),
                Ok(Err(e)) => {
                    slog::debug!(log, "client pid {}: {e}", caller.pid);
                    None
                }
                Err(_) => {
                    slog::debug!(log, "client pid {}: no authentication in time", caller.pid);
                    None
                }
            },
            Err(e) => {
                slog::warn!(log, "client pid {}: {e}", caller.pid);
                None
            }
        };
        if let Some((rt, conn)) = conn {
            connections::lock(&self.registry).authenticated(self.id);
            if caller.is_root() {
                conn.closed().await;
            } else {
                loop {
                    let left = IDLE_TIMEOUT.saturating_sub(self.activity.idle());
                    if left.is_zero() {
                        slog::debug!(log, "client pid {}: idle, closing", caller.pid);
                        break;
                    }
                    if rt.timeout(left, conn.closed()).await.is_ok() {
                        break;
                    }
                }
            }
        }
        connections::lock(&self.registry).leave(self.id);
        cut(&self.io);
    }
}
