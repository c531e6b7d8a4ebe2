//! Runtime `start on`/`stop on` trees: which leaves currently match which
//! events (events-and-states.md §3).

use super::fnmatch::fnmatch;
use super::EventId;
use crate::config::{expand, EventExpr, Operator};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Match { name: String, args: Vec<String> },
    And(usize, usize),
    Or(usize, usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub value: bool,
    /// The event a true leaf holds.
    pub event: Option<EventId>,
}

/// A flattened expression tree; children come before their parent, so the
/// node order is a post-order walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTree {
    pub nodes: Vec<Node>,
}

/// What the tree needs to know of an event.
pub struct EventRef<'a> {
    pub id: EventId,
    pub name: &'a str,
    pub env: &'a [String],
}

impl EventTree {
    pub fn new(expr: &EventExpr) -> Self {
        // Exactly as many nodes as the expression has: a tree lives as
        // long as its class, and a grown vector would keep room for four.
        let mut nodes = Vec::with_capacity(count(expr));
        build(expr, &mut nodes);
        EventTree { nodes }
    }

    /// Operands come before their operator, as [`EventTree::new`] builds
    /// them. A tree read from a state payload is checked with this before
    /// use: the walks below index by these numbers.
    pub fn is_well_formed(&self) -> bool {
        self.nodes.iter().enumerate().all(|(i, n)| match n.kind {
            NodeKind::Match { .. } => true,
            NodeKind::And(l, r) | NodeKind::Or(l, r) => l < i && r < i,
        })
    }

    fn root(&self) -> usize {
        self.nodes.len().saturating_sub(1)
    }

    pub fn value(&self) -> bool {
        self.nodes.get(self.root()).is_some_and(|n| n.value)
    }

    /// Offer an event; every false leaf that matches becomes true and holds
    /// it. Returns how many leaves newly hold the event.
    pub fn offer(&mut self, event: &EventRef<'_>, env: &[String]) -> usize {
        let mut held = 0;
        for i in 0..self.nodes.len() {
            let value_of = |j: usize| self.nodes.get(j).is_some_and(|n| n.value);
            let operator = match self.nodes.get(i).map(|n| &n.kind) {
                Some(NodeKind::And(l, r)) => Some(value_of(*l) && value_of(*r)),
                Some(NodeKind::Or(l, r)) => Some(value_of(*l) || value_of(*r)),
                _ => None,
            };
            let Some(node) = self.nodes.get_mut(i) else {
                break;
            };
            match (operator, &node.kind) {
                (Some(value), _) => node.value = value,
                (None, NodeKind::Match { name, args }) => {
                    if !node.value && leaf_matches(name, args, event, env) {
                        node.event = Some(event.id);
                        node.value = true;
                        held += 1;
                    }
                }
                (None, _) => {}
            }
        }
        held
    }

    /// Clear every leaf; returns the events that were held (one entry per
    /// holding leaf).
    pub fn reset(&mut self) -> Vec<EventId> {
        let mut released = Vec::new();
        for node in &mut self.nodes {
            if let Some(id) = node.event.take() {
                released.push(id);
            }
            node.value = false;
        }
        released
    }

    /// The events of the leaves that made the root true, depth first, left
    /// to right, not descending into false nodes.
    pub fn contributing(&self) -> Vec<EventId> {
        let mut out = Vec::new();
        if !self.nodes.is_empty() {
            self.walk(self.root(), &mut out);
        }
        out
    }

    fn walk(&self, i: usize, out: &mut Vec<EventId>) {
        let Some(node) = self.nodes.get(i).filter(|n| n.value) else {
            return;
        };
        match &node.kind {
            NodeKind::Match { .. } => out.extend(node.event),
            NodeKind::And(l, r) | NodeKind::Or(l, r) => {
                self.walk(*l, out);
                self.walk(*r, out);
            }
        }
    }

    /// Events held by any leaf (for serialisation and sanity checks).
    pub fn held(&self) -> impl Iterator<Item = EventId> + '_ {
        self.nodes.iter().filter_map(|n| n.event)
    }

    /// Would a leaf match this event (ignoring current values)?
    pub fn could_match(&self, event: &EventRef<'_>, env: &[String]) -> bool {
        self.nodes.iter().any(|n| match &n.kind {
            NodeKind::Match { name, args } => leaf_matches(name, args, event, env),
            _ => false,
        })
    }
}

fn count(expr: &EventExpr) -> usize {
    match expr {
        EventExpr::Match { .. } => 1,
        EventExpr::Op { left, right, .. } => 1 + count(left) + count(right),
    }
}

fn build(expr: &EventExpr, nodes: &mut Vec<Node>) -> usize {
    let kind = match expr {
        EventExpr::Match { event, args } => NodeKind::Match {
            name: event.clone(),
            args: args.clone(),
        },
        EventExpr::Op { op, left, right } => {
            let l = build(left, nodes);
            let r = build(right, nodes);
            match op {
                Operator::And => NodeKind::And(l, r),
                Operator::Or => NodeKind::Or(l, r),
            }
        }
    };
    nodes.push(Node {
        kind,
        value: false,
        event: None,
    });
    nodes.len() - 1
}

/// events-and-states.md §3.2.
pub fn leaf_matches(name: &str, args: &[String], event: &EventRef<'_>, env: &[String]) -> bool {
    if name != event.name {
        return false;
    }
    let mut cursor = 0usize;
    for arg in args {
        let (key, negate, pattern) = match arg.split_once("!=") {
            Some((k, v)) if !k.contains('=') => (Some(k), true, v),
            _ => match arg.split_once('=') {
                Some((k, v)) => (Some(k), false, v),
                None => (None, false, arg.as_str()),
            },
        };
        let value = match key {
            None => match event.env.get(cursor) {
                Some(entry) => entry.split_once('=').map_or("", |(_, v)| v),
                None => return false,
            },
            Some(k) => {
                let found = event
                    .env
                    .iter()
                    .enumerate()
                    .find(|(_, e)| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k);
                match found {
                    Some((i, entry)) => {
                        cursor = i;
                        entry.split_once('=').map_or("", |(_, v)| v)
                    }
                    None => return false,
                }
            }
        };
        let Ok(pattern) = expand(pattern, env) else {
            return false;
        };
        if fnmatch(&pattern, value) == negate {
            return false;
        }
        cursor += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_job, ClassDefaults};

    fn tree(expr: &str) -> EventTree {
        let class = parse_job(
            "t",
            "t.conf",
            &format!("start on {expr}\n"),
            &ClassDefaults::default(),
        )
        .expect("parse");
        EventTree::new(class.start_on.as_ref().expect("start on"))
    }

    fn env(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ev<'a>(id: EventId, name: &'a str, env: &'a [String]) -> EventRef<'a> {
        EventRef { id, name, env }
    }

    #[test]
    fn matching_rules() {
        let none = env(&[]);
        let rl = env(&["RUNLEVEL=2", "PREVLEVEL=N"]);
        let rows: &[(&str, &str, &[String], bool)] = &[
            ("runlevel [2345]", "runlevel", &rl, true),
            ("runlevel [!2345]", "runlevel", &rl, false),
            ("runlevel 2 N", "runlevel", &rl, true),
            ("runlevel 2 N X", "runlevel", &rl, false),
            ("runlevel PREVLEVEL=N", "runlevel", &rl, true),
            ("runlevel RUNLEVEL!=2", "runlevel", &rl, false),
            ("runlevel IFACE!=lo", "runlevel", &rl, false),
            ("runlevel", "Runlevel", &rl, false),
            ("foo", "foo", &none, true),
            ("foo a", "foo", &none, false),
            ("foo X=${Y:-1}", "foo", &env(&["X=1"]), true),
            ("foo X=$Y", "foo", &env(&["X=1"]), false),
            (
                "net-device-up IFACE=eth*",
                "net-device-up",
                &env(&["IFACE=eth0"]),
                true,
            ),
        ];
        for (expr, name, event_env, want) in rows {
            let mut t = tree(expr);
            let got = t.offer(&ev(1, name, event_env), &none) > 0;
            assert_eq!(got, *want, "{expr} vs {name} {event_env:?}");
        }
    }

    #[test]
    fn stop_on_values_expand_against_instance_env() {
        let mut t = tree("device-removed DEVPATH=$DEVPATH");
        let e = env(&["DEVPATH=/dev/sda"]);
        assert_eq!(
            t.offer(&ev(1, "device-removed", &e), &env(&["DEVPATH=/dev/sdb"])),
            0
        );
        assert_eq!(
            t.offer(&ev(1, "device-removed", &e), &env(&["DEVPATH=/dev/sda"])),
            1
        );
    }

    #[test]
    fn and_holds_partial_and_or_keeps_first() {
        let none = env(&[]);
        let mut t = tree("a and b");
        assert_eq!(t.offer(&ev(1, "a", &none), &none), 1);
        assert!(!t.value());
        assert_eq!(
            t.offer(&ev(2, "a", &none), &none),
            0,
            "true leaf keeps its event"
        );
        assert_eq!(t.offer(&ev(3, "b", &none), &none), 1);
        assert!(t.value());
        assert_eq!(t.contributing(), [1, 3]);
        assert_eq!(t.reset(), [1, 3]);
        assert!(!t.value());

        let mut t = tree("a or b");
        t.offer(&ev(1, "b", &none), &none);
        t.offer(&ev(2, "a", &none), &none);
        assert_eq!(t.contributing(), [2, 1]);

        // (a or b) and c: the false branch of the or is skipped.
        let mut t = tree("a or b and c");
        t.offer(&ev(1, "b", &none), &none);
        t.offer(&ev(2, "c", &none), &none);
        assert!(t.value());
        assert_eq!(t.contributing(), [1, 2]);
    }
}
