//! Each connection's own queue of signals, written out by a task of its
//! own on the control runtime: a client that does not read holds up only
//! itself, and is disconnected once its queue is full or one write takes
//! longer than `WRITE_TIMEOUT`.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use futures_channel::mpsc;
use futures_util::StreamExt;
use zbus::{Connection, Message};

use super::guard::{cut, SIGNAL_QUEUE, WRITE_TIMEOUT};

/// Signals handed to a connection in one write at most.
const SEND_SLICE: usize = 256;

/// The sending end of a connection's queue.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Message>,
}

/// What happened to a signal handed to an [`Outbox`].
#[derive(PartialEq, Eq)]
pub enum Queued {
    Yes,
    /// The client is [`SIGNAL_QUEUE`] signals behind.
    Full,
    /// The connection is gone.
    Gone,
}

impl Outbox {
    /// Start writing `conn`'s signals on `runtime`; `sock` (a private
    /// client's socket) is cut if the client stops taking them.
    pub fn start(
        runtime: &zruntime::SharedRuntime,
        conn: Connection,
        sock: Option<Arc<UnixStream>>,
    ) -> Outbox {
        let (tx, rx) = mpsc::channel(SIGNAL_QUEUE);
        let timer = runtime.clone();
        runtime
            .spawn("control signals", write_out(rx, conn, sock, timer))
            .detach();
        Outbox { tx }
    }

    pub fn push(&mut self, msg: Message) -> Queued {
        match self.tx.try_send(msg) {
            Ok(()) => Queued::Yes,
            Err(e) if e.is_full() => Queued::Full,
            Err(_) => Queued::Gone,
        }
    }

    /// Stop the writing task (it ends once it has nothing in hand).
    pub fn close(&mut self) {
        self.tx.close_channel();
    }
}

async fn write_out(
    mut rx: mpsc::Receiver<Message>,
    conn: Connection,
    sock: Option<Arc<UnixStream>>,
    runtime: zruntime::SharedRuntime,
) {
    let mut batch = Vec::with_capacity(SEND_SLICE);
    while let Some(msg) = rx.next().await {
        batch.push(msg);
        while batch.len() < SEND_SLICE {
            match rx.try_recv() {
                Ok(msg) => batch.push(msg),
                Err(_) => break,
            }
        }
        let sent = runtime.timeout(WRITE_TIMEOUT, conn.send_all(&batch)).await;
        batch.clear();
        if !matches!(sent, Ok(Ok(()))) {
            if let Some(sock) = &sock {
                cut(sock);
            }
            rx.close();
            return;
        }
    }
}
