//! upstart-socket-bridge: socket activation (socket-event(7)).
//!
//! For every `socket PROTO=inet|inet6 PORT=N [ADDR=A]` or `socket
//! PROTO=unix SOCKET_PATH=P` (`@name` for the abstract namespace) in a
//! job's conditions the
//! bridge binds and listens. When a client connects it emits `socket` with
//! the address, attaching the **listening** socket (`EmitEventWithFile`):
//! the job finds it in `UPSTART_FDS` and accepts the connection itself.
//! Like Upstart the bridge never accepts, and it is told of a socket only
//! once per new connection (edge-triggered); while its event is still
//! being handled (until the job has started) further connections raise no
//! event.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};

use super::link::Serves;
use super::log::{DEBUG, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;

/// What a job asks to listen on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spec {
    Inet(SocketAddr),
    /// The path as written (`@` first: abstract).
    Unix(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("Ignored socket event without variable name")]
    Positional,
    #[error("Ignored socket event with unknown PROTO={0}")]
    Proto(String),
    #[error("Ignored socket event with invalid {0}")]
    Invalid(String),
    #[error("Ignored socket event with unknown variable {0}")]
    Unknown(String),
    #[error("Ignored incomplete socket event")]
    Incomplete,
}

impl Spec {
    pub fn parse(w: &Wanted) -> Result<Spec, SpecError> {
        let (mut proto, mut port, mut addr, mut path) = (None, None, None, None);
        for a in &w.args {
            let (k, v) = a.split_once('=').ok_or(SpecError::Positional)?;
            match k {
                "PROTO" => proto = Some(v),
                "PORT" => {
                    port = Some(
                        v.parse::<u16>()
                            .map_err(|_| SpecError::Invalid(a.clone()))?,
                    )
                }
                "ADDR" => {
                    addr = Some(
                        v.parse::<IpAddr>()
                            .map_err(|_| SpecError::Invalid(a.clone()))?,
                    )
                }
                "SOCKET_PATH" => path = Some(v),
                // The event's variables become the job's environment: a
                // PATH there would replace the job's search path.
                "PATH" => return Err(SpecError::Unknown("PATH (use SOCKET_PATH)".into())),
                other => return Err(SpecError::Unknown(other.to_string())),
            }
        }
        match (proto, port, addr, path) {
            (Some("inet"), Some(p), a, None) => match a.unwrap_or(Ipv4Addr::UNSPECIFIED.into()) {
                a @ IpAddr::V4(_) => Ok(Spec::Inet(SocketAddr::new(a, p))),
                IpAddr::V6(a) => Err(SpecError::Invalid(format!("ADDR={a}"))),
            },
            (Some("inet6"), Some(p), a, None) => match a.unwrap_or(Ipv6Addr::UNSPECIFIED.into()) {
                a @ IpAddr::V6(_) => Ok(Spec::Inet(SocketAddr::new(a, p))),
                IpAddr::V4(a) => Err(SpecError::Invalid(format!("ADDR={a}"))),
            },
            (Some("unix"), None, None, Some(p)) if p.len() > 1 => Ok(Spec::Unix(p.to_string())),
            (Some(p), ..) if !matches!(p, "inet" | "inet6" | "unix") => {
                Err(SpecError::Proto(p.to_string()))
            }
            _ => Err(SpecError::Incomplete),
        }
    }

    /// The event's environment.
    fn env(&self) -> Vec<String> {
        match self {
            Spec::Inet(a) => vec![
                format!("PROTO={}", if a.is_ipv4() { "inet" } else { "inet6" }),
                format!("PORT={}", a.port()),
                format!("ADDR={}", a.ip()),
            ],
            Spec::Unix(p) => vec!["PROTO=unix".into(), format!("SOCKET_PATH={p}")],
        }
    }

    /// A bound, listening, blocking stream socket (the job accepts on it).
    fn listen(&self) -> nix::Result<OwnedFd> {
        let family = match self {
            Spec::Inet(SocketAddr::V4(_)) => AddressFamily::Inet,
            Spec::Inet(SocketAddr::V6(_)) => AddressFamily::Inet6,
            Spec::Unix(_) => AddressFamily::Unix,
        };
        let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        match self {
            Spec::Inet(SocketAddr::V4(a)) => {
                setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                bind(fd.as_raw_fd(), &SockaddrIn::from(*a))?;
            }
            Spec::Inet(SocketAddr::V6(a)) => {
                setsockopt(&fd, sockopt::ReuseAddr, &true)?;
                setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
                bind(fd.as_raw_fd(), &SockaddrIn6::from(*a))?;
            }
            Spec::Unix(p) => match p.strip_prefix('@') {
                Some(name) => bind(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?,
                None => {
                    remove_stale(p);
                    bind(fd.as_raw_fd(), &UnixAddr::new(p.as_str())?)?
                }
            },
        }
        listen(&fd, Backlog::MAXCONN)?;
        Ok(fd)
    }
}

/// A socket file left by an earlier run would make bind fail.
fn remove_stale(path: &str) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

struct Listener {
    fd: OwnedFd,
    token: Token,
    /// The tag of the event being handled, if any.
    busy: Option<u64>,
}

#[derive(Default)]
pub struct SocketBridge {
    listeners: BTreeMap<Spec, Listener>,
    tokens: HashMap<Token, Spec>,
    next_token: usize,
}

impl Bridge for SocketBridge {
    const SERVES: Serves = |e| e == "socket";

    fn jobs(&mut self, wanted: &[Wanted], ctx: &mut Ctx) {
        let mut specs = BTreeMap::new();
        for w in wanted {
            match Spec::parse(w) {
                Ok(s) => {
                    specs.insert(s, ());
                }
                Err(e) => bridge_log!(WARN, "{e} in {}", w.job),
            }
        }
        let gone: Vec<Spec> = self
            .listeners
            .keys()
            .filter(|s| !specs.contains_key(*s))
            .cloned()
            .collect();
        for spec in gone {
            if let Some(l) = self.listeners.remove(&spec) {
                let _ = ctx.registry.deregister(&mut SourceFd(&l.fd.as_raw_fd()));
                self.tokens.remove(&l.token);
                if let Spec::Unix(p) = &spec {
                    if !p.starts_with('@') {
                        let _ = std::fs::remove_file(p);
                    }
                }
                bridge_log!(DEBUG, "stopped listening on {spec:?}");
            }
        }
        for spec in specs.into_keys() {
            if self.listeners.contains_key(&spec) {
                continue;
            }
            let fd = match spec.listen() {
                Ok(fd) => fd,
                Err(e) => {
                    bridge_log!(WARN, "Failed to listen on {spec:?}: {e}");
                    continue;
                }
            };
            self.next_token += 1;
            let token = Token(self.next_token);
            if let Err(e) =
                ctx.registry
                    .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
            {
                bridge_log!(WARN, "Failed to watch socket {spec:?}: {e}");
                continue;
            }
            bridge_log!(DEBUG, "listening on {spec:?}");
            self.tokens.insert(token, spec.clone());
            self.listeners.insert(
                spec,
                Listener {
                    fd,
                    token,
                    busy: None,
                },
            );
        }
    }

    fn ready(&mut self, token: Token, ctx: &mut Ctx) {
        let Some(spec) = self.tokens.get(&token) else {
            return;
        };
        let Some(l) = self.listeners.get_mut(spec) else {
            return;
        };
        if l.busy.is_some() {
            return;
        }
        match l.fd.try_clone() {
            Ok(copy) => l.busy = Some(ctx.emit_waiting("socket", spec.env(), Some(copy))),
            Err(e) => bridge_log!(WARN, "Could not send socket event: {e}"),
        }
    }

    fn finished(&mut self, tag: u64, _ctx: &mut Ctx) {
        for l in self.listeners.values_mut() {
            if l.busy == Some(tag) {
                l.busy = None;
            }
        }
    }
}
