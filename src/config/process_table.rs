//! A class's processes by type.
//!
//! A class has one to five processes; a `BTreeMap` spends a whole node
//! (about 460 bytes) on them even for one, which with thousands of classes
//! would be a quarter of init's heap. This is a vector kept sorted by type,
//! with the map operations the rest of outset uses, serialized as the same
//! map.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::class::{Process, ProcessType};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessTable(Vec<(ProcessType, Process)>);

impl ProcessTable {
    pub fn new() -> ProcessTable {
        ProcessTable(Vec::new())
    }

    /// Set the process of `kind`; returns the one it replaces.
    pub fn insert(&mut self, kind: ProcessType, process: Process) -> Option<Process> {
        match self.0.binary_search_by_key(&kind, |(k, _)| *k) {
            Ok(i) => self
                .0
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, process)),
            Err(i) => {
                self.0.insert(i, (kind, process));
                self.0.shrink_to_fit();
                None
            }
        }
    }

    pub fn get(&self, kind: &ProcessType) -> Option<&Process> {
        let i = self.0.binary_search_by_key(kind, |(k, _)| *k).ok()?;
        self.0.get(i).map(|(_, p)| p)
    }

    pub fn get_mut(&mut self, kind: &ProcessType) -> Option<&mut Process> {
        let i = self.0.binary_search_by_key(kind, |(k, _)| *k).ok()?;
        self.0.get_mut(i).map(|(_, p)| p)
    }

    pub fn contains_key(&self, kind: &ProcessType) -> bool {
        self.get(kind).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In order of type, as a `BTreeMap` would give them.
    pub fn iter(&self) -> impl Iterator<Item = (&ProcessType, &Process)> {
        self.0.iter().map(|(k, p)| (k, p))
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.0.iter_mut().map(|(_, p)| p)
    }

    pub fn keys(&self) -> impl Iterator<Item = &ProcessType> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Process> {
        self.0.iter().map(|(_, p)| p)
    }
}

impl<'a> IntoIterator for &'a ProcessTable {
    type Item = (&'a ProcessType, &'a Process);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (ProcessType, Process)>,
        fn(&'a (ProcessType, Process)) -> (&'a ProcessType, &'a Process),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, p)| (k, p))
    }
}

impl Serialize for ProcessTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for ProcessTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<ProcessType, Process>::deserialize(d)?;
        Ok(ProcessTable(map.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cmd: &str) -> Process {
        Process {
            script: false,
            command: cmd.into(),
            line: 1,
        }
    }

    #[test]
    fn behaves_as_a_sorted_map_and_serializes_as_one() {
        let mut t = ProcessTable::new();
        assert!(t.insert(ProcessType::PostStop, exec("c")).is_none());
        assert!(t.insert(ProcessType::Main, exec("a")).is_none());
        assert!(t.insert(ProcessType::PreStart, exec("b")).is_none());
        assert_eq!(
            t.insert(ProcessType::Main, exec("z")).map(|p| p.command),
            Some("a".into())
        );
        assert_eq!(t.len(), 3);
        assert!(t.contains_key(&ProcessType::PreStart));
        assert!(!t.contains_key(&ProcessType::PreStop));

        let map: BTreeMap<ProcessType, Process> = t.iter().map(|(k, p)| (*k, p.clone())).collect();
        let keys: Vec<ProcessType> = t.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, map.keys().copied().collect::<Vec<_>>());
        let as_table = serde_json::to_string(&t).unwrap();
        assert_eq!(as_table, serde_json::to_string(&map).unwrap());
        let back: ProcessTable = serde_json::from_str(&as_table).unwrap();
        assert_eq!(back, t);
    }
}
