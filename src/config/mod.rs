//! The job-file language: tokenizer, stanzas, the `JobClass` model,
//! `.override` merging, configuration sources and `$VAR` expansion.

mod cgroup;
mod class;
mod error;
mod expand;
mod expr;
mod lexer;
mod number;
mod process_table;
mod rare;
mod signal;
mod source;
mod stanza;
mod walk;

pub use cgroup::{add_cgroup, CgroupController, CgroupName, CgroupSetting, UPSTART_CGROUP};
pub use class::{
    ClassDefaults, Console, ContainerExit, Expect, JobClass, Process, ProcessTable, ProcessType,
    RLimit, Rare, RareStanzas, Resource, RLIM_INFINITY,
};
pub use error::{ConfigError, ParseError, ParseErrorKind};
pub use expand::{expand, Env, ExpandError};
pub use expr::{EventExpr, Operator};
pub use signal::{signal_from_name, signal_name};
pub use source::{
    find_override, is_job_file, job_name, load_job_file, load_sources, load_sources_watching,
    read_text, scan_dir, system_sources, user_sources, ConfSource, JobFileKind, LoadedConfig,
    LoadedJob, SourceError, SourceKind,
};

/// Parse the text of a `.conf` file into a class.
pub fn parse_job(
    name: &str,
    path: &str,
    text: &str,
    defaults: &ClassDefaults,
) -> Result<JobClass, ConfigError> {
    let mut class = JobClass::new(name, path, defaults);
    stanza::parse_into(&mut class, text).map_err(|e| ConfigError::from_parse(path, e))?;
    Ok(class)
}

/// Apply an `.override` file to a parsed class, as if its text followed the
/// `.conf`. On error the class is left untouched and the error names the
/// override's path; the caller keeps using the `.conf` alone.
pub fn apply_override(class: &JobClass, path: &str, text: &str) -> Result<JobClass, ConfigError> {
    let mut merged = class.clone();
    stanza::parse_into(&mut merged, text).map_err(|e| ConfigError::from_parse(path, e))?;
    Ok(merged)
}

/// Check `/etc/init.conf`, which may hold comments only.
pub fn parse_init_conf(path: &str, text: &str) -> Result<(), ConfigError> {
    stanza::parse_empty_table(text).map_err(|e| ConfigError::from_parse(path, e))
}
