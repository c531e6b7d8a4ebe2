//! The keys of the engine's tables: class names and instance names.
//!
//! Looking a class up by name, and then its instance, is the engine's
//! most frequent operation (each step of an instance's life does), and
//! with `str`'s own ordering every comparison on the way down a table is
//! a call to `memcmp` for a few bytes. These keys order exactly as `str`
//! does, so a table keyed by them iterates in the same order, but compare
//! in line ([`crate::short_str::cmp`]).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A class name, shared with its class (`JobClass::name`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClassName(Arc<str>);

/// A name to look up with (`NameKey::new(name)`), compared as the keys are.
#[repr(transparent)]
#[derive(Debug, Eq)]
pub struct NameKey(str);

impl NameKey {
    pub fn new(name: &str) -> &NameKey {
        // SAFETY: `NameKey` is a transparent wrapper of `str`, so the
        // pointer cast keeps the layout and the lifetime of `name`.
        unsafe { &*(name as *const str as *const NameKey) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Equal exactly when the strings are, compared in line.
impl PartialEq for NameKey {
    fn eq(&self, other: &Self) -> bool {
        crate::short_str::eq(&self.0, &other.0)
    }
}

/// Hashed as the string (equal keys are equal strings).
impl std::hash::Hash for NameKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl Ord for NameKey {
    fn cmp(&self, other: &Self) -> Ordering {
        crate::short_str::cmp(&self.0, &other.0)
    }
}

impl PartialOrd for NameKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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

/// An instance name (`""` for a job's single instance), as its class's
/// instance table keys it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct InstName(String);

impl Deref for InstName {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl From<String> for InstName {
    fn from(name: String) -> Self {
        InstName(name)
    }
}

impl From<&str> for InstName {
    fn from(name: &str) -> Self {
        InstName(name.to_string())
    }
}

/// What both kinds of name share: they order, and find entries in a
/// table, as their text does, compared in line through [`NameKey`]; a
/// table keyed by them is searched by `&str` too (the orders agree, only
/// through `str`'s comparison); and they show as their text.
macro_rules! keyed_by_text {
    ($name:ident) => {
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                NameKey::new(&self.0).cmp(NameKey::new(&other.0))
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Borrow<NameKey> for $name {
            fn borrow(&self) -> &NameKey {
                NameKey::new(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

keyed_by_text!(ClassName);
keyed_by_text!(InstName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_order_as_strings_do() {
        let names = ["", "a", "ab", "b", "t1", "t10", "t2", "\u{e9}t\u{e9}", "z"];
        for a in names {
            for b in names {
                assert_eq!(
                    NameKey::new(a).cmp(NameKey::new(b)),
                    a.cmp(b),
                    "{a:?} {b:?}"
                );
                let (x, y) = (ClassName::from(Arc::from(a)), ClassName::from(Arc::from(b)));
                assert_eq!(x.cmp(&y), a.cmp(b));
                let (x, y) = (InstName::from(a), InstName::from(b));
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
        assert_eq!(t.get(NameKey::new("t10")), Some(&3));
        assert_eq!(t.get("db"), Some(&2));
        assert_eq!(t.get(NameKey::new("nope")), None);
        let order: Vec<String> = t.keys().map(ToString::to_string).collect();
        assert_eq!(order, ["cron", "db", "t1", "t10", "web"]);
    }
}
