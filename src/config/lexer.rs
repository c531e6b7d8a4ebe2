//! The job-file tokenizer (job-config.md §6).
//!
//! A cursor over the whole file. Positions are byte offsets; every delimiter
//! is ASCII, so slicing at them is always on a UTF-8 boundary. Errors carry
//! the line the cursor stopped on, which is what Upstart reports.

use nom::bytes::complete::{tag, take_while, take_while1};
use nom::combinator::{eof, opt, rest};
use nom::{IResult, Parser};

use super::error::{ParseError, ParseErrorKind};

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Does `line` (without its LF) close a script block? Optional whitespace,
/// `end`, at least one whitespace, `script`, optional whitespace, optional
/// comment.
fn is_end_script(line: &str) -> bool {
    fn ws(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\r')
    }
    let parsed: IResult<&str, _> = (
        take_while(ws),
        tag("end"),
        take_while1(ws),
        tag("script"),
        take_while(ws),
        opt((tag("#"), rest)),
        eof,
    )
        .parse(line);
    parsed.is_ok()
}

/// One token read by [`Lexer::token`], with whether any quoting or escaping
/// took part (quoted `"and"` is an event name, not an operator).
pub struct Token {
    pub text: String,
    pub plain: bool,
}

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Line numbers are counted incrementally from the last position asked
    /// about (positions only move forward), keeping parsing linear.
    line_cache: std::cell::Cell<(usize, usize)>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line_cache: std::cell::Cell::new((0, 1)),
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.bytes().get(self.pos + off).copied()
    }

    pub fn at_eof(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// 1-based line of the cursor.
    pub fn line(&self) -> usize {
        self.line_of(self.pos)
    }

    fn line_of(&self, pos: usize) -> usize {
        let end = pos.min(self.src.len());
        let (mut from, mut line) = self.line_cache.get();
        if end < from {
            (from, line) = (0, 1);
        }
        line += self
            .bytes()
            .get(from..end)
            .unwrap_or_default()
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line_cache.set((end, line));
        line
    }

    pub fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            line: self.line(),
        }
    }

    fn error_at_eof(&self, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            line: self.line_of(self.src.len()),
        }
    }

    /// The next char at the cursor, whole (for copying non-ASCII text).
    fn char_here(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    /// Skip spaces, tabs, CRs and backslash-LF continuations.
    pub fn skip_ws(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b) if is_ws(b) => self.pos += 1,
                Some(b'\\') => match self.peek_at(1) {
                    Some(b'\n') => self.pos += 2,
                    None => return Err(self.error(ParseErrorKind::TrailingSlash)),
                    Some(_) => return Ok(()),
                },
                _ => return Ok(()),
            }
        }
    }

    /// Skip a comment up to (not including) its LF.
    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            while let Some(b) = self.peek() {
                if b == b'\n' {
                    break;
                }
                self.pos += 1;
            }
        }
    }

    /// Skip blank lines, whitespace and comments before a stanza. Returns
    /// false at end of file.
    pub fn next_stanza(&mut self) -> Result<bool, ParseError> {
        loop {
            self.skip_ws()?;
            self.skip_comment();
            match self.peek() {
                None => return Ok(false),
                Some(b'\n') => self.pos += 1,
                Some(_) => return Ok(true),
            }
        }
    }

    /// Is there another token on this line?
    pub fn has_token(&mut self) -> Result<bool, ParseError> {
        self.skip_ws()?;
        Ok(!matches!(self.peek(), None | Some(b'\n') | Some(b'#')))
    }

    /// After a stanza: only whitespace or a comment may remain on the line.
    pub fn end_of_stanza(&mut self) -> Result<(), ParseError> {
        self.skip_ws()?;
        self.skip_comment();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(ParseErrorKind::UnexpectedToken)),
        }
    }

    /// Whitespace before a continued line collapses, with the newline and
    /// the following indentation, into one space.
    fn continue_line(&mut self, out: &mut String, skip: usize) {
        let kept = out.trim_end_matches([' ', '\t', '\r']).len();
        out.truncate(kept);
        out.push(' ');
        self.pos += skip;
        while matches!(self.peek(), Some(b) if is_ws(b)) {
            self.pos += 1;
        }
    }

    fn push_char(&mut self, out: &mut String) {
        if let Some(c) = self.char_here() {
            out.push(c);
            self.pos += c.len_utf8();
        } else {
            self.pos += 1;
        }
    }

    /// Read one argument token (§6.2). `extra` adds delimiters (the event
    /// expression reader adds parentheses); `dequote` removes quotes and
    /// resolves the backslash escapes that drop their backslash.
    pub fn token(&mut self, extra: &[u8], dequote: bool) -> Result<Token, ParseError> {
        self.skip_ws()?;
        let start = self.pos;
        let mut out = String::new();
        let mut quote: Option<u8> = None;
        let mut plain = true;
        loop {
            let Some(c) = self.peek() else {
                if quote.is_some() {
                    return Err(self.error_at_eof(ParseErrorKind::UnterminatedQuote));
                }
                break;
            };
            if quote.is_none() && (is_ws(c) || c == b'\n' || c == b'#' || extra.contains(&c)) {
                break;
            }
            match c {
                b'\\' => {
                    plain = false;
                    match self.peek_at(1) {
                        None => return Err(self.error(ParseErrorKind::TrailingSlash)),
                        Some(b'\n') => self.continue_line(&mut out, 2),
                        Some(n @ (b'\\' | b' ' | b'\t' | b'\r')) if dequote => {
                            out.push(n as char);
                            self.pos += 2;
                        }
                        Some(_) => {
                            out.push('\\');
                            self.pos += 1;
                            self.push_char(&mut out);
                        }
                    }
                }
                b'\n' => self.continue_line(&mut out, 1), // only reached inside quotes
                b'"' | b'\'' if quote.is_none() => {
                    plain = false;
                    quote = Some(c);
                    if !dequote {
                        out.push(c as char);
                    }
                    self.pos += 1;
                }
                q if Some(q) == quote => {
                    quote = None;
                    if !dequote {
                        out.push(q as char);
                    }
                    self.pos += 1;
                }
                _ => self.push_char(&mut out),
            }
        }
        if self.pos == start {
            return Err(self.error(ParseErrorKind::ExpectedToken));
        }
        Ok(Token { text: out, plain })
    }

    /// The next argument, dequoted.
    pub fn arg(&mut self) -> Result<String, ParseError> {
        Ok(self.token(&[], true)?.text)
    }

    /// A stanza's first word: matched literally, never dequoted.
    pub fn word(&mut self) -> Result<String, ParseError> {
        Ok(self.token(&[], false)?.text)
    }

    /// The raw remainder of the line as a command (§6.3).
    pub fn command(&mut self) -> Result<String, ParseError> {
        self.skip_ws()?;
        let mut out = String::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(c) = self.peek() else {
                if quote.is_some() {
                    return Err(self.error_at_eof(ParseErrorKind::UnterminatedQuote));
                }
                break;
            };
            match c {
                b'\n' if quote.is_some() => self.continue_line(&mut out, 1),
                b'\n' | b'#' if quote.is_none() => break,
                b'\\' => match self.peek_at(1) {
                    None => return Err(self.error(ParseErrorKind::TrailingSlash)),
                    Some(b'\n') => self.continue_line(&mut out, 2),
                    Some(_) => {
                        out.push('\\');
                        self.pos += 1;
                        self.push_char(&mut out);
                    }
                },
                b'"' | b'\'' if quote.is_none() => {
                    quote = Some(c);
                    out.push(c as char);
                    self.pos += 1;
                }
                q if Some(q) == quote => {
                    quote = None;
                    out.push(q as char);
                    self.pos += 1;
                }
                _ => self.push_char(&mut out),
            }
        }
        let kept = out.trim_end_matches([' ', '\t', '\r']).len();
        out.truncate(kept);
        if out.is_empty() {
            return Err(self.error(ParseErrorKind::ExpectedToken));
        }
        Ok(out)
    }

    /// A `script … end script` block (§6.4); the cursor is just after the
    /// word `script`. Consumes the terminating line.
    pub fn script_block(&mut self) -> Result<String, ParseError> {
        self.end_of_stanza()?;
        let mut lines: Vec<&'a str> = Vec::new();
        loop {
            if self.at_eof() {
                return Err(self.error_at_eof(ParseErrorKind::UnterminatedBlock));
            }
            let rest = self.src.get(self.pos..).unwrap_or_default();
            let (line, len) = match rest.split_once('\n') {
                Some((line, _)) => (line, line.len() + 1),
                None => (rest, rest.len()),
            };
            self.pos += len;
            if is_end_script(line) {
                break;
            }
            lines.push(rest.get(..len).unwrap_or(rest));
        }
        Ok(strip_indent(&lines))
    }

    /// Collect the tokens of a `start on`/`stop on` expression (§6.5).
    /// Inside parentheses the expression continues over line ends; a
    /// comment may end a line after a token, but a line that is blank or
    /// only a comment is an error, as in the reference.
    pub fn expression_tokens(&mut self) -> Result<(Vec<ExprToken>, usize), ParseError> {
        let mut tokens = Vec::new();
        let mut depth = 0usize;
        loop {
            self.skip_ws()?;
            match self.peek() {
                None => {
                    if tokens.is_empty() {
                        return Err(self.error(ParseErrorKind::ExpectedToken));
                    }
                    break;
                }
                Some(b'\n' | b'#') => {
                    if tokens.is_empty() || depth > 0 {
                        return Err(self.error(ParseErrorKind::ExpectedToken));
                    }
                    break;
                }
                _ => {}
            }
            let line = self.line();
            let kind = match self.peek() {
                Some(b'(') => {
                    self.pos += 1;
                    depth += 1;
                    ExprTokenKind::Open
                }
                Some(b')') => {
                    self.pos += 1;
                    depth = depth.saturating_sub(1);
                    ExprTokenKind::Close
                }
                _ => {
                    let tok = self.token(b"()", true)?;
                    match tok.text.as_str() {
                        "and" if tok.plain => ExprTokenKind::And,
                        "or" if tok.plain => ExprTokenKind::Or,
                        _ => ExprTokenKind::Word(tok.text),
                    }
                }
            };
            tokens.push(ExprToken { kind, line });
            self.skip_ws()?;
            match self.peek() {
                Some(b'\n' | b'#') if depth > 0 => {
                    self.skip_comment();
                    if self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                }
                None | Some(b'\n' | b'#') if depth == 0 => break,
                _ => {}
            }
        }
        Ok((tokens, self.line()))
    }
}

/// Remove the indentation common to the first body line and every other
/// line; a line that shares none of it (an empty line, say) keeps them all.
fn strip_indent(lines: &[&str]) -> String {
    let Some(first) = lines.first() else {
        return String::new();
    };
    let prefix: &[u8] = {
        let b = first.as_bytes();
        let n = b.iter().take_while(|&&c| is_ws(c)).count();
        b.get(..n).unwrap_or_default()
    };
    let width = lines
        .iter()
        .map(|l| {
            l.as_bytes()
                .iter()
                .zip(prefix)
                .take_while(|(a, b)| a == b)
                .count()
        })
        .min()
        .unwrap_or(0);
    lines.iter().map(|l| l.get(width..).unwrap_or(l)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprTokenKind {
    Word(String),
    And,
    Or,
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprToken {
    pub kind: ExprTokenKind,
    pub line: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(s: &str) -> Result<String, ParseErrorKind> {
        Lexer::new(s).arg().map_err(|e| e.kind)
    }

    fn command(s: &str) -> Result<String, ParseErrorKind> {
        Lexer::new(s).command().map_err(|e| e.kind)
    }

    #[test]
    fn argument_tokens() {
        let cases: &[(&str, Result<&str, ParseErrorKind>)] = &[
            ("foo bar", Ok("foo")),
            ("  foo# c", Ok("foo")),
            ("foo\"bar baz\"qux x", Ok("foobar bazqux")),
            ("'a # b'", Ok("a # b")),
            ("a\\ b", Ok("a b")),
            ("a\\\\b", Ok("a\\b")),
            ("a\\nb", Ok("a\\nb")),
            ("a\\#b", Ok("a\\#b")),
            ("\\\"A and", Ok("\\\"A")),
            ("foo\\\n   bar", Ok("foo bar")),
            ("\"a  \n   b\"", Ok("a b")),
            ("\"\"", Ok("")),
            ("\"abc", Err(ParseErrorKind::UnterminatedQuote)),
            ("abc\\", Err(ParseErrorKind::TrailingSlash)),
            ("", Err(ParseErrorKind::ExpectedToken)),
            ("   # comment", Err(ParseErrorKind::ExpectedToken)),
            ("\n", Err(ParseErrorKind::ExpectedToken)),
        ];
        for (input, want) in cases {
            let want = want.map(str::to_string);
            assert_eq!(arg(input), want, "input {input:?}");
        }
    }

    #[test]
    fn raw_commands() {
        let cases: &[(&str, Result<&str, ParseErrorKind>)] = &[
            ("/bin/echo \"a   b\" # c", Ok("/bin/echo \"a   b\"")),
            ("foo \\\n   bar", Ok("foo bar")),
            ("a 'b # c' \\# d\n", Ok("a 'b # c' \\# d")),
            ("echo \"x\n   y\"", Ok("echo \"x y\"")),
            ("sh -c \\\"a\\\"", Ok("sh -c \\\"a\\\"")),
            ("   \r\n", Err(ParseErrorKind::ExpectedToken)),
            ("# nothing", Err(ParseErrorKind::ExpectedToken)),
            ("echo 'oops", Err(ParseErrorKind::UnterminatedQuote)),
        ];
        for (input, want) in cases {
            let want = want.map(str::to_string);
            assert_eq!(command(input), want, "input {input:?}");
        }
    }

    #[test]
    fn end_script_lines() {
        for yes in [
            "end script",
            "\t\tend script # done",
            "end  script",
            "end script  \r",
        ] {
            assert!(is_end_script(yes), "{yes:?}");
        }
        for no in [
            "endscript",
            "end scripts",
            "end script foo",
            "# end script",
            "end",
        ] {
            assert!(!is_end_script(no), "{no:?}");
        }
    }

    #[test]
    fn indentation() {
        assert_eq!(
            strip_indent(&["    a\n", "      b\n", "    c\n"]),
            "a\n  b\nc\n"
        );
        assert_eq!(
            strip_indent(&["    a\n", "\n", "    c\n"]),
            "    a\n\n    c\n"
        );
        assert_eq!(strip_indent(&["\ta\n", "  b\n"]), "\ta\n  b\n");
        assert_eq!(strip_indent(&[]), "");
    }
}
