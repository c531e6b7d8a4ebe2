//! Which jobs an event can concern. An event only ever changes the
//! `start on`/`stop on` trees whose leaves name it (trees never stay true
//! after an offer that fires them), so handling an event need not visit
//! every loaded class: this index maps event names to the jobs whose
//! conditions mention them. It is derived from the slots, rebuilt lazily
//! after any change to the set of classes, and never serialised.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::ClassName;

use super::engine::Slot;
use crate::config::EventExpr;
use crate::event::{EventTree, NodeKind};

#[derive(Debug, Clone, Default)]
pub struct Interest {
    /// Event name → jobs, in job-name order (the slots' own names).
    by_event: HashMap<String, Arc<[Arc<str>]>>,
    /// Jobs to offer every event: a tree that is already true (only state
    /// imported from elsewhere can hold one) fires on any event.
    always: Vec<Arc<str>>,
}

/// The index, built on first use after each invalidation.
#[derive(Debug, Clone, Default)]
pub struct InterestCache(Option<Interest>);

/// Derived data, never part of an engine's identity.
impl PartialEq for InterestCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for InterestCache {}

impl InterestCache {
    /// The classes (or imported state) changed.
    pub fn clear(&mut self) {
        self.0 = None;
    }

    /// The jobs to offer event `name`, in job-name order.
    pub fn jobs(&mut self, slots: &BTreeMap<ClassName, Slot>, name: &str) -> Arc<[Arc<str>]> {
        self.0
            .get_or_insert_with(|| Interest::build(slots))
            .jobs(name)
    }
}

fn expr_names<'a>(expr: &'a EventExpr, out: &mut Vec<&'a str>) {
    match expr {
        EventExpr::Match { event, .. } => out.push(event),
        EventExpr::Op { left, right, .. } => {
            expr_names(left, out);
            expr_names(right, out);
        }
    }
}

fn tree_names<'a>(tree: &'a EventTree, out: &mut Vec<&'a str>) {
    for node in &tree.nodes {
        if let NodeKind::Match { name, .. } = &node.kind {
            out.push(name);
        }
    }
}

impl Interest {
    pub fn build(slots: &BTreeMap<ClassName, Slot>) -> Interest {
        let mut by_event: HashMap<&str, BTreeSet<&Arc<str>>> = HashMap::new();
        let mut always = Vec::new();
        for (job, slot) in slots {
            let mut names = Vec::new();
            let mut fired = false;
            if let Some(tree) = &slot.start_on {
                tree_names(tree, &mut names);
                fired |= tree.value();
            }
            // Instances created later take their `stop on` from the class.
            if let Some(expr) = &slot.class.stop_on {
                expr_names(expr, &mut names);
            }
            for inst in slot.instances.values() {
                if let Some(tree) = &inst.stop_on {
                    tree_names(tree, &mut names);
                    fired |= tree.value();
                }
            }
            for name in names {
                by_event.entry(name).or_default().insert(job);
            }
            if fired {
                always.push(Arc::clone(job));
            }
        }
        Interest {
            by_event: by_event
                .into_iter()
                .map(|(name, jobs)| (name.to_string(), jobs.into_iter().map(Arc::clone).collect()))
                .collect(),
            always,
        }
    }

    /// The jobs to offer event `name`, in job-name order.
    pub fn jobs(&self, name: &str) -> Arc<[Arc<str>]> {
        let named = self
            .by_event
            .get(name)
            .cloned()
            .unwrap_or_else(|| Arc::new([]));
        if self.always.is_empty() {
            return named;
        }
        let all: BTreeSet<&Arc<str>> = named.iter().chain(self.always.iter()).collect();
        all.into_iter().cloned().collect()
    }
}
