//! Fuzz the restore of outset's own re-exec payload (`--state-fd`).
//!
//! The input goes through the same decoding and checks the daemon applies
//! before it adopts a previous image's state. Beyond "never panics": a
//! payload that is accepted survives being driven through the loop's
//! inputs (see drive.rs).

#![no_main]

#[path = "drive.rs"]
mod drive;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match outset::daemon::decode_state(data) {
        Ok(engine) => drive::drive(engine),
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});
