//! Fuzz the import of Upstart 1.6-1.13 re-exec payloads.
//!
//! The input (lossy UTF-8) is handed to `outset::reexec::import`, as the
//! daemon does when a running Upstart re-execs into outset. Beyond "never
//! panics": errors format, and an imported engine survives being driven
//! through the loop's inputs (see drive.rs).

#![no_main]

#[path = "drive.rs"]
mod drive;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match outset::reexec::import(&text) {
        Ok(imported) => {
            let _ = imported.summary.to_string();
            drive::drive(imported.engine);
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});
