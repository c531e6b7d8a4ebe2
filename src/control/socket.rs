//! A client's socket as zbus sees it, driven by the control runtime.
//!
//! outset gives zbus its own socket type instead of a plain `UnixStream`
//! for three reasons:
//!
//! * The peer is known by `SO_PEERCRED` alone. zbus's own unix socket
//!   also looks up the peer's groups (`getpwuid_r`, `getgrouplist`) on a
//!   blocking-pool thread: glibc then loads the name-service modules into
//!   process 1, and a module that talks to a network service can block it.
//!   Only init's own uid may connect (control.md §1.1), so the uid is all
//!   that is needed.
//! * A message's length is checked from its fixed header before anything
//!   is set aside for it (zbus would reserve whatever the header claims,
//!   up to 128 MiB per connection).
//! * What a client sends before it has authenticated is bounded.
//!
//! Nothing here duplicates the descriptor: the control server keeps a
//! second `Arc` on the same socket to cut it.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::fdo::ConnectionCredentials;
use zbus::Message;
use zruntime::{AsyncIo, Shared};

use super::guard::{Activity, MAX_HANDSHAKE_BYTES, MAX_MESSAGE_SIZE};
use super::wire::{claimed_length, FIXED_HEADER};

/// Descriptors taken from one read at most (the kernel's own limit per
/// message, `SCM_MAX_FD`).
const MAX_FDS: usize = 253;

type Io = AsyncIo<Arc<UnixStream>, Shared>;

/// One client's socket, registered on the control runtime.
pub struct ControlSocket {
    io: Arc<Io>,
    uid: u32,
    pid: Option<u32>,
    activity: Arc<Activity>,
}

impl ControlSocket {
    /// Register `stream` (a second handle on it stays with the caller) on
    /// `runtime`. The peer's credentials are read once, here.
    pub fn new(
        runtime: &zruntime::SharedRuntime,
        stream: Arc<UnixStream>,
        activity: Arc<Activity>,
    ) -> io::Result<ControlSocket> {
        let cred = nix::sys::socket::getsockopt(
            stream.as_ref(),
            nix::sys::socket::sockopt::PeerCredentials,
        )?;
        Ok(ControlSocket {
            io: Arc::new(AsyncIo::new(runtime, stream)?),
            uid: cred.uid(),
            pid: u32::try_from(cred.pid()).ok().filter(|p| *p > 0),
            activity,
        })
    }
}

impl Socket for ControlSocket {
    type ReadHalf = Reader;
    type WriteHalf = Writer;

    fn split(self) -> Split<Reader, Writer> {
        let creds = Creds {
            uid: self.uid,
            pid: self.pid,
        };
        Split::new(
            Reader {
                raw: Raw {
                    io: self.io.clone(),
                    creds,
                    stash: Vec::new(),
                },
                activity: self.activity,
                handshake_bytes: 0,
                framing: false,
            },
            Writer { io: self.io, creds },
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Creds {
    uid: u32,
    pid: Option<u32>,
}

impl Creds {
    /// The uid and pid, and nothing that needs a name-service lookup.
    fn get(self) -> ConnectionCredentials {
        let creds = ConnectionCredentials::default().set_unix_user_id(self.uid);
        match self.pid {
            Some(pid) => creds.set_process_id(pid),
            None => creds,
        }
    }
}

/// The socket's reads, with zbus's own framing of a message
/// (`ReadHalf::receive_message`'s default) on top.
struct Raw {
    io: Arc<Io>,
    creds: Creds,
    /// Descriptors that came with a message's fixed header, handed out
    /// with the next read of that message.
    stash: Vec<OwnedFd>,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw").field("creds", &self.creds).finish()
    }
}

#[zbus::export::async_trait::async_trait]
impl ReadHalf for Raw {
    async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        let (n, fds) = self
            .io
            .read_with(|s| receive(s.as_raw_fd(), &mut *buf))
            .await?;
        let mut all = std::mem::take(&mut self.stash);
        all.extend(fds);
        Ok((n, all))
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        Ok(self.creds.get())
    }
}

/// What zbus reads a client's handshake and messages through.
#[derive(Debug)]
pub struct Reader {
    raw: Raw,
    activity: Arc<Activity>,
    /// Bytes read before the first message (the handshake's lines).
    handshake_bytes: usize,
    /// The handshake is over: zbus reads whole messages now.
    framing: bool,
}

#[zbus::export::async_trait::async_trait]
impl ReadHalf for Reader {
    async fn receive_message(
        &mut self,
        seq: u64,
        already_received_bytes: &mut Vec<u8>,
        already_received_fds: &mut Vec<OwnedFd>,
    ) -> zbus::Result<Message> {
        self.framing = true;
        while already_received_bytes.len() < FIXED_HEADER {
            let mut chunk = vec![0u8; FIXED_HEADER - already_received_bytes.len()];
            let (n, fds) = self.raw.recvmsg(&mut chunk).await?;
            self.raw.stash.extend(fds);
            if n == 0 {
                return Err(
                    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed").into(),
                );
            }
            already_received_bytes.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let claimed = already_received_bytes
            .get(..FIXED_HEADER)
            .and_then(claimed_length)
            .ok_or_else(|| zbus::Error::Failure("malformed message header".into()))?;
        if claimed > MAX_MESSAGE_SIZE as u64 {
            return Err(zbus::Error::ExcessData);
        }
        self.activity.touch();
        let msg = self
            .raw
            .receive_message(seq, already_received_bytes, already_received_fds)
            .await;
        // A message made of its fixed header alone read nothing more.
        self.raw.stash.clear();
        msg
    }

    async fn recvmsg(&mut self, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        let (n, fds) = self.raw.recvmsg(buf).await?;
        if !self.framing {
            self.handshake_bytes += n;
            if self.handshake_bytes > MAX_HANDSHAKE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "handshake too long",
                ));
            }
        }
        Ok((n, fds))
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        Ok(self.raw.creds.get())
    }
}

/// What zbus writes through.
pub struct Writer {
    io: Arc<Io>,
    creds: Creds,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("creds", &self.creds)
            .finish()
    }
}

/// Messages without descriptors are gathered into writes of about this
/// size (a storm's signals go out in a few writes, not one each).
const GATHER: usize = 64 * 1024;

impl Writer {
    async fn write_all(&mut self, mut bytes: &[u8]) -> zbus::Result<()> {
        while !bytes.is_empty() {
            let n = self.sendmsg(bytes, &[]).await?;
            bytes = bytes.get(n..).unwrap_or_default();
        }
        Ok(())
    }
}

#[zbus::export::async_trait::async_trait]
impl WriteHalf for Writer {
    async fn send_messages(&mut self, msgs: &[Message]) -> zbus::Result<()> {
        let mut gathered = Vec::new();
        for msg in msgs {
            if msg.data().fds().is_empty() {
                gathered.extend_from_slice(msg.data());
                if gathered.len() >= GATHER {
                    self.write_all(&std::mem::take(&mut gathered)).await?;
                }
            } else {
                self.write_all(&std::mem::take(&mut gathered)).await?;
                self.send_message(msg).await?;
            }
        }
        self.write_all(&gathered).await
    }

    async fn sendmsg(&mut self, buffer: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        self.io
            .write_with(|s| send(s.as_raw_fd(), buffer, &raw))
            .await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.io.get_ref().shutdown(std::net::Shutdown::Both)
    }

    fn can_pass_unix_fd(&self) -> bool {
        true
    }

    async fn peer_credentials(&mut self) -> io::Result<ConnectionCredentials> {
        Ok(self.creds.get())
    }
}

/// One `recvmsg`, with the descriptors that came along (close-on-exec).
fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: the kernel just installed these descriptors for us.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}

/// One `sendmsg` of `buf`, with `fds` if there are any.
fn send(fd: RawFd, buf: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let iov = [IoSlice::new(buf)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    Ok(sendmsg::<()>(
        fd,
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?)
}
