//! Which connections init holds, and which one gives way when there are
//! too many: a fresh connection is always taken (only init's own user can
//! connect, and root must always reach PID 1), and room is made by cutting
//! the oldest connection still authenticating, or else the one that has
//! been quiet longest.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use super::guard::{cut, Activity, MAX_CONNECTIONS, MAX_HANDSHAKES};

struct Entry {
    id: u64,
    sock: Arc<UnixStream>,
    activity: Arc<Activity>,
    authenticated: bool,
    /// Already cut; it no longer counts, and goes once its task ends.
    cut: bool,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// Oldest first.
    entries: Vec<Entry>,
}

impl Table {
    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.cut)
    }

    /// Cut the entry `pick` chooses among the live ones, if any.
    fn evict(&mut self, pick: impl Fn(&[Entry]) -> Option<usize>) {
        if let Some(e) = pick(&self.entries).and_then(|i| self.entries.get_mut(i)) {
            e.cut = true;
            cut(&e.sock);
        }
    }
}

/// The connections of one control server.
#[derive(Default)]
pub struct Admission {
    table: Mutex<Table>,
}

/// A connection's place in the table; it leaves when this is dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    id: u64,
}

impl Admission {
    /// Take a new connection, making room for it first.
    pub fn admit(
        self: &Arc<Self>,
        sock: Arc<UnixStream>,
        activity: Arc<Activity>,
    ) -> Option<Ticket> {
        let mut t = self.table.lock().ok()?;
        let handshaking = t.live().filter(|e| !e.authenticated).count();
        let oldest_handshake = |es: &[Entry]| es.iter().position(|e| !e.cut && !e.authenticated);
        if handshaking >= MAX_HANDSHAKES {
            t.evict(oldest_handshake);
        }
        if t.live().count() >= MAX_CONNECTIONS {
            t.evict(|es| {
                oldest_handshake(es).or_else(|| {
                    es.iter()
                        .enumerate()
                        .filter(|(_, e)| !e.cut)
                        .min_by_key(|(_, e)| e.activity.last())
                        .map(|(i, _)| i)
                })
            });
        }
        t.next += 1;
        let id = t.next;
        t.entries.push(Entry {
            id,
            sock,
            activity,
            authenticated: false,
            cut: false,
        });
        Some(Ticket {
            admission: self.clone(),
            id,
        })
    }
}

impl Ticket {
    /// The handshake is over: it no longer counts as one.
    pub fn authenticated(&self) {
        if let Ok(mut t) = self.admission.table.lock() {
            if let Some(e) = t.entries.iter_mut().find(|e| e.id == self.id) {
                e.authenticated = true;
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut t) = self.admission.table.lock() {
            t.entries.retain(|e| e.id != self.id);
        }
    }
}
