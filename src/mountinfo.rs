//! Lines of `/proc/PID/mountinfo`, for the cgroup manager (which
//! hierarchies are mounted where) and for init's spawning (which paths lie
//! on file systems that can hang).
//!
//! A line is `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] -
//! FSTYPE SOURCE SUPER-OPTIONS`, fields separated by one space, with
//! spaces, tabs, newlines and backslashes in paths written as octal
//! escapes (`\040`).

/// One mount, its paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The directory of the file system that the mount shows.
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// File system type, with any subtype (`fuse.sshfs`).
    pub fstype: &'a str,
    /// The file system's own options (`rw,cpu,cpuacct`).
    pub super_options: &'a str,
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (byte, octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line, or `None` where it is not a mountinfo line.
pub fn entry(line: &str) -> Option<Entry<'_>> {
    let mut fields = line.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    // Past the optional fields, up to the separator.
    fields.find(|f| *f == "-")?;
    let fstype = fields.next()?;
    let _source = fields.next()?;
    let super_options = fields.next()?;
    Some(Entry {
        root: unescape(root),
        mount_point: unescape(mount_point),
        fstype,
        super_options,
    })
}

/// Every mount of a mountinfo text, in its order (a later mount on the
/// same point hides the earlier ones).
pub fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().filter_map(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_past_the_optional_ones() {
        let e = entry(
            "50 23 0:32 /sub /mnt/my\\040mem rw shared:9 master:2 - cgroup2 none rw,nsdelegate",
        )
        .expect("entry");
        assert_eq!(e.root, "/sub");
        assert_eq!(e.mount_point, "/mnt/my mem");
        assert_eq!(e.fstype, "cgroup2");
        assert_eq!(e.super_options, "rw,nsdelegate");
    }

    #[test]
    fn broken_lines_are_passed_over() {
        let text = "garbage\n1 2 3 / /x rw\n36 35 98:0 / /mnt rw - nfs4 srv:/ rw\n";
        let all: Vec<Entry<'_>> = entries(text).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].mount_point, "/mnt");
        assert_eq!(all[0].fstype, "nfs4");
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("a\\134b\\011c"), "a\\b\tc");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
