//! Private connections not yet handed to the broadcaster.
//!
//! Handing each new connection over on the broadcaster's channel woke the
//! `control-signals` thread twice per connection, when it came and when it
//! went. For a client that makes one call and leaves (`initctl status`,
//! which scripts run in loops) those two wake-ups, each a switch to
//! another thread and back, were a good part of init's whole work for the
//! call. A connection waits here instead until the broadcaster wakes for
//! its own reasons (changes to send, its sweep once a second) and takes
//! it; one that closes before then is taken back without waking anyone.
//!
//! A connection taken together with a batch of changes may be sent the
//! signals of changes made a moment before it was handed over (on the
//! channel it would have missed them): every signal describes the state
//! as it now is, so an early one says nothing untrue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::server::Subscriber;

#[derive(Default)]
pub struct Newcomers {
    next: AtomicU64,
    waiting: Mutex<Vec<(u64, Subscriber)>>,
}

impl Newcomers {
    /// Leave `s` for the broadcaster; the number takes it back.
    pub fn add(&self, s: Subscriber) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push((id, s));
        }
        id
    }

    /// Take connection `id` back if the broadcaster has not taken it
    /// (true); otherwise it is the broadcaster's to drop.
    pub fn withdraw(&self, id: u64) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            return false;
        };
        match waiting.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                waiting.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// Every connection waiting, for the broadcaster.
    pub fn take(&self) -> Vec<Subscriber> {
        match self.waiting.lock() {
            Ok(mut waiting) => waiting.drain(..).map(|(_, s)| s).collect(),
            Err(_) => Vec::new(),
        }
    }
}
