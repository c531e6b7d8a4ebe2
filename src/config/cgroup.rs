//! The `cgroup` stanza's model and its merge rules (cgroups.md §1).

use serde::{Deserialize, Serialize};

/// The implicit cgroup name: the job's default cgroup.
pub const UPSTART_CGROUP: &str = "$UPSTART_CGROUP";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupSetting {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupName {
    /// Unexpanded name (`$VAR` references are expanded in the child).
    pub name: String,
    pub settings: Vec<CgroupSetting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupController {
    pub controller: String,
    pub names: Vec<CgroupName>,
}

/// Add one stanza to the list, keeping order of first appearance:
/// new controllers and names are appended, a repeated key replaces its value.
pub fn add_cgroup(
    list: &mut Vec<CgroupController>,
    controller: &str,
    name: &str,
    setting: Option<(String, String)>,
) {
    if !list.iter().any(|c| c.controller == controller) {
        list.push(CgroupController {
            controller: controller.to_string(),
            names: Vec::new(),
        });
    }
    let Some(ctl) = list.iter_mut().find(|c| c.controller == controller) else {
        return;
    };
    if !ctl.names.iter().any(|n| n.name == name) {
        ctl.names.push(CgroupName {
            name: name.to_string(),
            settings: Vec::new(),
        });
    }
    let Some(entry) = ctl.names.iter_mut().find(|n| n.name == name) else {
        return;
    };
    if let Some((key, value)) = setting {
        match entry.settings.iter_mut().find(|s| s.key == key) {
            Some(existing) => existing.value = value,
            None => entry.settings.push(CgroupSetting { key, value }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_rules() {
        let mut l = Vec::new();
        add_cgroup(&mut l, "memory", UPSTART_CGROUP, None);
        add_cgroup(&mut l, "cpu", "a/b", Some(("shares".into(), "512".into())));
        add_cgroup(&mut l, "memory", UPSTART_CGROUP, None);
        add_cgroup(&mut l, "cpu", "a/b", Some(("shares".into(), "256".into())));
        add_cgroup(
            &mut l,
            "cpu",
            "a/b",
            Some(("cfs_quota_us".into(), "1".into())),
        );
        add_cgroup(&mut l, "cpu", "c", None);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].controller, "memory");
        assert_eq!(l[0].names.len(), 1);
        assert!(l[0].names[0].settings.is_empty());
        assert_eq!(l[1].names.len(), 2);
        let s = &l[1].names[0].settings;
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].key.as_str(), s[0].value.as_str()), ("shares", "256"));
        assert_eq!(s[1].key, "cfs_quota_us");
        assert_eq!(l[1].names[1].name, "c");
    }
}
