//! Requests from the D-Bus threads to the engine thread, and their answers.

use std::sync::mpsc;
use std::sync::Arc;

/// A D-Bus error: name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub name: String,
    pub message: String,
}

impl CallError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        CallError {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub enum Request {
    GetJobByName(String),
    GetAllJobs,
    EmitEvent {
        name: String,
        env: Vec<String>,
        wait: bool,
    },
    /// `EmitEventWithFile`: the event carries an open file.
    EmitEventWithFile {
        name: String,
        env: Vec<String>,
        wait: bool,
        file: std::os::fd::OwnedFd,
    },
    ReloadConfiguration,
    JobStart {
        job: String,
        env: Vec<String>,
        wait: bool,
    },
    JobStop {
        job: String,
        env: Vec<String>,
        wait: bool,
    },
    JobRestart {
        job: String,
        env: Vec<String>,
        wait: bool,
    },
    GetInstance {
        job: String,
        env: Vec<String>,
    },
    GetInstanceByName {
        job: String,
        name: String,
    },
    GetAllInstances {
        job: String,
    },
    /// `Instance.Start`, `Stop` or `Restart`.
    InstanceControl {
        job: String,
        instance: String,
        kind: crate::job::WaitKind,
        wait: bool,
    },
    InstanceReload {
        job: String,
        instance: String,
    },
    JobProperties {
        job: String,
    },
    InstanceProperties {
        job: String,
        instance: String,
    },
    GetEnv {
        details: Vec<String>,
        name: String,
    },
    SetEnvList {
        details: Vec<String>,
        vars: Vec<String>,
        replace: bool,
    },
    UnsetEnvList {
        details: Vec<String>,
        names: Vec<String>,
    },
    ListEnv {
        details: Vec<String>,
    },
    ResetEnv {
        details: Vec<String>,
    },
    GetLogPriority,
    SetLogPriority(String),
    NotifyDiskWriteable,
    NotifyDBusAddress(String),
    NotifyCGroupManagerAddress(String),
    EndSession,
    /// Stateful re-exec.
    Restart,
    /// The serialised state.
    GetState,
}

/// What a job object exposes.
#[derive(Debug, Clone, Default)]
pub struct JobProps {
    pub name: String,
    pub description: String,
    pub author: String,
    pub version: String,
    pub usage: String,
    pub start_on: Vec<Vec<String>>,
    pub stop_on: Vec<Vec<String>>,
    pub emits: Vec<String>,
}

/// What an instance object exposes.
#[derive(Debug, Clone, Default)]
pub struct InstanceProps {
    pub name: String,
    pub goal: String,
    pub state: String,
    pub processes: Vec<(String, i32)>,
    /// The last `STATUS=` of an `expect notify` job (empty: none), for
    /// outset's own instance interface only.
    pub status_text: String,
}

#[derive(Debug, Clone)]
pub enum Value {
    Unit,
    Path(String),
    Paths(Vec<String>),
    Job(JobProps),
    Instance(InstanceProps),
    Str(String),
    Strs(Vec<String>),
}

pub type Answer = Result<Value, CallError>;

/// A request with the channel its answer goes back on.
pub struct Envelope {
    pub request: Request,
    pub reply: futures_channel::oneshot::Sender<Answer>,
}

/// The D-Bus side's handle on the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    pub tx: mpsc::Sender<Envelope>,
    pub waker: Arc<mio::Waker>,
    /// Every caller has control permission (a session init, or neither
    /// root nor PID 1); otherwise only init's own user (control.md §5).
    pub anyone_may_control: bool,
    /// What read-only requests are answered from (view.rs).
    pub view: super::view::SharedView,
}

impl EngineHandle {
    /// Send a request and wait (asynchronously) for the engine's answer.
    pub async fn call(&self, request: Request) -> Answer {
        if let Some(answer) = self.view.read().ok().and_then(|v| v.answer(&request)) {
            return answer;
        }
        let (reply, rx) = futures_channel::oneshot::channel();
        let lost = || CallError::new("org.freedesktop.DBus.Error.Failed", "init is not answering");
        self.tx
            .send(Envelope { request, reply })
            .map_err(|_| lost())?;
        let _ = self.waker.wake();
        rx.await.map_err(|_| lost())?
    }
}

/// A change the D-Bus side turns into objects and signals: the engine's
/// [`job::Change`](crate::job::Change) in wire terms (job and instance
/// names), plus the daemon's own `Restarted`.
#[derive(Debug, Clone)]
pub enum Change {
    JobAdded(String),
    JobRemoved(String),
    InstanceAdded(String, String),
    InstanceRemoved(String, String),
    /// Job, instance, and the goal's or state's name.
    GoalChanged(String, String, &'static str),
    StateChanged(String, String, &'static str),
    Failed(String, String, i32),
    EventEmitted(String, Vec<String>),
    /// The new image after a re-exec is ready.
    Restarted,
}
