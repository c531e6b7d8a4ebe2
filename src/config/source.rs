//! Configuration sources: which directories and files are read, which
//! entries are job files, job names, override lookup, and loading a whole
//! source list (job-config.md §1, §2, §4).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

use super::class::{ClassDefaults, JobClass};
use super::error::ConfigError;
use super::walk::walk;
use super::{apply_override, parse_init_conf, parse_job};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SourceKind {
    /// A directory scanned recursively for job files.
    Dir,
    /// A single file (`/etc/init.conf`), which never yields a job.
    File,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfSource {
    pub path: PathBuf,
    pub kind: SourceKind,
}

impl ConfSource {
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        ConfSource {
            path: path.into(),
            kind: SourceKind::Dir,
        }
    }

    pub fn file(path: impl Into<PathBuf>) -> Self {
        ConfSource {
            path: path.into(),
            kind: SourceKind::File,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourceError {
    #[error("{path}: Unable to load configuration: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("Unable to determine the user configuration directories: {0}")]
    NoUserDirs(&'static str),
    /// A directory inside itself (a symbolic link to `.` or an ancestor,
    /// a bind mount): left out.
    #[error("{path}: Directory loop detected")]
    DirLoop { path: String },
    /// A second name for a directory already read: left out, so that its
    /// jobs are not loaded twice under two names.
    #[error("{path}: Same directory as {first}, not read twice")]
    DirAlias { path: String, first: String },
}

/// System mode (§1.1): prepend dirs, `/etc/init.conf`, the conf dirs (or
/// `$UPSTART_CONFDIR`, or `/etc/init`), append dirs.
pub fn system_sources(
    prepend: &[PathBuf],
    confdirs: &[PathBuf],
    append: &[PathBuf],
    env_confdir: Option<&str>,
) -> Vec<ConfSource> {
    let mut out: Vec<ConfSource> = prepend.iter().cloned().map(ConfSource::dir).collect();
    out.push(ConfSource::file("/etc/init.conf"));
    if !confdirs.is_empty() {
        out.extend(confdirs.iter().cloned().map(ConfSource::dir));
    } else {
        let dir = env_confdir.filter(|d| !d.is_empty()).unwrap_or("/etc/init");
        out.push(ConfSource::dir(dir));
    }
    out.extend(append.iter().cloned().map(ConfSource::dir));
    out
}

/// User mode (§1.2). The default list is only computed when no `--confdir`
/// was given; if it cannot be built (no usable home), that is an error
/// rather than the reference's endless retry.
pub fn user_sources(
    prepend: &[PathBuf],
    confdirs: &[PathBuf],
    append: &[PathBuf],
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ConfSource>, SourceError> {
    let mut out: Vec<ConfSource> = prepend.iter().cloned().map(ConfSource::dir).collect();
    if !confdirs.is_empty() {
        out.extend(confdirs.iter().cloned().map(ConfSource::dir));
    } else {
        let home = getenv("HOME").filter(|h| h.starts_with('/'));
        let config_home = match getenv("XDG_CONFIG_HOME").filter(|d| d.starts_with('/')) {
            Some(d) => PathBuf::from(d),
            None => match &home {
                Some(h) => Path::new(h).join(".config"),
                None => {
                    return Err(SourceError::NoUserDirs(
                        "HOME is not set and XDG_CONFIG_HOME is not absolute",
                    ))
                }
            },
        };
        out.push(ConfSource::dir(config_home.join("upstart")));
        if let Some(h) = &home {
            out.push(ConfSource::dir(Path::new(h).join(".init")));
        }
        let dirs = getenv("XDG_CONFIG_DIRS")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/etc/xdg".to_string());
        for entry in dirs.split(':').filter(|e| e.starts_with('/')) {
            out.push(ConfSource::dir(Path::new(entry).join("upstart")));
        }
        if getenv("UPSTART_NO_SYSTEM_USERCONFDIR").is_none() {
            out.push(ConfSource::dir("/usr/share/upstart/sessions"));
        }
    }
    out.extend(append.iter().cloned().map(ConfSource::dir));
    Ok(out)
}

/// What a directory entry's name makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFileKind {
    Conf,
    Override,
}

/// A candidate is named `X.conf` or `X.override` where the last dot is not
/// the first character of the name.
pub fn is_job_file(name: &str) -> Option<JobFileKind> {
    let dot = name.rfind('.')?;
    if dot == 0 {
        return None;
    }
    match name.get(dot + 1..).unwrap_or_default() {
        "conf" => Some(JobFileKind::Conf),
        "override" => Some(JobFileKind::Override),
        _ => None,
    }
}

/// Directory names skipped while scanning (backups, VCS, package manager
/// leftovers).
pub(super) fn is_ignored_dir(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "RCS",
        "CVS",
        "CVS.adm",
        "SCCS",
        "BitKeeper",
        "{arch}",
        "_darcs",
    ];
    const SUFFIX: &[&str] = &["~", ".bak", ".BAK", ".swp", ".swo", ".swn", ",v"];
    if name.starts_with('.') || EXACT.contains(&name) || SUFFIX.iter().any(|s| name.ends_with(s)) {
        return true;
    }
    if name.len() >= 2 && name.starts_with('#') && name.ends_with('#') {
        return true;
    }
    if let Some(ext) = name.rfind('.').and_then(|dot| name.get(dot..)) {
        if ext.starts_with(".dpkg-") || matches!(ext, ".rpmsave" | ".rpmorig" | ".rpmnew") {
            return true;
        }
    }
    // `name;` plus eight hex digits: an rpm/dpkg temporary.
    let b = name.as_bytes();
    match b.len().checked_sub(9).and_then(|i| b.get(i..)) {
        Some([b';', hex @ ..]) => b.len() > 9 && hex.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

/// Every `.conf` file below `dir`, depth first, entries in byte order,
/// each directory once (walk.rs). A missing directory yields nothing.
pub fn scan_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    walk(dir, &mut |_| {}).map(|w| w.files)
}

/// The job name of `path` inside `source`: the relative path without
/// `.conf` (`net/apache`).
pub fn job_name(source: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(source).ok()?;
    let rel = rel.to_string_lossy();
    let rel = rel.trim_start_matches('/');
    Some(rel.strip_suffix(".conf").unwrap_or(rel).to_string())
}

/// The best override for job `name` whose `.conf` is in source `upto`: the
/// first regular `DIR/NAME.override` among the directory sources up to and
/// including that one.
pub fn find_override(sources: &[ConfSource], upto: usize, name: &str) -> Option<PathBuf> {
    sources
        .iter()
        .take(upto + 1)
        .filter(|s| s.kind == SourceKind::Dir)
        .map(|s| s.path.join(format!("{name}.override")))
        .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

/// Read a file as text; bytes that are not UTF-8 are replaced rather than
/// rejecting the whole file.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = fs::read(path).map_err(|e| ConfigError::Load {
        path: path.display().to_string(),
        reason: io_reason(&e),
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The strerror text of an I/O error, without Rust's "(os error N)".
fn io_reason(e: &io::Error) -> String {
    crate::os_error::without_errno(&e.to_string()).to_string()
}

/// Parse one `.conf` and apply its override, if any. An invalid override is
/// reported and the `.conf` alone is used (job-config.md §4, Decision: fix).
pub fn load_job_file(
    name: &str,
    conf: &Path,
    override_path: Option<&Path>,
    defaults: &ClassDefaults,
) -> (Result<JobClass, ConfigError>, Option<ConfigError>) {
    let conf_display = conf.display().to_string();
    let class = match read_text(conf).and_then(|t| parse_job(name, &conf_display, &t, defaults)) {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    let Some(ov) = override_path else {
        return (Ok(class), None);
    };
    let ov_display = ov.display().to_string();
    match read_text(ov).and_then(|t| apply_override(&class, &ov_display, &t)) {
        Ok(merged) => (Ok(merged), None),
        Err(e) => (Ok(class), Some(e)),
    }
}

/// One successfully parsed job file.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    pub name: String,
    /// Index of its source in the source list.
    pub source: usize,
    pub conf: PathBuf,
    pub override_path: Option<PathBuf>,
    pub class: JobClass,
}

/// The result of loading every source.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    /// Every parsed class, in source order then scan order.
    pub jobs: Vec<LoadedJob>,
    pub errors: Vec<ConfigError>,
    /// Jobs whose `.conf` failed to load: (index in `errors`, job name).
    pub rejected: Vec<(usize, String)>,
    pub source_errors: Vec<SourceError>,
    /// Directories left out because they had been read already (loops,
    /// second names).
    pub skipped_dirs: Vec<SourceError>,
}

impl LoadedConfig {
    /// The registered class of each name: the one from the earliest source.
    pub fn registered(&self) -> Vec<&LoadedJob> {
        let mut seen = std::collections::HashSet::new();
        self.jobs
            .iter()
            .filter(|j| seen.insert(j.name.as_str()))
            .collect()
    }
}

/// Load every source. One bad file never stops the others.
pub fn load_sources(sources: &[ConfSource], defaults: &ClassDefaults) -> LoadedConfig {
    load_sources_watching(sources, defaults, &mut |_| {})
}

/// `load_sources`, calling `on_dir` with each directory just before it is
/// read (where the daemon adds its inotify watches).
pub fn load_sources_watching(
    sources: &[ConfSource],
    defaults: &ClassDefaults,
    on_dir: &mut dyn FnMut(&Path),
) -> LoadedConfig {
    let mut out = LoadedConfig::default();
    for (idx, source) in sources.iter().enumerate() {
        match source.kind {
            SourceKind::File => {
                if !source.path.exists() {
                    continue;
                }
                let display = source.path.display().to_string();
                if let Err(e) = read_text(&source.path).and_then(|t| parse_init_conf(&display, &t))
                {
                    out.errors.push(e);
                }
            }
            SourceKind::Dir => {
                let files = match walk(&source.path, on_dir) {
                    Ok(w) => {
                        out.skipped_dirs.extend(w.skipped);
                        w.files
                    }
                    Err(e) => {
                        out.source_errors.push(SourceError::Unreadable {
                            path: source.path.display().to_string(),
                            reason: io_reason(&e),
                        });
                        continue;
                    }
                };
                for conf in files {
                    let Some(name) = job_name(&source.path, &conf) else {
                        continue;
                    };
                    let override_path = find_override(sources, idx, &name);
                    let (class, ov_err) =
                        load_job_file(&name, &conf, override_path.as_deref(), defaults);
                    out.errors.extend(ov_err.clone());
                    match class {
                        Ok(class) => out.jobs.push(LoadedJob {
                            name,
                            source: idx,
                            conf,
                            override_path: override_path.filter(|_| ov_err.is_none()),
                            class,
                        }),
                        Err(e) => {
                            out.rejected.push((out.errors.len(), name));
                            out.errors.push(e);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        assert_eq!(is_job_file("foo.conf"), Some(JobFileKind::Conf));
        assert_eq!(is_job_file(".x.conf"), Some(JobFileKind::Conf));
        assert_eq!(is_job_file("foo.override"), Some(JobFileKind::Override));
        for no in [
            ".conf",
            "foo.conf~",
            "foo.conf.bak",
            "foo.conf.dpkg-old",
            "conf",
            "foo",
        ] {
            assert_eq!(is_job_file(no), None, "{no}");
        }
    }

    #[test]
    fn ignored_dirs() {
        for yes in [
            ".git",
            "RCS",
            "CVS",
            "x~",
            "x.bak",
            "#x#",
            "x.dpkg-new",
            "x.rpmsave",
            "x;0123abcd",
            "_darcs",
            "{arch}",
            "x,v",
        ] {
            assert!(is_ignored_dir(yes), "{yes}");
        }
        for no in ["net", "sub.d", "x;0123abc", "#x"] {
            assert!(!is_ignored_dir(no), "{no}");
        }
    }

    #[test]
    fn system_order() {
        let s = system_sources(&["/p".into()], &[], &["/a".into()], Some("/env"));
        let paths: Vec<_> = s.iter().map(|s| s.path.display().to_string()).collect();
        assert_eq!(paths, ["/p", "/etc/init.conf", "/env", "/a"]);
        assert_eq!(s[1].kind, SourceKind::File);
        let s = system_sources(&[], &["/c1".into(), "/c2".into()], &[], Some("/env"));
        assert_eq!(s.last().map(|s| s.path.clone()), Some("/c2".into()));
        let s = system_sources(&[], &[], &[], None);
        assert_eq!(s[1].path, PathBuf::from("/etc/init"));
    }

    #[test]
    fn user_order() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_CONFIG_DIRS" => Some("/x1:relative:/x2".to_string()),
            _ => None,
        };
        let s = user_sources(&[], &[], &["/a".into()], &env).unwrap();
        let paths: Vec<_> = s.iter().map(|s| s.path.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/home/u/.config/upstart",
                "/home/u/.init",
                "/x1/upstart",
                "/x2/upstart",
                "/usr/share/upstart/sessions",
                "/a"
            ]
        );
        let env = |k: &str| match k {
            "XDG_CONFIG_HOME" => Some("/cfg".to_string()),
            "UPSTART_NO_SYSTEM_USERCONFDIR" => Some(String::new()),
            _ => None,
        };
        let s = user_sources(&[], &[], &[], &env).unwrap();
        let paths: Vec<_> = s.iter().map(|s| s.path.display().to_string()).collect();
        assert_eq!(paths, ["/cfg/upstart", "/etc/xdg/upstart"]);
        let none = |_: &str| None;
        assert!(user_sources(&[], &[], &[], &none).is_err());
        assert_eq!(
            user_sources(&[], &["/c".into()], &[], &none).unwrap().len(),
            1
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            job_name(
                Path::new("/etc/init"),
                Path::new("/etc/init/net/apache.conf")
            )
            .as_deref(),
            Some("net/apache")
        );
        assert_eq!(
            job_name(Path::new("/etc/init/"), Path::new("/etc/init/tty1.conf")).as_deref(),
            Some("tty1")
        );
    }
}
