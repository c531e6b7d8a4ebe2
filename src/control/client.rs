//! The client side used by `initctl` and friends: a peer-to-peer
//! connection to init and Upstart's status-line format.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zbus::connection::Builder;
use zbus::{Connection, OwnedObjectPath, OwnedVariant, Type};

use super::paths::{
    job_path, INSTANCE_IFACE, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH, OUTSET_INSTANCE_IFACE,
};

/// An error answer from init, or a local failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub name: String,
    pub message: String,
}

impl From<zbus::Error> for ClientError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, msg, _) => ClientError {
                name: name.to_string(),
                message: msg.unwrap_or_default(),
            },
            // zbus turns org.freedesktop.DBus.Error.* replies into fdo errors.
            zbus::Error::FDO(e) => {
                use zbus::DBusError;
                ClientError {
                    name: e.name().to_string(),
                    message: e.description().unwrap_or_default().to_string(),
                }
            }
            other => {
                let text = other.to_string();
                ClientError {
                    name: "org.freedesktop.DBus.Error.Failed".into(),
                    message: crate::os_error::without_errno(&text).to_string(),
                }
            }
        }
    }
}

pub struct Client {
    conn: Connection,
    /// Destination name when talking through a message bus.
    dest: Option<String>,
}

impl Client {
    /// Connect peer-to-peer to init's private address.
    pub fn connect(address: &str) -> Result<Client, ClientError> {
        zbus::block_on(Client::open(address))
    }

    /// [`Client::connect`], to be awaited inside a runtime.
    async fn open(address: &str) -> Result<Client, ClientError> {
        let conn = Builder::address(address)
            .p2p()
            .build()
            .await
            .map_err(|e| connect_error(address, e))?;
        // Registering as a bus client asks outset for no signals (the
        // commands never use them); Upstart refuses the call, harmlessly.
        // No answer is waited for: the calls that follow go out behind
        // it, and outset takes a connection's calls in order.
        if let Ok(hello) = zbus::Message::method_call("/org/freedesktop/DBus", "Hello")
            .interface("org.freedesktop.DBus")
            .with_flags(zbus::message::Flags::NO_REPLY_EXPECTED)
            .build(&())
        {
            let _ = conn.send(&hello).await;
        }
        Ok(Client { conn, dest: None })
    }

    /// `initctl status JOB [ENV]` start to end: connect to `address`,
    /// ask, and close, all in one run of the runtime. Scripts call this in
    /// loops; a connection kept past one run would have the runtime start
    /// a thread to look after it. The outer error: no connection.
    pub fn job_status_once(
        address: &str,
        job: &str,
        env: &[String],
    ) -> Result<Result<String, ClientError>, ClientError> {
        zbus::block_on(async {
            let client = Client::open(address).await?;
            Ok(client.job_status(job, env).await)
        })
    }

    /// The status of `job`'s instance for `env`; takes the client so that
    /// its connection closes before the runtime is left.
    async fn job_status(self, job: &str, env: &[String]) -> Result<String, ClientError> {
        let (_, instance) = self.job_and_instance_async(job, env).await?;
        let status = match instance {
            Ok(ip) => {
                let item = [(job.to_string(), ip.to_string())];
                let (mut lines, text) = futures_util::future::join(
                    self.statuses_async(&item),
                    self.status_text_async(ip.as_str()),
                )
                .await;
                // As `initctl status` prints it: the `STATUS=` text under
                // the status line(s).
                lines.pop().map(|line| {
                    line.map(|l| match text {
                        Some(t) => format!("{l}\n{}", status_text_line(&t)),
                        None => l,
                    })
                })
            }
            Err(e) if env.is_empty() && e.name == UNKNOWN_INSTANCE => {
                Some(Ok(format!("{job} stop/waiting")))
            }
            Err(e) => Some(Err(e)),
        };
        drop(self);
        status.unwrap_or_else(|| Err(lost()))
    }

    /// Connect through the system (or session) message bus to `dest`.
    pub fn connect_bus(system: bool, dest: &str) -> Result<Client, ClientError> {
        let builder = if system {
            Builder::system()
        } else {
            Builder::session()
        };
        let conn = zbus::block_on(builder.build())?;
        Ok(Client {
            conn,
            dest: Some(dest.to_string()),
        })
    }

    pub fn call<B, R>(
        &self,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, ClientError>
    where
        B: Serialize + Type,
        R: DeserializeOwned + Type,
    {
        zbus::block_on(self.send(path, iface, method, body))
    }

    /// Many calls at once: all are sent before any answer is awaited (in
    /// slices, to bound what is in flight), so a listing costs one round
    /// trip per slice instead of one per call. Answers come in call order.
    pub fn batch<B, R>(&self, calls: &[(&str, &str, &str, B)]) -> Vec<Result<R, ClientError>>
    where
        B: Serialize + Type,
        R: DeserializeOwned + Type,
    {
        zbus::block_on(self.batch_async(calls))
    }

    async fn batch_async<B, R>(
        &self,
        calls: &[(&str, &str, &str, B)],
    ) -> Vec<Result<R, ClientError>>
    where
        B: Serialize + Type,
        R: DeserializeOwned + Type,
    {
        const IN_FLIGHT: usize = 256;
        let mut out = Vec::with_capacity(calls.len());
        for slice in calls.chunks(IN_FLIGHT) {
            let answers = slice
                .iter()
                .map(|(path, iface, method, body)| self.send(path, iface, method, body));
            out.extend(futures_util::future::join_all(answers).await);
        }
        out
    }

    /// One call. Through a bus it carries NO_AUTO_START, as Upstart's
    /// initctl's calls do: asking for an init must never make the bus
    /// start one (the answer is then `Name "…" does not exist`).
    async fn send<B, R>(
        &self,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
    ) -> Result<R, ClientError>
    where
        B: Serialize + Type,
        R: DeserializeOwned + Type,
    {
        let Some(dest) = self.dest.as_deref() else {
            let reply = self
                .conn
                .call_method(None::<&str>, path, Some(iface), method, body)
                .await?;
            return Ok(reply.body().deserialize::<R>()?);
        };
        let proxy: zbus::Proxy = zbus::proxy::Builder::new(&self.conn)
            .destination(dest)
            .path(path)
            .interface(iface)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        proxy
            .call_with_flags::<_, _, R>(method, zbus::proxy::MethodFlags::NO_AUTO_START, body)
            .await?
            .ok_or_else(lost)
    }

    pub fn manager<B, R>(&self, method: &str, body: &B) -> Result<R, ClientError>
    where
        B: Serialize + Type,
        R: DeserializeOwned + Type,
    {
        self.call(MANAGER_PATH, MANAGER_IFACE, method, body)
    }

    /// One property, still wrapped in its variant.
    pub fn property(
        &self,
        path: &str,
        iface: &str,
        name: &str,
    ) -> Result<OwnedVariant, ClientError> {
        self.call(
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &(iface, name),
        )
    }

    /// The status line(s) of an instance, or `JOB stop/waiting` if it has
    /// gone (control.md §8.2). Its properties are asked for at once.
    pub fn status(&self, job: &str, instance_path: &str) -> Result<String, ClientError> {
        let item = [(job.to_string(), instance_path.to_string())];
        self.statuses(&item)
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(lost()))
    }

    /// A job's path and, sent along without waiting for that answer,
    /// `GetInstance(env)` on the path the job must have (Upstart's and
    /// outset's paths are the job's name escaped): one round trip instead
    /// of two. Should the job's path be another, `GetInstance` is asked
    /// again there.
    pub fn job_and_instance(
        &self,
        job: &str,
        env: &[String],
    ) -> Result<(OwnedObjectPath, Result<OwnedObjectPath, ClientError>), ClientError> {
        zbus::block_on(self.job_and_instance_async(job, env))
    }

    async fn job_and_instance_async(
        &self,
        job: &str,
        env: &[String],
    ) -> Result<(OwnedObjectPath, Result<OwnedObjectPath, ClientError>), ClientError> {
        let guess = job_path(job);
        let (path, instance) = futures_util::future::join(
            self.send::<_, OwnedObjectPath>(MANAGER_PATH, MANAGER_IFACE, "GetJobByName", &(job,)),
            self.send::<_, OwnedObjectPath>(&guess, JOB_IFACE, "GetInstance", &(env,)),
        )
        .await;
        let path = path?;
        if path.as_str() == guess {
            return Ok((path, instance));
        }
        let instance = self
            .send(path.as_str(), JOB_IFACE, "GetInstance", &(env,))
            .await;
        Ok((path, instance))
    }

    /// The `STATUS=` text an `expect notify` instance last sent, if any.
    /// Any error (an init without outset's interface, such as Upstart, or
    /// an instance that has gone) is no text.
    pub fn status_text(&self, instance_path: &str) -> Option<String> {
        zbus::block_on(self.status_text_async(instance_path))
    }

    async fn status_text_async(&self, instance_path: &str) -> Option<String> {
        let v: OwnedVariant = self
            .send(
                instance_path,
                "org.freedesktop.DBus.Properties",
                "Get",
                &(OUTSET_INSTANCE_IFACE, "status_text"),
            )
            .await
            .ok()?;
        String::try_from(v).ok().filter(|t| !t.is_empty())
    }
}

/// The line `initctl status` adds under an instance's status for its
/// `STATUS=` text.
pub fn status_text_line(text: &str) -> String {
    format!("\tstatus: {text}")
}

impl Client {
    /// [`Client::status`] of many instances (job, instance path), their
    /// properties fetched in one batch.
    pub fn statuses(&self, items: &[(String, String)]) -> Vec<Result<String, ClientError>> {
        zbus::block_on(self.statuses_async(items))
    }

    async fn statuses_async(&self, items: &[(String, String)]) -> Vec<Result<String, ClientError>> {
        const PROPS: [&str; 4] = ["name", "goal", "state", "processes"];
        let calls: Vec<(&str, &str, &str, (&str, &str))> = items
            .iter()
            .flat_map(|(_, path)| {
                PROPS.iter().map(move |p| {
                    (
                        path.as_str(),
                        "org.freedesktop.DBus.Properties",
                        "Get",
                        (INSTANCE_IFACE, *p),
                    )
                })
            })
            .collect();
        let mut answers = self
            .batch_async::<_, OwnedVariant>(&calls)
            .await
            .into_iter();
        items
            .iter()
            .map(|(job, _)| {
                let mut next = || answers.next().unwrap_or_else(|| Err(lost()));
                let (name, goal, state, procs) = (next(), next(), next(), next());
                let props = (|| -> Result<_, ClientError> {
                    Ok((
                        String::try_from(name?)?,
                        String::try_from(goal?)?,
                        String::try_from(state?)?,
                        Vec::<(String, i32)>::try_from(procs?)?,
                    ))
                })();
                status_result(job, props)
            })
            .collect()
    }
}

/// `GetInstance` found no instance of that name.
pub const UNKNOWN_INSTANCE: &str = "com.ubuntu.Upstart0_6.Error.UnknownInstance";

/// A failed connection worded as libdbus words it (and so Upstart's
/// initctl): `Failed to connect to socket NAME: REASON`.
fn connect_error(address: &str, e: zbus::Error) -> ClientError {
    let zbus::Error::Connection(io, _) = &e else {
        return e.into();
    };
    let socket = address.strip_prefix("unix:").and_then(|rest| {
        rest.split(',').find_map(|kv| {
            kv.strip_prefix("abstract=")
                .or_else(|| kv.strip_prefix("path="))
        })
    });
    let reason = match io.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => io.to_string(),
    };
    ClientError {
        name: "org.freedesktop.DBus.Error.NoServer".into(),
        message: match socket {
            Some(s) => format!("Failed to connect to socket {s}: {reason}"),
            None => format!("Failed to connect to {address}: {reason}"),
        },
    }
}

/// A batch came back with fewer answers than calls.
pub fn lost() -> ClientError {
    ClientError {
        name: "org.freedesktop.DBus.Error.Failed".into(),
        message: "no answer".into(),
    }
}

/// An instance's name, goal, state and processes.
type Props = (String, String, String, Vec<(String, i32)>);

/// A status line from an instance's properties; an instance that has
/// gone is `JOB stop/waiting` (control.md §8.2).
fn status_result(job: &str, props: Result<Props, ClientError>) -> Result<String, ClientError> {
    match props {
        Ok((name, goal, state, procs)) => Ok(status_line(job, &name, &goal, &state, &procs)),
        Err(e)
            if e.name == "org.freedesktop.DBus.Error.UnknownMethod"
                || e.name == "org.freedesktop.DBus.Error.UnknownObject" =>
        {
            Ok(format!("{job} stop/waiting"))
        }
        Err(e) => Err(e),
    }
}

/// `JOB[ (INSTANCE)] GOAL/STATE[, PROCESSINFO]` plus one tab-indented line
/// per further process.
pub fn status_line(
    job: &str,
    instance: &str,
    goal: &str,
    state: &str,
    procs: &[(String, i32)],
) -> String {
    let mut out = job.to_string();
    if !instance.is_empty() {
        out.push_str(&format!(" ({instance})"));
    }
    out.push_str(&format!(" {goal}/{state}"));
    for (i, (name, pid)) in procs.iter().enumerate() {
        if i == 0 {
            if matches!(name.as_str(), "main" | "pre-start" | "post-stop") {
                out.push_str(&format!(", process {pid}"));
            } else {
                out.push_str(&format!(", ({name}) process {pid}"));
            }
        } else {
            out.push_str(&format!("\n\t{name} process {pid}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_lines() {
        let p = |v: &[(&str, i32)]| {
            v.iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            status_line("ssh", "", "start", "running", &p(&[("main", 812)])),
            "ssh start/running, process 812"
        );
        assert_eq!(
            status_line("tty", "tty1", "start", "running", &p(&[("main", 1001)])),
            "tty (tty1) start/running, process 1001"
        );
        assert_eq!(
            status_line(
                "foo",
                "",
                "start",
                "post-start",
                &p(&[("main", 1234), ("post-start", 1357)])
            ),
            "foo start/post-start, process 1234\n\tpost-start process 1357"
        );
        assert_eq!(
            status_line(
                "foo",
                "",
                "start",
                "post-start",
                &p(&[("post-start", 1357)])
            ),
            "foo start/post-start, (post-start) process 1357"
        );
        assert_eq!(
            status_line("foo", "", "stop", "waiting", &[]),
            "foo stop/waiting"
        );
    }
}
