//! `--help`, `help` and `--version` texts laid out as Upstart's tools lay
//! them out: descriptions start in column 30 and wrap to the screen.

use super::options::{Opt, DEFAULT_OPTIONS};
use super::wrap::{screen_width, screen_wrap, wrap};

/// What a `--help` text says besides the options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    /// Between the program name and the usage: `[OPTION]...` when `None`.
    pub stem: Option<&'a str>,
    /// The arguments, after the stem.
    pub usage: Option<&'a str>,
    /// One line under the usage line.
    pub synopsis: Option<&'a str>,
    /// Paragraphs after the options.
    pub help: Option<&'a str>,
    /// The last line.
    pub footer: Option<&'a str>,
}

/// The help text of `prog` with `opts` (the default options follow them).
pub fn page(prog: &str, page: &Page, opts: &[Opt]) -> String {
    let mut out = format!("Usage: {prog} {}", page.stem.unwrap_or("[OPTION]..."));
    if let Some(u) = page.usage {
        out.push(' ');
        out.push_str(u);
    }
    out.push('\n');
    if let Some(s) = page.synopsis {
        out.push_str(&screen_wrap(s));
        out.push('\n');
    }
    out.push('\n');
    out.push_str("Options:\n");
    let width = screen_width().max(50) - 31;
    for opt in opts.iter().chain(DEFAULT_OPTIONS) {
        let Some(help) = opt.help else { continue };
        let mut line = String::from("  ");
        match opt.short {
            Some(c) => {
                line.push('-');
                line.push(c);
                if !opt.long.is_empty() {
                    line.push_str(", ");
                } else if let Some(a) = opt.arg {
                    line.push(' ');
                    line.push_str(a);
                }
            }
            None => line.push_str("    "),
        }
        if !opt.long.is_empty() {
            line.push_str("--");
            line.push_str(opt.long);
            if let Some(a) = opt.arg {
                line.push('=');
                line.push_str(a);
            }
        }
        columns(&mut out, line, &wrap(help, width, 0, 2));
    }
    out.push('\n');
    if let Some(h) = page.help {
        out.push_str(&screen_wrap(h));
        out.push('\n');
        if page.footer.is_some() {
            out.push('\n');
        }
    }
    if let Some(f) = page.footer {
        out.push_str(f);
        out.push('\n');
    }
    out
}

/// One command for [`commands`]: its name, one-line synopsis and group.
pub struct Entry<'a> {
    pub name: &'a str,
    pub synopsis: &'a str,
    pub group: Option<&'a str>,
}

/// `PROG help`: the commands under their groups (in order of first
/// appearance, ungrouped ones last as "Other commands").
pub fn commands(prog: &str, entries: &[Entry]) -> String {
    let mut groups: Vec<Option<&str>> = Vec::new();
    for e in entries {
        if e.group.is_some() && !groups.contains(&e.group) {
            groups.push(e.group);
        }
    }
    let any_groups = !groups.is_empty();
    if entries.iter().any(|e| e.group.is_none()) {
        groups.push(None);
    }
    let width = screen_width().max(50) - 30;
    let mut out = String::new();
    for group in groups {
        match group {
            Some(title) => out.push_str(&format!("{title} commands:\n")),
            None if any_groups => out.push_str("Other commands:\n"),
            None => out.push_str("Commands:\n"),
        }
        for e in entries.iter().filter(|e| e.group == group) {
            columns(
                &mut out,
                format!("  {}", e.name),
                &wrap(e.synopsis, width, 0, 2),
            );
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "For more information on a command, try `{prog} COMMAND --help'.\n"
    ));
    out
}

/// `left` then the lines of `text` from column 30 (on a line of their own
/// when `left` reaches past column 28).
fn columns(out: &mut String, left: String, text: &str) {
    let mut len = left.len();
    out.push_str(&left);
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return;
    }
    for piece in body.split('\n') {
        if len > 28 {
            out.push('\n');
            len = 0;
        }
        out.push_str(&" ".repeat(30usize.saturating_sub(len)));
        out.push_str(piece);
        out.push('\n');
        len = 0;
    }
}

/// `--version`: `PROG (outset VERSION)`, a blank line and the warranty
/// notice.
pub fn version(prog: &str) -> String {
    let package = format!("outset {}", env!("CARGO_PKG_VERSION"));
    let first = if prog == "outset" {
        package
    } else {
        format!("{prog} ({package})")
    };
    format!(
        "{first}\n\n{}\n",
        screen_wrap(
            "This is free software; see the source for copying conditions.  There is NO \
             warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE."
        )
    )
}
