//! Finding the existing instance a control call names, by its name or by
//! the environment its name expands in (control.md `GetInstance`,
//! `GetInstanceByName`). The engine answers it from its classes; the
//! control plane's read-only copy (control/view.rs) answers what it can
//! from what it holds, through the same query.

use super::NameKey;
use std::convert::Infallible;

use super::engine::Engine;
use super::error::EngineError;
use super::JobKey;
use crate::config::{expand, JobClass};
use crate::env;

/// How a caller names an instance.
#[derive(Debug, Clone, Copy)]
pub enum InstanceName<'a> {
    /// By its name.
    Named(&'a str),
    /// By `KEY=VALUE` entries added to the class environment, in which the
    /// class's `instance` template expands to the name.
    FromEnv(&'a [String]),
}

/// How a job's instances are named.
pub enum Naming<'a> {
    /// No `instance` stanza: the one instance is named "".
    Single,
    /// The class's template, to expand in this class environment.
    Template {
        class: &'a JobClass,
        class_env: Vec<String>,
    },
}

/// Something that knows which jobs and instances exist.
pub trait InstanceDirectory {
    /// Why it cannot say how a job's instances are named (the engine
    /// always can: [`Infallible`]).
    type Undecided;

    /// How `job`'s instances are named; `None` when there is no such job.
    fn naming(&self, job: &str) -> Option<Result<Naming<'_>, Self::Undecided>>;

    fn has_instance(&self, job: &str, instance: &str) -> bool;

    /// The existing instance named, or why there is none.
    fn find_instance(
        &self,
        job: &str,
        name: InstanceName<'_>,
    ) -> Result<Result<JobKey, EngineError>, Self::Undecided> {
        let Some(naming) = self.naming(job) else {
            return Ok(Err(EngineError::UnknownJob(job.to_string())));
        };
        let name = match name {
            InstanceName::Named(name) => name.to_string(),
            InstanceName::FromEnv(args) => match naming? {
                Naming::Single => String::new(),
                Naming::Template {
                    class,
                    mut class_env,
                } => {
                    for a in args {
                        env::set(&mut class_env, a.clone());
                    }
                    match expand(&class.instance, &class_env) {
                        Ok(name) => name,
                        Err(e) => return Ok(Err(with_usage(class, e.to_string()))),
                    }
                }
            },
        };
        Ok(if self.has_instance(job, &name) {
            Ok(JobKey::new(job, &name))
        } else {
            Err(EngineError::UnknownInstance(name))
        })
    }
}

/// An instance name that did not expand, with the class's usage line.
pub(super) fn with_usage(class: &JobClass, mut message: String) -> EngineError {
    if let Some(u) = &class.rare.usage {
        message.push_str(&format!("\nUsage: {u}"));
    }
    EngineError::InstanceName(message)
}

impl InstanceDirectory for Engine {
    type Undecided = Infallible;

    fn naming(&self, job: &str) -> Option<Result<Naming<'_>, Infallible>> {
        let class = &self.slots.get(NameKey::new(job))?.class;
        Some(Ok(if class.instance.is_empty() {
            Naming::Single
        } else {
            Naming::Template {
                class,
                class_env: self.class_env(class),
            }
        }))
    }

    fn has_instance(&self, job: &str, instance: &str) -> bool {
        self.instance(&JobKey::new(job, instance)).is_some()
    }
}

impl Engine {
    /// [`InstanceDirectory::find_instance`]: the engine always decides.
    pub fn instance_named(&self, job: &str, name: InstanceName<'_>) -> Result<JobKey, EngineError> {
        match self.find_instance(job, name) {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }
}
