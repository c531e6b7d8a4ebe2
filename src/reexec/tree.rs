//! The JSON tree a payload is read into.
//!
//! A payload is mostly many small objects (each class has its sixteen
//! limits, six processes, six logs, …), and `serde_json::Value` spends most
//! of a re-exec's reading on them: every key a `String` of its own, every
//! object a B-tree. Here a key is stored inline (the layout's keys are all
//! short), an object is one vector sorted by key, and a number stays the
//! integer it was. The importer reads it through the same few accessors
//! `serde_json::Value` has.

use compact_str::CompactString;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

// The order of an object's keys: `str`'s, compared in line (keys are
// short and differ early).
use crate::short_str::cmp as key_order;

/// An object's key: inline up to 24 bytes, which every key of the layout is.
pub type Key = CompactString;

/// A JSON number as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

/// A JSON object: members sorted by key, each key once (the last given
/// wins, as with `serde_json`). Payloads are written with sorted keys, so
/// an object usually needs no sorting.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map(Vec<(Key, Value)>);

impl Map {
    pub fn new() -> Self {
        Map(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| key_order(k, key))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        let i = self.find(key).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.find(key).ok()?;
        self.0.get_mut(i).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    pub fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => self.0.get_mut(i).map(|(_, v)| std::mem::replace(v, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.find(key).ok()?;
        Some(self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Members as they came: sorted, and for a key given twice the last.
    fn from_members(mut members: Vec<(Key, Value)>) -> Self {
        let ordered = |w: &[(Key, Value)]| matches!(w, [a, b] if key_order(&a.0, &b.0) == std::cmp::Ordering::Less);
        if !members.windows(2).all(ordered) {
            // Stable: of equal keys the last given ends last, and is kept.
            members.sort_by(|a, b| key_order(&a.0, &b.0));
            let mut out: Vec<(Key, Value)> = Vec::with_capacity(members.len());
            for m in members {
                match out.last_mut() {
                    Some(last) if last.0 == m.0 => *last = m,
                    _ => out.push(m),
                }
            }
            members = out;
        }
        Map(members)
    }
}

impl Value {
    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) => m.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(Number::Int(n)) => Some(*n),
            Value::Number(Number::UInt(n)) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(Number::Int(n)) => u64::try_from(*n).ok(),
            Value::Number(Number::UInt(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    /// The same value as `serde_json`'s, for the few parts that are
    /// deserialised into types of their own.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(Number::Int(n)) => J::from(*n),
            Value::Number(Number::UInt(n)) => J::from(*n),
            Value::Number(Number::Float(f)) => J::from(*f),
            Value::String(s) => J::String(s.clone()),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        TreeSeed(&mut Scratch::default()).deserialize(d)
    }
}

/// Where the elements and members of the values being read gather until
/// their array or object ends; then they move into a vector of the exact
/// size (one allocation each, not one per doubling). Kept from one value
/// to the next by whoever reads many.
#[derive(Default)]
pub struct Scratch {
    items: Vec<Value>,
    members: Vec<(Key, Value)>,
}

/// Read one value, gathering in `Scratch`.
pub struct TreeSeed<'s>(pub &'s mut Scratch);

impl<'de> DeserializeSeed<'de> for TreeSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TreeSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(Number::Int(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(match i64::try_from(n) {
            Ok(n) => Number::Int(n),
            Err(_) => Number::UInt(n),
        }))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::Float(f)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let first = scratch.items.len();
        let read = loop {
            match seq.next_element_seed(TreeSeed(scratch)) {
                Ok(Some(v)) => scratch.items.push(v),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let items: Vec<Value> = scratch.items.drain(first..).collect();
        read.map(|()| Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let scratch = self.0;
        let first = scratch.members.len();
        let read = loop {
            let key = match map.next_key_seed(KeySeed) {
                Ok(Some(k)) => k,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            match map.next_value_seed(TreeSeed(scratch)) {
                Ok(v) => scratch.members.push((key, v)),
                Err(e) => break Err(e),
            }
        };
        let members: Vec<(Key, Value)> = scratch.members.drain(first..).collect();
        read.map(|()| Value::Object(Map::from_members(members)))
    }
}

/// A key read straight into its inline form.
pub struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(Key::new(s))
    }

    fn visit_string<E>(self, s: String) -> Result<Key, E> {
        Ok(Key::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("json")
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#"{"b":[1,-2,18446744073709551615,1.5,"x\u00e9",null,true],
            "a":{"z":1,"y":{"k":"v"}},"a_key_longer_than_twenty_four_bytes":0}"#;
        let ours = parse(text);
        let theirs: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(ours.to_json(), theirs);
        assert_eq!(
            ours.get("a")
                .and_then(|a| a.get("z"))
                .and_then(Value::as_i64),
            Some(1)
        );
        assert_eq!(
            ours.get("b").and_then(Value::as_array).map(Vec::len),
            Some(7)
        );
        assert_eq!(ours.get("missing"), None);
    }

    #[test]
    fn a_key_given_twice_keeps_the_last() {
        let v = parse(r#"{"k":1,"j":0,"k":2}"#);
        assert_eq!(v.get("k").and_then(Value::as_i64), Some(2));
        let Value::Object(m) = v else {
            panic!("object")
        };
        assert_eq!(m.iter().count(), 2);
    }

    #[test]
    fn numbers_keep_their_range() {
        let v = parse("[-1, 9223372036854775808]");
        let a = v.as_array().expect("array");
        assert_eq!(a[0].as_u64(), None);
        assert_eq!(a[0].as_i64(), Some(-1));
        assert_eq!(a[1].as_i64(), None);
        assert_eq!(a[1].as_u64(), Some(9_223_372_036_854_775_808));
    }

    #[test]
    fn insert_and_remove_keep_the_order() {
        let mut m = Map::new();
        assert!(m.insert("b", Value::Null).is_none());
        assert!(m.insert("a", Value::Bool(true)).is_none());
        assert_eq!(m.insert("b", Value::Bool(false)), Some(Value::Null));
        assert!(m.insert("aa", Value::Null).is_none());
        assert_eq!(
            m.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "aa", "b"]
        );
        assert_eq!(m.remove("a"), Some(Value::Bool(true)));
        assert!(!m.contains_key("a"));
        assert!(m.get("b").is_some());
    }
}
