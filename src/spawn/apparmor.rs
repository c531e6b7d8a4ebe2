//! AppArmor (process-spawning.md §9): whether it is usable, and what the
//! main process of a job with `apparmor switch` writes before its exec.
//! The `apparmor load` stanza needs nothing here: it is an ordinary
//! `security` process running `/sbin/apparmor_parser -r -W PROFILE`.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::expand;

/// The kernel module's switch: AppArmor is on when it starts with `Y`.
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// The program `apparmor load` runs.
const PARSER: &str = "/sbin/apparmor_parser";

/// Present in a container (a distribution convention the reference
/// follows): profiles are then left alone.
const CONTAINER_TYPE: &str = "/run/container_type";

/// Present on a live CD (the same convention).
const LIVE_CD_PROFILES: &str = "/rofs/etc/apparmor.d";

/// Where a process asks to be confined at its next exec.
pub const EXEC_ATTR: &std::ffi::CStr = c"/proc/self/attr/exec";

/// Is AppArmor usable: enabled in the kernel, its parser an executable
/// file, and neither in a container nor on a live CD? Without it the
/// `security` process is not run and `apparmor switch` is skipped, both
/// silently. A few `stat`s on local pseudo and root file systems, so init
/// may ask before each spawn that needs to know.
pub fn available() -> bool {
    let mut first = [0u8; 1];
    let enabled = std::fs::File::open(ENABLED)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok()
        && first[0] == b'Y';
    let parser =
        std::fs::metadata(PARSER).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o100 != 0);
    enabled
        && parser
        && !Path::new(CONTAINER_TYPE).exists()
        && !Path::new(LIVE_CD_PROFILES).exists()
}

/// The text the main process writes to [`EXEC_ATTR`] for
/// `apparmor switch TEMPLATE`: `exec PROFILE\n`, the profile expanded
/// against the process environment. A profile that does not expand
/// fails the spawn as a failed switch, with `EINVAL`.
pub fn exec_request(template: &str, env: &[String]) -> Result<CString, i32> {
    let profile = expand(template, env).map_err(|_| libc::EINVAL)?;
    CString::new(format!("exec {profile}\n")).map_err(|_| libc::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_expanded_profile() {
        let env = vec!["NAME=cupsd".to_string(), "EMPTY=".to_string()];
        assert_eq!(
            exec_request("/usr/sbin/${NAME}", &env).as_deref(),
            Ok(c"exec /usr/sbin/cupsd\n")
        );
        assert_eq!(exec_request("plain", &env).as_deref(), Ok(c"exec plain\n"));
        assert_eq!(exec_request("$UNSET", &env), Err(libc::EINVAL));
    }
}
