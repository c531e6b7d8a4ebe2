//! Letting go of program text init is not using.
//!
//! Every page fault on a file mapping maps up to 16 neighbouring pages
//! of the page cache too, so loading the job files, answering a call or
//! a spawn storm leaves most of init's own code and libc mapped, and
//! counted as init's resident memory, long after it ran. Once things are
//! quiet (the engine's loop and the control side's each see a second
//! without work), init drops those pages from its page tables
//! (`MADV_DONTNEED`).
//! The page cache keeps them: the next code that runs faults its pages
//! back in from memory.
//!
//! Only the text and read-only data of the program and of its shared
//! libraries are dropped, and only mappings that hold no private copy of
//! any page (a relocated, then write-protected, segment does), so that
//! what comes back is what was there. Those mappings live as long as the
//! process (init loads no library it later unloads).

/// Drop the pages of the program's and its libraries' read-only file
/// mappings from this process's page tables.
pub fn release() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let program = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (start, len) in droppable(&smaps, &program) {
        // SAFETY: the range is one of this process's read-only file
        // mappings with no private page: dropping it loses nothing, the
        // next access reads the same bytes from the file again.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// One mapping's header line: range, permissions, and whether the file
/// is the program or a shared library.
struct Mapping {
    start: usize,
    len: usize,
    eligible: bool,
}

/// The (start, length) of every mapping in `smaps` that may be dropped:
/// not writable, backed by `program` or a shared library, no anonymous
/// (copied) page.
fn droppable(smaps: &str, program: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        let Some(first) = line.split_ascii_whitespace().next() else {
            continue;
        };
        if let Some(field) = first.strip_suffix(':') {
            if field == "Anonymous" {
                let copied = line.split_ascii_whitespace().nth(1) != Some("0");
                if let Some(m) = current.take().filter(|m| m.eligible && !copied) {
                    out.push((m.start, m.len));
                }
            }
            continue;
        }
        current = header(line, program);
    }
    out
}

fn header(line: &str, program: &str) -> Option<Mapping> {
    let mut words = line.splitn(6, ' ');
    let (start, end) = words.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = words.next()?;
    let _offset = words.next()?;
    let _device = words.next()?;
    let inode = words.next()?;
    let path = words.next().unwrap_or_default().trim_start();
    let read_only = perms.as_bytes().get(1) == Some(&b'-');
    let file = inode != "0" && !path.is_empty() && !path.starts_with('[');
    let ours = path == program || is_library(path);
    Some(Mapping {
        start,
        len: end.checked_sub(start)?,
        eligible: read_only && file && ours,
    })
}

/// `libc.so.6`, `ld-linux-x86-64.so.2`, `libnss_files.so.2`.
fn is_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.ends_with(".so") || name.contains(".so.")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 1234                       /usr/sbin/outset
Size:               1024 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
55d0a0100000-55d0a0400000 r-xp 00100000 08:01 1234                       /usr/sbin/outset
Size:               3072 kB
Anonymous:             0 kB
55d0a0400000-55d0a0420000 r--p 00400000 08:01 1234                       /usr/sbin/outset
Anonymous:           128 kB
55d0a0420000-55d0a0421000 rw-p 00420000 08:01 1234                       /usr/sbin/outset
Anonymous:             4 kB
55d0a1000000-55d0a1200000 rw-p 00000000 00:00 0                          [heap]
Anonymous:          2048 kB
7f0000000000-7f0000028000 r--p 00000000 08:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000028000-7f00001a0000 r-xp 00028000 08:01 99                         /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000300000-7f0000400000 r--p 00000000 08:01 77                         /etc/some data (deleted)
Anonymous:             0 kB
7f0000400000-7f0000401000 r--p 00000000 00:00 0 
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_unmodified_read_only_program_and_library_mappings() {
        assert_eq!(
            droppable(SMAPS, "/usr/sbin/outset"),
            [
                (0x55d0a0000000, 0x100000),
                (0x55d0a0100000, 0x300000),
                (0x7f0000000000, 0x28000),
                (0x7f0000028000, 0x178000),
            ]
        );
    }

    #[test]
    fn a_replaced_program_is_still_recognised() {
        let text = "55d0a0100000-55d0a0400000 r-xp 00100000 08:01 1234                       /usr/sbin/outset (deleted)\nAnonymous:             0 kB\n";
        assert_eq!(
            droppable(text, "/usr/sbin/outset (deleted)"),
            [(0x55d0a0100000, 0x300000)]
        );
        assert!(droppable(text, "/usr/sbin/other").is_empty());
    }

    #[test]
    fn garbage_drops_nothing() {
        assert!(droppable("", "/x").is_empty());
        assert!(droppable("zz-yy r-xp 0 0 1 /lib/libc.so.6\nAnonymous: 0 kB\n", "/x").is_empty());
        assert!(droppable("Anonymous: 0 kB\n", "/x").is_empty());
    }
}
