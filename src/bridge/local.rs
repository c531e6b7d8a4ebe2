//! upstart-local-bridge: lines `NAME=VALUE` written to a local socket
//! become events (upstart-local-bridge(8)).

use std::collections::HashMap;
use std::io::Read;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::link::Serves;
use super::log::{DEBUG, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;

const LISTENER: Token = Token(1);
/// A client's unfinished line may not grow past this; a client that sends
/// a longer one is dropped.
const MAX_LINE: usize = 64 * 1024;

struct Client {
    stream: UnixStream,
    pending: Vec<u8>,
    env: Vec<String>,
}

pub struct LocalBridge {
    /// `@name` for the abstract namespace.
    pub path: String,
    pub event: String,
    pub any_user: bool,
    listener: Option<UnixListener>,
    clients: HashMap<Token, Client>,
    next: usize,
}

impl LocalBridge {
    pub fn new(path: String, event: String, any_user: bool) -> Self {
        LocalBridge {
            path,
            event,
            any_user,
            listener: None,
            clients: HashMap::new(),
            next: 1,
        }
    }

    fn accept(&mut self, ctx: &mut Ctx) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((mut stream, _)) = listener.accept() {
            let Ok(cred) = getsockopt(&stream, PeerCredentials) else {
                continue;
            };
            if !self.any_user && cred.uid() != nix::unistd::geteuid().as_raw() {
                bridge_log!(WARN, "ignoring client of uid {}", cred.uid());
                continue;
            }
            self.next += 1;
            let token = Token(self.next);
            if ctx
                .registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            let variant = if self.path.starts_with('@') {
                "abstract"
            } else {
                "named"
            };
            let env = vec![
                "SOCKET_TYPE=unix".into(),
                format!("SOCKET_VARIANT={variant}"),
                format!("CLIENT_UID={}", cred.uid()),
                format!("CLIENT_GID={}", cred.gid()),
                format!("CLIENT_PID={}", cred.pid()),
                format!("SOCKET_PATH={}", self.path),
            ];
            self.clients.insert(
                token,
                Client {
                    stream,
                    pending: Vec::new(),
                    env,
                },
            );
        }
    }

    fn read(&mut self, token: Token, ctx: &mut Ctx) {
        let Some(c) = self.clients.get_mut(&token) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let closed = loop {
            match c.stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => c
                    .pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        while let Some(end) = c.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = c.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let pair = text.trim_end_matches(['\n', '\r']);
            // NAME=VALUE with a name: anything else is ignored.
            if pair.len() < 2 || pair.starts_with('=') || !pair.contains('=') {
                bridge_log!(DEBUG, "ignoring invalid input {pair:?}");
                continue;
            }
            let mut env = c.env.clone();
            env.push(pair.to_string());
            ctx.emit(&self.event, env);
        }
        if closed || c.pending.len() > MAX_LINE {
            if let Some(mut c) = self.clients.remove(&token) {
                let _ = ctx.registry.deregister(&mut c.stream);
            }
        }
    }
}

impl Bridge for LocalBridge {
    const SERVES: Serves = |_| false;

    fn start(&mut self, ctx: &mut Ctx) -> std::io::Result<()> {
        let mut listener = match self.path.strip_prefix('@') {
            Some(name) => UnixListener::bind_addr(&SocketAddr::from_abstract_name(name)?)?,
            None => {
                let _ = std::fs::remove_file(&self.path);
                UnixListener::bind(&self.path)?
            }
        };
        ctx.registry
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        self.listener = Some(listener);
        Ok(())
    }

    fn jobs(&mut self, _wanted: &[Wanted], _ctx: &mut Ctx) {}

    fn ready(&mut self, token: Token, ctx: &mut Ctx) {
        if token == LISTENER {
            self.accept(ctx);
        } else {
            self.read(token, ctx);
        }
    }
}
