//! The job environment control calls (control.md §3.1 GetEnv … ResetEnv).

use super::engine::Engine;
use super::error::EngineError;
use super::JobKey;
use crate::env;

type CallResult<T> = Result<T, EngineError>;

/// Which table a call addresses: `[]` is the global table, `[JOB, INSTANCE]`
/// one instance's environment.
fn target(engine: &Engine, details: &[String]) -> CallResult<Option<JobKey>> {
    match details {
        [] => Ok(None),
        [job, instance] => {
            if job.is_empty() {
                return Err(EngineError::EmptyJobName);
            }
            if !engine.slots.contains_key(job.as_str()) {
                return Err(EngineError::UnknownJob(job.clone()));
            }
            let key = JobKey::new(job, instance);
            if engine.instance(&key).is_none() {
                return Err(EngineError::UnknownJobInstance {
                    job: job.clone(),
                    instance: instance.clone(),
                });
            }
            Ok(Some(key))
        }
        _ => Err(EngineError::BadJobDetails),
    }
}

impl Engine {
    fn table(&self, key: &Option<JobKey>) -> &[String] {
        match key {
            None => &self.global_env,
            Some(k) => self.instance(k).map_or(&[][..], |i| i.env.as_slice()),
        }
    }

    fn edit_tables(&mut self, key: &Option<JobKey>, mut edit: impl FnMut(&mut Vec<String>)) {
        match key {
            Some(k) => {
                if let Some(inst) = self.inst(k) {
                    edit(&mut inst.env);
                }
            }
            // The global form edits every existing instance too.
            None => {
                edit(&mut self.global_env);
                for slot in self.slots.values_mut() {
                    for inst in slot.instances.values_mut() {
                        edit(&mut inst.env);
                    }
                }
            }
        }
    }

    pub fn get_env(&self, details: &[String], name: &str) -> CallResult<String> {
        if name.is_empty() {
            return Err(EngineError::EmptyVariable);
        }
        let key = target(self, details)?;
        env::get(self.table(&key), name)
            .map(str::to_string)
            .ok_or_else(|| EngineError::NoSuchVariable(name.to_string()))
    }

    pub fn list_env(&self, details: &[String]) -> CallResult<Vec<String>> {
        let key = target(self, details)?;
        Ok(self.table(&key).to_vec())
    }

    pub fn set_env_list(
        &mut self,
        details: &[String],
        vars: &[String],
        replace: bool,
        pid1: bool,
    ) -> CallResult<()> {
        pid1_guard(pid1)?;
        let key = target(self, details)?;
        for var in vars {
            let entry = if var.contains('=') {
                var.clone()
            } else {
                format!("{var}=")
            };
            self.edit_tables(&key, |t| {
                if replace {
                    env::set(t, entry.clone());
                } else {
                    env::add_if_absent(t, entry.clone());
                }
            });
        }
        Ok(())
    }

    pub fn unset_env_list(
        &mut self,
        details: &[String],
        names: &[String],
        pid1: bool,
    ) -> CallResult<()> {
        pid1_guard(pid1)?;
        let key = target(self, details)?;
        if self.table(&key).is_empty() {
            if let Some(first) = names.first() {
                return Err(EngineError::NoSuchVariable(first.clone()));
            }
        }
        for name in names {
            self.edit_tables(&key, |t| env::unset(t, name));
        }
        Ok(())
    }

    /// Instance form: the class environment again. Global form: the table
    /// init started with (instances keep theirs).
    pub fn reset_env(
        &mut self,
        details: &[String],
        initial: &[String],
        pid1: bool,
    ) -> CallResult<()> {
        pid1_guard(pid1)?;
        match target(self, details)? {
            None => self.global_env = initial.to_vec(),
            Some(k) => {
                let Some(class) = self.class_of(&k) else {
                    return Ok(());
                };
                let fresh = self.class_env(&class);
                if let Some(inst) = self.inst(&k) {
                    inst.env = fresh;
                }
            }
        }
        Ok(())
    }
}

/// The job environment table of an init running as process 1 is not
/// editable through the control API (Upstart refuses it too).
fn pid1_guard(pid1: bool) -> CallResult<()> {
    if pid1 {
        return Err(EngineError::PermissionDenied(
            "Not permissible to modify PID 1 job environment",
        ));
    }
    Ok(())
}
