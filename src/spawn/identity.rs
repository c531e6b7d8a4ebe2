//! The `setuid` / `setgid` lookups (process-spawning.md §3.2 steps
//! 9.8–9.11). Name services may read files, ask a daemon or go to the
//! network, and any of those can hang: these run only in the spawn helper,
//! after its `chroot`, never in init.

use std::ffi::CString;

use super::record::ErrorType;

/// The user, group and supplementary groups a process switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<u32>,
}

/// Look up `setuid`/`setgid` in the current root: `None` when neither is
/// set, else the target ids and, when running as root, the supplementary
/// groups `initgroups` would set. A failure is the status record's type and
/// errno.
pub(crate) fn lookup_identity(
    setuid: Option<&str>,
    setgid: Option<&str>,
) -> Result<Option<Identity>, (ErrorType, i32)> {
    use nix::unistd::{getgrouplist, Gid, Group, Uid, User};
    if setuid.is_none() && setgid.is_none() {
        return Ok(None);
    }
    let user = match setuid {
        Some(name) => Some(
            User::from_name(name)
                .map_err(|e| (ErrorType::Getpwnam, e as i32))?
                .ok_or((ErrorType::BadSetuid, 0))?,
        ),
        None => None,
    };
    let group = match setgid {
        Some(name) => Some(
            Group::from_name(name)
                .map_err(|e| (ErrorType::Getgrnam, e as i32))?
                .ok_or((ErrorType::BadSetgid, 0))?,
        ),
        None => None,
    };
    let gid = group
        .as_ref()
        .map(|g| g.gid)
        .or(user.as_ref().map(|u| u.gid));
    let mut groups = Vec::new();
    if Uid::effective().is_root() {
        // initgroups(user, target gid): the target group, not init's own
        // gid 0, joins the supplementary list (Decision: fix).
        let account = match &user {
            Some(u) => u.clone(),
            None => User::from_uid(Uid::effective())
                .map_err(|e| (ErrorType::Getpwuid, e as i32))?
                .ok_or((ErrorType::Getpwuid, 0))?,
        };
        let extra = gid.unwrap_or(Gid::effective());
        let name = CString::new(account.name.as_str()).map_err(|_| (ErrorType::Initgroups, 22))?;
        groups = getgrouplist(&name, extra)
            .map_err(|e| (ErrorType::Initgroups, e as i32))?
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
    }
    Ok(Some(Identity {
        uid: user.map(|u| u.uid.as_raw()),
        gid: gid.map(|g| g.as_raw()),
        groups,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_reported_as_such() {
        assert_eq!(
            lookup_identity(Some("no-such-user-outset"), None).err(),
            Some((ErrorType::BadSetuid, 0))
        );
        assert_eq!(
            lookup_identity(None, Some("no-such-group-outset")).err(),
            Some((ErrorType::BadSetgid, 0))
        );
        assert!(lookup_identity(None, None).expect("none").is_none());
    }
}
