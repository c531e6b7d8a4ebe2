//! Checks on an engine assembled from outside (a re-exec payload): the
//! shapes the engine's own code relies on without re-checking.

use super::Engine;

impl Engine {
    /// Why this engine cannot be adopted, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        for (job, slot) in &self.slots {
            if slot.start_on.as_ref().is_some_and(|t| !t.is_well_formed()) {
                return Err(format!("job {job}: malformed start on tree"));
            }
            for (name, inst) in &slot.instances {
                if inst.stop_on.as_ref().is_some_and(|t| !t.is_well_formed()) {
                    return Err(format!("instance {job} ({name}): malformed stop on tree"));
                }
            }
        }
        Ok(())
    }
}
