//! `initctl show-config` and `check-config`, computed from the job
//! properties a client can read (control.md §8.4, §8.5).

use crate::event::fnmatch;

/// One job as seen over D-Bus.
#[derive(Debug, Clone, Default)]
pub struct JobInfo {
    pub name: String,
    pub emits: Vec<String>,
    /// Post-order flattening: `["/AND"]`, `["/OR"]` or `[EVENT, ARG…]`.
    pub start_on: Vec<Vec<String>>,
    pub stop_on: Vec<Vec<String>>,
}

/// Rebuild the fully bracketed expression text.
pub fn expression(flat: &[Vec<String>]) -> String {
    let mut stack: Vec<String> = Vec::new();
    for node in flat {
        match node.first().map(String::as_str) {
            Some(op @ ("/AND" | "/OR")) if node.len() == 1 => {
                let right = stack.pop().unwrap_or_default();
                let left = stack.pop().unwrap_or_default();
                let word = if op == "/AND" { "and" } else { "or" };
                stack.push(format!("({left} {word} {right})"));
            }
            _ => stack.push(node.join(" ")),
        }
    }
    stack.pop().unwrap_or_default()
}

const JOB_EVENTS: [&str; 4] = ["starting", "started", "stopping", "stopped"];

/// The job a job-event leaf names, and the remaining arguments.
fn split_job(leaf: &[String]) -> (Option<String>, Vec<String>) {
    let Some((event, args)) = leaf.split_first() else {
        return (None, Vec::new());
    };
    if !JOB_EVENTS.contains(&event.as_str()) {
        return (None, args.to_vec());
    }
    // As Upstart: the first argument that is either `JOB=NAME` or, in
    // first place, a plain word.
    let found = args
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("JOB=") {
            Some(job) => Some((i, job)),
            None if i == 0 && !a.contains('=') => Some((i, a.as_str())),
            None => None,
        });
    match found {
        Some((i, job)) => {
            let rest = args
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.clone())
                .collect();
            (Some(job.to_string()), rest)
        }
        None => (None, args.to_vec()),
    }
}

fn is_leaf(node: &[String]) -> bool {
    !matches!(node, [op] if op == "/AND" || op == "/OR")
}

/// The lines `show-config` prints for one job.
pub fn show(job: &JobInfo, enumerate: bool) -> Vec<String> {
    let mut out = vec![job.name.clone()];
    for e in &job.emits {
        out.push(format!("  emits {e}"));
    }
    for (label, flat) in [("start on", &job.start_on), ("stop on", &job.stop_on)] {
        if flat.is_empty() {
            continue;
        }
        if !enumerate {
            out.push(format!("  {label} {}", expression(flat)));
            continue;
        }
        for leaf in flat.iter().filter(|n| is_leaf(n)) {
            let (name, env) = split_job(leaf);
            let mut line = format!(
                "  {label} {} (job:",
                leaf.first().map_or("", String::as_str)
            );
            if let Some(n) = name {
                line.push_str(&format!(" {n}"));
            }
            line.push_str(", env:");
            for a in env {
                line.push_str(&format!(" {a}"));
            }
            line.push(')');
            out.push(line);
        }
    }
    out
}

/// One node of a condition's tree for `check-config`.
struct Node {
    /// The condition can be met as far as this node goes.
    ok: bool,
    /// A leaf's unknown event and job.
    problems: Vec<String>,
    /// An operator's (left, right) nodes.
    children: Option<(usize, usize)>,
}

/// The problems of the leaves under `top` (itself included), left subtree
/// first, then right; without recursion, as a condition can be long.
fn post_order(nodes: &[Node], top: usize) -> Vec<String> {
    let mut pending = vec![top];
    let mut reversed = Vec::new();
    while let Some(i) = pending.pop() {
        let Some(node) = nodes.get(i) else { continue };
        reversed.push(i);
        if let Some((left, right)) = node.children {
            pending.push(left);
            pending.push(right);
        }
    }
    reversed
        .iter()
        .rev()
        .filter_map(|&i| nodes.get(i))
        .flat_map(|n| n.problems.iter().cloned())
        .collect()
}

/// What `check-config` knows.
pub struct Known<'a> {
    pub jobs: &'a [JobInfo],
    pub ignored: &'a [String],
    pub user_mode: bool,
    pub warn: bool,
}

impl Known<'_> {
    fn event(&self, name: &str) -> bool {
        const BUILTIN: [&str; 9] = [
            "startup",
            "debug",
            "control-alt-delete",
            "keyboard-request",
            "power-status-changed",
            "starting",
            "started",
            "stopping",
            "stopped",
        ];
        BUILTIN.contains(&name)
            || (self.user_mode && name == "session-end")
            || self.ignored.iter().any(|i| i == name)
            || self
                .jobs
                .iter()
                .flat_map(|j| &j.emits)
                .any(|p| fnmatch(p, name))
    }

    fn job(&self, name: &str) -> bool {
        name.starts_with('$') || self.jobs.iter().any(|j| j.name == name)
    }

    /// Problems of one leaf, as `unknown event X` / `unknown job Y`.
    fn leaf_problems(&self, leaf: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(event) = leaf.first() {
            if !self.event(event) {
                out.push(format!("unknown event {event}"));
            }
        }
        if let (Some(job), _) = split_job(leaf) {
            if !self.job(&job) {
                out.push(format!("unknown job {job}"));
            }
        }
        out
    }

    /// Upstart's report for a condition: the condition as a tree, each
    /// operator node true when its operands allow it (`and`, or any
    /// operator with `--warn`, needs both; `or` either); then the first
    /// node in pre-order, among the root and the operators, that is false
    /// has every unknown event and job below it reported, in post-order.
    /// An operator's left child is its second operand, as Upstart built
    /// it from the postfix list, which decides the order of the lines.
    fn condition(&self, flat: &[Vec<String>]) -> Vec<String> {
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        for item in flat {
            let node = if is_leaf(item) {
                let problems = self.leaf_problems(item);
                Node {
                    ok: problems.is_empty(),
                    problems,
                    children: None,
                }
            } else {
                let (Some(left), Some(right)) = (stack.pop(), stack.pop()) else {
                    // Not a well-formed postfix list: nothing to judge.
                    return Vec::new();
                };
                let ok = |i: usize| nodes.get(i).is_some_and(|n| n.ok);
                let both = item.first().is_some_and(|op| op == "/AND") || self.warn;
                Node {
                    ok: if both {
                        ok(left) && ok(right)
                    } else {
                        ok(left) || ok(right)
                    },
                    problems: Vec::new(),
                    children: Some((left, right)),
                }
            };
            stack.push(nodes.len());
            nodes.push(node);
        }
        let Some(&root) = stack.last() else {
            return Vec::new();
        };
        let mut todo = vec![root];
        while let Some(i) = todo.pop() {
            let Some(node) = nodes.get(i) else { continue };
            if let Some((left, right)) = node.children {
                todo.push(right);
                todo.push(left);
            } else if i != root {
                continue;
            }
            if !node.ok {
                return post_order(&nodes, i);
            }
        }
        Vec::new()
    }

    /// The report for one job (empty when it is fine).
    pub fn check(&self, job: &JobInfo) -> Vec<String> {
        let mut lines = Vec::new();
        for (label, flat) in [("start on", &job.start_on), ("stop on", &job.stop_on)] {
            for p in self.condition(flat) {
                lines.push(format!("  {label}: {p}"));
            }
        }
        if !lines.is_empty() {
            lines.insert(0, job.name.clone());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&[&str]]) -> Vec<Vec<String>> {
        items
            .iter()
            .map(|n| n.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn expressions_are_fully_bracketed() {
        let flat = v(&[
            &["starting", "A"],
            &["B"],
            &["C", "var=2"],
            &["/OR"],
            &["/AND"],
        ]);
        assert_eq!(expression(&flat), "(starting A and (B or C var=2))");
        assert_eq!(
            expression(&v(&[&["runlevel", "[2345]"]])),
            "runlevel [2345]"
        );
    }

    #[test]
    fn enumerate_names_jobs() {
        let job = JobInfo {
            name: "j".into(),
            emits: vec!["thing".into()],
            start_on: v(&[&["starting", "mountall"], &["runlevel", "[016]"], &["/OR"]]),
            stop_on: v(&[&["stopping", "c=d", "JOB=bang", "e=f", "g=h"]]),
        };
        assert_eq!(
            show(&job, true),
            [
                "j",
                "  emits thing",
                "  start on starting (job: mountall, env:)",
                "  start on runlevel (job:, env: [016])",
                "  stop on stopping (job: bang, env: c=d e=f g=h)",
            ]
        );
        assert_eq!(
            show(&job, false)[2],
            "  start on (starting mountall or runlevel [016])"
        );
    }

    #[test]
    fn an_unsatisfiable_part_under_a_satisfied_or_is_reported() {
        let jobs = vec![JobInfo {
            name: "j".into(),
            emits: vec!["a".into(), "b".into()],
            // (a or (b and (x or y))): x and y unknown.
            start_on: v(&[
                &["a"],
                &["b"],
                &["x"],
                &["y"],
                &["/OR"],
                &["/AND"],
                &["/OR"],
            ]),
            stop_on: v(&[&["a"], &["/OR"]]),
        }];
        let known = Known {
            jobs: &jobs,
            ignored: &[],
            user_mode: false,
            warn: false,
        };
        // Second operands first; a malformed list is left alone.
        assert_eq!(
            known.check(&jobs[0]),
            [
                "j",
                "  start on: unknown event y",
                "  start on: unknown event x"
            ]
        );
    }

    #[test]
    fn check_reports_unknown_events_and_jobs() {
        let jobs = vec![JobInfo {
            name: "fruit".into(),
            emits: vec![],
            start_on: v(&[&["starting", "grape"]]),
            stop_on: v(&[&["peach"]]),
        }];
        let known = Known {
            jobs: &jobs,
            ignored: &[],
            user_mode: false,
            warn: false,
        };
        assert_eq!(
            known.check(&jobs[0]),
            [
                "fruit",
                "  start on: unknown job grape",
                "  stop on: unknown event peach"
            ]
        );
        let ignored = vec!["peach".to_string()];
        let known = Known {
            jobs: &jobs,
            ignored: &ignored,
            user_mode: false,
            warn: false,
        };
        assert_eq!(
            known.check(&jobs[0]),
            ["fruit", "  start on: unknown job grape"]
        );

        // An `or` with one known side is fine unless --warn.
        let jobs = vec![JobInfo {
            name: "x".into(),
            emits: vec!["net-*".into()],
            start_on: v(&[&["net-up"], &["nope"], &["/OR"]]),
            stop_on: vec![],
        }];
        let known = Known {
            jobs: &jobs,
            ignored: &[],
            user_mode: false,
            warn: false,
        };
        assert!(known.check(&jobs[0]).is_empty());
        let known = Known {
            jobs: &jobs,
            ignored: &[],
            user_mode: false,
            warn: true,
        };
        assert_eq!(
            known.check(&jobs[0]),
            ["x", "  start on: unknown event nope"]
        );
    }
}
