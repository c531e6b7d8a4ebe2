//! Malformed authentication lines on the control socket end that client's
//! handshake only: init neither panics into a re-exec nor stops serving.

mod common;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::process::Command;
use std::time::Duration;

/// Connect to `unix:abstract=NAME` and send `bytes`; read until the
/// daemon closes the connection (or a short while passes).
fn send_raw(address: &str, bytes: &[u8]) {
    let name = address
        .strip_prefix("unix:abstract=")
        .expect("an abstract session address");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("socket address");
    let mut s = UnixStream::connect_addr(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

#[test]
fn empty_handshake_lines_do_not_disturb_init() {
    let s = common::start_session("handshake", &[("svc", "exec sleep 1000\n")], &["--verbose"]);
    let ctl = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_initctl"))
            .args(args)
            .env("UPSTART_SESSION", &s.address)
            .output()
            .expect("initctl");
        assert!(o.status.success(), "initctl {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = ctl(&["start", "svc"]);
    // An empty line first, and one after a well-formed command: both made
    // the handshake code index before the start of its buffer.
    send_raw(&s.address, b"\n");
    send_raw(&s.address, b"\0AUTH EXTERNAL 30\r\n\n");
    assert_eq!(ctl(&["status", "svc"]), before);
    let log = std::fs::read_to_string(s.dir.0.join("daemon.log")).unwrap_or_default();
    assert!(!log.contains("re-exec"), "init re-executed:\n{log}");
    assert!(log.contains("panic in thread control:"), "{log}");
}
