//! Shell glob matching with `fnmatch(pattern, text, 0)` semantics: `*`,
//! `?`, bracket expressions (`[abc]`, `[a-z]`, `[!x]`, `[^x]`) and backslash
//! escapes; `/` and leading dots are ordinary characters.

/// Does `text` match `pattern`?
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_from(&p, &t)
}

fn match_from(p: &[char], t: &[char]) -> bool {
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = t.get(ti) {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(&c) => {
                if let Some((len, ok)) = single(p.get(pi..).unwrap_or_default(), tc, c) {
                    if ok {
                        pi += len;
                        ti += 1;
                        continue;
                    }
                }
            }
            None => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

/// Match one pattern element at the start of `p` against `ch`: returns the
/// element's length and whether it matched.
fn single(p: &[char], ch: char, first: char) -> Option<(usize, bool)> {
    match first {
        '?' => Some((1, true)),
        '\\' => match p.get(1) {
            Some(&lit) => Some((2, lit == ch)),
            None => Some((1, ch == '\\')),
        },
        '[' => Some(bracket(p, ch).unwrap_or((1, ch == '['))),
        lit => Some((1, lit == ch)),
    }
}

/// A bracket expression at the start of `p`; `None` if it is not closed
/// (then `[` is literal).
fn bracket(p: &[char], ch: char) -> Option<(usize, bool)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((i + 1, matched != negate));
        }
        first = false;
        let (lo, next) = if c == '\\' {
            (*p.get(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        if p.get(next) == Some(&'-') && p.get(next + 1).is_some_and(|&e| e != ']') {
            let (hi, after) = match p.get(next + 1) {
                Some('\\') => (*p.get(next + 2)?, next + 3),
                Some(&h) => (h, next + 2),
                None => return None,
            };
            if lo <= ch && ch <= hi {
                matched = true;
            }
            i = after;
        } else {
            if lo == ch {
                matched = true;
            }
            i = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn table() {
        let rows: &[(&str, &str, bool)] = &[
            ("foo", "foo", true),
            ("foo", "fo", false),
            ("*", "", true),
            ("*", "anything/with/slash", true),
            ("f*o", "fo", true),
            ("f*o", "foooo", true),
            ("f*o", "foob", false),
            ("?", "a", true),
            ("?", "", false),
            ("[2345]", "2", true),
            ("[2345]", "6", false),
            ("[!2345]", "6", true),
            ("[!2345]", "2", false),
            ("[^a]", "b", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("[", "[", true),
            ("a[b", "a[b", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("eth*", "eth0", true),
            ("*.conf", ".x.conf", true),
            ("[016]", "0", true),
            ("[!016]", "2", true),
            ("*a*b", "xaxxb", true),
            ("*a*b", "xaxxc", false),
        ];
        for (p, t, want) in rows {
            assert_eq!(fnmatch(p, t), *want, "fnmatch({p:?}, {t:?})");
        }
    }
}
