//! upstart-file-bridge: `file` events from inotify (file-event(7)).
//!
//! A job's `FILE` is a file, a directory (ends in `/`) or a glob in its
//! last component. The bridge watches the directory that holds each one
//! (or, while that is missing, the nearest ancestor that exists, watching
//! again as directories appear) and emits `file FILE=<as the job wrote it>
//! EVENT=create|modify|delete [MATCH=<path>]`, without waiting.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::link::Serves;
use super::log::{DEBUG, WARN};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;
use crate::event::fnmatch::fnmatch;

const INOTIFY: Token = Token(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Create,
    Modify,
    Delete,
}

impl Change {
    fn word(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Modify => "modify",
            Change::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    File,
    /// Changes inside it count as `modify` with `MATCH`.
    Dir,
    /// The pattern of the last component.
    Glob(String),
}

/// One job's `file` match, resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Watch {
    /// `FILE` as the job wrote it: what the event carries.
    original: String,
    /// The path it names (for a glob, its directory).
    path: PathBuf,
    kind: Kind,
    /// The one change asked for, or all.
    only: Option<Change>,
}

impl Watch {
    fn wants(&self, c: Change) -> bool {
        self.only.is_none_or(|o| o == c)
    }

    /// The directory whose entries say whether the target exists.
    fn parent(&self) -> PathBuf {
        match self.kind {
            Kind::Glob(_) => self.path.clone(),
            _ => self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }
}

/// One `file` event: `FILE` as the job wrote it, the change, `MATCH`.
type Out = BTreeSet<(String, Change, Option<String>)>;

/// A file's identity: device and inode.
type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

pub struct FileBridge {
    user: bool,
    home: Option<PathBuf>,
    inotify: Option<Inotify>,
    watches: BTreeSet<Watch>,
    /// Watched directories.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// What a scan reported as created (path, and `FILE` of the watch
    /// it was for), while its directory stays watched. A directory is
    /// watched before it is read, so a file made in between is both seen
    /// by the read and reported by inotify: its creation, seen again for
    /// the same file, is not reported twice.
    scanned: HashMap<(PathBuf, String), FileId>,
}

impl FileBridge {
    pub fn new(user: bool) -> Self {
        FileBridge {
            user,
            home: std::env::var_os("HOME").map(PathBuf::from),
            inotify: None,
            watches: BTreeSet::new(),
            dirs: HashMap::new(),
            scanned: HashMap::new(),
        }
    }

    /// Resolve a job's match; warn about and skip a bad one.
    fn resolve(&self, w: &Wanted) -> Option<Watch> {
        let Some(file) = w.named("FILE") else {
            bridge_log!(WARN, "Ignored file event without FILE in {}", w.job);
            return None;
        };
        let only = match w.named("EVENT") {
            None => None,
            Some("create") => Some(Change::Create),
            Some("modify") => Some(Change::Modify),
            Some("delete") => Some(Change::Delete),
            Some(other) => {
                bridge_log!(WARN, "Ignored file event with EVENT={other} in {}", w.job);
                return None;
            }
        };
        let expanded = match (self.user, &self.home, file.strip_prefix('/')) {
            (_, _, Some(_)) => PathBuf::from(file),
            (true, Some(home), None) => {
                let rest = file
                    .strip_prefix("~/")
                    .or_else(|| file.strip_prefix("./"))
                    .unwrap_or(file);
                home.join(rest)
            }
            _ => {
                bridge_log!(
                    WARN,
                    "Ignored file event with relative FILE={file} in {}",
                    w.job
                );
                return None;
            }
        };
        let last = expanded
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (path, kind) = if file.ends_with('/') {
            (expanded, Kind::Dir)
        } else if last.contains(['*', '?', '[']) {
            let dir = expanded.parent().map(Path::to_path_buf).unwrap_or_default();
            (dir, Kind::Glob(last))
        } else {
            (expanded, Kind::File)
        };
        Some(Watch {
            original: file.to_string(),
            path,
            kind,
            only,
        })
    }

    /// Watch exactly the directories the current watches need; returns the
    /// ones newly watched.
    fn rewatch(&mut self) -> Vec<PathBuf> {
        let Some(inotify) = &self.inotify else {
            return Vec::new();
        };
        let mut need = BTreeSet::new();
        for w in &self.watches {
            let mut dir = w.parent();
            while !dir.is_dir() {
                match dir.parent() {
                    Some(p) => dir = p.to_path_buf(),
                    None => break,
                }
            }
            need.insert(dir);
            if w.kind == Kind::Dir && w.path.is_dir() {
                need.insert(w.path.clone());
            }
        }
        let have: BTreeSet<PathBuf> = self.dirs.values().cloned().collect();
        self.dirs.retain(|wd, dir| {
            let keep = need.contains(dir);
            if !keep {
                let _ = inotify.rm_watch(*wd);
            }
            keep
        });
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let mut added = Vec::new();
        for dir in need.difference(&have) {
            match inotify.add_watch(dir.as_path(), mask) {
                Ok(wd) => {
                    bridge_log!(DEBUG, "watching {}", dir.display());
                    self.dirs.insert(wd, dir.clone());
                    added.push(dir.clone());
                }
                Err(e) => bridge_log!(WARN, "Unable to watch {}: {e}", dir.display()),
            }
        }
        added
    }

    /// `create` events for what already exists of `w`, each remembered
    /// in `scanned`.
    fn existing(w: &Watch, out: &mut Out, scanned: &mut HashMap<(PathBuf, String), FileId>) {
        if !w.wants(Change::Create) {
            return;
        }
        let mut found = |path: PathBuf, matched: Option<String>| {
            if let Some(id) = file_id(&path) {
                scanned.insert((path, w.original.clone()), id);
            }
            out.insert((w.original.clone(), Change::Create, matched));
        };
        match &w.kind {
            Kind::File if w.path.exists() => found(w.path.clone(), None),
            Kind::Dir if w.path.is_dir() => found(w.path.clone(), None),
            Kind::Glob(pattern) => {
                for entry in std::fs::read_dir(&w.path).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if fnmatch(pattern, &name) {
                        let full = w.path.join(&name);
                        let shown = full.to_string_lossy().into_owned();
                        found(full, Some(shown));
                    }
                }
            }
            _ => {}
        }
    }

    /// Drop from `found` (the events of one change at `full`) the
    /// creations a scan already reported for this very file, and forget
    /// what the scans saw of `full` once it is gone or created anew.
    fn not_scanned(&mut self, full: &Path, c: Change, found: &mut Out) {
        if c == Change::Modify {
            return;
        }
        let now = file_id(full);
        found.retain(|(file, change, _)| {
            let seen = self.scanned.remove(&(full.to_path_buf(), file.clone()));
            !(c == Change::Create && *change == Change::Create && seen.is_some() && seen == now)
        });
        if c == Change::Delete {
            self.scanned.retain(|(p, _), _| p != full);
        }
    }

    /// Forget what the scans saw in directories no longer watched, or for
    /// watches that are gone.
    fn prune_scanned(&mut self) {
        let dirs: BTreeSet<&Path> = self.dirs.values().map(PathBuf::as_path).collect();
        let files: BTreeSet<&str> = self.watches.iter().map(|w| w.original.as_str()).collect();
        self.scanned.retain(|(p, file), _| {
            p.parent().is_some_and(|d| dirs.contains(d)) && files.contains(file.as_str())
        });
    }

    /// The events one change at `full` (in `dir`) means for the watches.
    fn changed(&self, dir: &Path, full: &Path, c: Change, out: &mut Out) {
        let shown = || Some(full.to_string_lossy().into_owned());
        for w in &self.watches {
            match &w.kind {
                Kind::File if w.path == full && w.wants(c) => {
                    out.insert((w.original.clone(), c, None));
                }
                Kind::Glob(pattern) if w.path == dir && w.wants(c) => {
                    let name = full
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    if fnmatch(pattern, &name) {
                        out.insert((w.original.clone(), c, shown()));
                    }
                }
                Kind::Dir if w.path == full && c != Change::Modify && w.wants(c) => {
                    out.insert((w.original.clone(), c, None));
                }
                Kind::Dir if w.path == dir && w.wants(Change::Modify) => {
                    out.insert((w.original.clone(), Change::Modify, shown()));
                }
                _ => {}
            }
        }
    }

    fn send(out: Out, ctx: &mut Ctx) {
        for (file, c, matched) in out {
            let mut env = vec![format!("FILE={file}"), format!("EVENT={}", c.word())];
            if let Some(m) = matched {
                env.push(format!("MATCH={m}"));
            }
            ctx.emit("file", env);
        }
    }
}

impl Bridge for FileBridge {
    const SERVES: Serves = |e| e == "file";

    fn start(&mut self, ctx: &mut Ctx) -> std::io::Result<()> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(std::io::Error::from)?;
        ctx.registry.register(
            &mut SourceFd(&inotify.as_fd().as_raw_fd()),
            INOTIFY,
            Interest::READABLE,
        )?;
        self.inotify = Some(inotify);
        Ok(())
    }

    fn jobs(&mut self, wanted: &[Wanted], ctx: &mut Ctx) {
        let new: BTreeSet<Watch> = wanted.iter().filter_map(|w| self.resolve(w)).collect();
        let fresh: Vec<Watch> = new.difference(&self.watches).cloned().collect();
        self.watches = new;
        // Watch first, then look: a file made in between is reported by
        // both, never by neither (`scanned`).
        self.rewatch();
        let mut out = BTreeSet::new();
        for w in &fresh {
            Self::existing(w, &mut out, &mut self.scanned);
        }
        self.prune_scanned();
        Self::send(out, ctx);
    }

    fn ready(&mut self, _token: Token, ctx: &mut Ctx) {
        let mut out = BTreeSet::new();
        loop {
            let batch = match self.inotify.as_ref().map(|i| i.read_events()) {
                Some(Ok(b)) if !b.is_empty() => b,
                _ => break,
            };
            for ev in batch {
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                let (Some(dir), Some(name)) = (self.dirs.get(&ev.wd), ev.name) else {
                    continue;
                };
                let c = if ev
                    .mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                {
                    Change::Create
                } else if ev
                    .mask
                    .intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
                {
                    Change::Delete
                } else {
                    Change::Modify
                };
                let dir = dir.clone();
                let full = dir.join(name);
                let mut found = BTreeSet::new();
                self.changed(&dir, &full, c, &mut found);
                self.not_scanned(&full, c, &mut found);
                out.append(&mut found);
            }
        }
        // Directories may have come or gone: follow them, and report what a
        // newly watched directory already holds.
        let added = self.rewatch();
        for w in &self.watches {
            if added.contains(&w.parent()) || (w.kind == Kind::Dir && added.contains(&w.path)) {
                Self::existing(w, &mut out, &mut self.scanned);
            }
        }
        self.prune_scanned();
        Self::send(out, ctx);
    }
}
