//! The three Upstart interfaces. Every method forwards to the engine thread
//! and awaits its answer, so nothing here holds engine state.

use std::sync::Mutex;

use zbus::fdo;
use zbus::interface;
use zbus::object_server::SignalEmitter;
use zbus::ObjectPath;
use zbus::OwnedObjectPath;

use super::error::UpstartError;
use crate::job::WaitKind;

use super::protocol::{CallError, EngineHandle, InstanceProps, JobProps, Request, Value};

fn path(p: String) -> Result<OwnedObjectPath, UpstartError> {
    OwnedObjectPath::try_from(p).map_err(|e| {
        UpstartError(CallError::new(
            "org.freedesktop.DBus.Error.Failed",
            e.to_string(),
        ))
    })
}

fn unexpected() -> UpstartError {
    UpstartError(CallError::new(
        "org.freedesktop.DBus.Error.Failed",
        "unexpected answer",
    ))
}

fn check_env(env: &[String]) -> Result<(), UpstartError> {
    if env.iter().any(|e| !e.contains('=')) {
        return Err(UpstartError(CallError::new(
            "org.freedesktop.DBus.Error.InvalidArgs",
            "Env must be KEY=VALUE pairs",
        )));
    }
    Ok(())
}

const UNKNOWN_JOB: &str = "com.ubuntu.Upstart0_6.Error.UnknownJob";
const UNKNOWN_INSTANCE: &str = "com.ubuntu.Upstart0_6.Error.UnknownInstance";

/// A call on an object whose job or instance does not exist answers
/// `UnknownMethod`, as the reference's unregistered objects did (objects
/// are made per call from the path, see dispatch.rs).
fn gone(e: UpstartError, missing: &str) -> UpstartError {
    if e.0.name == missing {
        UpstartError(CallError::new(
            "org.freedesktop.DBus.Error.UnknownMethod",
            e.0.message,
        ))
    } else {
        e
    }
}

async fn one_path(h: &EngineHandle, req: Request) -> Result<OwnedObjectPath, UpstartError> {
    match h.call(req).await? {
        Value::Path(p) => path(p),
        _ => Err(unexpected()),
    }
}

async fn paths(h: &EngineHandle, req: Request) -> Result<Vec<OwnedObjectPath>, UpstartError> {
    match h.call(req).await? {
        Value::Paths(ps) => ps.into_iter().map(path).collect(),
        _ => Err(unexpected()),
    }
}

async fn unit(h: &EngineHandle, req: Request) -> Result<(), UpstartError> {
    h.call(req).await.map(|_| ()).map_err(UpstartError)
}

/// Control permission (control.md §5): the caller runs as init's user,
/// or init is a session init (or a test harness, neither root nor PID 1).
/// A private connection is only ever accepted from init's own user (the
/// server checks its credentials); on a message bus the bus is asked who
/// the caller is.
async fn permitted(
    engine: &EngineHandle,
    conn: &zbus::Connection,
    hdr: Option<&zbus::message::Header<'_>>,
    message: &str,
) -> Result<(), UpstartError> {
    if engine.anyone_may_control || !conn.is_bus() {
        return Ok(());
    }
    let uid = match (
        hdr.and_then(|h| h.sender()),
        fdo::DBusProxy::new(conn).await,
    ) {
        (Some(sender), Ok(bus)) => bus
            .get_connection_unix_user(zbus::names::BusName::Unique(sender.clone()))
            .await
            .ok(),
        _ => None,
    };
    if uid == Some(nix::unistd::getuid().as_raw()) {
        return Ok(());
    }
    Err(UpstartError(CallError::new(
        "com.ubuntu.Upstart0_6.Error.PermissionDenied",
        message,
    )))
}

/// `req`, answered with nothing, on behalf of a caller with control
/// permission (`message` in the error otherwise).
async fn controlled(
    engine: &EngineHandle,
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
    message: &str,
    req: Request,
) -> Result<(), UpstartError> {
    permitted(engine, conn, Some(hdr), message).await?;
    unit(engine, req).await
}

/// The checks both emit methods make: the caller may emit, the event has
/// a name and its environment is well formed.
async fn may_emit(
    engine: &EngineHandle,
    conn: &zbus::Connection,
    hdr: &zbus::message::Header<'_>,
    name: &str,
    env: &[String],
) -> Result<(), UpstartError> {
    permitted(
        engine,
        conn,
        Some(hdr),
        "You do not have permission to emit an event",
    )
    .await?;
    if name.is_empty() {
        return Err(UpstartError(CallError::new(
            "org.freedesktop.DBus.Error.InvalidArgs",
            "Name may not be empty string",
        )));
    }
    check_env(env)
}

/// `com.ubuntu.Upstart0_6` at `/com/ubuntu/Upstart`.
pub struct Manager {
    pub engine: EngineHandle,
}

#[interface(name = "com.ubuntu.Upstart0_6")]
impl Manager {
    async fn get_job_by_name(&self, name: String) -> Result<OwnedObjectPath, UpstartError> {
        if name.is_empty() {
            return Err(UpstartError(CallError::new(
                "org.freedesktop.DBus.Error.InvalidArgs",
                "Name may not be empty string",
            )));
        }
        one_path(&self.engine, Request::GetJobByName(name)).await
    }

    async fn get_all_jobs(&self) -> Result<Vec<OwnedObjectPath>, UpstartError> {
        paths(&self.engine, Request::GetAllJobs).await
    }

    async fn emit_event(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        name: String,
        env: Vec<String>,
        wait: bool,
    ) -> Result<(), UpstartError> {
        may_emit(&self.engine, conn, &hdr, &name, &env).await?;
        #[cfg(feature = "panic-trigger")]
        crate::panic_guard::trigger(&name, "control");
        unit(&self.engine, Request::EmitEvent { name, env, wait }).await
    }

    async fn emit_event_with_file(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        name: String,
        env: Vec<String>,
        wait: bool,
        file: zbus::OwnedFd,
    ) -> Result<(), UpstartError> {
        // On a refusal the file is dropped, i.e. closed.
        may_emit(&self.engine, conn, &hdr, &name, &env).await?;
        let file = std::os::fd::OwnedFd::from(file);
        unit(
            &self.engine,
            Request::EmitEventWithFile {
                name,
                env,
                wait,
                file,
            },
        )
        .await
    }

    async fn reload_configuration(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to reload configuration",
            Request::ReloadConfiguration,
        )
        .await
    }

    async fn get_env(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
        name: String,
    ) -> Result<String, UpstartError> {
        permitted(
            &self.engine,
            conn,
            Some(&hdr),
            "You do not have permission to query job environment",
        )
        .await?;
        match self
            .engine
            .call(Request::GetEnv {
                details: job_details,
                name,
            })
            .await?
        {
            Value::Str(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    async fn set_env(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
        var: String,
        replace: bool,
    ) -> Result<(), UpstartError> {
        permitted(
            &self.engine,
            conn,
            Some(&hdr),
            "You do not have permission to modify job environment",
        )
        .await?;
        let req = Request::SetEnvList {
            details: job_details,
            vars: vec![var],
            replace,
        };
        unit(&self.engine, req).await
    }

    async fn set_env_list(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
        vars: Vec<String>,
        replace: bool,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to modify job environment",
            Request::SetEnvList {
                details: job_details,
                vars,
                replace,
            },
        )
        .await
    }

    async fn unset_env(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
        name: String,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to modify job environment",
            Request::UnsetEnvList {
                details: job_details,
                names: vec![name],
            },
        )
        .await
    }

    async fn unset_env_list(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
        names: Vec<String>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to modify job environment",
            Request::UnsetEnvList {
                details: job_details,
                names,
            },
        )
        .await
    }

    async fn list_env(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
    ) -> Result<Vec<String>, UpstartError> {
        permitted(
            &self.engine,
            conn,
            Some(&hdr),
            "You do not have permission to query job environment",
        )
        .await?;
        match self
            .engine
            .call(Request::ListEnv {
                details: job_details,
            })
            .await?
        {
            Value::Strs(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    async fn reset_env(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        job_details: Vec<String>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to modify job environment",
            Request::ResetEnv {
                details: job_details,
            },
        )
        .await
    }

    async fn notify_disk_writeable(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to notify disk is writeable",
            Request::NotifyDiskWriteable,
        )
        .await
    }

    #[zbus(name = "NotifyDBusAddress")]
    async fn notify_dbus_address(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        address: String,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to notify D-Bus address",
            Request::NotifyDBusAddress(address),
        )
        .await
    }

    #[zbus(name = "NotifyCGroupManagerAddress")]
    async fn notify_cgroup_manager_address(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
        address: String,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to notify cgroup manager address",
            Request::NotifyCGroupManagerAddress(address),
        )
        .await
    }

    /// The state a re-exec would hand over, as JSON.
    async fn get_state(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<String, UpstartError> {
        permitted(
            &self.engine,
            conn,
            Some(&hdr),
            "You do not have permission to request state",
        )
        .await?;
        match self.engine.call(Request::GetState).await? {
            Value::Str(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }

    /// Stateful re-exec; the reply may never arrive.
    async fn restart(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to request restart",
            Request::Restart,
        )
        .await
    }

    async fn end_session(
        &self,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: zbus::message::Header<'_>,
    ) -> Result<(), UpstartError> {
        controlled(
            &self.engine,
            conn,
            &hdr,
            "You do not have permission to end session",
            Request::EndSession,
        )
        .await
    }

    #[zbus(property, name = "log_priority")]
    async fn log_priority(&self) -> fdo::Result<String> {
        match self.engine.call(Request::GetLogPriority).await {
            Ok(Value::Str(v)) => Ok(v),
            _ => Err(fdo::Error::Failed("unexpected answer".into())),
        }
    }

    #[zbus(property, name = "log_priority")]
    async fn set_log_priority(
        &self,
        value: String,
        #[zbus(connection)] conn: &zbus::Connection,
        #[zbus(header)] hdr: Option<zbus::message::Header<'_>>,
    ) -> fdo::Result<()> {
        permitted(
            &self.engine,
            conn,
            hdr.as_ref(),
            "You do not have permission to set log priority",
        )
        .await
        .map_err(|e| fdo::Error::AccessDenied(e.0.message))?;
        self.engine
            .call(Request::SetLogPriority(value))
            .await
            .map(|_| ())
            .map_err(|e| fdo::Error::InvalidArgs(e.message))
    }

    #[zbus(property, name = "version")]
    fn version(&self) -> String {
        "init (upstart 1.13.2)".to_string()
    }

    // The signals, declared for introspection (clients build proxies from
    // it); they are sent by the control server (control.md §3).

    #[zbus(signal)]
    async fn job_added(emitter: &SignalEmitter<'_>, job: ObjectPath<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn job_removed(emitter: &SignalEmitter<'_>, job: ObjectPath<'_>) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn event_emitted(
        emitter: &SignalEmitter<'_>,
        name: &str,
        env: &[&str],
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn restarted(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

/// `com.ubuntu.Upstart0_6.Job` at `/com/ubuntu/Upstart/jobs/JOB`. Made
/// for one call (see the dispatcher), so its properties are asked of the
/// engine once per call, however many of them the call reads.
pub struct Job {
    engine: EngineHandle,
    job: String,
    cache: Mutex<Option<JobProps>>,
}

impl Job {
    pub fn new(engine: EngineHandle, job: String) -> Job {
        Job {
            engine,
            job,
            cache: Mutex::new(None),
        }
    }

    /// The class's properties; `UnknownMethod` once it has gone.
    pub async fn props(&self) -> fdo::Result<JobProps> {
        if let Some(p) = self.cache.lock().ok().and_then(|c| c.clone()) {
            return Ok(p);
        }
        match self
            .engine
            .call(Request::JobProperties {
                job: self.job.clone(),
            })
            .await
        {
            Ok(Value::Job(p)) => {
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some(p.clone());
                }
                Ok(p)
            }
            Ok(_) => Err(fdo::Error::Failed("unexpected answer".into())),
            Err(e) => Err(fdo::Error::UnknownMethod(e.message)),
        }
    }
}

#[interface(name = "com.ubuntu.Upstart0_6.Job")]
impl Job {
    async fn get_instance(&self, env: Vec<String>) -> Result<OwnedObjectPath, UpstartError> {
        check_env(&env)?;
        one_path(
            &self.engine,
            Request::GetInstance {
                job: self.job.clone(),
                env,
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    async fn get_instance_by_name(&self, name: String) -> Result<OwnedObjectPath, UpstartError> {
        one_path(
            &self.engine,
            Request::GetInstanceByName {
                job: self.job.clone(),
                name,
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    async fn get_all_instances(&self) -> Result<Vec<OwnedObjectPath>, UpstartError> {
        paths(
            &self.engine,
            Request::GetAllInstances {
                job: self.job.clone(),
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    async fn start(&self, env: Vec<String>, wait: bool) -> Result<OwnedObjectPath, UpstartError> {
        check_env(&env)?;
        one_path(
            &self.engine,
            Request::JobStart {
                job: self.job.clone(),
                env,
                wait,
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    async fn stop(&self, env: Vec<String>, wait: bool) -> Result<(), UpstartError> {
        check_env(&env)?;
        unit(
            &self.engine,
            Request::JobStop {
                job: self.job.clone(),
                env,
                wait,
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    async fn restart(&self, env: Vec<String>, wait: bool) -> Result<OwnedObjectPath, UpstartError> {
        check_env(&env)?;
        one_path(
            &self.engine,
            Request::JobRestart {
                job: self.job.clone(),
                env,
                wait,
            },
        )
        .await
        .map_err(|e| gone(e, UNKNOWN_JOB))
    }

    #[zbus(property, name = "name")]
    async fn name(&self) -> fdo::Result<String> {
        Ok(self.props().await?.name)
    }

    #[zbus(property, name = "description")]
    async fn description(&self) -> fdo::Result<String> {
        Ok(self.props().await?.description)
    }

    #[zbus(property, name = "author")]
    async fn author(&self) -> fdo::Result<String> {
        Ok(self.props().await?.author)
    }

    #[zbus(property, name = "version")]
    async fn version(&self) -> fdo::Result<String> {
        Ok(self.props().await?.version)
    }

    #[zbus(property, name = "usage")]
    async fn usage(&self) -> fdo::Result<String> {
        Ok(self.props().await?.usage)
    }

    #[zbus(property, name = "start_on")]
    async fn start_on(&self) -> fdo::Result<Vec<Vec<String>>> {
        Ok(self.props().await?.start_on)
    }

    #[zbus(property, name = "stop_on")]
    async fn stop_on(&self) -> fdo::Result<Vec<Vec<String>>> {
        Ok(self.props().await?.stop_on)
    }

    #[zbus(property, name = "emits")]
    async fn emits(&self) -> fdo::Result<Vec<String>> {
        Ok(self.props().await?.emits)
    }

    // Declared for introspection; sent by the control server.

    #[zbus(signal)]
    async fn instance_added(
        emitter: &SignalEmitter<'_>,
        instance: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn instance_removed(
        emitter: &SignalEmitter<'_>,
        instance: ObjectPath<'_>,
    ) -> zbus::Result<()>;
}

/// `com.ubuntu.Upstart0_6.Instance` at `/com/ubuntu/Upstart/jobs/JOB/INSTANCE`,
/// made for one call as [`Job`] is.
pub struct Instance {
    engine: EngineHandle,
    job: String,
    instance: String,
    cache: Mutex<Option<InstanceProps>>,
}

impl Instance {
    pub fn new(engine: EngineHandle, job: String, instance: String) -> Instance {
        Instance {
            engine,
            job,
            instance,
            cache: Mutex::new(None),
        }
    }

    async fn control(&self, kind: WaitKind, wait: bool) -> Result<(), UpstartError> {
        let req = Request::InstanceControl {
            job: self.job.clone(),
            instance: self.instance.clone(),
            kind,
            wait,
        };
        unit(&self.engine, req)
            .await
            .map_err(|e| gone(e, UNKNOWN_INSTANCE))
    }

    /// The instance's properties; `UnknownMethod` once it has gone.
    pub async fn props(&self) -> fdo::Result<InstanceProps> {
        if let Some(p) = self.cache.lock().ok().and_then(|c| c.clone()) {
            return Ok(p);
        }
        let req = Request::InstanceProperties {
            job: self.job.clone(),
            instance: self.instance.clone(),
        };
        match self.engine.call(req).await {
            Ok(Value::Instance(p)) => {
                if let Ok(mut c) = self.cache.lock() {
                    *c = Some(p.clone());
                }
                Ok(p)
            }
            Ok(_) => Err(fdo::Error::Failed("unexpected answer".into())),
            Err(e) => Err(fdo::Error::UnknownMethod(e.message)),
        }
    }
}

#[interface(name = "com.ubuntu.Upstart0_6.Instance")]
impl Instance {
    async fn start(&self, wait: bool) -> Result<(), UpstartError> {
        self.control(WaitKind::Start, wait).await
    }

    async fn stop(&self, wait: bool) -> Result<(), UpstartError> {
        self.control(WaitKind::Stop, wait).await
    }

    async fn restart(&self, wait: bool) -> Result<(), UpstartError> {
        self.control(WaitKind::Restart, wait).await
    }

    async fn reload(&self) -> Result<(), UpstartError> {
        let req = Request::InstanceReload {
            job: self.job.clone(),
            instance: self.instance.clone(),
        };
        unit(&self.engine, req)
            .await
            .map_err(|e| gone(e, UNKNOWN_INSTANCE))
    }

    #[zbus(property, name = "name")]
    async fn name(&self) -> fdo::Result<String> {
        Ok(self.props().await?.name)
    }

    #[zbus(property, name = "goal")]
    async fn goal(&self) -> fdo::Result<String> {
        Ok(self.props().await?.goal)
    }

    #[zbus(property, name = "state")]
    async fn state(&self) -> fdo::Result<String> {
        Ok(self.props().await?.state)
    }

    #[zbus(property, name = "processes")]
    async fn processes(&self) -> fdo::Result<Vec<(String, i32)>> {
        Ok(self.props().await?.processes)
    }

    // Declared for introspection; sent by the control server.

    // Named apart from the `goal` property's change notifier.
    #[zbus(signal, name = "GoalChanged")]
    async fn goal_changed_signal(emitter: &SignalEmitter<'_>, goal: &str) -> zbus::Result<()>;

    #[zbus(signal, name = "StateChanged")]
    async fn state_changed_signal(emitter: &SignalEmitter<'_>, state: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn failed(emitter: &SignalEmitter<'_>, status: i32) -> zbus::Result<()>;
}

/// `org.outset.Instance1` on the instance objects: what outset knows of an
/// instance beyond Upstart's properties (extensions.md §7).
pub struct OutsetInstance {
    engine: EngineHandle,
    job: String,
    instance: String,
}

impl OutsetInstance {
    pub fn new(engine: EngineHandle, job: String, instance: String) -> OutsetInstance {
        OutsetInstance {
            engine,
            job,
            instance,
        }
    }
}

#[interface(name = "org.outset.Instance1")]
impl OutsetInstance {
    /// The last `STATUS=` an `expect notify` job sent; empty if none.
    #[zbus(property, name = "status_text")]
    async fn status_text(&self) -> fdo::Result<String> {
        let req = Request::InstanceProperties {
            job: self.job.clone(),
            instance: self.instance.clone(),
        };
        match self.engine.call(req).await {
            Ok(Value::Instance(p)) => Ok(p.status_text),
            Ok(_) => Err(fdo::Error::Failed("unexpected answer".into())),
            Err(e) => Err(fdo::Error::UnknownMethod(e.message)),
        }
    }
}
