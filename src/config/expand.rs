//! `$VAR` expansion (job-config.md §8), used for instance names, event
//! match values, `apparmor switch` and cgroup names.

use nom::bytes::complete::take_while;
use nom::character::complete::satisfy;
use nom::combinator::recognize;
use nom::{IResult, Parser};
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    #[error("Unknown parameter: {0}")]
    UnknownParameter(String),
    #[error("Expected operator")]
    ExpectedOperator,
    #[error("Mismatched braces")]
    MismatchedBraces,
    /// outset's own limit on `${…}` nesting, to protect PID 1's stack.
    #[error("Expansion nested too deeply")]
    TooDeep,
}

/// Deepest `${…}` nesting expanded.
pub const MAX_NESTING: usize = 64;

/// Somewhere to look variables up.
pub trait Env {
    fn get_var(&self, key: &str) -> Option<&str>;
}

/// An environment table of `KEY=VALUE` entries; the last entry for a key wins.
impl Env for [String] {
    fn get_var(&self, key: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find_map(|e| e.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
}

impl Env for Vec<String> {
    fn get_var(&self, key: &str) -> Option<&str> {
        self.as_slice().get_var(key)
    }
}

impl Env for HashMap<String, String> {
    fn get_var(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn var_name(s: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(s)
}

/// Expand every reference in `text` against `env`.
pub fn expand<E: Env + ?Sized>(text: &str, env: &E) -> Result<String, ExpandError> {
    let mut x = Expander {
        env,
        strict: true,
        depth: 0,
    };
    let (out, rest) = x.until(text, false)?;
    debug_assert!(rest.is_empty());
    Ok(out)
}

struct Expander<'e, E: ?Sized> {
    env: &'e E,
    /// False while skipping a word whose value is not used: unknown
    /// variables there are not errors.
    strict: bool,
    /// Current `${…}` nesting.
    depth: usize,
}

impl<E: Env + ?Sized> Expander<'_, E> {
    /// Expand until the end of input or, when `in_braces`, an unnested `}`
    /// (left unconsumed). Returns the expansion and the remaining input.
    fn until<'s>(
        &mut self,
        mut s: &'s str,
        in_braces: bool,
    ) -> Result<(String, &'s str), ExpandError> {
        let mut out = String::new();
        loop {
            let stop = s.find(|c| c == '$' || (in_braces && c == '}'));
            let Some(i) = stop else {
                out.push_str(s);
                return Ok((out, ""));
            };
            let (text, rest) = s.split_at_checked(i).unwrap_or((s, ""));
            out.push_str(text);
            s = rest;
            match s.strip_prefix('$') {
                Some(after) => s = self.reference(after, &mut out)?,
                // An unnested `}`, or the end.
                None => return Ok((out, s)),
            }
        }
    }

    /// Expand the reference after a `$`, appending to `out`.
    fn reference<'s>(&mut self, s: &'s str, out: &mut String) -> Result<&'s str, ExpandError> {
        if let Some(inner) = s.strip_prefix('{') {
            return self.braced(inner, out);
        }
        match var_name(s) {
            Ok((rest, name)) => {
                out.push_str(&self.lookup(name)?);
                Ok(rest)
            }
            Err(_) => {
                out.push('$');
                Ok(s)
            }
        }
    }

    fn lookup(&self, name: &str) -> Result<String, ExpandError> {
        match self.env.get_var(name) {
            Some(v) => Ok(v.to_string()),
            None if self.strict => Err(ExpandError::UnknownParameter(name.to_string())),
            None => Ok(String::new()),
        }
    }

    /// `${NAME}`, `${NAME-W}`, `${NAME:-W}`, `${NAME+W}`, `${NAME:+W}`, `${}`.
    fn braced<'s>(&mut self, s: &'s str, out: &mut String) -> Result<&'s str, ExpandError> {
        if self.depth >= MAX_NESTING {
            return Err(ExpandError::TooDeep);
        }
        self.depth += 1;
        let result = self.braced_inner(s, out);
        self.depth -= 1;
        result
    }

    fn braced_inner<'s>(
        &mut self,
        mut s: &'s str,
        out: &mut String,
    ) -> Result<&'s str, ExpandError> {
        // The name may itself contain references, expanded first.
        let mut name = String::new();
        loop {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            let (part, rest) = s.split_at_checked(end).unwrap_or((s, ""));
            name.push_str(part);
            s = rest;
            match s.strip_prefix('$') {
                Some(after) => s = self.reference(after, &mut name)?,
                None => break,
            }
        }
        let (op, rest) = if let Some(r) = s.strip_prefix('}') {
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(&self.lookup(&name)?);
            }
            return Ok(r);
        } else if let Some(r) = s.strip_prefix(":-") {
            (":-", r)
        } else if let Some(r) = s.strip_prefix(":+") {
            (":+", r)
        } else if let Some(r) = s.strip_prefix('-') {
            ("-", r)
        } else if let Some(r) = s.strip_prefix('+') {
            ("+", r)
        } else if s.is_empty() {
            return Err(ExpandError::MismatchedBraces);
        } else {
            return Err(ExpandError::ExpectedOperator);
        };
        let value = self.env.get_var(&name).map(str::to_string);
        let use_word = match op {
            "-" => value.is_none(),
            ":-" => value.as_deref().is_none_or(str::is_empty),
            "+" => value.is_some(),
            _ => value.as_deref().is_some_and(|v| !v.is_empty()),
        };
        let was_strict = self.strict;
        self.strict = was_strict && use_word;
        let word = self.until(rest, true);
        self.strict = was_strict;
        let (word, rest) = word?;
        let rest = rest
            .strip_prefix('}')
            .ok_or(ExpandError::MismatchedBraces)?;
        if use_word {
            out.push_str(&word);
        } else if op.ends_with('-') {
            out.push_str(value.as_deref().unwrap_or(""));
        }
        Ok(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<String> {
        ["FOO=foo", "EMPTY=", "N=OO", "TTY=tty1", "FOO=bar"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn table() {
        let e = env();
        let ok: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$FOO", "bar"),
            ("x${FOO}y", "xbary"),
            ("$TTY-log", "tty1-log"),
            ("${UNSET-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${EMPTY:-def}", "def"),
            ("${FOO:-def}", "bar"),
            ("${FOO+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET+alt}", ""),
            ("${UNSET:-${TTY}}", "tty1"),
            ("${F$N}", "bar"),
            ("${}", "$"),
            ("$1 $ $-x", "$1 $ $-x"),
            ("cost: 5$", "cost: 5$"),
            ("${FOO:-$UNSET}", "bar"),
        ];
        for (input, want) in ok {
            assert_eq!(expand(input, &e).as_deref(), Ok(*want), "input {input:?}");
        }
        let bad: &[(&str, ExpandError)] = &[
            ("$UNSET", ExpandError::UnknownParameter("UNSET".into())),
            ("${UNSET}", ExpandError::UnknownParameter("UNSET".into())),
            ("${FOO?x}", ExpandError::ExpectedOperator),
            ("${FOO", ExpandError::MismatchedBraces),
            ("${FOO:-abc", ExpandError::MismatchedBraces),
            (
                "${UNSET:-$ALSO}",
                ExpandError::UnknownParameter("ALSO".into()),
            ),
        ];
        for (input, want) in bad {
            assert_eq!(expand(input, &e).as_ref(), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let e: Vec<String> = Vec::new();
        let deep = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
        assert_eq!(expand(&deep, &e), Err(ExpandError::TooDeep));
        assert_eq!(expand(&"${".repeat(100_000), &e), Err(ExpandError::TooDeep));
        let ok = format!(
            "{}x{}",
            "${A:-".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert_eq!(expand(&ok, &e).as_deref(), Ok("x"));
    }

    #[test]
    fn messages() {
        let e: Vec<String> = Vec::new();
        let err = expand("$TTY", &e).unwrap_err();
        assert_eq!(err.to_string(), "Unknown parameter: TTY");
    }
}
