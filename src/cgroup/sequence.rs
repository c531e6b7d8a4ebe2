//! The manager calls a job process makes, in order (cgroups.md §4), over
//! any [`Manager`]: the real D-Bus client in the spawn helper, a recorder
//! in tests.

use super::client::{ManagerClient, ManagerError};
use super::path::Target;

/// The part of `org.linuxcontainers.cgmanager0_0` a job process uses.
pub trait Manager {
    fn pid_cgroup_abs(&self, controller: &str, pid: i32) -> Result<String, ManagerError>;
    fn move_pid_abs(&self, controller: &str, path: &str, pid: i32) -> Result<(), ManagerError>;
    fn create(&self, controller: &str, path: &str) -> Result<(), ManagerError>;
    fn set_value(
        &self,
        controller: &str,
        path: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ManagerError>;
    fn chown(&self, controller: &str, path: &str, uid: u32, gid: u32) -> Result<(), ManagerError>;
    fn remove_on_empty(&self, controller: &str, path: &str) -> Result<(), ManagerError>;
}

impl Manager for ManagerClient {
    fn pid_cgroup_abs(&self, controller: &str, pid: i32) -> Result<String, ManagerError> {
        ManagerClient::pid_cgroup_abs(self, controller, pid)
    }
    fn move_pid_abs(&self, controller: &str, path: &str, pid: i32) -> Result<(), ManagerError> {
        ManagerClient::move_pid_abs(self, controller, path, pid)
    }
    fn create(&self, controller: &str, path: &str) -> Result<(), ManagerError> {
        ManagerClient::create(self, controller, path)
    }
    fn set_value(
        &self,
        controller: &str,
        path: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ManagerError> {
        ManagerClient::set_value(self, controller, path, key, value)
    }
    fn chown(&self, controller: &str, path: &str, uid: u32, gid: u32) -> Result<(), ManagerError> {
        ManagerClient::chown(self, controller, path, uid, gid)
    }
    fn remove_on_empty(&self, controller: &str, path: &str) -> Result<(), ManagerError> {
        ManagerClient::remove_on_empty(self, controller, path)
    }
}

/// A job cgroup and the path that enters it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub target: Target,
    /// Path relative to the manager's cgroup, for `MovePidAbs`.
    pub absolute: String,
}

/// `base/path`, without doubled or leading slashes.
fn join(base: &str, path: &str) -> String {
    let base = base.trim_matches('/');
    if base.is_empty() {
        path.to_string()
    } else {
        format!("{base}/{path}")
    }
}

/// Where each cgroup is, seen from the manager: under the root in system
/// mode (`from_root`), else under our cgroup as it is now, before any move.
pub fn locate(
    m: &dyn Manager,
    targets: Vec<Target>,
    from_root: bool,
    pid: i32,
) -> Result<Vec<Placed>, ManagerError> {
    targets
        .into_iter()
        .map(|target| {
            let absolute = if from_root {
                target.path.clone()
            } else {
                join(&m.pid_cgroup_abs(&target.controller, pid)?, &target.path)
            };
            Ok(Placed { target, absolute })
        })
        .collect()
}

/// Create and configure every cgroup (errors are CGROUP_SETUP). `owner`
/// is the job's (uid, gid) and `current` ours: the cgroups are handed
/// over when they differ.
pub fn setup(
    m: &dyn Manager,
    placed: &[Placed],
    from_root: bool,
    pid: i32,
    owner: (u32, u32),
    current: (u32, u32),
) -> Result<(), ManagerError> {
    for p in placed {
        let (c, path) = (p.target.controller.as_str(), p.target.path.as_str());
        if from_root {
            // Paths are relative to the caller's cgroup: escape to the
            // root first, so the job's cgroups are not made under init's.
            m.move_pid_abs(c, "/", pid)?;
        }
        m.create(c, path)?;
        for (key, value) in &p.target.settings {
            m.set_value(c, path, key, value)?;
        }
        if owner != current {
            m.chown(c, path, owner.0, owner.1)?;
        }
    }
    Ok(())
}

/// Ask for removal once empty (errors are CGROUP_CLEAR).
pub fn clear(m: &dyn Manager, placed: &[Placed]) -> Result<(), ManagerError> {
    for p in placed {
        m.remove_on_empty(&p.target.controller, &p.target.path)?;
    }
    Ok(())
}

/// Move into every cgroup (errors are CGROUP_ENTER). By absolute path,
/// because after the first move a relative path would resolve against the
/// new cgroup (on cgroup2 all controllers share one tree).
pub fn enter(m: &dyn Manager, placed: &[Placed], pid: i32) -> Result<(), ManagerError> {
    for p in placed {
        m.move_pid_abs(&p.target.controller, &p.absolute, pid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::path::targets;
    use crate::config::{add_cgroup, UPSTART_CGROUP};
    use std::cell::RefCell;

    /// Records every call; fails the call named in `fail`.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<String>>,
        fail: Option<&'static str>,
    }

    impl Recorder {
        fn note(&self, method: &'static str, call: String) -> Result<(), ManagerError> {
            self.calls.borrow_mut().push(call);
            match self.fail {
                Some(m) if m == method => Err(ManagerError::Call {
                    method,
                    name: "org.freedesktop.DBus.Error.InvalidArgs".into(),
                    message: "refused".into(),
                }),
                _ => Ok(()),
            }
        }
    }

    impl Manager for Recorder {
        fn pid_cgroup_abs(&self, c: &str, pid: i32) -> Result<String, ManagerError> {
            self.note("GetPidCgroupAbs", format!("GetPidCgroupAbs {c} {pid}"))?;
            Ok("/user/1000/".into())
        }
        fn move_pid_abs(&self, c: &str, p: &str, pid: i32) -> Result<(), ManagerError> {
            self.note("MovePidAbs", format!("MovePidAbs {c} {p} {pid}"))
        }
        fn create(&self, c: &str, p: &str) -> Result<(), ManagerError> {
            self.note("Create", format!("Create {c} {p}"))
        }
        fn set_value(&self, c: &str, p: &str, k: &str, v: &str) -> Result<(), ManagerError> {
            self.note("SetValue", format!("SetValue {c} {p} {k} {v}"))
        }
        fn chown(&self, c: &str, p: &str, uid: u32, gid: u32) -> Result<(), ManagerError> {
            self.note("Chown", format!("Chown {c} {p} {uid} {gid}"))
        }
        fn remove_on_empty(&self, c: &str, p: &str) -> Result<(), ManagerError> {
            self.note("RemoveOnEmpty", format!("RemoveOnEmpty {c} {p}"))
        }
    }

    fn job_env() -> Vec<String> {
        vec!["UPSTART_JOB=db".into(), "UPSTART_INSTANCE=".into()]
    }

    fn stanzas() -> Vec<crate::config::CgroupController> {
        let mut l = Vec::new();
        add_cgroup(
            &mut l,
            "memory",
            UPSTART_CGROUP,
            Some(("limit_in_bytes".into(), "1000000".into())),
        );
        add_cgroup(&mut l, "memory", UPSTART_CGROUP, None);
        add_cgroup(&mut l, "cpu", "a/b", Some(("shares".into(), "512".into())));
        add_cgroup(
            &mut l,
            "cpu",
            "a/b",
            Some(("cfs_quota_us".into(), "1".into())),
        );
        l
    }

    #[test]
    fn system_mode_sequence_of_a_root_job() {
        let r = Recorder::default();
        let t = targets(&stanzas(), &job_env()).expect("targets");
        let placed = locate(&r, t, true, 42).expect("locate");
        setup(&r, &placed, true, 42, (0, 0), (0, 0)).expect("setup");
        clear(&r, &placed).expect("clear");
        enter(&r, &placed, 42).expect("enter");
        assert_eq!(
            r.calls.into_inner(),
            [
                "MovePidAbs memory / 42",
                "Create memory upstart/db",
                "SetValue memory upstart/db memory.limit_in_bytes 1000000",
                "MovePidAbs cpu / 42",
                "Create cpu a/b",
                "SetValue cpu a/b cpu.shares 512",
                "SetValue cpu a/b cpu.cfs_quota_us 1",
                "RemoveOnEmpty memory upstart/db",
                "RemoveOnEmpty cpu a/b",
                "MovePidAbs memory upstart/db 42",
                "MovePidAbs cpu a/b 42",
            ]
        );
    }

    #[test]
    fn session_sequence_of_a_setuid_job() {
        let r = Recorder::default();
        let mut l = Vec::new();
        add_cgroup(&mut l, "pids", UPSTART_CGROUP, None);
        let t = targets(&l, &job_env()).expect("targets");
        let placed = locate(&r, t, false, 7).expect("locate");
        setup(&r, &placed, false, 7, (65534, 65534), (0, 0)).expect("setup");
        enter(&r, &placed, 7).expect("enter");
        assert_eq!(
            r.calls.into_inner(),
            [
                "GetPidCgroupAbs pids 7",
                "Create pids upstart/db",
                "Chown pids upstart/db 65534 65534",
                "MovePidAbs pids user/1000/upstart/db 7",
            ]
        );
    }

    #[test]
    fn the_first_refusal_stops_the_sequence() {
        let r = Recorder {
            fail: Some("Create"),
            ..Default::default()
        };
        let t = targets(&stanzas(), &job_env()).expect("targets");
        let placed = locate(&r, t, true, 1).expect("locate");
        let e = setup(&r, &placed, true, 1, (0, 0), (0, 0)).unwrap_err();
        assert!(e.to_string().contains("refused"));
        assert_eq!(
            r.calls.borrow().last().map(String::as_str),
            Some("Create memory upstart/db")
        );
        assert_eq!(r.calls.borrow().len(), 2);
    }
}
