//! Inputs the fuzzers (fuzz/) found, kept as tests once understood.

use outset::config::{parse_job, ClassDefaults, EventExpr};
use outset::event::{EventRef, EventTree};

/// parse_job, crash-d772b971: `start on ''` is an empty event name, which
/// the parser accepts. It displays as nothing (the harness assumed every
/// expression shows as something) and never matches: no event can be
/// emitted with an empty name.
#[test]
fn start_on_an_empty_quoted_event_name() {
    let class = parse_job(
        "fuzz",
        "/etc/init/fuzz.conf",
        "start on ''\n",
        &ClassDefaults::default(),
    )
    .expect("start on '' parses");
    let expr = class.start_on.expect("start on");
    assert_eq!(
        expr,
        EventExpr::Match {
            event: String::new(),
            args: Vec::new()
        }
    );
    assert_eq!(expr.to_string(), "");
    let mut tree = EventTree::new(&expr);
    for name in ["startup", "x"] {
        let event = EventRef {
            id: 1,
            name,
            env: &[],
        };
        assert_eq!(tree.offer(&event, &[]), 0);
    }
    assert!(!tree.value());
}
