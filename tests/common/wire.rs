//! Hand-made clients of init's control socket: raw connections, the
//! SASL handshake, hand-built headers, and what init did to a connection.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

/// A raw connection to `unix:abstract=NAME`.
pub fn raw(address: &str) -> UnixStream {
    let name = address
        .strip_prefix("unix:abstract=")
        .expect("abstract address");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
    UnixStream::connect_addr(&addr).expect("connect")
}

/// What a client of init's own user sends to authenticate (SASL
/// EXTERNAL), `BEGIN` included.
pub fn handshake_lines() -> Vec<u8> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() }.to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes()
}

/// Read init's `OK GUID` line (after `handshake_lines`).
pub fn read_ok(s: &mut UnixStream) {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut b).expect("auth reply"), 1, "auth refused");
        line.push(b[0]);
    }
    assert!(
        line.starts_with(b"OK "),
        "{}",
        String::from_utf8_lossy(&line)
    );
}

/// `s` past the D-Bus handshake, ready for hand-made messages.
pub fn authenticate(s: &mut UnixStream) {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(&handshake_lines()).expect("auth");
    read_ok(s);
}

/// A raw connection past the handshake.
pub fn raw_authenticated(address: &str) -> UnixStream {
    let mut s = raw(address);
    authenticate(&mut s);
    s
}

/// The 16-byte fixed header of a little-endian method call whose body and
/// header-field array claim the given lengths.
pub fn header(body_len: u32, fields_len: u32) -> Vec<u8> {
    let mut h = vec![b'l', 1, 0, 1];
    h.extend_from_slice(&body_len.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&fields_len.to_le_bytes());
    h
}

/// Whether init shut the connection down within `secs`, seen without
/// reading anything (POLLRDHUP is raised while data is still queued).
pub fn hung_up(s: &UnixStream, secs: u64) -> bool {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let mut fd = libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, 200) };
        if n > 0 && fd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return true;
        }
    }
    false
}

/// How many of `streams` init has shut down by now, seen without reading
/// or waiting.
pub fn hung_up_now(streams: &[UnixStream]) -> usize {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = streams
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        })
        .collect();
    // SAFETY: valid pollfds for the duration of the call; no waiting.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    fds.iter()
        .filter(|f| f.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0)
        .count()
}

/// Whether the peer has closed `s` (reads, bounded, until end of file).
pub fn closed_by_peer(s: &mut UnixStream, secs: u64) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {}
        }
    }
    false
}

/// Read one whole message from `s`: its type (1 call, 2 return, 3 error,
/// 4 signal) and its bytes.
pub fn read_message(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut fixed = [0u8; 16];
    s.read_exact(&mut fixed).expect("message header");
    let word = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(fixed[0], b'l', "init writes little-endian messages");
    let header = 16 + word(12);
    let total = header.next_multiple_of(8) + word(4);
    let mut rest = vec![0u8; total - 16];
    s.read_exact(&mut rest).expect("message");
    let mut all = fixed.to_vec();
    all.extend(rest);
    (fixed[1], all)
}
