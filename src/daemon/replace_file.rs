//! Files init writes in directories that others may be able to write to
//! (a session's runtime directory, the log directory): never through a
//! symbolic link or onto a file someone planted. The text goes to a new
//! file created beside the target (`O_CREAT|O_EXCL|O_NOFOLLOW`), which
//! then replaces the target by `rename`: a link planted at either name is
//! replaced or removed, never followed.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstat, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReplaceError {
    #[error("{0}")]
    Sys(#[from] Errno),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{name} is not owned by uid {uid}")]
    NotOwned { name: String, uid: u32 },
}

/// Open directory `path` (following links: the caller chose it).
pub fn open_dir(path: &Path) -> Result<OwnedFd, ReplaceError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    Ok(nix::fcntl::open(path, flags, Mode::empty())?)
}

/// Open (creating it with mode 0700 if missing) the directory `name`
/// inside `dir`, refusing a link and a directory not owned by `uid`.
pub fn own_subdir(dir: &impl AsFd, name: &str, uid: u32) -> Result<OwnedFd, ReplaceError> {
    match mkdirat(dir, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let sub = openat(dir, name, flags, Mode::empty())?;
    if fstat(&sub)?.st_uid != uid {
        return Err(ReplaceError::NotOwned {
            name: name.to_string(),
            uid,
        });
    }
    Ok(sub)
}

/// Make `name` in `dir` a new file of mode `mode` holding `data`.
pub fn replace(dir: &impl AsFd, name: &str, data: &[u8], mode: u32) -> Result<(), ReplaceError> {
    let temporary = format!(".{name}.new");
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(mode);
    let fd = match openat(dir, temporary.as_str(), flags, mode) {
        // Left by an earlier attempt, or planted: remove it (a link is
        // removed, not followed) and try once more.
        Err(Errno::EEXIST) => {
            unlinkat(dir, temporary.as_str(), UnlinkatFlags::NoRemoveDir)?;
            openat(dir, temporary.as_str(), flags, mode)?
        }
        other => other?,
    };
    let written = std::fs::File::from(fd).write_all(data);
    let renamed = written
        .map_err(ReplaceError::from)
        .and_then(|()| Ok(renameat(dir, temporary.as_str(), dir, name)?));
    if renamed.is_err() {
        let _ = unlinkat(dir, temporary.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    renamed
}
