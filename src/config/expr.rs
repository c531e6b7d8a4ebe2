//! `start on` / `stop on` expressions: the tree and its parser (§6.5).
//!
//! `and` and `or` have equal precedence and associate to the left, so
//! `a or b and c` is `(a or b) and c`.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::error::{ParseError, ParseErrorKind};
use super::lexer::{ExprToken, ExprTokenKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    And,
    Or,
}

/// A node of an event expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventExpr {
    /// `EVENT [VALUE…] [KEY=VALUE…] [KEY!=VALUE…]`; `args` keeps each
    /// argument as written (after dequoting).
    Match { event: String, args: Vec<String> },
    Op {
        op: Operator,
        left: Box<EventExpr>,
        right: Box<EventExpr>,
    },
}

impl fmt::Display for EventExpr {
    /// The collapsed, fully bracketed form `show-config` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventExpr::Match { event, args } => {
                f.write_str(event)?;
                for a in args {
                    write!(f, " {a}")?;
                }
                Ok(())
            }
            EventExpr::Op { op, left, right } => {
                let word = match op {
                    Operator::And => "and",
                    Operator::Or => "or",
                };
                write!(f, "({left} {word} {right})")
            }
        }
    }
}

/// The deepest expression tree accepted (operators and parentheses both
/// count). Real job files stay far below it; the limit keeps every
/// recursive walk of the tree (display, drop, matching) within the stack.
pub const MAX_DEPTH: usize = 1000;

/// Build the tree from collected tokens. `end_line` is where collection
/// stopped, used for errors at the end of the expression.
pub fn parse_expression(tokens: &[ExprToken], end_line: usize) -> Result<EventExpr, ParseError> {
    let mut p = ExprParser {
        tokens,
        pos: 0,
        end_line,
    };
    p.expr(0).map(|(e, _)| e)
}

struct ExprParser<'t> {
    tokens: &'t [ExprToken],
    pos: usize,
    end_line: usize,
}

impl ExprParser<'_> {
    fn err(&self, kind: ParseErrorKind, tok: Option<&ExprToken>) -> ParseError {
        ParseError {
            kind,
            line: tok.map_or(self.end_line, |t| t.line),
        }
    }

    /// Returns the tree and its depth.
    fn expr(&mut self, depth: usize) -> Result<(EventExpr, usize), ParseError> {
        let (mut left, mut height) = self.term(depth)?;
        loop {
            let tok = self.tokens.get(self.pos);
            let op = match tok.map(|t| &t.kind) {
                None if depth > 0 => return Err(self.err(ParseErrorKind::MismatchedParens, None)),
                None => return Ok((left, height)),
                Some(ExprTokenKind::Close) if depth > 0 => return Ok((left, height)),
                Some(ExprTokenKind::Close) => {
                    return Err(self.err(ParseErrorKind::MismatchedParens, tok))
                }
                Some(ExprTokenKind::Open | ExprTokenKind::Word(_)) => {
                    return Err(self.err(ParseErrorKind::ExpectedOperator, tok))
                }
                Some(ExprTokenKind::And) => Operator::And,
                Some(ExprTokenKind::Or) => Operator::Or,
            };
            self.pos += 1;
            let (right, right_height) = self.term(depth)?;
            height = 1 + height.max(right_height);
            if height > MAX_DEPTH {
                return Err(self.err(ParseErrorKind::TooDeep, tok));
            }
            left = EventExpr::Op {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
    }

    fn term(&mut self, depth: usize) -> Result<(EventExpr, usize), ParseError> {
        let tok = self.tokens.get(self.pos);
        if depth > MAX_DEPTH {
            return Err(self.err(ParseErrorKind::TooDeep, tok));
        }
        match tok.map(|t| &t.kind) {
            None | Some(ExprTokenKind::And | ExprTokenKind::Or) => {
                Err(self.err(ParseErrorKind::ExpectedEvent, tok))
            }
            Some(ExprTokenKind::Close) if depth == 0 => {
                Err(self.err(ParseErrorKind::MismatchedParens, tok))
            }
            Some(ExprTokenKind::Close) => Err(self.err(ParseErrorKind::ExpectedEvent, tok)),
            Some(ExprTokenKind::Open) => {
                self.pos += 1;
                let (inner, height) = self.expr(depth + 1)?;
                // expr() at depth > 0 only returns when it sits on `)`.
                self.pos += 1;
                Ok((inner, height + 1))
            }
            Some(ExprTokenKind::Word(event)) => {
                let event = event.clone();
                self.pos += 1;
                let mut args = Vec::new();
                let mut named = false;
                while let Some(t) = self.tokens.get(self.pos) {
                    let ExprTokenKind::Word(arg) = &t.kind else {
                        break;
                    };
                    if arg.contains('=') {
                        named = true;
                    } else if named {
                        return Err(self.err(ParseErrorKind::ExpectedVariableName, Some(t)));
                    }
                    args.push(arg.clone());
                    self.pos += 1;
                }
                Ok((EventExpr::Match { event, args }, 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_job, ClassDefaults, ParseErrorKind};

    fn parse(text: &str) -> Result<String, ParseErrorKind> {
        match parse_job("j", "j.conf", text, &ClassDefaults::default()) {
            Ok(c) => Ok(c.start_on.map(|e| e.to_string()).unwrap_or_default()),
            Err(crate::config::ConfigError::Parse { kind, .. }) => Err(kind),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn deep_input_is_an_error_not_a_crash() {
        let n = 50_000;
        let parens = format!("start on {}a{}\n", "(".repeat(n), ")".repeat(n));
        assert_eq!(parse(&parens), Err(ParseErrorKind::TooDeep));
        let chain = format!("start on a{}\n", " or a".repeat(n));
        assert_eq!(parse(&chain), Err(ParseErrorKind::TooDeep));
        // Deep but within the limit: parses, prints and drops.
        let ok = format!("start on a{}\n", " and b".repeat(super::MAX_DEPTH - 1));
        let shown = parse(&ok).expect("within the limit");
        assert!(shown.starts_with(&"(".repeat(super::MAX_DEPTH - 1)));
    }

    #[test]
    fn long_files_parse() {
        // Line numbers are counted incrementally: a long file stays linear.
        let text = format!("{}bogus\n", "task\n".repeat(200_000));
        assert_eq!(
            parse_job("j", "j.conf", &text, &ClassDefaults::default())
                .unwrap_err()
                .to_string(),
            "j.conf:200001: Unknown stanza"
        );
    }
}
