//! Errors of the job-file language, with Upstart's exact message texts.

use thiserror::Error;

/// What went wrong while parsing; `Display` is Upstart's message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("Expected token")]
    ExpectedToken,
    #[error("Unexpected token")]
    UnexpectedToken,
    #[error("Trailing slash in file")]
    TrailingSlash,
    #[error("Unterminated quoted string")]
    UnterminatedQuote,
    #[error("Unterminated block")]
    UnterminatedBlock,
    #[error("Unknown stanza")]
    UnknownStanza,
    #[error("Illegal interval, expected number of seconds")]
    IllegalInterval,
    #[error("Illegal exit status, expected integer")]
    IllegalExit,
    #[error("Illegal signal status, expected integer")]
    IllegalSignal,
    #[error("Illegal file creation mask, expected octal integer")]
    IllegalUmask,
    #[error("Illegal nice value, expected -20 to 19")]
    IllegalNice,
    #[error("Illegal oom adjustment, expected -16 to 15 or 'never'")]
    IllegalOomAdj,
    #[error("Illegal oom score adjustment, expected -999 to 1000 or 'never'")]
    IllegalOomScore,
    #[error("Illegal limit, expected 'unlimited' or integer")]
    IllegalLimit,
    #[error("Expected event")]
    ExpectedEvent,
    #[error("Expected operator")]
    ExpectedOperator,
    #[error("Expected variable name before value")]
    ExpectedVariableName,
    #[error("Mismatched parentheses")]
    MismatchedParens,
    /// outset's own limit, so that no job file can exhaust PID 1's stack.
    #[error("Expression nested too deeply")]
    TooDeep,
}

/// A parse error located in the text being parsed (1-based line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub line: usize,
}

/// An error attached to a configuration file, formatted as init logs it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// `PATH:LINE: MESSAGE`
    #[error("{path}:{line}: {kind}")]
    Parse {
        path: String,
        line: usize,
        kind: ParseErrorKind,
    },
    /// `PATH: Error while loading configuration file: REASON` — used for
    /// failures Upstart does not report with a line (bad signal values,
    /// unreadable files).
    #[error("{path}: Error while loading configuration file: {reason}")]
    Load { path: String, reason: String },
}

impl ConfigError {
    /// Attach a path to a located parse error, choosing Upstart's format:
    /// an illegal signal is not a "parse error" in the reference, so it is
    /// reported without a line.
    pub fn from_parse(path: &str, err: ParseError) -> Self {
        match err.kind {
            ParseErrorKind::IllegalSignal => ConfigError::Load {
                path: path.to_string(),
                reason: err.kind.to_string(),
            },
            kind => ConfigError::Parse {
                path: path.to_string(),
                line: err.line,
                kind,
            },
        }
    }

    pub fn path(&self) -> &str {
        match self {
            ConfigError::Parse { path, .. } | ConfigError::Load { path, .. } => path,
        }
    }
}
