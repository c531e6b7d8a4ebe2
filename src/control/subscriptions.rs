//! Which signals a private connection is sent.
//!
//! Upstart sends every signal to every private connection, and clients
//! written for it (its initctl, scripts using libdbus) expect that. A
//! client that registers with `Hello`, as it would with a bus daemon, is
//! treated as a bus client instead: it is sent only the signals its
//! `AddMatch` rules ask for. outset's initctl says `Hello` and asks for
//! nothing, so a waiting `initctl emit` does not read (and init does not
//! write) the tens of thousands of signals a spawn storm makes.

use std::borrow::Cow;
use std::sync::Mutex;

use zbus::{fdo, MatchRule, Message};

#[derive(Default)]
pub struct Subscriptions {
    /// `None`: every signal (no `Hello` yet); otherwise the rules asked for.
    rules: Mutex<Option<Vec<MatchRule<'static>>>>,
}

impl Subscriptions {
    /// `Hello`: from now on only the signals that match a rule.
    pub fn register(&self) {
        if let Ok(mut rules) = self.rules.lock() {
            rules.get_or_insert_with(Vec::new);
        }
    }

    pub fn add(&self, rule: &str) -> fdo::Result<()> {
        let rule = MatchRule::try_from(rule)
            .map_err(|e| fdo::Error::MatchRuleInvalid(e.to_string()))?
            .into_owned();
        if let Ok(Some(rules)) = self.rules.lock().as_deref_mut() {
            rules.push(rule);
        }
        Ok(())
    }

    pub fn remove(&self, rule: &str) -> fdo::Result<()> {
        let rule =
            MatchRule::try_from(rule).map_err(|e| fdo::Error::MatchRuleInvalid(e.to_string()))?;
        let mut guard = self.rules.lock();
        match guard.as_deref_mut() {
            Ok(Some(rules)) => match rules.iter().position(|r| *r == rule) {
                Some(i) => {
                    rules.remove(i);
                    Ok(())
                }
                None => Err(fdo::Error::MatchRuleNotFound(
                    "The given match rule wasn't found and can't be removed".into(),
                )),
            },
            _ => Ok(()),
        }
    }

    /// Whether any signal at all may be sent to the connection: not once
    /// it has said `Hello` and asked for nothing (as outset's initctl
    /// does), so that nothing is built for it.
    pub fn wants_any(&self) -> bool {
        match self.rules.lock().as_deref() {
            Ok(Some(rules)) => !rules.is_empty(),
            _ => true,
        }
    }

    /// What of `msgs` the connection is sent (one lock for all of them).
    pub fn select<'m>(&self, msgs: &'m [Message]) -> Cow<'m, [Message]> {
        match self.rules.lock().as_deref() {
            Ok(Some(rules)) => msgs
                .iter()
                .filter(|m| rules.iter().any(|r| r.matches(m).unwrap_or(false)))
                .cloned()
                .collect(),
            _ => Cow::Borrowed(msgs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(member: &str) -> Message {
        Message::signal("/com/ubuntu/Upstart", "com.ubuntu.Upstart0_6", member)
            .build(&())
            .unwrap()
    }

    fn wants(s: &Subscriptions, member: &str) -> bool {
        !s.select(&[signal(member)]).is_empty()
    }

    #[test]
    fn everything_until_hello_then_only_what_matches() {
        let s = Subscriptions::default();
        assert!(s.wants_any());
        assert!(matches!(s.select(&[signal("JobAdded")]), Cow::Borrowed(_)));
        // AddMatch before Hello changes nothing.
        s.add("type='signal',member='JobRemoved'").unwrap();
        assert!(wants(&s, "JobAdded"));
        s.register();
        assert!(!wants(&s, "JobAdded") && !s.wants_any());
        s.add("type='signal',member='JobAdded'").unwrap();
        assert!(wants(&s, "JobAdded") && !wants(&s, "Restarted"));
        assert!(s.wants_any());
        s.remove("type='signal',member='JobAdded'").unwrap();
        assert!(!wants(&s, "JobAdded") && !s.wants_any());
        assert!(s.remove("type='signal',member='JobAdded'").is_err());
        assert!(s.add("type='nonsense'").is_err());
    }
}
