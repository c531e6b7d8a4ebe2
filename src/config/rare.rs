//! The stanzas most job files never use, kept out of line.
//!
//! Init holds every loaded class for as long as it runs. Held in the class
//! itself, these fields cost over 300 bytes each (most of a class); a
//! class that sets none of them carries one empty pointer instead, and the
//! first one set allocates the lot.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use super::cgroup::CgroupController;
use super::class::{ContainerExit, RLimit, Resource};

/// What the rarely used stanzas say; every field is as if unset by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RareStanzas {
    pub description: Option<String>,
    pub author: Option<String>,
    pub version: Option<String>,
    pub usage: Option<String>,
    pub emits: Vec<String>,
    pub export: Vec<String>,
    /// `notify timeout`: seconds an `expect notify` job may take to say
    /// `READY=1`; none (or 0) waits for ever.
    #[serde(default)]
    pub notify_timeout: Option<u64>,
    pub nice: Option<i32>,
    /// oom_score_adj; 0 leaves it unchanged.
    pub oom_score_adj: i32,
    pub limits: BTreeMap<Resource, RLimit>,
    pub chroot: Option<String>,
    pub chdir: Option<String>,
    pub setuid: Option<String>,
    pub setgid: Option<String>,
    pub apparmor_switch: Option<String>,
    pub cgroups: Vec<CgroupController>,
    /// `exit-container-on-failure`: the job's failure is the container's.
    pub exit_container_on_failure: Option<ContainerExit>,
}

/// Nothing set: what a class without any of these stanzas reads.
static UNSET: RareStanzas = RareStanzas {
    description: None,
    author: None,
    version: None,
    usage: None,
    emits: Vec::new(),
    export: Vec::new(),
    notify_timeout: None,
    nice: None,
    oom_score_adj: 0,
    limits: BTreeMap::new(),
    chroot: None,
    chdir: None,
    setuid: None,
    setgid: None,
    apparmor_switch: None,
    cgroups: Vec::new(),
    exit_container_on_failure: None,
};

/// [`RareStanzas`], allocated only once one of them is set. Reads go
/// through `Deref`; a write (`DerefMut`) allocates the fields first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rare(Option<Box<RareStanzas>>);

impl Deref for Rare {
    type Target = RareStanzas;

    fn deref(&self) -> &RareStanzas {
        self.0.as_deref().unwrap_or(&UNSET)
    }
}

impl DerefMut for Rare {
    fn deref_mut(&mut self) -> &mut RareStanzas {
        self.0.get_or_insert_with(Box::default)
    }
}

/// Allocated or not, the same stanzas are the same class.
impl PartialEq for Rare {
    fn eq(&self, other: &Rare) -> bool {
        **self == **other
    }
}

impl Eq for Rare {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_until_written_and_equal_either_way() {
        let mut r = Rare::default();
        assert!(r.0.is_none());
        assert_eq!(r.chroot, None);
        assert!(r.0.is_none(), "a read allocates nothing");
        let unset = r.clone();
        r.oom_score_adj = 0;
        assert!(r.0.is_some());
        assert_eq!(r, unset);
        r.chroot = Some("/srv".into());
        assert_ne!(r, unset);
    }
}
