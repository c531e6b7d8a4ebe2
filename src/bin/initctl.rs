//! initctl: control outset (or Upstart) over its D-Bus API. Also answers
//! as `start`, `stop`, `restart`, `reload` and `status`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

use outset::control::client::{Client, ClientError};
use outset::control::paths::{INSTANCE_IFACE, JOB_IFACE, MANAGER_PATH};
use outset::control::showconfig;
use zbus::OwnedObjectPath;

#[derive(Parser)]
#[command(name = "initctl", version, about = "Control the init daemon")]
struct Cli {
    /// Talk to the session init at $UPSTART_SESSION.
    #[arg(long, global = true)]
    user: bool,
    /// Use the D-Bus system bus instead of the private socket.
    #[arg(long, global = true)]
    system: bool,
    /// Use the D-Bus session bus (testing).
    #[arg(long, global = true)]
    session: bool,
    /// Destination name on the bus.
    #[arg(long, global = true, value_name = "NAME")]
    dest: Option<String>,
    /// Reduce output.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Increase output.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Accepted for compatibility.
    #[arg(long, global = true, hide = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a job.
    Start {
        #[arg(short = 'n', long)]
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    /// Stop a job.
    Stop {
        #[arg(short = 'n', long)]
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    /// Restart a job.
    Restart {
        #[arg(short = 'n', long)]
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    /// Send a job its reload signal.
    Reload {
        job: Option<String>,
        env: Vec<String>,
    },
    /// Show a job's status.
    Status {
        job: Option<String>,
        env: Vec<String>,
    },
    /// List every job and its instances.
    List,
    /// Emit an event.
    Emit {
        #[arg(short = 'n', long)]
        no_wait: bool,
        event: Option<String>,
        env: Vec<String>,
    },
    /// Reload the job configuration.
    ReloadConfiguration,
    /// Show init's version.
    Version,
    /// Show a job's usage text.
    Usage { job: Option<String> },
    /// List the session inits of this user.
    ListSessions,
    /// Show a variable of the job environment.
    GetEnv {
        #[arg(short, long)]
        global: bool,
        name: Option<String>,
    },
    /// Set variables of the job environment.
    SetEnv {
        #[arg(short, long)]
        global: bool,
        /// Keep a variable's existing value.
        #[arg(short, long)]
        retain: bool,
        vars: Vec<String>,
    },
    /// Remove variables from the job environment.
    UnsetEnv {
        #[arg(short, long)]
        global: bool,
        names: Vec<String>,
    },
    /// List the job environment.
    ListEnv {
        #[arg(short, long)]
        global: bool,
    },
    /// Reset the job environment to its initial value.
    ResetEnv {
        #[arg(short, long)]
        global: bool,
    },
    /// Show or set init's log priority.
    LogPriority { priority: Option<String> },
    /// Tell init the disk is writeable (flush early job logs).
    NotifyDiskWriteable,
    /// Tell a session init where the D-Bus bus is.
    NotifyDbusAddress { address: Option<String> },
    /// Tell init where the cgroup manager is.
    NotifyCgroupManagerAddress { address: Option<String> },
    /// Show the start and stop conditions of jobs.
    ShowConfig {
        #[arg(short, long)]
        enumerate: bool,
        conf: Option<String>,
    },
    /// Report events and jobs that conditions name but nothing provides.
    CheckConfig {
        #[arg(short, long = "ignore-events", value_name = "LIST")]
        ignore_events: Vec<String>,
        #[arg(short, long)]
        warn: bool,
        conf: Option<String>,
    },
}

const MULTICALL: &[&str] = &["start", "stop", "restart", "reload", "status"];

struct Ctl {
    prog: String,
    client: Client,
    user_mode: bool,
}

fn usage(message: &str) -> ClientError {
    ClientError {
        name: "usage".into(),
        message: message.into(),
    }
}

/// `[]` for the global table, or `[JOB, INSTANCE]` inside a job.
fn env_details(global: bool) -> Result<Vec<String>, ClientError> {
    if global {
        return Ok(Vec::new());
    }
    match (
        std::env::var("UPSTART_JOB").ok(),
        std::env::var("UPSTART_INSTANCE").ok(),
    ) {
        (Some(job), Some(inst)) => Ok(vec![job, inst]),
        (Some(_), None) => Err(usage("missing job name")),
        _ => Ok(Vec::new()),
    }
}

/// `PROG: MESSAGE`, with no space when the message's first space-or-colon
/// character is a colon (the reference logger's rule).
fn error_line(prog: &str, msg: &str) -> String {
    let first = msg.chars().find(|c| *c == ' ' || *c == ':');
    if first == Some(':') {
        format!("{prog}:{msg}")
    } else {
        format!("{prog}: {msg}")
    }
}

fn fail(prog: &str, msg: &str) -> ExitCode {
    eprintln!("{}", error_line(prog, msg));
    ExitCode::from(1)
}

fn usage_error(prog: &str, msg: &str) -> ExitCode {
    eprintln!("{}", error_line(prog, msg));
    eprintln!("Try `{prog} --help' for more information.");
    ExitCode::from(1)
}

/// Inside a job both variables are set; commands then act on that instance.
fn own_instance() -> Option<(String, String)> {
    let job = std::env::var("UPSTART_JOB").ok()?;
    let inst = std::env::var("UPSTART_INSTANCE").ok()?;
    Some((job, inst))
}

impl Ctl {
    /// Name, emits and conditions of one job (or every job).
    fn jobs(&self, only: Option<&str>) -> Result<Vec<showconfig::JobInfo>, ClientError> {
        let paths: Vec<OwnedObjectPath> = match only {
            Some(name) => vec![self.job_path(name)?],
            None => self.client.manager("GetAllJobs", &())?,
        };
        let mut out = Vec::new();
        for p in paths {
            let get = |n: &str| self.client.property(p.as_str(), JOB_IFACE, n);
            let info = (|| -> Result<showconfig::JobInfo, ClientError> {
                Ok(showconfig::JobInfo {
                    name: String::try_from(get("name")?)?,
                    emits: Vec::<String>::try_from(get("emits")?)?,
                    start_on: Vec::<Vec<String>>::try_from(get("start_on")?)?,
                    stop_on: Vec::<Vec<String>>::try_from(get("stop_on")?)?,
                })
            })();
            match info {
                Ok(i) => out.push(i),
                Err(e) if e.name == "org.freedesktop.DBus.Error.UnknownObject" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn job_path(&self, job: &str) -> Result<OwnedObjectPath, ClientError> {
        self.client.manager("GetJobByName", &(job,))
    }

    fn own_instance_path(&self) -> Result<(String, OwnedObjectPath), ClientError> {
        let (job, inst) = own_instance().ok_or_else(|| ClientError {
            name: String::new(),
            message: "missing job name".into(),
        })?;
        let jp = self.job_path(&job)?;
        let ip: OwnedObjectPath = self.client.call(
            jp.as_str(),
            JOB_IFACE,
            "GetInstanceByName",
            &(inst.as_str(),),
        )?;
        Ok((job, ip))
    }

    fn print_status(&self, job: &str, path: &str) -> Result<(), ClientError> {
        println!("{}", self.client.status(job, path)?);
        Ok(())
    }

    fn run(&self, command: Command) -> Result<(), ClientError> {
        match command {
            Command::Start {
                no_wait,
                job: Some(job),
                env,
            } => {
                let jp = self.job_path(&job)?;
                let ip: OwnedObjectPath =
                    self.client
                        .call(jp.as_str(), JOB_IFACE, "Start", &(env, !no_wait))?;
                self.print_status(&job, ip.as_str())
            }
            Command::Restart {
                no_wait,
                job: Some(job),
                env,
            } => {
                let jp = self.job_path(&job)?;
                let ip: OwnedObjectPath =
                    self.client
                        .call(jp.as_str(), JOB_IFACE, "Restart", &(env, !no_wait))?;
                self.print_status(&job, ip.as_str())
            }
            Command::Stop {
                no_wait,
                job: Some(job),
                env,
            } => {
                let jp = self.job_path(&job)?;
                let ip: OwnedObjectPath =
                    self.client
                        .call(jp.as_str(), JOB_IFACE, "GetInstance", &(env.clone(),))?;
                self.client
                    .call::<_, ()>(jp.as_str(), JOB_IFACE, "Stop", &(env, !no_wait))?;
                self.print_status(&job, ip.as_str())
            }
            Command::Reload {
                job: Some(job),
                env,
            } => {
                let jp = self.job_path(&job)?;
                let ip: OwnedObjectPath =
                    self.client
                        .call(jp.as_str(), JOB_IFACE, "GetInstance", &(env,))?;
                self.client
                    .call::<_, ()>(ip.as_str(), INSTANCE_IFACE, "Reload", &())
            }
            Command::Status {
                job: Some(job),
                env,
            } => {
                let jp = self.job_path(&job)?;
                let no_env = env.is_empty();
                match self.client.call::<_, OwnedObjectPath>(
                    jp.as_str(),
                    JOB_IFACE,
                    "GetInstance",
                    &(env,),
                ) {
                    Ok(ip) => self.print_status(&job, ip.as_str()),
                    Err(e) if no_env && e.name == "com.ubuntu.Upstart0_6.Error.UnknownInstance" => {
                        println!("{job} stop/waiting");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            // Without a job name: act on the job we are running in.
            Command::Start { .. }
            | Command::Stop { .. }
            | Command::Restart { .. }
            | Command::Reload { .. }
            | Command::Status { .. } => {
                let (job, ip) = self.own_instance_path()?;
                let method = match &command {
                    Command::Start { .. } => Some(("Start", true)),
                    Command::Stop { .. } => Some(("Stop", true)),
                    Command::Restart { .. } => Some(("Restart", true)),
                    Command::Reload { .. } => Some(("Reload", false)),
                    _ => None,
                };
                match method {
                    Some((m, true)) => {
                        self.client
                            .call::<_, ()>(ip.as_str(), INSTANCE_IFACE, m, &(false,))?
                    }
                    Some((m, false)) => {
                        self.client
                            .call::<_, ()>(ip.as_str(), INSTANCE_IFACE, m, &())?
                    }
                    None => {}
                }
                if matches!(command, Command::Reload { .. }) {
                    return Ok(());
                }
                self.print_status(&job, ip.as_str())
            }
            Command::List => {
                let jobs: Vec<OwnedObjectPath> = self.client.manager("GetAllJobs", &())?;
                // Names and instance lists of every job, then the status of
                // every instance, each in one batch of calls.
                let tolerate = |e: ClientError| -> Result<(), ClientError> {
                    if e.name == "org.freedesktop.DBus.Error.UnknownMethod"
                        || e.name == "org.freedesktop.DBus.Error.UnknownObject"
                    {
                        Ok(())
                    } else {
                        Err(e)
                    }
                };
                // A class's name is in its path (control.md §2); only a
                // path that does not escape back to itself (as Upstart's
                // for bytes above 0x7f) costs a call for its `name`.
                let from_path = |jp: &OwnedObjectPath| {
                    let esc = jp
                        .as_str()
                        .strip_prefix(MANAGER_PATH)?
                        .strip_prefix("/jobs/")?;
                    let name = outset::control::paths::unescape(esc)?;
                    (outset::control::paths::escape(&name) == esc).then_some(name)
                };
                let props = "org.freedesktop.DBus.Properties";
                let name_calls: Vec<_> = jobs
                    .iter()
                    .filter(|jp| from_path(jp).is_none())
                    .map(|jp| (jp.as_str(), props, "Get", (JOB_IFACE, "name")))
                    .collect();
                let mut asked = self
                    .client
                    .batch::<_, zbus::OwnedVariant>(&name_calls)
                    .into_iter();
                let names: Vec<Result<String, ClientError>> = jobs
                    .iter()
                    .map(|jp| match from_path(jp) {
                        Some(name) => Ok(name),
                        None => asked
                            .next()
                            .unwrap_or_else(|| Err(outset::control::client::lost()))
                            .and_then(|v| Ok(String::try_from(v)?)),
                    })
                    .collect();
                let instance_calls: Vec<_> = jobs
                    .iter()
                    .map(|jp| (jp.as_str(), JOB_IFACE, "GetAllInstances", ()))
                    .collect();
                let instances = self
                    .client
                    .batch::<_, Vec<OwnedObjectPath>>(&instance_calls);
                // Per job: its name and instance paths, or nothing if it went.
                let mut listing: Vec<(String, Vec<String>)> = Vec::new();
                for (name, insts) in names.into_iter().zip(instances) {
                    let name = match name {
                        Ok(n) => n,
                        Err(e) => {
                            tolerate(e)?;
                            continue;
                        }
                    };
                    match insts {
                        Ok(i) => listing.push((name, i.iter().map(|p| p.to_string()).collect())),
                        Err(e) => tolerate(e)?,
                    }
                }
                let wanted: Vec<(String, String)> = listing
                    .iter()
                    .flat_map(|(name, paths)| paths.iter().map(|p| (name.clone(), p.clone())))
                    .collect();
                let mut statuses = self.client.statuses(&wanted).into_iter();
                for (name, paths) in &listing {
                    if paths.is_empty() {
                        println!("{name} stop/waiting");
                    }
                    for _ in paths {
                        if let Some(line) = statuses.next() {
                            println!("{}", line?);
                        }
                    }
                }
                Ok(())
            }
            Command::Emit {
                no_wait,
                event,
                env,
            } => {
                let Some(event) = event else {
                    return Err(ClientError {
                        name: "usage".into(),
                        message: "missing event name".into(),
                    });
                };
                self.client
                    .manager::<_, ()>("EmitEvent", &(event, env, !no_wait))
            }
            Command::ReloadConfiguration => {
                self.client.manager::<_, ()>("ReloadConfiguration", &())
            }
            Command::Version => {
                let v = self.client.property(
                    outset::control::paths::MANAGER_PATH,
                    outset::control::paths::MANAGER_IFACE,
                    "version",
                )?;
                println!("{}", String::try_from(v)?);
                Ok(())
            }
            Command::Usage { job } => {
                let Some(job) = job else {
                    return Err(ClientError {
                        name: "usage".into(),
                        message: "missing job name".into(),
                    });
                };
                let jp = self.job_path(&job)?;
                let u = String::try_from(self.client.property(jp.as_str(), JOB_IFACE, "usage")?)?;
                println!("Usage: {u}");
                Ok(())
            }
            Command::ListSessions => Ok(()),
            Command::GetEnv { global, name } => {
                let name = name.ok_or_else(|| usage("missing variable name"))?;
                let v: String = self
                    .client
                    .manager("GetEnv", &(env_details(global)?, name))?;
                println!("{v}");
                Ok(())
            }
            Command::SetEnv {
                global,
                retain,
                vars,
            } => {
                if vars.is_empty() {
                    return Err(usage("missing variable value"));
                }
                self.client
                    .manager::<_, ()>("SetEnvList", &(env_details(global)?, vars, !retain))
            }
            Command::UnsetEnv { global, names } => {
                if names.is_empty() {
                    return Err(usage("missing variable name"));
                }
                self.client
                    .manager::<_, ()>("UnsetEnvList", &(env_details(global)?, names))
            }
            Command::ListEnv { global } => {
                let mut vars: Vec<String> =
                    self.client.manager("ListEnv", &(env_details(global)?,))?;
                vars.sort();
                for v in vars {
                    println!("{v}");
                }
                Ok(())
            }
            Command::ResetEnv { global } => self
                .client
                .manager::<_, ()>("ResetEnv", &(env_details(global)?,)),
            Command::LogPriority { priority } => {
                let path = outset::control::paths::MANAGER_PATH;
                let iface = outset::control::paths::MANAGER_IFACE;
                match priority {
                    Some(p) => self.client.call::<_, ()>(
                        path,
                        "org.freedesktop.DBus.Properties",
                        "Set",
                        &(iface, "log_priority", zbus::Variant::from(p)),
                    ),
                    None => {
                        println!(
                            "{}",
                            String::try_from(self.client.property(path, iface, "log_priority")?)?
                        );
                        Ok(())
                    }
                }
            }
            Command::NotifyDiskWriteable => {
                self.client.manager::<_, ()>("NotifyDiskWriteable", &())
            }
            Command::NotifyDbusAddress { address } => {
                let a = address.ok_or_else(|| usage("missing D-Bus address"))?;
                self.client.manager::<_, ()>("NotifyDBusAddress", &(a,))
            }
            Command::NotifyCgroupManagerAddress { address } => {
                let a = address.ok_or_else(|| usage("missing address"))?;
                self.client
                    .manager::<_, ()>("NotifyCGroupManagerAddress", &(a,))
            }
            Command::ShowConfig { enumerate, conf } => {
                for job in self.jobs(conf.as_deref())? {
                    for line in showconfig::show(&job, enumerate) {
                        println!("{line}");
                    }
                }
                Ok(())
            }
            Command::CheckConfig {
                ignore_events,
                warn,
                conf,
            } => {
                let all = self.jobs(None)?;
                let ignored: Vec<String> = ignore_events
                    .iter()
                    .flat_map(|l| l.split(','))
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect();
                let known = showconfig::Known {
                    jobs: &all,
                    ignored: &ignored,
                    user_mode: self.user_mode,
                    warn,
                };
                let targets: Vec<&showconfig::JobInfo> = match &conf {
                    Some(c) => match all.iter().find(|j| &j.name == c) {
                        Some(j) => vec![j],
                        None => {
                            return Err(ClientError {
                                name: "local".into(),
                                message: format!("Invalid job class: {c}"),
                            })
                        }
                    },
                    None => all.iter().collect(),
                };
                let mut found = false;
                for job in targets {
                    for line in known.check(job) {
                        found = true;
                        println!("{line}");
                    }
                }
                if found {
                    Err(ClientError {
                        name: "silent".into(),
                        message: String::new(),
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// `initctl list-sessions`: live session files of this user.
fn list_sessions(prog: &str) -> ExitCode {
    let Some(runtime) =
        std::env::var_os("XDG_RUNTIME_DIR").filter(|d| d.to_string_lossy().starts_with('/'))
    else {
        return fail(prog, "Unable to query session directory");
    };
    let dir = std::path::Path::new(&runtime).join("upstart/sessions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return fail(prog, "unable to determine sessions");
    };
    let mut sessions: Vec<(i32, String)> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_suffix(".session")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks that the pid exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        if let Some(addr) = text.trim_end().strip_prefix("UPSTART_SESSION=") {
            sessions.push((pid, addr.to_string()));
        }
    }
    sessions.sort();
    for (pid, addr) in sessions {
        println!("{pid} {addr}");
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // Like any C tool: a closed pipe (`initctl list | head`) ends us
    // quietly instead of a panic in println!.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "initctl".to_string());
    if MULTICALL.contains(&prog.as_str()) {
        argv.insert(1, prog.clone());
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                ErrorKind::MissingSubcommand
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    usage_error(&prog, "missing command")
                }
                ErrorKind::InvalidSubcommand => {
                    let cmd = argv
                        .iter()
                        .skip(1)
                        .find(|a| !a.starts_with('-'))
                        .cloned()
                        .unwrap_or_default();
                    usage_error(&prog, &format!("invalid command: {cmd}"))
                }
                _ => {
                    let msg = e.to_string();
                    let first = msg
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    usage_error(&prog, first)
                }
            };
        }
    };
    if matches!(cli.command, Command::ListSessions) {
        return list_sessions(&prog);
    }
    if cli.dest.is_some() && !cli.system && !cli.session {
        return usage_error(&prog, "--dest given without --system");
    }
    let session = std::env::var("UPSTART_SESSION")
        .ok()
        .filter(|s| !s.is_empty());
    let user_mode = cli.user || (session.is_some() && !cli.system && !cli.session);
    let address = if user_mode {
        match session {
            Some(s) => s,
            None => {
                return fail(
                    &prog,
                    "UPSTART_SESSION isn't set in the environment. Unable to locate the Upstart instance.",
                )
            }
        }
    } else if cli.system || cli.session || unsafe { libc::getuid() } != 0 {
        // Other users reach the system init through the bus (control.md §8.1).
        let system = !cli.session;
        let dest = cli
            .dest
            .clone()
            .unwrap_or_else(|| "com.ubuntu.Upstart".to_string());
        let client = match Client::connect_bus(system, &dest) {
            Ok(c) => c,
            Err(e) => {
                let bus = if system { "system" } else { "session" };
                return fail(
                    &prog,
                    &format!("Unable to connect to {bus} bus: {}", e.message),
                );
            }
        };
        return finish(
            Ctl {
                prog: prog.clone(),
                client,
                user_mode: false,
            },
            cli.command,
        );
    } else {
        "unix:abstract=/com/ubuntu/upstart".to_string()
    };
    let client = match Client::connect(&address) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                &prog,
                &format!("Unable to connect to Upstart: {}", e.message),
            )
        }
    };
    let ctl = Ctl {
        prog: prog.clone(),
        client,
        user_mode,
    };
    finish(ctl, cli.command)
}

/// Run the command and turn its outcome into output and an exit status.
fn finish(ctl: Ctl, command: Command) -> ExitCode {
    match ctl.run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.name == "usage" || e.name.is_empty() => usage_error(&ctl.prog, &e.message),
        Err(e) if e.name == "silent" => ExitCode::from(1),
        Err(e) if e.name == "com.ubuntu.Upstart0_6.Error.EventFailed" => {
            fail(&ctl.prog, "Event failed")
        }
        Err(e) => fail(&ctl.prog, &e.message),
    }
}
