//! Fuzz `start on` expressions and event matching.
//!
//! The input is an expression, a NUL byte, then events, one a line:
//! `NAME [KEY=VALUE | VALUE]...`. The expression is parsed as a `start on`
//! stanza, turned into an `EventTree`, and every event is offered to it.
//!
//! Invariants checked, beyond "never panics":
//! - `offer` makes leaves hold the event only when `could_match` says a
//!   leaf matches;
//! - the root is true exactly when `contributing` names an event, and
//!   every event it names was offered;
//! - the root's value is the operator tree evaluated over the leaves;
//! - `reset` releases exactly the events `held` reports and clears the tree.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outset::config::{parse_job, ClassDefaults};
use outset::event::{EventRef, EventTree, NodeKind};

/// The job environment `$VAR` patterns expand against.
const JOB_ENV: &[&str] = &["JOB=fuzz", "INSTANCE=", "RUNLEVEL=2", "IFACE=eth0"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (expr, events) = text.split_once('\0').unwrap_or((&text, ""));
    if expr.contains('\n') {
        // One stanza only: the rest of a file is parse_job's business.
        return;
    }
    let Ok(class) = parse_job(
        "fuzz",
        "/etc/init/fuzz.conf",
        &format!("start on {expr}\n"),
        &ClassDefaults::default(),
    ) else {
        return;
    };
    let Some(expr) = class.start_on.as_ref() else {
        return;
    };
    let mut tree = EventTree::new(expr);
    let job_env: Vec<String> = JOB_ENV.iter().map(|s| s.to_string()).collect();

    for (n, line) in events.lines().take(64).enumerate() {
        let mut words = line.split(' ').filter(|w| !w.is_empty());
        let Some(name) = words.next() else { continue };
        let env: Vec<String> = words.map(str::to_string).collect();
        let id = n as u64 + 1;
        let event = EventRef {
            id,
            name,
            env: &env,
        };
        let could = tree.could_match(&event, &job_env);
        let held = tree.offer(&event, &job_env);
        assert!(held == 0 || could, "leaf took an event could_match refused");
        check_values(&tree);
        let contributing = tree.contributing();
        assert_eq!(
            tree.value(),
            !contributing.is_empty(),
            "root vs contributing"
        );
        assert!(contributing.iter().all(|&e| e >= 1 && e <= id));
        if tree.value() {
            // A fired tree is reset by the engine; do the same sometimes.
            if n % 2 == 1 {
                let held: Vec<u64> = tree.held().collect();
                let mut released = tree.reset();
                released.sort_unstable();
                let mut expected = held;
                expected.sort_unstable();
                assert_eq!(released, expected, "reset released other events");
                assert!(!tree.value());
                assert_eq!(tree.held().count(), 0);
            }
        }
    }
});

/// Every operator node holds the value of its operands.
fn check_values(tree: &EventTree) {
    for (i, node) in tree.nodes.iter().enumerate() {
        match node.kind {
            NodeKind::Match { .. } => assert_eq!(node.value, node.event.is_some(), "leaf {i}"),
            NodeKind::And(l, r) | NodeKind::Or(l, r) => {
                assert!(l < i && r < i, "operands after their operator");
                let (a, b) = (tree.nodes[l].value, tree.nodes[r].value);
                let want = match node.kind {
                    NodeKind::And(..) => a && b,
                    _ => a || b,
                };
                assert_eq!(node.value, want, "operator node {i}");
            }
        }
    }
}
