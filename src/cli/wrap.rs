//! Line wrapping the way Upstart's tools wrap their help texts.

/// The width to wrap for: `$COLUMNS` when it is a plain number, else the
/// terminal's width when standard output is one, else 80.
pub fn screen_width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|c| *c > 0);
    if let Some(c) = from_env {
        return c;
    }
    // SAFETY: isatty and TIOCGWINSZ only read descriptor state into a
    // local struct.
    unsafe {
        if libc::isatty(libc::STDOUT_FILENO) == 1 {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
                return usize::from(ws.ws_col);
            }
        }
    }
    80
}

/// Wrap `text` to lines of at most `len` columns: the first line indented
/// by `first_indent` spaces, each further one by `indent`. A line breaks at
/// its last blank (never at a blank in column 0), or inside a word that
/// fills it alone; existing newlines are kept and indented too.
pub fn wrap(text: &str, len: usize, first_indent: usize, indent: usize) -> String {
    let mut txt: Vec<u8> = vec![b' '; first_indent];
    txt.extend_from_slice(text.as_bytes());
    let (mut col, mut last_blank, mut i) = (0usize, 0usize, 0usize);
    while let Some(&c) = txt.get(i) {
        let mut before_word = false;
        if matches!(c, b' ' | b'\t' | b'\r') {
            if let Some(b) = txt.get_mut(i) {
                *b = b' ';
            }
            last_blank = i;
            col += 1;
            if col <= len {
                i += 1;
                continue;
            }
        } else if c != b'\n' {
            col += 1;
            if col <= len {
                i += 1;
                continue;
            }
            if last_blank != 0 {
                i = last_blank;
            } else {
                before_word = true;
            }
        }
        let pad = std::iter::repeat_n(b' ', indent);
        if before_word {
            txt.splice(i..i, std::iter::once(b'\n').chain(pad));
        } else {
            if let Some(b) = txt.get_mut(i) {
                *b = b'\n';
            }
            txt.splice(i + 1..i + 1, pad);
        }
        i += indent + 1;
        col = indent;
        last_blank = 0;
    }
    String::from_utf8_lossy(&txt).into_owned()
}

/// Wrap to the screen, one column short of its width.
pub fn screen_wrap(text: &str) -> String {
    wrap(text, screen_width().saturating_sub(1).max(1), 0, 0)
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn breaks_at_the_last_blank_and_indents() {
        assert_eq!(wrap("aa bb cc", 5, 0, 2), "aa bb\n  cc");
        assert_eq!(wrap("abcdefgh", 3, 0, 0), "abc\ndef\ngh");
        assert_eq!(wrap("a\nb", 10, 0, 2), "a\n  b");
        assert_eq!(wrap("short", 10, 0, 0), "short");
    }
}
