//! Strict number syntax for stanza arguments.

use nom::character::complete::{digit1, one_of};
use nom::combinator::{all_consuming, opt, recognize};
use nom::{IResult, Parser};

/// `[+-]DIGITS` and nothing else, as text.
fn signed_digits(s: &str) -> IResult<&str, &str> {
    all_consuming(recognize((opt(one_of("+-")), digit1))).parse(s)
}

/// A decimal integer in `min..=max`, with no trailing garbage and no
/// overflow.
pub fn decimal_in(s: &str, min: i64, max: i64) -> Option<i64> {
    let (_, text) = signed_digits(s).ok()?;
    let v: i64 = text.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// An octal number (digits 0-7 only).
pub fn octal(s: &str) -> Option<u32> {
    let ok: IResult<&str, &str> =
        all_consuming(recognize(nom::multi::many1(one_of("01234567")))).parse(s);
    let (_, text) = ok.ok()?;
    u32::from_str_radix(text, 8).ok()
}

/// A `limit` value: `unlimited`, or digits read like C's `strtoul` (a
/// leading `-` is accepted and wraps; a value that overflows is rejected).
pub fn rlimit_value(s: &str) -> Option<u64> {
    if s == "unlimited" {
        return Some(super::class::RLIM_INFINITY);
    }
    let (_, text) = signed_digits(s).ok()?;
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let v = digits.parse::<u64>().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(decimal_in("10", 0, 100), Some(10));
        assert_eq!(decimal_in("-5", -20, 19), Some(-5));
        assert_eq!(decimal_in("+5", -20, 19), Some(5));
        assert_eq!(decimal_in("20", -20, 19), None);
        assert_eq!(decimal_in("5s", 0, 100), None);
        assert_eq!(decimal_in("", 0, 100), None);
        assert_eq!(decimal_in("99999999999999999999999", 0, i64::MAX), None);
    }

    #[test]
    fn octals() {
        assert_eq!(octal("022"), Some(0o22));
        assert_eq!(octal("0777"), Some(0o777));
        assert_eq!(octal("8"), None);
        assert_eq!(octal("-1"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(rlimit_value("unlimited"), Some(u64::MAX));
        assert_eq!(rlimit_value("1024"), Some(1024));
        assert_eq!(rlimit_value("-1"), Some(u64::MAX));
        assert_eq!(rlimit_value("1k"), None);
        assert_eq!(rlimit_value("99999999999999999999999"), None);
        assert_eq!(rlimit_value("18446744073709551615"), Some(u64::MAX));
    }
}
