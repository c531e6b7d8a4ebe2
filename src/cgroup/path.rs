//! Where a job's processes go: the cgroup paths computed from the `cgroup`
//! stanzas and the process environment (cgroups.md §3). Pure functions,
//! run in the spawn helper.

use thiserror::Error;

use crate::config::{expand, CgroupController, ExpandError};
use crate::env;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    #[error("{name}: {source}")]
    Expand {
        name: String,
        #[source]
        source: ExpandError,
    },
    #[error("{name}: empty cgroup name")]
    Empty { name: String },
    #[error("{name}: cgroup name must be relative, not {path}")]
    Absolute { name: String, path: String },
    #[error("{name}: invalid component {component:?} in {path}")]
    Component {
        name: String,
        path: String,
        component: String,
    },
}

/// One cgroup to create and enter, with the settings to write into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub controller: String,
    /// Relative cgroup path; `/` separates levels.
    pub path: String,
    /// (file name with the controller prefix, value).
    pub settings: Vec<(String, String)>,
}

/// The job's default cgroup, `upstart/JOB[-INSTANCE]`. A `/` inside the job
/// or instance name never creates a level.
pub fn job_cgroup(process_env: &[String]) -> String {
    let job = env::get(process_env, "UPSTART_JOB").unwrap_or_default();
    let suffix = match env::get(process_env, "UPSTART_INSTANCE").unwrap_or_default() {
        "" => job.to_string(),
        instance => format!("{job}-{instance}"),
    };
    format!("upstart/{}", suffix.replace('/', "_"))
}

/// Check an expanded name: relative, no empty, `.` or `..` component.
fn check(name: &str, path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty { name: name.into() });
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute {
            name: name.into(),
            path: path.into(),
        });
    }
    for component in path.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(PathError::Component {
                name: name.into(),
                path: path.into(),
                component: component.into(),
            });
        }
    }
    Ok(())
}

/// Every (controller, path) of the stanzas, in list order. `$VAR`s in the
/// names expand against the process environment plus `UPSTART_CGROUP`
/// (which the job itself does not see).
pub fn targets(
    cgroups: &[CgroupController],
    process_env: &[String],
) -> Result<Vec<Target>, PathError> {
    let mut lookup = process_env.to_vec();
    env::set(
        &mut lookup,
        format!("UPSTART_CGROUP={}", job_cgroup(process_env)),
    );
    let mut out = Vec::new();
    for ctl in cgroups {
        for name in &ctl.names {
            let path = expand(&name.name, &lookup).map_err(|source| PathError::Expand {
                name: name.name.clone(),
                source,
            })?;
            check(&name.name, &path)?;
            out.push(Target {
                controller: ctl.controller.clone(),
                path,
                settings: name
                    .settings
                    .iter()
                    .map(|s| (format!("{}.{}", ctl.controller, s.key), s.value.clone()))
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{add_cgroup, UPSTART_CGROUP};

    fn env(job: &str, instance: &str) -> Vec<String> {
        vec![
            "PATH=/bin".into(),
            "foo=x".into(),
            "bar=y".into(),
            "baz=z".into(),
            format!("UPSTART_JOB={job}"),
            format!("UPSTART_INSTANCE={instance}"),
        ]
    }

    fn paths(list: &[CgroupController], e: &[String]) -> Vec<String> {
        targets(list, e)
            .expect("targets")
            .into_iter()
            .map(|t| t.path)
            .collect()
    }

    #[test]
    fn default_cgroup_for_short_and_long_names() {
        // Every job gets a level `upstart`, whatever its name's length (the
        // reference's offset bug made short names land in `upstart_foo`).
        let mut l = Vec::new();
        add_cgroup(&mut l, "memory", UPSTART_CGROUP, None);
        assert_eq!(paths(&l, &env("foo", "")), ["upstart/foo"]);
        assert_eq!(paths(&l, &env("database", "")), ["upstart/database"]);
        assert_eq!(
            paths(&l, &env("longjobname", "a/b")),
            ["upstart/longjobname-a_b"]
        );
        assert_eq!(paths(&l, &env("x/y", "i")), ["upstart/x_y-i"]);
    }

    #[test]
    fn slashes_in_names_make_levels() {
        let mut l = Vec::new();
        add_cgroup(&mut l, "cpu", "a/b", None);
        add_cgroup(&mut l, "cpu", "$UPSTART_CGROUP/sub", None);
        add_cgroup(&mut l, "pids", "db/$foo/$bar-$baz", None);
        add_cgroup(&mut l, "pids", "${UPSTART_CGROUP}", None);
        assert_eq!(
            paths(&l, &env("database", "")),
            [
                "a/b",
                "upstart/database/sub",
                "db/x/y-z",
                "upstart/database"
            ]
        );
    }

    #[test]
    fn settings_carry_the_controller_prefix() {
        let mut l = Vec::new();
        add_cgroup(
            &mut l,
            "memory",
            UPSTART_CGROUP,
            Some(("max".into(), "1000000".into())),
        );
        add_cgroup(
            &mut l,
            "memory",
            UPSTART_CGROUP,
            Some(("high".into(), "$foo".into())),
        );
        let t = targets(&l, &env("foo", "")).expect("targets");
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].settings,
            [
                ("memory.max".to_string(), "1000000".to_string()),
                // Values are sent verbatim.
                ("memory.high".to_string(), "$foo".to_string()),
            ]
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "/abs",
            "a//b",
            "a/../b",
            "./a",
            "a/",
            "$empty",
            "$nosuchvar",
        ] {
            let mut l = Vec::new();
            add_cgroup(&mut l, "cpu", bad, None);
            let mut e = env("j", "");
            e.push("empty=".into());
            assert!(targets(&l, &e).is_err(), "{bad} accepted");
        }
    }
}
