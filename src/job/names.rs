//! The key of the engine's class table.
//!
//! Looking a class up by name is the engine's most frequent operation
//! (each step of an instance's life does), and with `str`'s own ordering
//! every comparison on the way down the table is a call to `memcmp` for a
//! few bytes. These keys order exactly as `str` does, so a table keyed by
//! them iterates in the same order, but compare in line
//! ([`crate::short_str::cmp`]).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A class name, shared with its class (`JobClass::name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassName(Arc<str>);

/// A name to look up with (`&ClassKey::new(name)`), compared as the keys are.
#[repr(transparent)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClassKey(str);

impl ClassKey {
    pub fn new(name: &str) -> &ClassKey {
        // SAFETY: `ClassKey` is a transparent wrapper of `str`, so the
        // pointer cast keeps the layout and the lifetime of `name`.
        unsafe { &*(name as *const str as *const ClassKey) }
    }
}

impl Ord for ClassKey {
    fn cmp(&self, other: &Self) -> Ordering {
        crate::short_str::cmp(&self.0, &other.0)
    }
}

impl PartialOrd for ClassKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ClassName {
    fn cmp(&self, other: &Self) -> Ordering {
        ClassKey::new(&self.0).cmp(ClassKey::new(&other.0))
    }
}

impl PartialOrd for ClassName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<ClassKey> for ClassName {
    fn borrow(&self) -> &ClassKey {
        ClassKey::new(&self.0)
    }
}

/// Lookups by `&str` find the same entries (the orders agree), only
/// through `str`'s comparison.
impl Borrow<str> for ClassName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Deref for ClassName {
    type Target = Arc<str>;

    fn deref(&self) -> &Arc<str> {
        &self.0
    }
}

impl From<Arc<str>> for ClassName {
    fn from(name: Arc<str>) -> Self {
        ClassName(name)
    }
}

impl fmt::Display for ClassName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_as_strings_do() {
        let names = ["", "a", "ab", "b", "t1", "t10", "t2", "\u{e9}t\u{e9}", "z"];
        for a in names {
            for b in names {
                assert_eq!(
                    ClassKey::new(a).cmp(ClassKey::new(b)),
                    a.cmp(b),
                    "{a:?} {b:?}"
                );
                let (x, y) = (ClassName::from(Arc::from(a)), ClassName::from(Arc::from(b)));
                assert_eq!(x.cmp(&y), a.cmp(b));
            }
        }
    }

    #[test]
    fn a_table_finds_by_either_key() {
        let mut t = std::collections::BTreeMap::new();
        for n in ["web", "db", "cron", "t1", "t10"] {
            t.insert(ClassName::from(Arc::from(n)), n.len());
        }
        assert_eq!(t.get(ClassKey::new("t10")), Some(&3));
        assert_eq!(t.get("db"), Some(&2));
        assert_eq!(t.get(ClassKey::new("nope")), None);
        let order: Vec<String> = t.keys().map(ToString::to_string).collect();
        assert_eq!(order, ["cron", "db", "t1", "t10", "web"]);
    }
}
