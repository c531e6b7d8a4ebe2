//! A client's socket as zbus sees it, with bounds zbus does not keep:
//! the length a message's fixed header claims is checked before zbus
//! reserves room for it (zbus would allocate and zero the whole claim,
//! up to 128 MiB, on the word of a 16-byte header), the SASL exchange may
//! not run on without end, and the time of each message is noted so that
//! idle clients can be found. Nothing here is specific to the cgroup
//! manager.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use zbus::conn::AuthMechanism;
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::fdo::ConnectionCredentials;
use zbus::Message;
use zruntime::{AsyncIo, Shared, SharedRuntime};

use crate::control::wire::{claimed_length, FIXED_HEADER};

/// Descriptors taken from one read at most (the manager's interface
/// passes none; zbus's own reader takes as many).
const MAX_FDS_PER_READ: usize = 16;
/// Descriptors read ahead of the message that claims them.
const MAX_STASHED_FDS: usize = 64;

/// How the socket is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest message accepted, all of it (fixed header, header
    /// fields, padding and body); one claiming more closes the
    /// connection before anything is reserved for it.
    pub max_message: usize,
    /// Bytes the SASL handshake may take in all.
    pub max_handshake: usize,
}

/// When a connection last received a message.
#[derive(Debug, Default)]
pub struct Activity {
    /// Milliseconds since [`epoch`].
    last: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Activity {
    pub fn new() -> Self {
        let a = Activity::default();
        a.touch();
        a
    }

    pub fn touch(&self) {
        self.last.store(now_ms(), Ordering::Relaxed);
    }

    /// How long ago the last message came.
    pub fn idle(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// The client's socket, registered with the runtime that serves it.
pub type Io = Arc<AsyncIo<UnixStream, Shared>>;

/// A socket to build a zbus connection on with `Builder::socket`.
#[derive(Debug)]
pub struct GuardedSocket {
    io: Io,
    limits: Limits,
    activity: Arc<Activity>,
}

impl GuardedSocket {
    /// Register `stream` with `runtime`. The returned [`Io`] is the same
    /// socket, for cutting the connection from outside.
    pub fn new(
        runtime: &SharedRuntime,
        stream: UnixStream,
        limits: Limits,
        activity: Arc<Activity>,
    ) -> io::Result<(GuardedSocket, Io)> {
        let io = Arc::new(AsyncIo::new(runtime, stream)?);
        Ok((
            GuardedSocket {
                io: io.clone(),
                limits,
                activity,
            },
            io,
        ))
    }
}

/// Shut a connection's socket down both ways: every read and write on
/// it, zbus's included, ends at once.
pub fn cut(io: &Io) {
    let _ = io.get_ref().shutdown(std::net::Shutdown::Both);
}

impl Socket for GuardedSocket {
    type ReadHalf = Reader;
    type WriteHalf = Writer;

    fn split(self) -> Split<Reader, Writer> {
        Split::new(
            Reader {
                raw: Raw {
                    io: self.io.clone(),
                    stash: Vec::new(),
                },
                limits: self.limits,
                handshake_read: 0,
                activity: self.activity,
            },
            Writer { io: self.io },
        )
    }
}

fn recv_now(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]);
    let msg = socket::recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            // SAFETY: the kernel just gave us these descriptors; nothing
            // else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more descriptors than one message may carry",
        ));
    }
    Ok((msg.bytes, fds))
}

async fn recv(io: &Io, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    io.read_with(|s| recv_now(s.as_fd(), buf)).await
}

fn credentials(io: &Io) -> io::Result<ConnectionCredentials> {
    let c = socket::getsockopt(io.get_ref(), socket::sockopt::PeerCredentials)?;
    let Ok(pid) = u32::try_from(c.pid()) else {
        return Err(io::Error::other("bad peer credentials"));
    };
    let uid = c.uid();
    // No group lookup: the manager judges by uid and gid alone, and a
    // lookup would go through NSS on a thread of its own.
    Ok(ConnectionCredentials::default()
        .set_unix_user_id(uid)
        .set_process_id(pid))
}

/// Reads exactly what zbus asks for (zbus's own message assembly runs
/// on it), handing over first any descriptors read with a header.
#[derive(Debug)]
struct Raw {
    io: Io,
    stash: Vec<OwnedFd>,
}

#[zbus::export::async_trait::async_trait]
impl ReadHalf for Raw {
    async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        let (n, fds) = recv(&self.io, buf).await?;
        if self.stash.is_empty() {
            return Ok((n, fds));
        }
        let mut all = std::mem::take(&mut self.stash);
        all.extend(fds);
        Ok((n, all))
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }
}

#[derive(Debug)]
pub struct Reader {
    raw: Raw,
    limits: Limits,
    handshake_read: usize,
    activity: Arc<Activity>,
}

fn refused(what: String) -> zbus::Error {
    zbus::Error::InputOutput(Arc::new(io::Error::new(io::ErrorKind::InvalidData, what)))
}

#[zbus::export::async_trait::async_trait]
impl ReadHalf for Reader {
    async fn receive_message(
        &mut self,
        seq: u64,
        already_received_bytes: &mut Vec<u8>,
        already_received_fds: &mut Vec<OwnedFd>,
    ) -> zbus::Result<Message> {
        // Descriptors read during the handshake go with the next read.
        self.raw.stash.append(already_received_fds);
        // The fixed header first, and no further.
        while already_received_bytes.len() < FIXED_HEADER {
            let mut buf = [0u8; FIXED_HEADER];
            let want = FIXED_HEADER - already_received_bytes.len();
            let (n, fds) = recv(&self.raw.io, buf.get_mut(..want).unwrap_or_default()).await?;
            if n == 0 {
                return Err(zbus::Error::InputOutput(Arc::new(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ))));
            }
            already_received_bytes.extend_from_slice(buf.get(..n).unwrap_or_default());
            self.raw.stash.extend(fds);
        }
        if self.raw.stash.len() > MAX_STASHED_FDS {
            return Err(refused(
                "too many descriptors ahead of their message".into(),
            ));
        }
        let claimed = already_received_bytes
            .get(..FIXED_HEADER)
            .and_then(claimed_length)
            .ok_or_else(|| refused("not a D-Bus message header".into()))?;
        if claimed > self.limits.max_message as u64 {
            return Err(refused(format!(
                "a message of {claimed} bytes is over the limit of {}",
                self.limits.max_message
            )));
        }
        self.activity.touch();
        let mut none = Vec::new();
        self.raw
            .receive_message(seq, already_received_bytes, &mut none)
            .await
    }

    /// Only the handshake reads through this.
    async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        let got = self.raw.recvmsg(buf).await?;
        self.handshake_read = self.handshake_read.saturating_add(got.0);
        if self.handshake_read > self.limits.max_handshake {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the authentication exchange is over the limit of {} bytes",
                    self.limits.max_handshake
                ),
            ));
        }
        Ok(got)
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        credentials(&self.raw.io)
    }

    fn auth_mechanism(&self) -> AuthMechanism {
        AuthMechanism::External
    }
}

#[derive(Debug)]
pub struct Writer {
    io: Io,
}

fn send_now(s: &UnixStream, buf: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let iov = [IoSlice::new(buf)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    Ok(socket::sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?)
}

#[zbus::export::async_trait::async_trait]
impl WriteHalf for Writer {
    async fn sendmsg(&mut self, buffer: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.io.write_with(|s| send_now(s, buffer, &raw)).await
    }

    async fn close(&mut self) -> io::Result<()> {
        match self.io.get_ref().shutdown(std::net::Shutdown::Both) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        credentials(&self.io)
    }
}
