//! initctl's commands and options with their help texts (the wording of
//! Upstart's initctl, so that `--help` reads the same).

use outset::cli::options::Opt;

/// One command: its name, arguments, one-line synopsis, longer help, the
/// group `initctl help` lists it under, and its own options.
pub struct Spec {
    pub name: &'static str,
    pub usage: Option<&'static str>,
    pub synopsis: &'static str,
    pub help: Option<&'static str>,
    pub group: Option<&'static str>,
    pub options: &'static [Opt],
}

const fn flag(short: char, long: &'static str, help: &'static str) -> Opt {
    Opt {
        short: Some(short),
        long,
        arg: None,
        help: Some(help),
    }
}

const fn long_flag(long: &'static str, help: &'static str) -> Opt {
    Opt {
        short: None,
        long,
        arg: None,
        help: Some(help),
    }
}

/// Options of every command, after the command's own.
pub const GLOBAL: &[Opt] = &[
    long_flag(
        "session",
        "use existing D-Bus session bus to connect to init daemon (for testing)",
    ),
    long_flag("system", "use D-Bus system bus to connect to init daemon"),
    Opt {
        short: None,
        long: "dest",
        arg: Some("NAME"),
        help: Some("destination well-known name on D-Bus bus"),
    },
    long_flag("user", "run in user mode (as used for user sessions)"),
];

const START: &[Opt] = &[flag(
    'n',
    "no-wait",
    "do not wait for job to start before exiting",
)];
const STOP: &[Opt] = &[flag(
    'n',
    "no-wait",
    "do not wait for job to stop before exiting",
)];
const RESTART: &[Opt] = &[flag(
    'n',
    "no-wait",
    "do not wait for job to restart before exiting",
)];
const EMIT: &[Opt] = &[flag(
    'n',
    "no-wait",
    "do not wait for event to finish before exiting",
)];
const SHOW_CONFIG: &[Opt] = &[flag(
    'e',
    "enumerate",
    "enumerate list of events and jobs causing job created from job config to start/stop",
)];
const CHECK_CONFIG: &[Opt] = &[
    Opt {
        short: Some('i'),
        long: "ignore-events",
        arg: Some("EVENT_LIST"),
        help: Some("ignore specified list of events (comma-separated)"),
    },
    flag(
        'w',
        "warn",
        "Generate warning for any unreachable events/jobs",
    ),
];
const GLOBAL_ENV: Opt = flag('g', "global", "apply to global job environment table");
const ENV: &[Opt] = &[GLOBAL_ENV];
const SET_ENV: &[Opt] = &[
    GLOBAL_ENV,
    flag(
        'r',
        "retain",
        "do not replace the value of the variable if already set",
    ),
];

const JOB: Option<&str> = Some("Job");
const EVENT: Option<&str> = Some("Event");
const ENVIRONMENT: Option<&str> = Some("Environment");

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "start",
        usage: Some("JOB [KEY=VALUE]..."),
        synopsis: "Start job.",
        help: Some(
            "JOB is the name of the job that is to be started, this may be followed by zero \
             or more environment variables to be defined in the new job.\n\nThe environment \
             may also serve to distinguish between job instances, and thus decide whether a \
             new instance will be started or an error returned if an existing instance is \
             already running.",
        ),
        group: JOB,
        options: START,
    },
    Spec {
        name: "stop",
        usage: Some("JOB [KEY=VALUE]..."),
        synopsis: "Stop job.",
        help: Some(
            "JOB is the name of the job that is to be stopped, this may be followed by zero \
             or more environment variables to be passed to the job's pre-stop and post-stop \
             processes.\n\nThe environment also serves to distinguish between job instances, \
             and thus decide which of multiple instances will be stopped.",
        ),
        group: JOB,
        options: STOP,
    },
    Spec {
        name: "restart",
        usage: Some("JOB [KEY=VALUE]..."),
        synopsis: "Restart job.",
        help: Some(
            "JOB is the name of the job that is to be restarted, this may be followed by zero \
             or more environment variables to be defined in the job after restarting.\n\nThe \
             environment also serves to distinguish between job instances, and thus decide \
             which of multiple instances will be restarted.",
        ),
        group: JOB,
        options: RESTART,
    },
    Spec {
        name: "reload",
        usage: Some("JOB [KEY=VALUE]..."),
        synopsis: "Send HUP signal to job.",
        help: Some(
            "JOB is the name of the job that is to be sent the signal, this may be followed \
             by zero or more environment variables to distinguish between job instances.\n",
        ),
        group: JOB,
        options: &[],
    },
    Spec {
        name: "status",
        usage: Some("JOB [KEY=VALUE]..."),
        synopsis: "Query status of job.",
        help: Some(
            "JOB is the name of the job that is to be queried, this may be followed by zero \
             or more environment variables to distguish between job instances.\n",
        ),
        group: JOB,
        options: &[],
    },
    Spec {
        name: "check",
        usage: Some("[JOB]..."),
        synopsis: "Check that jobs are up (a probe).",
        help: Some(
            "Exits with status 0 only when every named JOB has instances and all of them are \
             running (goal start, state running). Without JOB, every instance whose goal is \
             start must be running. Otherwise prints one line per job or instance that is \
             not, such as `JOB is stop/waiting', and exits with status 1.\n",
        ),
        group: JOB,
        options: &[],
    },
    Spec {
        name: "list",
        usage: None,
        synopsis: "List known jobs.",
        help: Some("The known jobs and their current status will be output."),
        group: JOB,
        options: &[],
    },
    Spec {
        name: "emit",
        usage: Some("EVENT [KEY=VALUE]..."),
        synopsis: "Emit an event.",
        help: Some(
            "EVENT is the name of an event the init daemon should emit, this may be followed \
             by zero or more environment variables to be included in the event.\n",
        ),
        group: EVENT,
        options: EMIT,
    },
    Spec {
        name: "reload-configuration",
        usage: None,
        synopsis: "Reload the configuration of the init daemon.",
        help: None,
        group: None,
        options: &[],
    },
    Spec {
        name: "version",
        usage: None,
        synopsis: "Request the version of the init daemon.",
        help: None,
        group: None,
        options: &[],
    },
    Spec {
        name: "log-priority",
        usage: Some("[PRIORITY]"),
        synopsis: "Change the minimum priority of log messages from the init daemon.",
        help: Some(
            "PRIORITY may be one of:\n  `debug' (messages useful for debugging upstart are \
             logged, equivalent to --debug on kernel command-line);\n  `info' (messages about \
             job goal and state changes, as well as event emissions are logged, equivalent to \
             --verbose on the kernel command-line);\n  `message' (informational and debugging \
             messages are suppressed, the default);   `warn' (ordinary messages are suppressed \
             whilst still logging warnings and errors);\n  `error' (only errors are logged, \
             equivalent to --quiet on the kernel command-line) or\n  `fatal' (only fatal \
             errors are logged).\n\nWithout arguments, this outputs the current log priority.",
        ),
        group: None,
        options: &[],
    },
    Spec {
        name: "show-config",
        usage: Some("[CONF]"),
        synopsis: "Show emits, start on and stop on details for job configurations.",
        help: Some(
            "If CONF specified, show configuration details for single job configuration, \
             else show details for all jobs configurations.\n",
        ),
        group: None,
        options: SHOW_CONFIG,
    },
    Spec {
        name: "check-config",
        usage: Some("[CONF]"),
        synopsis: "Check for unreachable jobs/event conditions.",
        help: Some(
            "List all jobs and events which cannot be satisfied by currently available job \
             configuration files.",
        ),
        group: None,
        options: CHECK_CONFIG,
    },
    Spec {
        name: "get-env",
        usage: Some("VARIABLE"),
        synopsis: "Retrieve value of a job environment variable.",
        help: Some("Display the value of a variable from the job environment table."),
        group: ENVIRONMENT,
        options: ENV,
    },
    Spec {
        name: "list-env",
        usage: None,
        synopsis: "Show all job environment variables.",
        help: Some(
            "Displays sorted list of variables and their values from the job environment table.",
        ),
        group: ENVIRONMENT,
        options: ENV,
    },
    Spec {
        name: "reset-env",
        usage: Some("VARIABLE"),
        synopsis: "Revert all job environment variable changes.",
        help: Some(
            "Discards all changes make to the job environment table, setting it back to its \
             default value.",
        ),
        group: ENVIRONMENT,
        options: ENV,
    },
    Spec {
        name: "set-env",
        usage: Some("VARIABLE[=VALUE]"),
        synopsis: "Set one or more job environment variables.",
        help: Some("Adds or updates variables in the job environment table."),
        group: ENVIRONMENT,
        options: SET_ENV,
    },
    Spec {
        name: "unset-env",
        usage: Some("VARIABLE"),
        synopsis: "Remove one or more job environment variables.",
        help: Some("Discards variables from the job environment table."),
        group: ENVIRONMENT,
        options: ENV,
    },
    Spec {
        name: "usage",
        usage: Some("JOB"),
        synopsis: "Show job usage message if available.",
        help: Some("JOB is the name of the job which usage is to be shown.\n"),
        group: None,
        options: &[],
    },
    Spec {
        name: "notify-cgroup-manager-address",
        usage: None,
        synopsis: "Inform Upstart of D-Bus address cgroup manager is available on.",
        help: Some("Run to allow Upstart to provide cgroup stanza support."),
        group: None,
        options: &[],
    },
    Spec {
        name: "notify-dbus-address",
        usage: None,
        synopsis: "Inform Upstart of D-Bus address to connect to.",
        help: Some("Run to allow Upstart to provide services over D-Bus."),
        group: None,
        options: &[],
    },
    Spec {
        name: "notify-disk-writeable",
        usage: None,
        synopsis: "Inform Upstart that disk is now writeable.",
        help: Some(
            "Run to ensure output from jobs ending before disk is writeable are flushed to disk.",
        ),
        group: None,
        options: &[],
    },
    Spec {
        name: "list-sessions",
        usage: None,
        synopsis: "List all sessions.",
        help: Some("Displays list of running Session Init sessions"),
        group: None,
        options: &[],
    },
    Spec {
        name: "help",
        usage: None,
        synopsis: "display list of commands",
        help: None,
        group: None,
        options: &[],
    },
];

pub fn find(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|c| c.name == name)
}
