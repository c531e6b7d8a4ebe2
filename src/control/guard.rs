//! Keeping one misbehaving client from stalling the control server: a
//! client that never finishes its handshake, or never reads the signals
//! sent to it, must not hold up anyone else.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a client may take to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a new client beyond this evicts the
/// oldest one still waiting (idle connections cannot crowd out initctl).
pub const MAX_HANDSHAKES: usize = 32;
/// How long a client's socket may stay full before it is dropped.
pub const WRITE_GRACE: Duration = Duration::from_secs(2);
/// How long one message may take to go out before its socket is shut down.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Wait (up to [`WRITE_GRACE`]) until `sock` has room to send; false if
/// the peer does not read.
pub fn writable(sock: &UnixStream) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + WRITE_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, ms) {
            Ok(0) => return false,
            Ok(_) => {
                let revents = fds
                    .first()
                    .and_then(|f| f.revents())
                    .unwrap_or(PollFlags::empty());
                return revents.contains(PollFlags::POLLOUT)
                    && !revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP);
            }
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => return false,
        }
    }
}

/// Cut a connection: both directions of its socket are shut down, so
/// every pending read or write on it fails at once.
pub fn cut(sock: &UnixStream) {
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// The socket a write is in progress on, and since when.
type Slot = Arc<Mutex<Option<(Arc<UnixStream>, Instant)>>>;

/// Shuts down a socket that one write has been blocked on for longer than
/// [`WRITE_TIMEOUT`] (a message larger than the room the peer leaves).
#[derive(Clone)]
pub struct Watchdog {
    slot: Slot,
}

impl Watchdog {
    pub fn start() -> std::io::Result<Watchdog> {
        let slot: Slot = Arc::new(Mutex::new(None));
        let watched = slot.clone();
        std::thread::Builder::new()
            .name("control-watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500));
                let Ok(guard) = watched.lock() else { return };
                if let Some((sock, since)) = guard.as_ref() {
                    if since.elapsed() > WRITE_TIMEOUT {
                        cut(sock);
                    }
                }
            })?;
        Ok(Watchdog { slot })
    }

    /// Run `write`, cutting `sock` if it blocks for too long.
    pub fn guard<T>(&self, sock: &Arc<UnixStream>, write: impl FnOnce() -> T) -> T {
        if let Ok(mut g) = self.slot.lock() {
            *g = Some((sock.clone(), Instant::now()));
        }
        let result = write();
        if let Ok(mut g) = self.slot.lock() {
            *g = None;
        }
        result
    }
}
