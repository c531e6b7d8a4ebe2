//! The sd_notify socket of `expect notify` jobs (extensions.md §7).
//!
//! One datagram socket serves every job (ARCHITECTURE.md, "Limits and
//! decisions"): it is bound to a kernel-chosen abstract name, so nothing
//! is left on disk, it reaches jobs in a chroot, and no two inits (one per
//! PID namespace, say) can collide. Each datagram carries its sender's
//! credentials (SO_PASSCRED); the sender is a job's process, or descends
//! from one, or it is ignored.

use mio::unix::SourceFd;
use mio::{Interest, Registry};
use nix::sys::socket::{
    recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag,
    SockType,
};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::Daemon;
use crate::job::{Engine, JobKey, Level, NotifyMessage};

/// Datagrams read in one turn of the loop; more wait for the next turn,
/// so a flood cannot hold the loop.
const PER_TURN: usize = 64;
/// The largest datagram taken (sd_notify's messages are a few lines);
/// longer ones are dropped.
const MAX_DATAGRAM: usize = 4096;
/// How many parents are climbed to find the job of a sender.
const MAX_DEPTH: usize = 64;

pub(super) struct NotifySocket {
    fd: OwnedFd,
    /// What `NOTIFY_SOCKET` says: `@` and the abstract name.
    pub address: String,
    /// The last read stopped at [`PER_TURN`]: read on at once.
    pub backlog: bool,
}

impl NotifySocket {
    /// A new socket, bound to a name the kernel picks.
    pub fn open() -> std::io::Result<Self> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // Binding with the address family alone asks for autobind.
        let addr = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; 108],
        };
        // SAFETY: bind reads `len` bytes of the address we own.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Self::adopt(fd)
    }

    /// A socket that is already bound (handed over by a re-exec).
    pub fn adopt(fd: OwnedFd) -> std::io::Result<Self> {
        setsockopt(&fd, sockopt::PassCred, &true)?;
        let address = abstract_name(fd.as_raw_fd())?;
        Ok(NotifySocket {
            fd,
            address,
            backlog: false,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn register(&self, registry: &Registry) -> std::io::Result<()> {
        registry.register(
            &mut SourceFd(&self.fd.as_raw_fd()),
            super::tokens::NOTIFY,
            Interest::READABLE,
        )
    }

    /// Up to [`PER_TURN`] datagrams, each with its sender's pid (0 when
    /// the kernel gave none).
    pub fn receive(&mut self) -> Vec<(i32, Vec<u8>)> {
        let mut out = Vec::new();
        self.backlog = false;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut cmsg = nix::cmsg_space!(libc::ucred, [RawFd; 8]);
        while out.len() < PER_TURN {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_TRUNC;
            let msg = match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return out,
            };
            let mut pid = 0;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::ScmCredentials(cred) => pid = cred.pid(),
                        // Descriptors are not kept (no descriptor store).
                        ControlMessageOwned::ScmRights(fds) => {
                            for fd in fds {
                                // SAFETY: received just now, owned by nobody else.
                                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                        _ => {}
                    }
                }
            }
            let len = msg.bytes;
            if len > MAX_DATAGRAM || msg.flags.contains(MsgFlags::MSG_TRUNC) {
                continue;
            }
            out.push((pid, buf.get(..len).unwrap_or_default().to_vec()));
        }
        self.backlog = true;
        out
    }
}

/// `@NAME` of an abstract socket.
fn abstract_name(fd: RawFd) -> std::io::Result<String> {
    // SAFETY: an all-zero sockaddr_un is valid; getsockname fills at most
    // `len` bytes of it.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: as above.
    let rc = unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let path_len = (len as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>());
    let name: Vec<u8> = addr
        .sun_path
        .iter()
        .take(path_len)
        .map(|c| *c as u8)
        .collect();
    match name.split_first() {
        Some((0, rest)) if !rest.is_empty() => Ok(format!("@{}", String::from_utf8_lossy(rest))),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "notify socket is not bound to an abstract name",
        )),
    }
}

/// Parent and session of a process, from `/proc/PID/stat`.
fn parent_and_session(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold anything: the fields follow its last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?;
    let session = fields.nth(1)?.parse().ok()?;
    Some((ppid, session))
}

/// The instance `pid` belongs to: one of its processes, or a process of
/// the session one of them leads (every job process starts a session), or
/// a descendant of one.
pub(super) fn owner(engine: &Engine, pid: i32) -> Option<JobKey> {
    let own = std::process::id() as i32;
    let mut p = pid;
    for _ in 0..MAX_DEPTH {
        if p <= 1 || p == own {
            return None;
        }
        if let Some((key, _)) = engine.owner_of(p) {
            return Some(key);
        }
        let (ppid, session) = parent_and_session(p)?;
        if session != p {
            if let Some((key, _)) = engine.owner_of(session) {
                return Some(key);
            }
        }
        p = ppid;
    }
    None
}

impl Daemon {
    /// Open the socket (once per init; a re-exec hands it over).
    pub(super) fn open_notify(&mut self) {
        match NotifySocket::open() {
            Ok(sock) => self.use_notify(sock),
            Err(e) => self.log(
                Level::Warn,
                &format!("Unable to open the notify socket, expect notify jobs cannot start: {e}"),
            ),
        }
    }

    /// Watch `sock` and tell the engine its address.
    pub(super) fn use_notify(&mut self, sock: NotifySocket) {
        if let Err(e) = sock.register(self.poll.registry()) {
            self.log(
                Level::Warn,
                &format!("Unable to watch the notify socket: {e}"),
            );
        }
        self.engine.options.notify_socket = Some(sock.address.clone());
        self.notify = Some(sock);
    }

    /// Hand this turn's datagrams to the engine.
    pub(super) fn read_notifications(&mut self) {
        let Some(sock) = self.notify.as_mut() else {
            return;
        };
        for (pid, data) in sock.receive() {
            let Some(key) = owner(&self.engine, pid) else {
                self.log(
                    Level::Info,
                    &format!("Ignored notification from process {pid}: not a job's process"),
                );
                continue;
            };
            let mut msg = NotifyMessage::parse(&data);
            if let Some(main) = msg.main_pid {
                if owner(&self.engine, main).as_ref() != Some(&key) {
                    self.log(
                        Level::Warn,
                        &format!("Ignored MAINPID={main} from {key}: not a process of the job"),
                    );
                    msg.main_pid = None;
                }
            }
            let status = msg.status.is_some();
            self.engine.notify(&mut self.world, &key, pid, msg);
            if status {
                self.refresh_view_of(&key);
            }
        }
    }
}
