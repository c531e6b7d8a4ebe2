//! Walking one job directory: every directory is read once, known by its
//! device and inode, so that a symbolic-link loop costs one `stat` and a
//! directory reached under two names gives its jobs one name.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::source::{is_ignored_dir, is_job_file, JobFileKind, SourceError};

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every `.conf` file, depth first, entries in byte order; the trees
    /// reached through symbolic links after the real ones.
    pub files: Vec<PathBuf>,
    /// Directories left out because they had been read already.
    pub skipped: Vec<SourceError>,
}

/// Walk `root`, calling `on_dir` for each directory just before it is read
/// (so that a watch added there misses nothing written after the read).
/// A missing `root` yields nothing; an unreadable one is an error.
/// Unreadable subdirectories and dangling links are passed over.
pub fn walk(root: &Path, on_dir: &mut dyn FnMut(&Path)) -> io::Result<Walk> {
    let meta = match fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Walk::default()),
        Err(e) => return Err(e),
    };
    let mut w = Walker {
        seen: HashMap::new(),
        linked: VecDeque::new(),
        out: Walk::default(),
        on_dir,
    };
    w.claim(root, &meta);
    w.read_tree(root, true)?;
    // A directory reached through a link is read only once every real
    // directory is known: its jobs keep their real names when it is also
    // inside this tree.
    while let Some((path, meta)) = w.linked.pop_front() {
        if w.claim(&path, &meta) {
            let _ = w.read_tree(&path, false);
        }
    }
    Ok(w.out)
}

struct Walker<'a> {
    /// Where each directory read so far was first read.
    seen: HashMap<(u64, u64), PathBuf>,
    /// Directories met through symbolic links, still to be read.
    linked: VecDeque<(PathBuf, fs::Metadata)>,
    out: Walk,
    on_dir: &'a mut dyn FnMut(&Path),
}

impl Walker<'_> {
    /// Take `dir` for reading unless it was read already (then say why it
    /// is left out).
    fn claim(&mut self, dir: &Path, meta: &fs::Metadata) -> bool {
        let key = (meta.dev(), meta.ino());
        match self.seen.get(&key) {
            None => {
                self.seen.insert(key, dir.to_path_buf());
                true
            }
            Some(first) if dir.starts_with(first) => {
                self.out.skipped.push(SourceError::DirLoop {
                    path: dir.display().to_string(),
                });
                false
            }
            Some(first) => {
                self.out.skipped.push(SourceError::DirAlias {
                    path: dir.display().to_string(),
                    first: first.display().to_string(),
                });
                false
            }
        }
    }

    /// The sorted entries of a directory, told to `on_dir` first.
    fn entries(&mut self, dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
        (self.on_dir)(dir);
        let mut entries: Vec<_> = fs::read_dir(dir)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        Ok(entries)
    }

    /// Read `top` (already claimed) and its real subdirectories, depth
    /// first without recursion; linked directories are queued. Only an
    /// unreadable `top` is an error, and only when `strict`.
    fn read_tree(&mut self, top: &Path, strict: bool) -> io::Result<()> {
        let first = match self.entries(top) {
            Ok(e) => e,
            Err(e) if strict => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut stack = vec![first.into_iter()];
        while let Some(level) = stack.last_mut() {
            let Some(entry) = level.next() else {
                stack.pop();
                continue;
            };
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // The entry's own type; a stat only for links (and file
            // systems that do not tell the type).
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let linked = kind.is_symlink() || !(kind.is_dir() || kind.is_file());
            let meta = if linked || kind.is_dir() {
                match fs::metadata(&path) {
                    Ok(m) => Some(m),
                    // Dangling, unreadable, or a loop the kernel gave up on.
                    Err(_) => continue,
                }
            } else {
                None
            };
            match meta {
                Some(m) if m.is_dir() => {
                    if is_ignored_dir(&name) {
                        continue;
                    }
                    if linked {
                        self.linked.push_back((path, m));
                    } else if self.claim(&path, &m) {
                        // An unreadable subdirectory must not hide its
                        // siblings.
                        if let Ok(e) = self.entries(&path) {
                            stack.push(e.into_iter());
                        }
                    }
                }
                Some(m) if !m.is_file() => {}
                _ => {
                    if is_job_file(&name) == Some(JobFileKind::Conf) {
                        self.out.files.push(path);
                    }
                }
            }
        }
        Ok(())
    }
}
