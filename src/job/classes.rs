//! Configuration input: the classes a (re)load registers, and the class
//! environment their instances start from (job-config.md §3).

use super::NameKey;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::engine::{ClassChange, Engine, Slot};
use super::sys::{Change, Sys};
use crate::config::JobClass;
use crate::env;
use crate::event::{EventId, EventRef};

impl Engine {
    /// Install the registered classes after a (re)load. Changed classes
    /// replace the old ones at once if they have no instances, else when
    /// the last instance is gone (job-config.md §3).
    pub fn set_classes(&mut self, sys: &mut dyn Sys, classes: Vec<JobClass>) {
        self.interest.clear();
        let mut incoming: BTreeMap<Arc<str>, JobClass> = classes
            .into_iter()
            .map(|c| (Arc::clone(&c.name), c))
            .collect();
        let names: Vec<Arc<str>> = self.slots.keys().map(|k| Arc::clone(k)).collect();
        for name in names {
            match incoming.remove(&name) {
                Some(class) => {
                    let same = self.slots.get(&*name).is_some_and(|s| *s.class == class);
                    if same {
                        if let Some(slot) = self.slots.get_mut(&*name) {
                            slot.pending = None;
                        }
                    } else {
                        self.change_class(sys, &name, ClassChange::Replace(Arc::new(class)));
                    }
                }
                None => self.change_class(sys, &name, ClassChange::Delete),
            }
        }
        for (name, class) in incoming {
            sys.changed(Change::JobAdded(name.to_string()));
            self.slots.insert(name.into(), Slot::new(Arc::new(class)));
        }
        self.compact_slots();
    }

    /// Rebuild the table of classes with full nodes. Inserted one by one
    /// (as a load adds them, or a restored state), a B-tree's nodes stay
    /// about half full; built from a sorted sequence they are full.
    /// Entries are moved, not copied.
    fn compact_slots(&mut self) {
        self.slots = std::mem::take(&mut self.slots).into_iter().collect();
    }

    fn change_class(&mut self, sys: &mut dyn Sys, name: &str, change: ClassChange) {
        let Some(slot) = self.slots.get_mut(NameKey::new(name)) else {
            return;
        };
        if !slot.instances.is_empty() {
            slot.pending = Some(change);
            return;
        }
        self.apply_class_change(sys, name, change);
    }

    pub(super) fn apply_class_change(
        &mut self,
        sys: &mut dyn Sys,
        name: &str,
        change: ClassChange,
    ) {
        self.interest.clear();
        let Some(old) = self.slots.remove(name) else {
            return;
        };
        sys.changed(Change::JobRemoved(name.to_string()));
        let held: Vec<EventId> = old
            .start_on
            .as_ref()
            .map(|t| t.held().collect())
            .unwrap_or_default();
        let ClassChange::Replace(class) = change else {
            for id in held {
                self.release(id);
            }
            return;
        };
        let mut slot = Slot::new(class);
        // Partial start conditions carry over to the new definition.
        if let Some(tree) = slot.start_on.as_mut() {
            for id in &held {
                if let Some(ev) = self.event(*id) {
                    let r = EventRef {
                        id: ev.id,
                        name: &ev.name,
                        env: &ev.env,
                    };
                    let n = tree.offer(&r, &[]);
                    for _ in 0..n {
                        self.hold(*id);
                    }
                }
            }
        }
        for id in held {
            self.release(id);
        }
        self.slots.insert(Arc::clone(&slot.class.name).into(), slot);
        sys.changed(Change::JobAdded(name.to_string()));
    }

    /// The class environment: the global table, then the `env` stanzas.
    pub fn class_env(&self, class: &JobClass) -> Vec<String> {
        self.class_env_into(class, Vec::new())
    }

    /// [`Engine::class_env`] in a spare table of a removed instance, whose
    /// strings take the new ones without allocating.
    pub(super) fn recycled_class_env(&mut self, class: &JobClass) -> Vec<String> {
        let spare = self.spare_envs.pop().unwrap_or_default();
        self.class_env_into(class, spare)
    }

    fn class_env_into(&self, class: &JobClass, mut out: Vec<String>) -> Vec<String> {
        out.clone_from(&self.global_env);
        for entry in &class.env {
            if entry.contains('=') {
                env::set(&mut out, entry.clone());
            } else {
                match env::get(&self.init_env, entry) {
                    Some(v) => env::set(&mut out, format!("{entry}={v}")),
                    None => env::unset(&mut out, entry),
                }
            }
        }
        out
    }

    /// Keep a removed instance's table for [`Engine::recycled_class_env`].
    pub(super) fn spare_env(&mut self, env: Vec<String>) {
        if self.spare_envs.len() < MAX_SPARE_ENVS && env.capacity() > 0 {
            self.spare_envs.push(env);
        }
    }

    /// Init is quiet: let the spare tables go.
    pub fn release_spares(&mut self) {
        self.spare_envs = Vec::new();
    }
}

/// At most this many spare tables (a storm of that many tasks reuses
/// them all; each is a copy of the global table, a few kilobytes).
const MAX_SPARE_ENVS: usize = 256;
