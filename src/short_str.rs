//! Ordering short strings without a call to `memcmp`.
//!
//! `str`'s own comparison calls `memcmp` for every pair, which for the
//! few bytes of a job name or a payload key costs more than the
//! comparison itself. Tables searched by such keys on hot paths (the
//! engine's classes, the objects of a re-exec payload) compare with this
//! instead; the order is exactly `str`'s, so they iterate as before.

use std::cmp::Ordering;

/// `a.cmp(b)`, compared byte by byte in line.
pub fn cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// `a == b`, compared byte by byte in line.
pub fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    #[test]
    fn orders_as_str_does() {
        let words = [
            "", "a", "aa", "ab", "b", "ba", "job", "jobs", "t1", "t10", "t2", "\u{e9}", "z",
        ];
        for a in words {
            for b in words {
                assert_eq!(super::cmp(a, b), a.cmp(b), "{a:?} {b:?}");
                assert_eq!(super::eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
