//! upstart-udev-bridge: `SUBSYSTEM-device-ACTION` events from uevents
//! (upstart-udev-bridge(8)).
//!
//! With udevd running (`/run/udev/control` exists) the bridge listens to
//! udevd's netlink group, whose messages carry everything udev's rules
//! added (`ID_FS_*`, …); without it (containers, small machines) it reads
//! the kernel's own uevents. Only events some job's `start on` / `stop on`
//! names are sent to init.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::socket::{
    bind, recvfrom, socket, AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

use super::link::Serves;
use super::log::{DEBUG, INFO};
use super::run::{Bridge, Ctx};
use super::wanted::Wanted;
use crate::bridge_log;

const NETLINK: Token = Token(1);
/// The kernel's uevent multicast group, and udevd's.
const KERNEL_GROUP: u32 = 1;
const UDEV_GROUP: u32 = 2;
/// The largest uevent the kernel sends is 2 KiB of environment plus the
/// header; udevd's messages stay under 8 KiB. Longer ones are cut.
const BUFFER: usize = 16 * 1024;

pub struct UdevBridge {
    /// Keep bytes that are not printable (`--no-strip`).
    no_strip: bool,
    socket: Option<OwnedFd>,
    from_udev: bool,
    /// The event names some job waits for.
    wanted: BTreeSet<String>,
}

impl UdevBridge {
    pub fn new(no_strip: bool) -> Self {
        UdevBridge {
            no_strip,
            socket: None,
            from_udev: false,
            wanted: BTreeSet::new(),
        }
    }
}

/// One uevent as `KEY=VALUE` pairs, from either source's message.
pub fn properties(msg: &[u8], from_udev: bool) -> Option<Vec<(String, String)>> {
    let body = if from_udev {
        // libudev's header: "libudev\0", magic 0xfeedcafe (big-endian),
        // header size, properties offset, properties length (native).
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(msg.get(at..at + 4)?.try_into().ok()?))
        };
        if msg.get(..8)? != b"libudev\0" || word(8)?.to_be() != 0xfeed_cafe {
            return None;
        }
        let (off, len) = (word(16)? as usize, word(20)? as usize);
        msg.get(off..off.checked_add(len)?)?
    } else {
        // "ACTION@DEVPATH\0" then the pairs.
        let head = msg.iter().position(|&b| b == 0)?;
        if !msg.get(..head)?.contains(&b'@') {
            return None;
        }
        msg.get(head + 1..)?
    };
    Some(
        body.split(|&b| b == 0)
            .filter_map(|p| {
                let s = String::from_utf8_lossy(p);
                let (k, v) = s.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// Upstart's event for a uevent: name and environment.
pub fn event(props: &[(String, String)], no_strip: bool) -> Option<(String, Vec<String>)> {
    let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let clean = |s: &str| -> String {
        if no_strip {
            s.to_string()
        } else {
            s.chars().filter(|c| !c.is_control()).collect()
        }
    };
    let action = get("ACTION")?;
    let subsystem = get("SUBSYSTEM").unwrap_or_default();
    let devpath = get("DEVPATH")?;
    let suffix = match action {
        "add" => "added",
        "change" => "changed",
        "remove" => "removed",
        other => other,
    };
    let mut env = vec![format!(
        "KERNEL={}",
        clean(devpath.rsplit('/').next().unwrap_or_default())
    )];
    env.push(format!("DEVPATH={}", clean(devpath)));
    if let Some(n) = get("DEVNAME") {
        // The kernel names the node relative to /dev; udevd in full.
        let node = if n.starts_with('/') {
            n.to_string()
        } else {
            format!("/dev/{n}")
        };
        env.push(format!("DEVNAME={}", clean(&node)));
    }
    env.push(format!("SUBSYSTEM={}", clean(subsystem)));
    env.push(format!("ACTION={}", clean(action)));
    for (k, v) in props {
        if !matches!(k.as_str(), "DEVPATH" | "DEVNAME" | "SUBSYSTEM" | "ACTION") {
            env.push(format!("{}={}", clean(k), clean(v)));
        }
    }
    Some((format!("{}-device-{suffix}", clean(subsystem)), env))
}

impl Bridge for UdevBridge {
    const SERVES: Serves = |e| e.contains("-device-");

    fn start(&mut self, ctx: &mut Ctx) -> std::io::Result<()> {
        self.from_udev = std::path::Path::new("/run/udev/control").exists();
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        let group = if self.from_udev {
            UDEV_GROUP
        } else {
            KERNEL_GROUP
        };
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, group))?;
        ctx.registry
            .register(&mut SourceFd(&fd.as_raw_fd()), NETLINK, Interest::READABLE)?;
        bridge_log!(
            INFO,
            "reading uevents from {}",
            if self.from_udev {
                "udevd"
            } else {
                "the kernel"
            }
        );
        self.socket = Some(fd);
        Ok(())
    }

    fn jobs(&mut self, wanted: &[Wanted], _ctx: &mut Ctx) {
        self.wanted = wanted.iter().map(|w| w.event.clone()).collect();
    }

    fn ready(&mut self, _token: Token, ctx: &mut Ctx) {
        let Some(fd) = &self.socket else { return };
        let mut buf = vec![0u8; BUFFER];
        while let Ok((len, from)) = recvfrom::<NetlinkAddr>(fd.as_raw_fd(), &mut buf) {
            // Kernel messages come from port 0; anything else on that group
            // is some process pretending.
            if !self.from_udev && from.is_some_and(|a| a.pid() != 0) {
                continue;
            }
            let Some(props) = buf.get(..len).and_then(|m| properties(m, self.from_udev)) else {
                continue;
            };
            let Some((name, env)) = event(&props, self.no_strip) else {
                continue;
            };
            if self.wanted.contains(&name) {
                ctx.emit(&name, env);
            } else {
                bridge_log!(DEBUG, "no job wants {name}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_message_to_event() {
        let msg = b"change@/devices/virtual/net/lo\0ACTION=change\0DEVPATH=/devices/virtual/net/lo\0SUBSYSTEM=net\0INTERFACE=lo\0IFINDEX=1\0SEQNUM=7\0";
        let props = properties(msg, false).unwrap();
        let (name, env) = event(&props, false).unwrap();
        assert_eq!(name, "net-device-changed");
        assert_eq!(
            env,
            [
                "KERNEL=lo",
                "DEVPATH=/devices/virtual/net/lo",
                "SUBSYSTEM=net",
                "ACTION=change",
                "INTERFACE=lo",
                "IFINDEX=1",
                "SEQNUM=7"
            ]
        );
        let msg = b"add@/block/sda\0ACTION=add\0DEVPATH=/block/sda\0SUBSYSTEM=block\0DEVNAME=sda\0";
        let (name, env) = event(&properties(msg, false).unwrap(), false).unwrap();
        assert_eq!(name, "block-device-added");
        assert!(env.contains(&"DEVNAME=/dev/sda".to_string()));
    }

    #[test]
    fn udev_message_to_event() {
        let body =
            b"ACTION=add\0DEVPATH=/block/sdb\0SUBSYSTEM=block\0DEVNAME=/dev/sdb\0ID_FS_TYPE=ext4\0";
        let mut msg = b"libudev\0".to_vec();
        msg.extend(0xfeed_cafe_u32.to_be_bytes());
        msg.extend(40u32.to_ne_bytes());
        msg.extend(40u32.to_ne_bytes());
        msg.extend((body.len() as u32).to_ne_bytes());
        msg.resize(40, 0);
        msg.extend(body);
        let (name, env) = event(&properties(&msg, true).unwrap(), false).unwrap();
        assert_eq!(name, "block-device-added");
        assert!(env.contains(&"ID_FS_TYPE=ext4".to_string()));
        assert!(env.contains(&"DEVNAME=/dev/sdb".to_string()));
        assert!(properties(&msg[1..], true).is_none());
    }
}
