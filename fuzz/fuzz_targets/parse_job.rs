//! Fuzz the job-file parser: arbitrary bytes (lossy UTF-8) as a `.conf`,
//! and the same text applied again as an `.override`.
//!
//! Invariants checked, beyond "never panics":
//! - errors format without panicking, name the file and a line inside it;
//! - parsing is deterministic;
//! - a parsed class survives a serde_json round trip: the JSON re-serialises
//!   byte for byte, and the class compares equal with `Process.line` cleared
//!   (it has been `#[serde(skip)]`, so it may not survive);
//! - `start_on`/`stop_on` Display without panicking, and when every word is
//!   plain, the displayed form parses back to the same expression;
//! - an override that is the `.conf`'s own text always applies, leaves the
//!   "last one wins" fields as they were and doubles the appending lists.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outset::config::{apply_override, parse_job, ClassDefaults, ConfigError, EventExpr, JobClass};

const NAME: &str = "fuzz";
const PATH: &str = "/etc/init/fuzz.conf";
const OVERRIDE: &str = "/etc/init/fuzz.override";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let defaults = ClassDefaults::default();

    let class = match parse_job(NAME, PATH, &text, &defaults) {
        Ok(class) => class,
        Err(e) => {
            let _ = format!("{e} {e:?}");
            assert_eq!(e.path(), PATH);
            if let ConfigError::Parse { line, .. } = e {
                let lines = 1 + text.bytes().filter(|&b| b == b'\n').count();
                assert!(
                    (1..=lines).contains(&line),
                    "error line {line} outside 1..={lines}"
                );
            }
            // Same input, same error.
            assert_eq!(parse_job(NAME, PATH, &text, &defaults), Err(e));
            return;
        }
    };

    assert_eq!(&*class.name, NAME);
    assert_eq!(class.path, PATH);
    assert_eq!(
        parse_job(NAME, PATH, &text, &defaults).as_ref(),
        Ok(&class),
        "parse is not deterministic"
    );

    check_json_round_trip(&class);
    for expr in [&class.start_on, &class.stop_on].into_iter().flatten() {
        check_display(expr);
    }
    check_self_override(&class, &text);
});

/// Serialise, deserialise, compare (ignoring `Process.line`),
/// and check the re-serialised JSON is byte-identical.
fn check_json_round_trip(class: &JobClass) {
    let json = serde_json::to_string(class).expect("JobClass serialises");
    let back: JobClass = match serde_json::from_str(&json) {
        Ok(back) => back,
        // serde_json refuses input nested deeper than 128 levels by default;
        // a long `a or b or c …` chain produces that. Not a parser bug.
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => {
            let depth = [&class.start_on, &class.stop_on]
                .into_iter()
                .flatten()
                .map(expr_depth)
                .max()
                .unwrap_or(0);
            assert!(depth > 30, "recursion limit hit at expr depth {depth}: {e}");
            return;
        }
        Err(e) => panic!("JSON round trip failed: {e}\n{json}"),
    };
    let json2 = serde_json::to_string(&back).expect("JobClass serialises");
    assert_eq!(json, json2, "re-serialised JSON differs");
    // `Process.line` may or may not be serialised: compare without it.
    let without_lines = |c: &JobClass| {
        let mut c = c.clone();
        for p in c.processes.values_mut() {
            p.line = 0;
        }
        c
    };
    assert_eq!(
        without_lines(&back),
        without_lines(class),
        "JSON round trip changed the class"
    );
}

fn expr_depth(e: &EventExpr) -> usize {
    match e {
        EventExpr::Match { .. } => 1,
        EventExpr::Op { left, right, .. } => 1 + expr_depth(left).max(expr_depth(right)),
    }
}

/// A word the lexer reads back unchanged and as a word, not an operator.
fn plain_word(w: &str) -> bool {
    !w.is_empty()
        && w != "and"
        && w != "or"
        && !w.contains([' ', '\t', '\r', '\n', '#', '(', ')', '\\', '"', '\''])
}

fn all_plain(e: &EventExpr) -> bool {
    match e {
        EventExpr::Match { event, args } => plain_word(event) && args.iter().all(|a| plain_word(a)),
        EventExpr::Op { left, right, .. } => all_plain(left) && all_plain(right),
    }
}

fn check_display(expr: &EventExpr) {
    let shown = expr.to_string();
    // Only `start on ''` (an empty event name, which the parser accepts;
    // it never matches, since no event has an empty name) shows as nothing.
    assert!(
        !shown.is_empty()
            || matches!(expr, EventExpr::Match { event, args } if event.is_empty() && args.is_empty()),
        "{expr:?} displays as nothing"
    );
    if !all_plain(expr) {
        return;
    }
    let text = format!("start on {shown}\n");
    let reparsed = parse_job(NAME, PATH, &text, &ClassDefaults::default())
        .unwrap_or_else(|e| panic!("displayed expression {shown:?} does not parse: {e}"));
    assert_eq!(
        reparsed.start_on.as_ref(),
        Some(expr),
        "displayed expression {shown:?} parses differently"
    );
}

/// Parsing is context-free, so the `.conf`'s own text must apply as an
/// override; doing every stanza twice in the same order changes only the
/// appending lists, which end up as two copies.
fn check_self_override(class: &JobClass, text: &str) {
    let merged = apply_override(class, OVERRIDE, text)
        .unwrap_or_else(|e| panic!("the .conf's own text fails as an override: {e}"));

    let twice = |v: &Vec<String>| [v.as_slice(), v.as_slice()].concat();
    assert_eq!(merged.rare.emits, twice(&class.rare.emits));
    assert_eq!(merged.env, twice(&class.env));
    assert_eq!(merged.rare.export, twice(&class.rare.export));
    assert_eq!(
        merged.normal_exit,
        [class.normal_exit.as_slice(), class.normal_exit.as_slice()].concat()
    );

    let mut rest = merged.clone();
    rest.rare.emits.clone_from(&class.rare.emits);
    rest.env.clone_from(&class.env);
    rest.rare.export.clone_from(&class.rare.export);
    rest.normal_exit.clone_from(&class.normal_exit);
    assert_eq!(&rest, class, "self-override changed a last-one-wins field");

    // An empty override changes nothing.
    assert_eq!(apply_override(class, OVERRIDE, "").as_ref(), Ok(class));
}
