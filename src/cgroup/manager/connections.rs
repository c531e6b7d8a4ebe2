//! Who is connected, and who makes room when a client arrives: no user
//! can crowd out another user, nobody can crowd out root, and a client
//! that never finishes authenticating or falls silent is let go.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::guarded_socket::{cut, Activity, Io};

/// Clients connected at once, in all.
pub const MAX_CLIENTS: usize = 1024;
/// Of those, room only root may use: root (init's jobs) can always
/// connect, whatever other users hold.
pub const ROOT_RESERVE: usize = 64;
/// Connections of one user other than root; the user's next connection
/// closes that user's longest-idle one.
pub const MAX_CLIENTS_PER_USER: usize = 64;
/// Connections of users other than root still authenticating; the next
/// one closes the oldest of the user who has the most of them.
pub const MAX_HANDSHAKES: usize = 64;
/// How long a client may take to authenticate.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection of a user other than root may go without
/// sending a message before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// When all the room users other than root may use is taken, a
/// newcomer closes the longest-idle connection of the user who holds
/// the most if it has been idle this long, and is refused otherwise.
pub const EVICTABLE_IDLE: Duration = Duration::from_secs(5);

struct Entry {
    id: u64,
    uid: u32,
    io: Io,
    activity: Arc<Activity>,
    authenticated: bool,
}

#[derive(Default)]
pub struct Registry {
    next: u64,
    entries: Vec<Entry>,
}

pub type Shared = Arc<Mutex<Registry>>;

pub fn lock(r: &Shared) -> MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

pub enum Admission {
    Admitted {
        id: u64,
        /// Connections closed to make room: uid and why.
        evicted: Vec<(u32, &'static str)>,
    },
    Refused(&'static str),
}

impl Registry {
    pub fn shared() -> Shared {
        Arc::new(Mutex::new(Registry::default()))
    }

    fn count(&self, f: impl Fn(&Entry) -> bool) -> usize {
        self.entries.iter().filter(|e| f(e)).count()
    }

    /// The index of the longest-idle connection among those `f` picks.
    fn longest_idle(&self, f: impl Fn(&Entry) -> bool) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| f(e))
            .max_by_key(|(_, e)| e.activity.idle())
            .map(|(i, _)| i)
    }

    /// The uid other than root that holds the most of the connections
    /// `f` picks (the newcomer's `uid` counted in).
    fn biggest_holder(&self, uid: u32, f: impl Fn(&Entry) -> bool) -> u32 {
        let mut counts: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
        counts.insert(uid, 1);
        for e in self.entries.iter().filter(|e| e.uid != 0 && f(e)) {
            *counts.entry(e.uid).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by_key(|(u, n)| (*n, *u == uid))
            .map_or(uid, |(u, _)| u)
    }

    fn evict(&mut self, i: usize) -> Option<u32> {
        if i >= self.entries.len() {
            return None;
        }
        let e = self.entries.swap_remove(i);
        cut(&e.io);
        Some(e.uid)
    }

    /// Make room for a new connection of `uid`, or refuse it.
    pub fn admit(&mut self, uid: u32, io: &Io, activity: &Arc<Activity>) -> Admission {
        let mut evicted = Vec::new();
        if uid == 0 {
            if self.entries.len() >= MAX_CLIENTS {
                match self.longest_idle(|e| e.uid != 0) {
                    Some(i) => evicted.extend(self.evict(i).map(|u| (u, "room for root"))),
                    None => return Admission::Refused("too many connections of root"),
                }
            }
        } else {
            if self.count(|e| e.uid != 0 && !e.authenticated) >= MAX_HANDSHAKES {
                // A handshake is idle since it connected: the oldest of
                // the user with the most goes (maybe the newcomer's own).
                let hog = self.biggest_holder(uid, |e| !e.authenticated);
                if let Some(i) = self.longest_idle(|e| e.uid == hog && !e.authenticated) {
                    evicted.extend(self.evict(i).map(|u| (u, "too many authenticating")));
                } else {
                    return Admission::Refused("too many connections authenticating");
                }
            }
            if self.count(|e| e.uid == uid) >= MAX_CLIENTS_PER_USER {
                if let Some(i) = self.longest_idle(|e| e.uid == uid) {
                    evicted.extend(self.evict(i).map(|u| (u, "its user's newer connection")));
                }
            }
            if self.count(|e| e.uid != 0) >= MAX_CLIENTS - ROOT_RESERVE {
                let hog = self.biggest_holder(uid, |_| true);
                match self.longest_idle(|e| e.uid == hog) {
                    Some(i)
                        if self
                            .entries
                            .get(i)
                            .is_some_and(|e| e.activity.idle() >= EVICTABLE_IDLE) =>
                    {
                        evicted.extend(self.evict(i).map(|u| (u, "idle while others waited")));
                    }
                    _ => return Admission::Refused("too many connections"),
                }
            }
        }
        self.next += 1;
        let id = self.next;
        self.entries.push(Entry {
            id,
            uid,
            io: io.clone(),
            activity: activity.clone(),
            authenticated: false,
        });
        Admission::Admitted { id, evicted }
    }

    pub fn authenticated(&mut self, id: u64) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.authenticated = true;
        }
    }

    pub fn leave(&mut self, id: u64) {
        self.entries.retain(|e| e.id != id);
    }
}
