//! Fuzz `$VAR` expansion: arbitrary text against a small fixed environment.
//!
//! Invariants checked, beyond "never panics":
//! - text without `$` comes back unchanged;
//! - the `[String]`, `Vec<String>` and `HashMap` environments agree (no
//!   value holds `=`, so "last entry wins" and a map are the same table);
//! - errors format without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outset::config::expand;
use std::collections::HashMap;
use std::sync::OnceLock;

const ENV: &[&str] = &[
    "FOO=foo",
    "EMPTY=",
    "N=OO",
    "TTY=tty1",
    "FOO=bar",
    "SPACE=a b",
    "DOLLAR=$FOO}",
    "UPSTART_JOB=fuzz",
    "BARE",
];

fn env() -> &'static (Vec<String>, HashMap<String, String>) {
    static ENVS: OnceLock<(Vec<String>, HashMap<String, String>)> = OnceLock::new();
    ENVS.get_or_init(|| {
        let list: Vec<String> = ENV.iter().map(|s| s.to_string()).collect();
        let map = ENV
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (list, map)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (list, map) = env();

    let got = expand(&text, list);
    if let Err(e) = &got {
        let _ = format!("{e} {e:?}");
    }
    if !text.contains('$') {
        assert_eq!(got.as_deref(), Ok(&*text), "text without $ changed");
    }
    assert_eq!(expand(&text, list.as_slice()), got, "[String] env differs");
    assert_eq!(expand(&text, map), got, "HashMap env differs");
});
