//! outset: an Upstart-compatible, PID-1-capable job supervisor.
//!
//! The library holds everything the binaries share: the job-file language
//! (`config`), events and the pure job engine (`event`, `job`), the pure
//! machines of how the daemon ends (`lifecycle`), spawning (`spawn`), the
//! syscall layer (`sys`), the daemon's loop (`daemon`), the D-Bus control
//! plane (`control`), re-exec state (`reexec`), PID 1's duties (`boot`,
//! `pid1`), cgroups and their manager (`cgroup`), the bridges (`bridge`)
//! and the command-line tools' common parts (`cli`). The layout and its
//! reasons are in docs/ARCHITECTURE.md.
//!
//! Everything here may run in PID 1, where a panic would take the machine
//! down (extensions.md §6): input never reaches an `unwrap`, an `expect`,
//! an unchecked index or an explicit panic. Test builds are exempt.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::unreachable
    )
)]

// The unwinder from libgcc's static archive, linked into every binary
// ahead of the standard library, which would otherwise take it from
// libgcc_s: nothing is then needed from libgcc_s and the link leaves it
// out. Each program starts with one library fewer to load, and without
// libgcc_s's constructor, whose questions to the processor (cpuid) are
// slow under a hypervisor: one `initctl status` call took 7% less time.
// Only where the C library is glibc, whose toolchain is gcc's.
#[cfg(target_env = "gnu")]
#[link(name = "gcc_eh", kind = "static", modifiers = "+whole-archive,-bundle")]
extern "C" {}

pub mod boot;
pub mod bridge;
pub mod cgroup;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod env;
pub mod event;
pub mod job;
pub mod lifecycle;
pub mod mapped_text;
pub mod mountinfo;
pub mod os_error;
pub mod panic_guard;
pub mod pid1;
pub mod reexec;
pub mod short_str;
pub mod spawn;
pub mod sys;
pub mod utmp;
