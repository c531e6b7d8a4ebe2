//! `org.linuxcontainers.cgmanager0_0` at `/org/linuxcontainers/cgmanager`
//! (cgroups.md §7). One instance per connection, carrying its peer.

use std::sync::Arc;

use zbus::interface;

use super::auth::Caller;
use super::error::{CgError, ReplyError};
use super::service::{Base, Service};

/// The object path of the manager.
pub const PATH: &str = "/org/linuxcontainers/cgmanager";
/// Its interface.
pub const IFACE: &str = "org.linuxcontainers.cgmanager0_0";
/// The cgmanager API version this manager claims (`api_version`).
pub const API_VERSION: i32 = 10;

pub struct Cgmanager {
    pub service: Arc<Service>,
    pub caller: Caller,
}

fn scm(method: &str) -> ReplyError {
    CgError::NotSupported(format!(
        "{method}: credential passing (the *Scm methods) is not supported; \
         call {} from the process's own namespace",
        method.trim_end_matches("Scm")
    ))
    .into()
}

impl Cgmanager {
    /// Send a result back, noting refusals and failures in the debug log.
    fn reply<T>(&self, method: &str, r: Result<T, CgError>) -> Result<T, ReplyError> {
        r.map_err(|e| {
            slog::debug!(
                self.service.log,
                "{method} from pid {} uid {}: {}: {e}",
                self.caller.pid,
                self.caller.uid,
                e.dbus_name()
            );
            e.into()
        })
    }
}

#[interface(name = "org.linuxcontainers.cgmanager0_0")]
impl Cgmanager {
    #[zbus(name = "Ping")]
    fn ping(&self, _junk: i32) {}

    #[zbus(name = "GetPidCgroup")]
    fn get_pid_cgroup(&self, controller: String, pid: i32) -> Result<String, ReplyError> {
        self.reply(
            "get_pid_cgroup",
            self.service
                .get_pid_cgroup(&self.caller, &controller, pid, Base::Caller),
        )
    }

    #[zbus(name = "GetPidCgroupAbs")]
    fn get_pid_cgroup_abs(&self, controller: String, pid: i32) -> Result<String, ReplyError> {
        self.reply(
            "get_pid_cgroup",
            self.service
                .get_pid_cgroup(&self.caller, &controller, pid, Base::Manager),
        )
    }

    #[zbus(name = "Create", out_args("existed"))]
    fn create(&self, controller: String, cgroup: String) -> Result<i32, ReplyError> {
        self.reply(
            "create",
            self.service.create(&self.caller, &controller, &cgroup),
        )
    }

    #[zbus(name = "Chown")]
    fn chown(
        &self,
        controller: String,
        cgroup: String,
        uid: i32,
        gid: i32,
    ) -> Result<(), ReplyError> {
        self.reply(
            "chown",
            self.service
                .chown(&self.caller, &controller, &cgroup, uid, gid),
        )
    }

    #[zbus(name = "Chmod")]
    fn chmod(
        &self,
        controller: String,
        cgroup: String,
        file: String,
        mode: i32,
    ) -> Result<(), ReplyError> {
        self.reply(
            "chmod",
            self.service
                .chmod(&self.caller, &controller, &cgroup, &file, mode),
        )
    }

    #[zbus(name = "MovePid")]
    fn move_pid(&self, controller: String, cgroup: String, pid: i32) -> Result<(), ReplyError> {
        self.reply(
            "move_pid",
            self.service
                .move_pid(&self.caller, &controller, &cgroup, pid, Base::Caller),
        )
    }

    #[zbus(name = "MovePidAbs")]
    fn move_pid_abs(&self, controller: String, cgroup: String, pid: i32) -> Result<(), ReplyError> {
        self.reply(
            "move_pid",
            self.service
                .move_pid(&self.caller, &controller, &cgroup, pid, Base::Manager),
        )
    }

    #[zbus(name = "GetValue", out_args("value"))]
    fn get_value(
        &self,
        controller: String,
        cgroup: String,
        key: String,
    ) -> Result<String, ReplyError> {
        self.reply(
            "get_value",
            self.service
                .get_value(&self.caller, &controller, &cgroup, &key),
        )
    }

    #[zbus(name = "SetValue")]
    fn set_value(
        &self,
        controller: String,
        cgroup: String,
        key: String,
        value: String,
    ) -> Result<(), ReplyError> {
        self.reply(
            "set_value",
            self.service
                .set_value(&self.caller, &controller, &cgroup, &key, &value),
        )
    }

    #[zbus(name = "Remove", out_args("existed"))]
    fn remove(
        &self,
        controller: String,
        cgroup: String,
        recursive: i32,
    ) -> Result<i32, ReplyError> {
        self.reply(
            "remove",
            self.service
                .remove(&self.caller, &controller, &cgroup, recursive != 0),
        )
    }

    #[zbus(name = "RemoveOnEmpty")]
    fn remove_on_empty(&self, controller: String, cgroup: String) -> Result<(), ReplyError> {
        self.reply(
            "remove_on_empty",
            self.service
                .remove_on_empty(&self.caller, &controller, &cgroup),
        )
    }

    #[zbus(name = "Prune")]
    fn prune(&self, controller: String, cgroup: String) -> Result<(), ReplyError> {
        self.reply(
            "prune",
            self.service.prune(&self.caller, &controller, &cgroup),
        )
    }

    #[zbus(name = "GetTasks", out_args("pids"))]
    fn get_tasks(&self, controller: String, cgroup: String) -> Result<Vec<i32>, ReplyError> {
        self.reply(
            "get_tasks",
            self.service
                .get_tasks(&self.caller, &controller, &cgroup, false),
        )
    }

    #[zbus(name = "GetTasksRecursive", out_args("pids"))]
    fn get_tasks_recursive(
        &self,
        controller: String,
        cgroup: String,
    ) -> Result<Vec<i32>, ReplyError> {
        self.reply(
            "get_tasks",
            self.service
                .get_tasks(&self.caller, &controller, &cgroup, true),
        )
    }

    #[zbus(name = "ListChildren", out_args("output"))]
    fn list_children(&self, controller: String, cgroup: String) -> Result<Vec<String>, ReplyError> {
        self.reply(
            "list_children",
            self.service
                .list_children(&self.caller, &controller, &cgroup),
        )
    }

    #[zbus(name = "ListKeys", out_args("output"))]
    fn list_keys(
        &self,
        controller: String,
        cgroup: String,
    ) -> Result<Vec<(String, u32, u32, u32)>, ReplyError> {
        self.reply(
            "list_keys",
            self.service.list_keys(&self.caller, &controller, &cgroup),
        )
    }

    #[zbus(name = "ListControllers", out_args("output"))]
    fn list_controllers(&self) -> Vec<String> {
        self.service.list_controllers()
    }

    #[zbus(property, name = "api_version")]
    fn api_version(&self) -> i32 {
        API_VERSION
    }

    // Credential-passing variants: refused with NotSupported.

    #[zbus(name = "GetPidCgroupScm")]
    fn get_pid_cgroup_scm(
        &self,
        _controller: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("GetPidCgroupScm"))
    }

    #[zbus(name = "GetPidCgroupAbsScm")]
    fn get_pid_cgroup_abs_scm(
        &self,
        _controller: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("GetPidCgroupAbsScm"))
    }

    #[zbus(name = "CreateScm")]
    fn create_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("CreateScm"))
    }

    #[zbus(name = "ChownScm")]
    fn chown_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("ChownScm"))
    }

    #[zbus(name = "ChmodScm")]
    fn chmod_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _file: String,
        _mode: i32,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("ChmodScm"))
    }

    #[zbus(name = "MovePidScm")]
    fn move_pid_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("MovePidScm"))
    }

    #[zbus(name = "MovePidAbsScm")]
    fn move_pid_abs_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("MovePidAbsScm"))
    }

    #[zbus(name = "GetValueScm")]
    fn get_value_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _key: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("GetValueScm"))
    }

    #[zbus(name = "SetValueScm")]
    fn set_value_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _key: String,
        _value: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("SetValueScm"))
    }

    #[zbus(name = "RemoveScm")]
    fn remove_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _recursive: i32,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("RemoveScm"))
    }

    #[zbus(name = "RemoveOnEmptyScm")]
    fn remove_on_empty_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("RemoveOnEmptyScm"))
    }

    #[zbus(name = "PruneScm")]
    fn prune_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("PruneScm"))
    }

    #[zbus(name = "GetTasksScm")]
    fn get_tasks_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("GetTasksScm"))
    }

    #[zbus(name = "GetTasksRecursiveScm")]
    fn get_tasks_recursive_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("GetTasksRecursiveScm"))
    }

    #[zbus(name = "ListChildrenScm")]
    fn list_children_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("ListChildrenScm"))
    }

    #[zbus(name = "ListKeysScm")]
    fn list_keys_scm(
        &self,
        _controller: String,
        _cgroup: String,
        _sockfd: zbus::OwnedFd,
    ) -> Result<(), ReplyError> {
        Err(scm("ListKeysScm"))
    }
}
