//! The control server's limits, and the means to enforce them: no client,
//! whatever it sends or fails to read, may hold up another or cost init
//! more than these bounds (docs/ARCHITECTURE.md, "Limits and decisions").

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long a client may take to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a new client beyond this evicts the
/// oldest one still authenticating.
pub const MAX_HANDSHAKES: usize = 32;
/// What a client may send before its first message (Upstart's handshake
/// is three short lines).
pub const MAX_HANDSHAKE_BYTES: usize = 16 * 1024;
/// Connections held at once; a new client beyond this evicts the one that
/// has been quiet longest (one still authenticating first), so a fresh
/// connection is never refused.
pub const MAX_CONNECTIONS: usize = 512;
/// The largest message init accepts, fixed header, fields and body
/// together. Upstart's calls are a few kilobytes at most; a header that
/// claims more closes its connection before anything is set aside.
pub const MAX_MESSAGE_SIZE: usize = 1024 * 1024;
/// Signals waiting for one client at most; a client that falls further
/// behind is disconnected (the bus connection's extra signals are dropped).
pub const SIGNAL_QUEUE: usize = 8192;
/// How long one write of queued signals may take before the client is
/// disconnected.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Cut a connection: both directions of its socket are shut down, so
/// every pending read or write on it fails at once.
pub fn cut(sock: &UnixStream) {
    let _ = sock.shutdown(std::net::Shutdown::Both);
}

/// When a client last sent a message (milliseconds since the server
/// started), to tell idle connections from busy ones.
#[derive(Debug, Default)]
pub struct Activity(AtomicU64);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Activity {
    pub fn new() -> Activity {
        let a = Activity::default();
        a.touch();
        a
    }

    pub fn touch(&self) {
        let ms = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.store(ms, Ordering::Relaxed);
    }

    pub fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A future polled inside `panic_guard::contain`: a panic while polling it
/// (zbus's handshake code panics on some malformed lines) ends this
/// future with `None` instead of counting as a panic of init's.
pub struct Contained<F>(Option<Pin<Box<F>>>);

impl<F: Future> Contained<F> {
    pub fn new(future: F) -> Contained<F> {
        Contained(Some(Box::pin(future)))
    }
}

impl<F: Future> Future for Contained<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        match crate::panic_guard::contain(|| inner.as_mut().poll(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            Some(Poll::Ready(v)) => {
                self.0 = None;
                Poll::Ready(Some(v))
            }
            None => {
                // Poisoned by its panic: never polled again.
                self.0 = None;
                Poll::Ready(None)
            }
        }
    }
}
