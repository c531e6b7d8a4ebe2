//! `initctl check [JOB]...`: a readiness or liveness probe for container
//! orchestrators. An instance is up when its goal is `start` and its
//! state `running` (after `expect` readiness, where the job has one).

use outset::control::client::{lost, Client, ClientError};
use outset::control::paths::{INSTANCE_IFACE, JOB_IFACE};
use zbus::{OwnedObjectPath, OwnedVariant};

const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// The job or instance went while we asked about it.
fn gone(e: &ClientError) -> bool {
    e.name == "org.freedesktop.DBus.Error.UnknownMethod"
        || e.name == "org.freedesktop.DBus.Error.UnknownObject"
}

/// One instance as the check sees it.
struct Instance {
    name: String,
    goal: String,
    state: String,
}

impl Instance {
    fn up(&self) -> bool {
        self.goal == "start" && self.state == "running"
    }

    fn line(&self, job: &str) -> String {
        let instance = if self.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.name)
        };
        format!("{job}{instance} is {}/{}", self.goal, self.state)
    }
}

/// The lines naming what is not up; none means the probe passes. With
/// `names`, each named job must have instances and all of them up; without,
/// every instance whose goal is `start` must be up.
pub fn check(client: &Client, names: &[String]) -> Result<Vec<String>, ClientError> {
    // Each line with the place of its job, so that they come out in the
    // order the jobs were named (or listed).
    let mut lines: Vec<(usize, String)> = Vec::new();
    // (job name, job path) of the jobs to look at.
    let mut jobs: Vec<(usize, String, OwnedObjectPath)> = Vec::new();
    if names.is_empty() {
        let paths: Vec<OwnedObjectPath> = client.manager("GetAllJobs", &())?;
        let calls: Vec<_> = paths
            .iter()
            .map(|p| (p.as_str(), PROPERTIES, "Get", (JOB_IFACE, "name")))
            .collect();
        let names = client.batch::<_, OwnedVariant>(&calls);
        for (at, (path, name)) in paths.iter().zip(names).enumerate() {
            match name.and_then(|v| Ok(String::try_from(v)?)) {
                Ok(name) => jobs.push((at, name, path.clone())),
                Err(e) if gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
    } else {
        for (at, name) in names.iter().enumerate() {
            match client.manager::<_, OwnedObjectPath>("GetJobByName", &(name,)) {
                Ok(path) => jobs.push((at, name.clone(), path)),
                Err(e) if e.name == "com.ubuntu.Upstart0_6.Error.UnknownJob" => {
                    lines.push((at, format!("{name} is not a known job")))
                }
                Err(e) => return Err(e),
            }
        }
    }
    let calls: Vec<_> = jobs
        .iter()
        .map(|(_, _, p)| (p.as_str(), JOB_IFACE, "GetAllInstances", ()))
        .collect();
    let instances = client.batch::<_, Vec<OwnedObjectPath>>(&calls);
    let mut wanted: Vec<(usize, &str, OwnedObjectPath)> = Vec::new();
    for ((at, job, _), paths) in jobs.iter().zip(instances) {
        let paths = match paths {
            Ok(p) => p,
            Err(e) if gone(&e) => Vec::new(),
            Err(e) => return Err(e),
        };
        if paths.is_empty() && !names.is_empty() {
            lines.push((*at, format!("{job} is stop/waiting")));
        }
        wanted.extend(paths.into_iter().map(|p| (*at, job.as_str(), p)));
    }
    for ((at, job, _), instance) in wanted.iter().zip(properties(client, &wanted)) {
        let Some(instance) = instance? else {
            if !names.is_empty() {
                lines.push((*at, format!("{job} is stop/waiting")));
            }
            continue;
        };
        if instance.up() || (names.is_empty() && instance.goal != "start") {
            continue;
        }
        lines.push((*at, instance.line(job)));
    }
    lines.sort_by_key(|(at, _)| *at);
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

/// Name, goal and state of each instance, in one batch; `None` for an
/// instance that went meanwhile.
fn properties(
    client: &Client,
    instances: &[(usize, &str, OwnedObjectPath)],
) -> Vec<Result<Option<Instance>, ClientError>> {
    const PROPS: [&str; 3] = ["name", "goal", "state"];
    let calls: Vec<_> = instances
        .iter()
        .flat_map(|(_, _, path)| {
            PROPS
                .iter()
                .map(move |p| (path.as_str(), PROPERTIES, "Get", (INSTANCE_IFACE, *p)))
        })
        .collect();
    let mut answers = client.batch::<_, OwnedVariant>(&calls).into_iter();
    instances
        .iter()
        .map(|_| {
            let mut next = || {
                answers
                    .next()
                    .unwrap_or_else(|| Err(lost()))
                    .and_then(|v| Ok(String::try_from(v)?))
            };
            match (next(), next(), next()) {
                (Ok(name), Ok(goal), Ok(state)) => Ok(Some(Instance { name, goal, state })),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) if gone(&e) => Ok(None),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        })
        .collect()
}
