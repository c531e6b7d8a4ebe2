//! Machine or container: how PID 1 decides, and why (extensions.md §2).

use std::fmt;
use std::os::unix::fs::MetadataExt;

/// The inode of the initial PID namespace: the kernel gives it this fixed
/// number (`PROC_PID_INIT_INO`); every other PID namespace gets another.
pub const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;

/// Why PID 1 runs as a machine or as a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    ContainerOption,
    MachineOption,
    /// `container=VALUE` in outset's environment.
    ContainerVariable(String),
    /// A container engine's marker file.
    MarkerFile(&'static str),
    /// Its PID namespace has another inode than the initial one.
    PidNamespace,
    InitialPidNamespace,
    /// No marker, and `/proc/self/ns/pid` could not be read.
    NamespaceUnknown,
}

/// The files container engines leave at the root of a container.
pub const MARKER_FILES: &[&str] = &["/.dockerenv", "/run/.containerenv"];

/// What PID 1 found out about where it runs.
#[derive(Debug, Clone, Default)]
pub struct Clues {
    pub container_option: bool,
    pub machine_option: bool,
    pub container_variable: Option<String>,
    pub marker_file: Option<&'static str>,
    pub pid_namespace_inode: Option<u64>,
}

impl Clues {
    /// Look at the environment, the marker files and `/proc/self/ns/pid`.
    pub fn gather(container_option: bool, machine_option: bool) -> Clues {
        Clues {
            container_option,
            machine_option,
            container_variable: std::env::var_os("container")
                .map(|v| v.to_string_lossy().into_owned()),
            marker_file: MARKER_FILES
                .iter()
                .copied()
                .find(|f| std::path::Path::new(f).exists()),
            pid_namespace_inode: std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino()),
        }
    }

    /// The decision: an option wins (`--container` over `--machine`), then
    /// the engine's markers, then the PID namespace.
    pub fn decide(&self) -> (bool, Reason) {
        if self.container_option {
            return (true, Reason::ContainerOption);
        }
        if self.machine_option {
            return (false, Reason::MachineOption);
        }
        if let Some(v) = &self.container_variable {
            return (true, Reason::ContainerVariable(v.clone()));
        }
        if let Some(f) = self.marker_file {
            return (true, Reason::MarkerFile(f));
        }
        match self.pid_namespace_inode {
            Some(PROC_PID_INIT_INO) => (false, Reason::InitialPidNamespace),
            Some(_) => (true, Reason::PidNamespace),
            None => (false, Reason::NamespaceUnknown),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ContainerOption => f.write_str("--container given"),
            Reason::MachineOption => f.write_str("--machine given"),
            Reason::ContainerVariable(v) => write!(f, "container={v} in the environment"),
            Reason::MarkerFile(p) => write!(f, "{p} exists"),
            Reason::PidNamespace => f.write_str("PID namespace is not the initial one"),
            Reason::InitialPidNamespace => f.write_str("initial PID namespace"),
            Reason::NamespaceUnknown => {
                f.write_str("no container marker and /proc/self/ns/pid is unreadable")
            }
        }
    }
}

/// The start-up line: `container mode: WHY` or `machine mode: WHY`.
pub fn describe(container: bool, reason: &Reason) -> String {
    let mode = if container { "container" } else { "machine" };
    format!("{mode} mode: {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_then_markers_then_the_namespace_decide() {
        let c = |f: &dyn Fn(&mut Clues)| {
            let mut clues = Clues {
                pid_namespace_inode: Some(4026532200),
                ..Default::default()
            };
            f(&mut clues);
            clues.decide()
        };
        assert_eq!(c(&|_| {}), (true, Reason::PidNamespace));
        assert_eq!(
            c(&|k| k.pid_namespace_inode = Some(PROC_PID_INIT_INO)),
            (false, Reason::InitialPidNamespace)
        );
        assert_eq!(
            c(&|k| k.pid_namespace_inode = None),
            (false, Reason::NamespaceUnknown)
        );
        assert_eq!(
            c(&|k| k.machine_option = true),
            (false, Reason::MachineOption)
        );
        assert_eq!(
            c(&|k| {
                k.machine_option = true;
                k.container_option = true;
            }),
            (true, Reason::ContainerOption)
        );
        assert_eq!(
            c(&|k| {
                k.pid_namespace_inode = Some(PROC_PID_INIT_INO);
                k.container_variable = Some("lxc".into());
            }),
            (true, Reason::ContainerVariable("lxc".into()))
        );
        assert_eq!(
            c(&|k| {
                k.pid_namespace_inode = Some(PROC_PID_INIT_INO);
                k.marker_file = Some("/.dockerenv");
            })
            .1
            .to_string(),
            "/.dockerenv exists"
        );
        assert_eq!(
            describe(true, &Reason::PidNamespace),
            "container mode: PID namespace is not the initial one"
        );
    }
}
