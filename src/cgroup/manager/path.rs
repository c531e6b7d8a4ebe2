//! Cgroup paths as clients give them: relative to a base cgroup, no way
//! out of it.

use super::error::{CgError, Result};

/// A validated cgroup path below some base: its components, none of them
/// empty, `.` or `..`; no components at all means the base itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// A client's path for a relative method. `/` (alone) names the base
    /// itself; anything else must be relative.
    pub fn relative(path: &str) -> Result<Self> {
        if path == "/" {
            return Ok(RelPath(Vec::new()));
        }
        if path.starts_with('/') {
            return Err(CgError::invalid(format!(
                "cgroup path must be relative to the caller's cgroup: {path:?}"
            )));
        }
        Self::components(path)
    }

    /// A client's path for an `Abs` method: relative to the manager's own
    /// cgroup, leading `/`s allowed (so `GetPidCgroupAbs`'s answer, `/`
    /// included, can be joined with a relative path by plain `/`).
    pub fn absolute(path: &str) -> Result<Self> {
        let rest = path.trim_start_matches('/');
        if rest.is_empty() && !path.is_empty() {
            return Ok(RelPath(Vec::new()));
        }
        Self::components(rest)
    }

    fn components(path: &str) -> Result<Self> {
        if path.is_empty() {
            return Err(CgError::invalid("empty cgroup path"));
        }
        let mut parts = Vec::new();
        for part in path.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(CgError::invalid(format!(
                    "bad cgroup path {path:?}: empty, '.' and '..' components are not allowed"
                )));
            }
            parts.push(part.to_string());
        }
        Ok(RelPath(parts))
    }

    pub fn is_base(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// Append to a hierarchy path (`/`-rooted).
    pub fn under(&self, base: &str) -> String {
        let mut out = base.trim_end_matches('/').to_string();
        for p in &self.0 {
            out.push('/');
            out.push_str(p);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }
}

/// A file name inside a cgroup directory (a key such as `pids.max`).
pub fn file_name(name: &str) -> Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(CgError::invalid(format!(
            "bad cgroup file name {name:?}: a plain file name is expected"
        )));
    }
    Ok(name)
}

/// `path` relative to `base` (both hierarchy paths), as `/`-rooted text;
/// `None` when `path` is not inside `base`.
pub fn relative_to(path: &str, base: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return Some(if path.is_empty() {
            "/".into()
        } else {
            path.into()
        });
    }
    match path.strip_prefix(base) {
        Some("") => Some("/".into()),
        Some(rest) if rest.starts_with('/') => Some(rest.to_string()),
        _ => None,
    }
}

/// The deepest cgroup that contains both `a` and `b` (hierarchy paths).
pub fn common_ancestor(a: &str, b: &str) -> String {
    let mut out = String::new();
    for (x, y) in a
        .split('/')
        .filter(|p| !p.is_empty())
        .zip(b.split('/').filter(|p| !p.is_empty()))
    {
        if x != y {
            break;
        }
        out.push('/');
        out.push_str(x);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            RelPath::relative("upstart/foo").unwrap().under("/a"),
            "/a/upstart/foo"
        );
        assert_eq!(RelPath::relative("x").unwrap().under("/"), "/x");
        assert!(RelPath::relative("/").unwrap().is_base());
        assert_eq!(RelPath::relative("/").unwrap().under("/"), "/");
        for bad in ["", "/x", "a/../b", "..", "a//b", "a/", "./a"] {
            assert!(RelPath::relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absolute_paths() {
        assert!(RelPath::absolute("/").unwrap().is_base());
        assert_eq!(RelPath::absolute("/a/b").unwrap().under("/m"), "/m/a/b");
        assert_eq!(RelPath::absolute("a").unwrap().under("/m"), "/m/a");
        assert_eq!(RelPath::absolute("//a/b").unwrap().under("/m"), "/m/a/b");
        assert!(RelPath::absolute("/a/..").is_err());
        assert!(RelPath::absolute("").is_err());
    }

    #[test]
    fn relative_to_base() {
        assert_eq!(relative_to("/a/b", "/a").as_deref(), Some("/b"));
        assert_eq!(relative_to("/a", "/a").as_deref(), Some("/"));
        assert_eq!(relative_to("/ab", "/a"), None);
        assert_eq!(relative_to("/x/y", "/").as_deref(), Some("/x/y"));
    }

    #[test]
    fn common_ancestors() {
        assert_eq!(common_ancestor("/t/jail", "/t/deleg/direct"), "/t");
        assert_eq!(common_ancestor("/t/deleg", "/t/deleg/direct"), "/t/deleg");
        assert_eq!(common_ancestor("/a", "/b"), "/");
        assert_eq!(common_ancestor("/", "/x"), "/");
        assert_eq!(common_ancestor("/ab/c", "/a/c"), "/");
    }

    #[test]
    fn file_names() {
        assert!(file_name("pids.max").is_ok());
        assert!(file_name("../x").is_err());
        assert!(file_name("").is_err());
    }
}
