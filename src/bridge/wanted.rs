//! What jobs ask of a bridge: the matches of its events in their
//! `start on` / `stop on`, as init publishes them (control.md §3.2: the
//! tree flattened post-order, operators as `/AND` and `/OR`).

/// One `EVENT ARG...` match of a job's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The job class's object path.
    pub job: String,
    pub event: String,
    /// Raw arguments: `KEY=VALUE` or positional values.
    pub args: Vec<String>,
}

impl Wanted {
    /// The value of the named argument `KEY=VALUE`, if given.
    pub fn named(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }
}

/// The matches in `conditions` (start_on then stop_on) whose event
/// `serves` accepts.
pub fn matches(
    job: &str,
    conditions: &[Vec<String>],
    serves: &dyn Fn(&str) -> bool,
) -> Vec<Wanted> {
    conditions
        .iter()
        .filter_map(|m| {
            let (event, args) = m.split_first()?;
            (!event.starts_with('/') && serves(event)).then(|| Wanted {
                job: job.to_string(),
                event: event.clone(),
                args: args.to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_served_matches() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let cond = vec![
            v(&["file", "FILE=/tmp/x", "EVENT=create"]),
            v(&["startup"]),
            v(&["/OR"]),
        ];
        let got = matches("/j", &cond, &|e| e == "file");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].named("EVENT"), Some("create"));
        assert_eq!(got[0].named("FILE"), Some("/tmp/x"));
        assert_eq!(got[0].named("MATCH"), None);
    }
}
