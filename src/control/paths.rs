//! Object paths of jobs and instances (control.md §2).

pub const MANAGER_PATH: &str = "/com/ubuntu/Upstart";
pub const MANAGER_IFACE: &str = "com.ubuntu.Upstart0_6";
pub const JOB_IFACE: &str = "com.ubuntu.Upstart0_6.Job";
pub const INSTANCE_IFACE: &str = "com.ubuntu.Upstart0_6.Instance";
/// outset's own properties of an instance, on the same objects (Upstart's
/// instance interface keeps exactly its properties).
pub const OUTSET_INSTANCE_IFACE: &str = "org.outset.Instance1";

/// Upstart's path element escaping: `[A-Za-z0-9]` kept, every other byte
/// `_` plus two lowercase hex digits, the empty string `_`.
pub fn escape(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The inverse of [`escape`].
pub fn unescape(s: &str) -> Option<String> {
    if s == "_" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'_' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn job_path(job: &str) -> String {
    format!("{MANAGER_PATH}/jobs/{}", escape(job))
}

pub fn instance_path(job: &str, instance: &str) -> String {
    format!("{}/{}", job_path(job), escape(instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("rc-sysinit"), "rc_2dsysinit");
        assert_eq!(escape("net/apache"), "net_2fapache");
        assert_eq!(escape("a-b.c"), "a_2db_2ec");
        assert_eq!(escape(""), "_");
        assert_eq!(escape("é"), "_c3_a9");
        for s in ["", "rc-sysinit", "net/apache", "é", "a_b"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
        }
        assert_eq!(unescape("_zz"), None);
        assert_eq!(instance_path("foo", ""), "/com/ubuntu/Upstart/jobs/foo/_");
        assert_eq!(
            instance_path("tty", "tty1"),
            "/com/ubuntu/Upstart/jobs/tty/tty1"
        );
    }
}
