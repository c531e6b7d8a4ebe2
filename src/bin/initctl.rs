//! initctl: control outset (or Upstart) over its D-Bus API. Also answers
//! as `start`, `stop`, `restart`, `reload` and `status`.

#[path = "initctl/check.rs"]
mod check;
#[path = "initctl/commands.rs"]
mod commands;

use std::process::ExitCode;

use outset::cli::help;
use outset::cli::options::{self, Opt, Parsed, Stop};

use outset::control::client::{Client, ClientError, UNKNOWN_INSTANCE};
use outset::control::paths::{INSTANCE_IFACE, JOB_IFACE, MANAGER_PATH};
use outset::control::showconfig;
use zbus::OwnedObjectPath;

/// A parsed command line.
enum Command {
    Start {
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    Stop {
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    Restart {
        no_wait: bool,
        job: Option<String>,
        env: Vec<String>,
    },
    Reload {
        job: Option<String>,
        env: Vec<String>,
    },
    Status {
        job: Option<String>,
        env: Vec<String>,
    },
    List,
    /// `check [JOB]...`: exit 0 only if the jobs are up.
    Check {
        jobs: Vec<String>,
    },
    Emit {
        no_wait: bool,
        event: Option<String>,
        env: Vec<String>,
    },
    ReloadConfiguration,
    Version,
    Usage {
        job: Option<String>,
    },
    ListSessions,
    GetEnv {
        global: bool,
        name: Option<String>,
    },
    SetEnv {
        global: bool,
        retain: bool,
        vars: Vec<String>,
    },
    UnsetEnv {
        global: bool,
        names: Vec<String>,
    },
    ListEnv {
        global: bool,
    },
    ResetEnv {
        global: bool,
    },
    LogPriority {
        priority: Option<String>,
    },
    NotifyDiskWriteable,
    NotifyDbusAddress {
        address: Option<String>,
    },
    NotifyCgroupManagerAddress {
        address: Option<String>,
    },
    ShowConfig {
        enumerate: bool,
        conf: Option<String>,
    },
    CheckConfig {
        ignore_events: Vec<String>,
        warn: bool,
        conf: Option<String>,
    },
}

struct Ctl {
    prog: String,
    client: Client,
    user_mode: bool,
    level: Level,
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
    /// A line of ordinary output: nothing under `--quiet`, as with
    /// Upstart, where only errors remain.
    fn say(&self, line: std::fmt::Arguments) {
        if self.level != Level::Quiet {
            println!("{line}");
        }
    }

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
        self.say(format_args!("{}", self.client.status(job, path)?));
        Ok(())
    }

    /// `status`'s output: the status line(s), then the instance's
    /// `STATUS=` text if it sent one (an outset extension; Upstart has
    /// none, and every other output stays Upstart's).
    fn print_full_status(&self, job: &str, path: &str) -> Result<(), ClientError> {
        self.print_status(job, path)?;
        if let Some(text) = self.client.status_text(path) {
            self.say(format_args!(
                "{}",
                outset::control::client::status_text_line(&text)
            ));
        }
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
                let no_env = env.is_empty();
                match self.client.job_and_instance(&job, &env)?.1 {
                    Ok(ip) => self.print_full_status(&job, ip.as_str()),
                    Err(e) if no_env && e.name == UNKNOWN_INSTANCE => {
                        self.say(format_args!("{job} stop/waiting"));
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
                match command {
                    Command::Reload { .. } => Ok(()),
                    Command::Status { .. } => self.print_full_status(&job, ip.as_str()),
                    _ => self.print_status(&job, ip.as_str()),
                }
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
                        self.say(format_args!("{name} stop/waiting"));
                    }
                    for _ in paths {
                        if let Some(line) = statuses.next() {
                            self.say(format_args!("{}", line?));
                        }
                    }
                }
                Ok(())
            }
            Command::Check { jobs } => {
                let down = check::check(&self.client, &jobs)?;
                for line in &down {
                    self.say(format_args!("{line}"));
                }
                if down.is_empty() {
                    Ok(())
                } else {
                    Err(ClientError {
                        name: "silent".into(),
                        message: String::new(),
                    })
                }
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
                self.say(format_args!("{}", String::try_from(v)?));
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
                self.say(format_args!("Usage: {u}"));
                Ok(())
            }
            Command::ListSessions => Ok(()),
            Command::GetEnv { global, name } => {
                let name = name.ok_or_else(|| usage("missing variable name"))?;
                let v: String = self
                    .client
                    .manager("GetEnv", &(env_details(global)?, name))?;
                self.say(format_args!("{v}"));
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
                    self.say(format_args!("{v}"));
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
                        self.say(format_args!(
                            "{}",
                            String::try_from(self.client.property(path, iface, "log_priority")?)?
                        ));
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
                        self.say(format_args!("{line}"));
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
                        self.say(format_args!("{line}"));
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

/// How much initctl says: `-q` leaves only errors, `-v` adds
/// informational lines; the last of them given wins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Quiet,
    Normal,
    Verbose,
}

/// `initctl list-sessions`: the session files of this user whose init is
/// alive, creating the directory as Upstart does (so none is no error).
fn list_sessions(prog: &str, level: Level) -> ExitCode {
    let Some(runtime) =
        std::env::var_os("XDG_RUNTIME_DIR").filter(|d| d.to_string_lossy().starts_with('/'))
    else {
        return fail(prog, "Unable to query session directory");
    };
    let dir = std::path::Path::new(&runtime).join("upstart/sessions");
    for d in [dir.parent().unwrap_or(&dir), dir.as_path()] {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().mode(0o700).create(d);
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return fail(prog, "unable to determine sessions");
    };
    let mut files: Vec<(i32, std::path::PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let digits = name.strip_suffix(".session")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((digits.parse::<i32>().ok()?, entry.path()))
        })
        .collect();
    files.sort();
    for (pid, path) in files {
        // SAFETY: kill with signal 0 only checks that the pid exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            if level == Level::Verbose {
                println!("Ignoring stale session file: {}", path.display());
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let text = text.strip_suffix('\n').unwrap_or(&text);
        match text.strip_prefix("UPSTART_SESSION=") {
            Some(addr) if !addr.is_empty() && level != Level::Quiet => println!("{pid} {addr}"),
            _ => {}
        }
    }
    ExitCode::SUCCESS
}

/// The command line after the options: the command named `name` with its
/// arguments and options.
fn command(name: &str, p: &Parsed) -> Option<Command> {
    let mut args = p.args.iter().skip(1).cloned();
    let first = args.next();
    let rest: Vec<String> = args.collect();
    let all: Vec<String> = p.args.iter().skip(1).cloned().collect();
    let no_wait = p.has("no-wait");
    let global = p.has("global");
    Some(match name {
        "start" => Command::Start {
            no_wait,
            job: first,
            env: rest,
        },
        "stop" => Command::Stop {
            no_wait,
            job: first,
            env: rest,
        },
        "restart" => Command::Restart {
            no_wait,
            job: first,
            env: rest,
        },
        "reload" => Command::Reload {
            job: first,
            env: rest,
        },
        "status" => Command::Status {
            job: first,
            env: rest,
        },
        "list" => Command::List,
        "check" => Command::Check { jobs: all },
        "emit" => Command::Emit {
            no_wait,
            event: first,
            env: rest,
        },
        "reload-configuration" => Command::ReloadConfiguration,
        "version" => Command::Version,
        "usage" => Command::Usage { job: first },
        "list-sessions" => Command::ListSessions,
        "get-env" => Command::GetEnv {
            global,
            name: first,
        },
        "set-env" => Command::SetEnv {
            global,
            retain: p.has("retain"),
            vars: all,
        },
        "unset-env" => Command::UnsetEnv { global, names: all },
        "list-env" => Command::ListEnv { global },
        "reset-env" => Command::ResetEnv { global },
        "log-priority" => Command::LogPriority { priority: first },
        "notify-disk-writeable" => Command::NotifyDiskWriteable,
        "notify-dbus-address" => Command::NotifyDbusAddress { address: first },
        "notify-cgroup-manager-address" => Command::NotifyCgroupManagerAddress { address: first },
        "show-config" => Command::ShowConfig {
            enumerate: p.has("enumerate"),
            conf: first,
        },
        "check-config" => Command::CheckConfig {
            ignore_events: p
                .given
                .iter()
                .filter(|(l, _)| *l == "ignore-events")
                .filter_map(|(_, v)| v.clone())
                .collect(),
            warn: p.has("warn"),
            conf: first,
        },
        _ => return None,
    })
}

/// `--help` of one command, or of initctl itself (`spec` `None`).
fn help_page(prog: &str, spec: Option<&commands::Spec>, multicall: bool) -> String {
    match spec {
        None => {
            let footer = format!("For a list of commands, try `{prog} help'.");
            let page = help::Page {
                usage: Some("COMMAND [OPTION]... [ARG]..."),
                footer: Some(&footer),
                ..Default::default()
            };
            help::page(prog, &page, commands::GLOBAL)
        }
        Some(spec) => {
            let stem = format!("{} [OPTION]...", spec.name);
            let page = help::Page {
                stem: (!multicall).then_some(stem.as_str()),
                usage: spec.usage,
                synopsis: Some(spec.synopsis),
                help: spec.help,
                footer: None,
            };
            let opts: Vec<Opt> = spec
                .options
                .iter()
                .chain(commands::GLOBAL)
                .copied()
                .collect();
            help::page(prog, &page, &opts)
        }
    }
}

/// Parse the command line the way Upstart's initctl does; `Err` is the
/// exit status when there is nothing more to do (help, version or a
/// usage error, already printed).
fn parse_command_line(
    prog: &str,
    argv: &[String],
) -> Result<(&'static commands::Spec, Parsed), ExitCode> {
    let stopped = |spec: Option<&commands::Spec>, multicall: bool, stop: Stop| match stop {
        Stop::Help => {
            print!("{}", help_page(prog, spec, multicall));
            ExitCode::SUCCESS
        }
        Stop::Version => {
            print!("{}", help::version(prog));
            ExitCode::SUCCESS
        }
        Stop::Error(msg) => usage_error(prog, &msg),
    };
    // Invoked under a command's name (`start`, `status`, ...): that command.
    let (spec, cmd_argv, before, multicall) = match commands::find(prog) {
        Some(spec) => (spec, argv.to_vec(), Parsed::default(), true),
        None => {
            let global = options::parse(argv, commands::GLOBAL, true)
                .map_err(|s| stopped(None, false, s))?;
            let Some(name) = global.args.first() else {
                return Err(usage_error(prog, "missing command"));
            };
            let Some(spec) = commands::find(name) else {
                return Err(usage_error(prog, &format!("invalid command: {name}")));
            };
            (spec, global.args.clone(), global, false)
        }
    };
    let opts: Vec<Opt> = spec
        .options
        .iter()
        .chain(commands::GLOBAL)
        .copied()
        .collect();
    let mut parsed =
        options::parse(&cmd_argv, &opts, false).map_err(|s| stopped(Some(spec), multicall, s))?;
    if spec.name == "help" {
        let entries: Vec<help::Entry> = commands::COMMANDS
            .iter()
            .map(|c| help::Entry {
                name: c.name,
                synopsis: c.synopsis,
                group: c.group,
            })
            .collect();
        print!("{}", help::commands(prog, &entries));
        return Err(ExitCode::SUCCESS);
    }
    // Options given before the command count too.
    let mut given = before.given;
    given.append(&mut parsed.given);
    parsed.given = given;
    parsed.args.insert(0, spec.name.to_string());
    Ok((spec, parsed))
}

fn main() -> ExitCode {
    // Like any C tool: a closed pipe (`initctl list | head`) ends us
    // quietly instead of a panic in println!.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "initctl".to_string());
    let (spec, parsed) = match parse_command_line(&prog, &argv) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let level = parsed
        .given
        .iter()
        .rev()
        .find_map(|(l, _)| match *l {
            "quiet" => Some(Level::Quiet),
            "verbose" | "debug" => Some(Level::Verbose),
            _ => None,
        })
        .unwrap_or(Level::Normal);
    let Some(command) = command(spec.name, &parsed) else {
        return usage_error(&prog, &format!("invalid command: {}", spec.name));
    };
    if matches!(command, Command::ListSessions) {
        return list_sessions(&prog, level);
    }
    // The last of --system and --session chooses the bus.
    let bus = parsed.given.iter().rev().find_map(|(l, _)| match *l {
        "system" => Some(true),
        "session" => Some(false),
        _ => None,
    });
    let dest = parsed.value("dest").map(str::to_string);
    if dest.is_some() && bus.is_none() {
        return usage_error(&prog, "--dest given without --system");
    }
    let session = std::env::var("UPSTART_SESSION")
        .ok()
        .filter(|s| !s.is_empty());
    let user_mode = parsed.has("user") || (session.is_some() && bus.is_none());
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
    } else if bus.is_some() || !nix::unistd::getuid().is_root() {
        // Other users reach the system init through the bus (control.md §8.1).
        let system = bus.unwrap_or(true);
        let dest = dest.unwrap_or_else(|| "com.ubuntu.Upstart".to_string());
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
                level,
            },
            command,
        );
    } else {
        "unix:abstract=/com/ubuntu/upstart".to_string()
    };
    // The call scripts make in loops: one connection, one run.
    if let Command::Status {
        job: Some(job),
        env,
    } = &command
    {
        return match Client::job_status_once(&address, job, env) {
            Ok(Ok(line)) => {
                if level != Level::Quiet {
                    println!("{line}");
                }
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => fail(&prog, &e.message),
            Err(e) => connect_failed(&prog, user_mode, &address, &e),
        };
    }
    let client = match Client::connect(&address) {
        Ok(c) => c,
        Err(e) => return connect_failed(&prog, user_mode, &address, &e),
    };
    let ctl = Ctl {
        prog: prog.clone(),
        client,
        user_mode,
        level,
    };
    finish(ctl, command)
}

/// No connection to init: said as Upstart's initctl says it, and where
/// outset looked.
fn connect_failed(prog: &str, user_mode: bool, address: &str, e: &ClientError) -> ExitCode {
    let code = fail(
        prog,
        &format!("Unable to connect to Upstart: {}", e.message),
    );
    if !user_mode {
        eprintln!(
            "{prog}: tried the system init at {address}; a session init needs \
             UPSTART_SESSION (see `initctl list-sessions') or --session"
        );
    }
    code
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
