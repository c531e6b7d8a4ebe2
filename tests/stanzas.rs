//! Table-driven checks of the job-file parser against the specification
//! (shared/spec/job-config.md §5–§7, §9 and cgroups.md §1).
//!
//! Every table row is `(input, expectations)`. A failing row is reported
//! with its area, index, input and the field that differed; all rows of a
//! table are run before the test fails, so one run lists every mismatch.
//!
//! Expectations name a field of the parsed class (see `field`) and give its
//! rendered value. Error rows give the exact line and message of §5.

use std::collections::BTreeMap;

use outset::config::{
    apply_override, parse_job, ClassDefaults, ConfigError, Console, EventExpr, JobClass,
    ProcessType, RLIM_INFINITY,
};

const PATH: &str = "/etc/init/test.conf";
const OVERRIDE_PATH: &str = "/etc/init/test.override";
const NONE: &str = "<none>";

// §5 messages.
const ET: &str = "Expected token";
const UT: &str = "Unexpected token";
const TS: &str = "Trailing slash in file";
const UQ: &str = "Unterminated quoted string";
const UB: &str = "Unterminated block";
const US: &str = "Unknown stanza";
const II: &str = "Illegal interval, expected number of seconds";
const IE: &str = "Illegal exit status, expected integer";
const IS: &str = "Illegal signal status, expected integer";
const IM: &str = "Illegal file creation mask, expected octal integer";
const IN: &str = "Illegal nice value, expected -20 to 19";
const IO: &str = "Illegal oom adjustment, expected -16 to 15 or 'never'";
const IOS: &str = "Illegal oom score adjustment, expected -999 to 1000 or 'never'";
const IL: &str = "Illegal limit, expected 'unlimited' or integer";
const EE: &str = "Expected event";
const EO: &str = "Expected operator";
const EV: &str = "Expected variable name before value";
const MP: &str = "Mismatched parentheses";

/// `(input, [(field, expected rendering)])`
type OkRow<'a> = (&'a str, &'a [(&'a str, &'a str)]);
/// `(input, Some(line) for PATH:LINE: MSG / None for the load format, MSG)`
type ErrRow<'a> = (&'a str, Option<usize>, &'a str);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn parse(text: &str) -> Result<JobClass, ConfigError> {
    parse_job("test", PATH, text, &ClassDefaults::default())
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| NONE.to_string())
}

fn expr(e: &Option<EventExpr>) -> String {
    e.as_ref()
        .map_or_else(|| NONE.to_string(), |e| e.to_string())
}

/// The top-level match of an expression as `"EVENT" ["ARG", …]`, so that
/// argument boundaries (and spaces inside arguments) are visible.
fn expr_match(e: &Option<EventExpr>) -> String {
    match e {
        None => NONE.to_string(),
        Some(EventExpr::Match { event, args }) => format!("{event:?} {args:?}"),
        Some(other) => format!("<not a match: {other}>"),
    }
}

fn process_type(name: &str) -> Option<ProcessType> {
    ProcessType::ALL.iter().copied().find(|t| t.name() == name)
}

/// Render one field of a class. Process slots use their Upstart names
/// (`main`, `pre-start`, …, `security`) and render as `exec:CMD` or
/// `script:BODY`; `NAME.line` gives the stanza line of a process.
fn field(c: &JobClass, f: &str) -> String {
    if let Some(t) = process_type(f) {
        return c.processes.get(&t).map_or_else(
            || NONE.to_string(),
            |p| {
                let kind = if p.script { "script" } else { "exec" };
                format!("{kind}:{}", p.command)
            },
        );
    }
    if let Some(t) = f.strip_suffix(".line").and_then(process_type) {
        return c
            .processes
            .get(&t)
            .map_or_else(|| NONE.to_string(), |p| p.line.to_string());
    }
    match f {
        "name" => c.name.to_string(),
        "path" => c.path.clone(),
        "description" => opt(&c.rare.description),
        "author" => opt(&c.rare.author),
        "version" => opt(&c.rare.version),
        "usage" => opt(&c.rare.usage),
        "instance" => c.instance.clone(),
        "start_on" => expr(&c.start_on),
        "stop_on" => expr(&c.stop_on),
        "start_on.match" => expr_match(&c.start_on),
        "stop_on.match" => expr_match(&c.stop_on),
        "emits" => format!("{:?}", c.rare.emits),
        "env" => format!("{:?}", c.env),
        // What the environment table ends up holding: later entries for
        // the same KEY override earlier ones (§7.3). Sorted by key.
        "env.effective" => {
            let mut table: BTreeMap<&str, &str> = BTreeMap::new();
            for e in &c.env {
                let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
                table.insert(key, e);
            }
            format!("{:?}", table.values().collect::<Vec<_>>())
        }
        "export" => format!("{:?}", c.rare.export),
        "processes" => {
            if c.processes.is_empty() {
                NONE.to_string()
            } else {
                c.processes
                    .keys()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        }
        "task" => c.task.to_string(),
        "respawn" => c.respawn.to_string(),
        "respawn_limit" => c.respawn_limit.to_string(),
        "respawn_interval" => c.respawn_interval.to_string(),
        "normal_exit" => format!("{:?}", c.normal_exit),
        "expect" => format!("{:?}", c.expect),
        "notify_timeout" => c
            .rare
            .notify_timeout
            .map_or_else(|| NONE.to_string(), |t| t.to_string()),
        "kill_timeout" => c.kill_timeout.to_string(),
        "kill_signal" => c.kill_signal.to_string(),
        "reload_signal" => c.reload_signal.to_string(),
        "console" => format!("{:?}", c.console),
        "umask" => format!("{:#o}", c.umask),
        "nice" => c
            .rare
            .nice
            .map_or_else(|| NONE.to_string(), |n| n.to_string()),
        "oom_score_adj" => c.rare.oom_score_adj.to_string(),
        // `res=SOFT/HARD …` in resource order; RLIM_INFINITY shows as `inf`.
        "limits" => {
            if c.rare.limits.is_empty() {
                return NONE.to_string();
            }
            let v = |n: u64| {
                if n == RLIM_INFINITY {
                    "inf".to_string()
                } else {
                    n.to_string()
                }
            };
            c.rare
                .limits
                .iter()
                .map(|(r, l)| {
                    let res = format!("{r:?}").to_lowercase();
                    format!("{res}={}/{}", v(l.soft), v(l.hard))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        "chroot" => opt(&c.rare.chroot),
        "chdir" => opt(&c.rare.chdir),
        "setuid" => opt(&c.rare.setuid),
        "setgid" => opt(&c.rare.setgid),
        "apparmor_switch" => opt(&c.rare.apparmor_switch),
        // `ctl: name{k=v,k=v} name{}; ctl: …` in list order.
        "cgroups" => {
            if c.rare.cgroups.is_empty() {
                return NONE.to_string();
            }
            c.rare
                .cgroups
                .iter()
                .map(|ctl| {
                    let names = ctl
                        .names
                        .iter()
                        .map(|n| {
                            let settings = n
                                .settings
                                .iter()
                                .map(|s| format!("{}={}", s.key, s.value))
                                .collect::<Vec<_>>()
                                .join(",");
                            format!("{}{{{settings}}}", n.name)
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!("{}: {names}", ctl.controller)
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        "debug" => c.debug.to_string(),
        "exit_container_on_failure" => format!("{:?}", c.rare.exit_container_on_failure),
        other => panic!("test bug: unknown field {other:?}"),
    }
}

fn compare(fails: &mut Vec<String>, tag: &str, c: &JobClass, expects: &[(&str, &str)]) {
    for (f, want) in expects {
        let got = field(c, f);
        if got != *want {
            fails.push(format!(
                "{tag}: field `{f}`: expected {want:?}, got {got:?}"
            ));
        }
    }
}

fn ok_row(fails: &mut Vec<String>, tag: &str, input: &str, expects: &[(&str, &str)]) {
    let tag = format!("{tag} input {input:?}");
    match parse(input) {
        Ok(c) => compare(fails, &tag, &c, expects),
        Err(e) => fails.push(format!("{tag}: unexpected error `{e}`")),
    }
}

fn expected_error(path: &str, line: Option<usize>, msg: &str) -> String {
    match line {
        Some(l) => format!("{path}:{l}: {msg}"),
        None => format!("{path}: Error while loading configuration file: {msg}"),
    }
}

/// Check an error against §5: the display text, and that the variant
/// carries the same path/line/message.
fn err_check(
    fails: &mut Vec<String>,
    tag: &str,
    result: Result<JobClass, ConfigError>,
    path: &str,
    line: Option<usize>,
    msg: &str,
) {
    let want = expected_error(path, line, msg);
    let err = match result {
        Ok(_) => {
            fails.push(format!("{tag}: parsed, expected error `{want}`"));
            return;
        }
        Err(e) => e,
    };
    let got = err.to_string();
    if got != want {
        fails.push(format!("{tag}: expected `{want}`, got `{got}`"));
        return;
    }
    let shape_ok = match (&err, line) {
        (
            ConfigError::Parse {
                path: p,
                line: l,
                kind,
            },
            Some(want_line),
        ) => p == path && *l == want_line && kind.to_string() == msg,
        (ConfigError::Load { path: p, reason }, None) => p == path && reason == msg,
        _ => false,
    };
    if !shape_ok {
        fails.push(format!("{tag}: wrong error variant/fields: {err:?}"));
    }
}

fn finish(area: &str, total: usize, fails: Vec<String>) {
    if !fails.is_empty() {
        panic!(
            "{area}: {} failing check(s) over {total} row(s):\n  {}",
            fails.len(),
            fails.join("\n  ")
        );
    }
}

fn check_ok(area: &str, rows: &[OkRow]) {
    let mut fails = Vec::new();
    for (i, (input, expects)) in rows.iter().enumerate() {
        ok_row(&mut fails, &format!("[{area} #{i}]"), input, expects);
    }
    finish(area, rows.len(), fails);
}

fn check_err(area: &str, rows: &[ErrRow]) {
    let mut fails = Vec::new();
    for (i, (input, line, msg)) in rows.iter().enumerate() {
        let tag = format!("[{area} #{i}] input {input:?}");
        err_check(&mut fails, &tag, parse(input), PATH, *line, msg);
    }
    finish(area, rows.len(), fails);
}

// ---------------------------------------------------------------------------
// Defaults (§7.7)
// ---------------------------------------------------------------------------

const DEFAULTS: &[(&str, &str)] = &[
    ("name", "test"),
    ("path", PATH),
    ("description", NONE),
    ("author", NONE),
    ("version", NONE),
    ("usage", NONE),
    ("instance", ""),
    ("start_on", NONE),
    ("stop_on", NONE),
    ("emits", "[]"),
    ("env", "[]"),
    ("export", "[]"),
    ("processes", NONE),
    ("task", "false"),
    ("respawn", "false"),
    ("respawn_limit", "10"),
    ("respawn_interval", "5"),
    ("normal_exit", "[]"),
    ("expect", "None"),
    ("notify_timeout", NONE),
    ("kill_timeout", "5"),
    ("kill_signal", "15"),
    ("reload_signal", "1"),
    ("console", "Log"),
    ("umask", "0o22"),
    ("nice", NONE),
    ("oom_score_adj", "0"),
    ("limits", NONE),
    ("chroot", NONE),
    ("chdir", NONE),
    ("setuid", NONE),
    ("setgid", NONE),
    ("apparmor_switch", NONE),
    ("cgroups", NONE),
    ("debug", "false"),
];

#[test]
fn defaults_of_empty_files() {
    check_ok(
        "defaults",
        &[
            ("", DEFAULTS),
            ("\n\n\n", DEFAULTS),
            ("# only a comment\n", DEFAULTS),
            ("   \t \n\t# indented comment\n  \n", DEFAULTS),
            ("\r\n \r\n", DEFAULTS),
            ("# no newline at end", DEFAULTS),
        ],
    );
}

#[test]
fn class_defaults_are_used() {
    let defaults = ClassDefaults {
        console: Console::Owner,
        umask: 0o077,
    };
    let mut fails = Vec::new();
    let rows: &[OkRow] = &[
        ("", &[("console", "Owner"), ("umask", "0o77")]),
        (
            "console log\numask 022\n",
            &[("console", "Log"), ("umask", "0o22")],
        ),
    ];
    for (i, (input, expects)) in rows.iter().enumerate() {
        let tag = format!("[class defaults #{i}] input {input:?}");
        match parse_job("test", PATH, input, &defaults) {
            Ok(c) => compare(&mut fails, &tag, &c, expects),
            Err(e) => fails.push(format!("{tag}: unexpected error `{e}`")),
        }
    }
    finish("class defaults", rows.len(), fails);
}

// ---------------------------------------------------------------------------
// Every stanza with valid arguments (§7)
// ---------------------------------------------------------------------------

#[test]
fn every_stanza_valid() {
    check_ok(
        "stanzas",
        &[
            // §7.6 documentation
            ("description \"My job\"", &[("description", "My job")]),
            ("description plain", &[("description", "plain")]),
            (
                "author \"Jane Doe <jane@example.com>\"",
                &[("author", "Jane Doe <jane@example.com>")],
            ),
            ("version 1.2.3", &[("version", "1.2.3")]),
            ("usage \"start test X=1\"", &[("usage", "start test X=1")]),
            ("debug", &[("debug", "true")]),
            // §7.3 environment and instances
            ("instance $TTY", &[("instance", "$TTY")]),
            ("instance \"${A}-${B}\"", &[("instance", "${A}-${B}")]),
            ("env FOO=bar", &[("env", "[\"FOO=bar\"]")]),
            ("env FOO", &[("env", "[\"FOO\"]")]),
            ("env FOO=", &[("env", "[\"FOO=\"]")]),
            ("env FOO=\"a b\"", &[("env", "[\"FOO=a b\"]")]),
            ("env \"FOO=a b\"", &[("env", "[\"FOO=a b\"]")]),
            ("env FOO=$BAR", &[("env", "[\"FOO=$BAR\"]")]),
            ("env FOO=a=b", &[("env", "[\"FOO=a=b\"]")]),
            ("export A", &[("export", "[\"A\"]")]),
            ("export A B C", &[("export", "[\"A\", \"B\", \"C\"]")]),
            // §7.2 events
            (
                "start on startup",
                &[("start_on", "startup"), ("stop_on", NONE)],
            ),
            (
                "stop on runlevel [!2345]",
                &[("stop_on", "runlevel [!2345]"), ("start_on", NONE)],
            ),
            ("manual", &[("start_on", NONE)]),
            ("emits foo", &[("emits", "[\"foo\"]")]),
            (
                "emits foo bar-* b?z",
                &[("emits", "[\"foo\", \"bar-*\", \"b?z\"]")],
            ),
            // §7.1 processes
            (
                "exec /bin/foo --bar",
                &[("main", "exec:/bin/foo --bar"), ("processes", "main")],
            ),
            (
                "script\n  echo hi\nend script\n",
                &[("main", "script:echo hi\n"), ("processes", "main")],
            ),
            ("pre-start exec /bin/pre", &[("pre-start", "exec:/bin/pre")]),
            (
                "post-start exec /bin/post",
                &[("post-start", "exec:/bin/post")],
            ),
            (
                "pre-stop exec /bin/prestop",
                &[("pre-stop", "exec:/bin/prestop")],
            ),
            (
                "post-stop exec /bin/poststop",
                &[("post-stop", "exec:/bin/poststop")],
            ),
            (
                "pre-start script\n  a\nend script\n",
                &[("pre-start", "script:a\n")],
            ),
            (
                "post-start script\n  b\nend script\n",
                &[("post-start", "script:b\n")],
            ),
            (
                "pre-stop script\n  c\nend script\n",
                &[("pre-stop", "script:c\n")],
            ),
            (
                "post-stop script\n  d\nend script\n",
                &[("post-stop", "script:d\n")],
            ),
            (
                "pre-start exec /bin/a\npost-stop exec /bin/b\n",
                &[("processes", "pre-start,post-stop"), ("main", NONE)],
            ),
            (
                "apparmor load /etc/apparmor.d/usr.sbin.cupsd",
                &[
                    (
                        "security",
                        "exec:/sbin/apparmor_parser -r -W /etc/apparmor.d/usr.sbin.cupsd",
                    ),
                    ("processes", "security"),
                ],
            ),
            (
                "apparmor switch /usr/sbin/cupsd",
                &[("apparmor_switch", "/usr/sbin/cupsd"), ("processes", NONE)],
            ),
            // §7.4 job type and lifecycle
            ("task", &[("task", "true")]),
            (
                "respawn",
                &[
                    ("respawn", "true"),
                    ("respawn_limit", "10"),
                    ("respawn_interval", "5"),
                ],
            ),
            (
                "respawn limit 3 10",
                &[
                    ("respawn", "false"),
                    ("respawn_limit", "3"),
                    ("respawn_interval", "10"),
                ],
            ),
            ("normal exit 0", &[("normal_exit", "[0]")]),
            ("expect stop", &[("expect", "Stop")]),
            ("expect daemon", &[("expect", "Daemon")]),
            ("expect fork", &[("expect", "Fork")]),
            ("expect none", &[("expect", "None")]),
            // extensions.md §7
            ("expect notify", &[("expect", "Notify")]),
            ("notify timeout 30", &[("notify_timeout", "30")]),
            ("notify timeout 0", &[("notify_timeout", NONE)]),
            ("kill timeout 30", &[("kill_timeout", "30")]),
            // An outset extension.
            (
                "exit-container-on-failure",
                &[("exit_container_on_failure", "Some(JobStatus)")],
            ),
            (
                "exit-container-on-failure 42",
                &[("exit_container_on_failure", "Some(Code(42))")],
            ),
            ("kill signal SIGINT", &[("kill_signal", "2")]),
            ("reload signal USR1", &[("reload_signal", "10")]),
            // §7.5 process environment
            ("console none", &[("console", "None")]),
            ("console log", &[("console", "Log")]),
            ("console output", &[("console", "Output")]),
            ("console owner", &[("console", "Owner")]),
            ("umask 077", &[("umask", "0o77")]),
            ("nice -5", &[("nice", "-5")]),
            ("oom score 100", &[("oom_score_adj", "100")]),
            ("oom 15", &[("oom_score_adj", "1000")]),
            ("limit nofile 1024 4096", &[("limits", "nofile=1024/4096")]),
            ("chroot /srv/jail", &[("chroot", "/srv/jail")]),
            ("chdir /var/lib/foo", &[("chdir", "/var/lib/foo")]),
            ("setuid nobody", &[("setuid", "nobody")]),
            ("setgid nogroup", &[("setgid", "nogroup")]),
            ("cgroup memory", &[("cgroups", "memory: $UPSTART_CGROUP{}")]),
            // A comment after the arguments is always allowed.
            ("nice 5 # be nice", &[("nice", "5")]),
            ("description foo # comment", &[("description", "foo")]),
            ("respawn # comment", &[("respawn", "true")]),
            ("task # comment", &[("task", "true")]),
            (
                "kill timeout 9\t# comment\nkill signal KILL # c\n",
                &[("kill_timeout", "9"), ("kill_signal", "9")],
            ),
            // A full job, every field at once, with name and path.
            (
                "# A job\n\
                 description \"full job\"\n\
                 author me\n\
                 version 2\n\
                 usage \"just run it\"\n\
                 instance $N\n\
                 start on (local-filesystems and net-device-up IFACE!=lo)\n\
                 stop on runlevel [!2345]\n\
                 emits thing-done\n\
                 env A=1\n\
                 export A\n\
                 task\n\
                 respawn\n\
                 respawn limit 2 3\n\
                 normal exit 0 1\n\
                 expect daemon\n\
                 kill timeout 7\n\
                 kill signal QUIT\n\
                 reload signal USR2\n\
                 console output\n\
                 umask 027\n\
                 nice 10\n\
                 oom score -500\n\
                 limit core unlimited unlimited\n\
                 chroot /c\n\
                 chdir /d\n\
                 setuid u\n\
                 setgid g\n\
                 apparmor switch prof\n\
                 cgroup cpu shares 512\n\
                 debug\n\
                 exec /bin/true\n",
                &[
                    ("name", "test"),
                    ("path", PATH),
                    ("description", "full job"),
                    ("author", "me"),
                    ("version", "2"),
                    ("usage", "just run it"),
                    ("instance", "$N"),
                    (
                        "start_on",
                        "(local-filesystems and net-device-up IFACE!=lo)",
                    ),
                    ("stop_on", "runlevel [!2345]"),
                    ("emits", "[\"thing-done\"]"),
                    ("env", "[\"A=1\"]"),
                    ("export", "[\"A\"]"),
                    ("task", "true"),
                    ("respawn", "true"),
                    ("respawn_limit", "2"),
                    ("respawn_interval", "3"),
                    ("normal_exit", "[0, 1]"),
                    ("expect", "Daemon"),
                    ("kill_timeout", "7"),
                    ("kill_signal", "3"),
                    ("reload_signal", "12"),
                    ("console", "Output"),
                    ("umask", "0o27"),
                    ("nice", "10"),
                    ("oom_score_adj", "-500"),
                    ("limits", "core=inf/inf"),
                    ("chroot", "/c"),
                    ("chdir", "/d"),
                    ("setuid", "u"),
                    ("setgid", "g"),
                    ("apparmor_switch", "prof"),
                    ("cgroups", "cpu: $UPSTART_CGROUP{shares=512}"),
                    ("debug", "true"),
                    ("main", "exec:/bin/true"),
                    ("main.line", "32"),
                ],
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Repeats: replace vs accumulate (§6.1, §7)
// ---------------------------------------------------------------------------

#[test]
fn repeated_stanzas() {
    check_ok(
        "repeats",
        &[
            // Single-valued: later wins.
            ("description a\ndescription b", &[("description", "b")]),
            ("author a\nauthor b", &[("author", "b")]),
            ("version 1\nversion 2", &[("version", "2")]),
            ("usage a\nusage b", &[("usage", "b")]),
            ("instance $A\ninstance $B", &[("instance", "$B")]),
            ("start on a\nstart on b", &[("start_on", "b")]),
            ("stop on a\nstop on b", &[("stop_on", "b")]),
            ("task\ntask", &[("task", "true")]),
            ("respawn\nrespawn", &[("respawn", "true")]),
            ("debug\ndebug", &[("debug", "true")]),
            (
                "respawn limit 1 2\nrespawn limit 3 4",
                &[("respawn_limit", "3"), ("respawn_interval", "4")],
            ),
            (
                "respawn limit 1 2\nrespawn limit unlimited",
                &[("respawn_limit", "0"), ("respawn_interval", "0")],
            ),
            ("expect fork\nexpect daemon", &[("expect", "Daemon")]),
            ("expect fork\nexpect none", &[("expect", "None")]),
            ("kill timeout 1\nkill timeout 2", &[("kill_timeout", "2")]),
            ("kill signal INT\nkill signal 9", &[("kill_signal", "9")]),
            (
                "reload signal USR1\nreload signal USR2",
                &[("reload_signal", "12")],
            ),
            ("console none\nconsole output", &[("console", "Output")]),
            ("umask 077\numask 027", &[("umask", "0o27")]),
            ("nice 1\nnice 2", &[("nice", "2")]),
            ("oom score 100\noom score 200", &[("oom_score_adj", "200")]),
            ("oom score 100\noom 15", &[("oom_score_adj", "1000")]),
            ("oom 15\noom score 100", &[("oom_score_adj", "100")]),
            ("oom never\noom score 5", &[("oom_score_adj", "5")]),
            ("oom 5\noom never", &[("oom_score_adj", "-1000")]),
            (
                "limit nofile 1 2\nlimit nofile 3 4",
                &[("limits", "nofile=3/4")],
            ),
            ("chroot /a\nchroot /b", &[("chroot", "/b")]),
            ("chdir /a\nchdir /b", &[("chdir", "/b")]),
            ("setuid a\nsetuid b", &[("setuid", "b")]),
            ("setgid a\nsetgid b", &[("setgid", "b")]),
            (
                "apparmor switch a\napparmor switch b",
                &[("apparmor_switch", "b")],
            ),
            (
                "apparmor load /a\napparmor load /b",
                &[("security", "exec:/sbin/apparmor_parser -r -W /b")],
            ),
            // Accumulating: env, export, emits, normal exit, cgroup, limit
            // (different resources).
            ("env A=1\nenv B=2", &[("env", "[\"A=1\", \"B=2\"]")]),
            ("env A=1\nenv A=2", &[("env.effective", "[\"A=2\"]")]),
            (
                "env A=1\nenv B=2\nenv A=3",
                &[("env.effective", "[\"A=3\", \"B=2\"]")],
            ),
            (
                "export A\nexport B C",
                &[("export", "[\"A\", \"B\", \"C\"]")],
            ),
            ("emits a\nemits b c", &[("emits", "[\"a\", \"b\", \"c\"]")]),
            (
                "normal exit 0 TERM\nnormal exit 2",
                &[("normal_exit", "[0, 3840, 2]")],
            ),
            (
                "cgroup cpu\ncgroup memory",
                &[(
                    "cgroups",
                    "cpu: $UPSTART_CGROUP{}; memory: $UPSTART_CGROUP{}",
                )],
            ),
            (
                "limit nofile 1 2\nlimit core 3 4",
                &[("limits", "core=3/4 nofile=1/2")],
            ),
            // `manual` clears the start on seen so far only.
            ("start on a\nmanual", &[("start_on", NONE)]),
            ("manual\nstart on a", &[("start_on", "a")]),
            ("start on a\nmanual\nstart on b", &[("start_on", "b")]),
            (
                "start on a\nstop on b\nmanual",
                &[("start_on", NONE), ("stop_on", "b")],
            ),
            ("manual\nmanual", &[("start_on", NONE)]),
            // `exec` and `script` share the main slot; later wins.
            (
                "exec /bin/a\nexec /bin/b",
                &[("main", "exec:/bin/b"), ("main.line", "2")],
            ),
            (
                "exec /bin/a\nscript\n  b\nend script\n",
                &[("main", "script:b\n"), ("main.line", "2")],
            ),
            (
                "script\n  b\nend script\nexec /bin/a\n",
                &[("main", "exec:/bin/a"), ("main.line", "4")],
            ),
            (
                "script\n  a\nend script\nscript\n  b\nend script\n",
                &[("main", "script:b\n")],
            ),
            (
                "pre-start exec a\npre-start script\n  b\nend script\n",
                &[("pre-start", "script:b\n")],
            ),
            (
                "post-stop script\n  b\nend script\npost-stop exec c\n",
                &[("post-stop", "exec:c")],
            ),
            (
                "pre-stop exec a\npre-stop exec b\n",
                &[("pre-stop", "exec:b")],
            ),
            (
                "post-start exec a\npost-start exec b\n",
                &[("post-start", "exec:b")],
            ),
            // Different slots are independent.
            (
                "exec a\npre-start exec b\npost-stop exec c\n",
                &[
                    ("main", "exec:a"),
                    ("pre-start", "exec:b"),
                    ("post-stop", "exec:c"),
                    ("processes", "main,pre-start,post-stop"),
                ],
            ),
            // `respawn limit` does not enable respawn in either order.
            (
                "respawn limit 3 10\nrespawn",
                &[
                    ("respawn", "true"),
                    ("respawn_limit", "3"),
                    ("respawn_interval", "10"),
                ],
            ),
            (
                "respawn\nrespawn limit 3 10",
                &[
                    ("respawn", "true"),
                    ("respawn_limit", "3"),
                    ("respawn_interval", "10"),
                ],
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Errors (§5) with exact line numbers
// ---------------------------------------------------------------------------

#[test]
fn error_messages_and_lines() {
    check_err(
        "errors",
        &[
            // Expected token: a required argument is missing.
            ("task\n\nexec\n", Some(3), ET),
            ("task\nexec   # only a comment\n", Some(2), ET),
            ("task\nexec", Some(2), ET),
            ("\ndescription\n", Some(2), ET),
            ("task\nauthor\n", Some(2), ET),
            ("task\nversion\n", Some(2), ET),
            ("task\nusage\n", Some(2), ET),
            ("task\ninstance\n", Some(2), ET),
            ("task\nchroot\n", Some(2), ET),
            ("task\nchdir\n", Some(2), ET),
            ("task\nsetuid\n", Some(2), ET),
            ("task\nsetgid\n", Some(2), ET),
            ("task\nenv\n", Some(2), ET),
            ("task\nenv # comment\n", Some(2), ET),
            ("task\nexport\n", Some(2), ET),
            ("task\nemits\n", Some(2), ET),
            ("task\nconsole\n", Some(2), ET),
            ("task\nexpect\n", Some(2), ET),
            ("task\numask\n", Some(2), ET),
            ("task\nnice\n", Some(2), ET),
            ("task\noom\n", Some(2), ET),
            ("task\noom score\n", Some(2), ET),
            ("task\nlimit\n", Some(2), ET),
            ("task\nlimit nofile\n", Some(2), ET),
            ("task\nlimit nofile 1\n", Some(2), ET),
            ("task\nkill\n", Some(2), ET),
            ("task\nkill timeout\n", Some(2), ET),
            ("task\nkill signal\n", Some(2), ET),
            ("task\nreload\n", Some(2), ET),
            ("task\nreload signal\n", Some(2), ET),
            ("task\nnormal\n", Some(2), ET),
            ("task\nnormal exit\n", Some(2), ET),
            ("task\nrespawn limit\n", Some(2), ET),
            ("task\nrespawn limit 1\n", Some(2), ET),
            ("task\nstart\n", Some(2), ET),
            ("task\nstart on\n", Some(2), ET),
            ("task\nstop\n", Some(2), ET),
            ("task\nstop on\n", Some(2), ET),
            ("task\nstop on # nothing\n", Some(2), ET),
            ("task\npre-start\n", Some(2), ET),
            ("task\npre-start exec\n", Some(2), ET),
            ("task\npost-stop exec # c\n", Some(2), ET),
            ("task\napparmor\n", Some(2), ET),
            ("task\napparmor load\n", Some(2), ET),
            ("task\napparmor switch\n", Some(2), ET),
            ("task\ncgroup\n", Some(2), ET),
            // Unexpected token: extra arguments.
            ("task\ntask foo\n", Some(2), UT),
            ("task\ndescription a b\n", Some(2), UT),
            ("task\nauthor a b\n", Some(2), UT),
            ("task\nversion a b\n", Some(2), UT),
            ("task\nusage a b\n", Some(2), UT),
            ("task\ninstance a b\n", Some(2), UT),
            ("task\nchroot /a /b\n", Some(2), UT),
            ("task\nchdir /a /b\n", Some(2), UT),
            ("task\nsetuid a b\n", Some(2), UT),
            ("task\nsetgid a b\n", Some(2), UT),
            ("task\nenv A=1 B=2\n", Some(2), UT),
            ("task\nconsole none x\n", Some(2), UT),
            ("task\nexpect fork x\n", Some(2), UT),
            ("task\numask 022 x\n", Some(2), UT),
            ("task\nnice 1 2\n", Some(2), UT),
            ("task\noom 10 foo\n", Some(2), UT),
            ("task\noom score 500 foo\n", Some(2), UT),
            ("task\noom never x\n", Some(2), UT),
            ("task\nlimit nofile 1 2 3\n", Some(2), UT),
            ("task\nkill timeout 1 2\n", Some(2), UT),
            ("task\nkill signal TERM x\n", Some(2), UT),
            ("task\nreload signal HUP x\n", Some(2), UT),
            ("task\nrespawn limit 1 2 3\n", Some(2), UT),
            ("task\nrespawn limit unlimited 5\n", Some(2), UT),
            ("task\napparmor load a b\n", Some(2), UT),
            ("task\napparmor switch a b\n", Some(2), UT),
            ("task\ncgroup a b c d e\n", Some(2), UT),
            ("task\nscript foo\nend script\n", Some(2), UT),
            ("task\npre-start script foo\nend script\n", Some(2), UT),
            // Between tokens backslash-LF is whitespace: `b` is a 2nd arg.
            ("description a \\\n  b\n", Some(2), UT),
            (
                "script # ok\nend script\nscript x\nend script\n",
                Some(3),
                UT,
            ),
            // Trailing slash in file.
            ("task\ndescription foo\\", Some(2), TS),
            ("task\nexec foo \\", Some(2), TS),
            ("task\n\nstart on foo \\", Some(3), TS),
            // Unterminated quoted string: reported where the file ends.
            ("task\ndescription \"foo\nbar\n", Some(4), UQ),
            ("task\ndescription 'foo", Some(2), UQ),
            ("task\nexec echo \"a\n", Some(3), UQ),
            ("start on foo \"bar\n", Some(2), UQ),
            ("task\ncgroup cpu \"x\n\n", Some(4), UQ),
            // Unterminated block: reported where the file ends.
            ("task\nscript\n  echo\n", Some(4), UB),
            ("script\n  echo\nendscript\n", Some(4), UB),
            ("script\n  echo\nend script foo\n", Some(4), UB),
            ("script\n  echo\nend scripts\n", Some(4), UB),
            ("task\npre-start script\necho", Some(3), UB),
            ("post-stop script\n", Some(2), UB),
            // Unknown stanza / sub-keyword / value.
            ("task\n# comment\nfrobnicate\n", Some(3), US),
            ("\"exec\" /bin/foo", Some(1), US),
            ("task\nTask\n", Some(2), US),
            ("task\nconsole foo\n", Some(2), US),
            ("\n\nexpect bar\n", Some(3), US),
            ("task\nstart at foo\n", Some(2), US),
            ("task\nstop at foo\n", Some(2), US),
            ("task\nrespawn foo\n", Some(2), US),
            ("task\nnormal foo\n", Some(2), US),
            ("task\nkill foo\n", Some(2), US),
            ("task\nreload foo\n", Some(2), US),
            ("task\napparmor foo\n", Some(2), US),
            ("task\npre-start foo\n", Some(2), US),
            ("task\npost-start run x\n", Some(2), US),
            ("task\nlimit bogus 1 2\n", Some(2), US),
            ("task\nlimit NOFILE 1 2\n", Some(2), US),
            ("task\nmanual foo\n", Some(2), US),
            ("manual\n\nfoo\n", Some(3), US),
            ("script\n  a\nend script\nbogus\n", Some(4), US),
            ("exec /bin/a \\\n  b\nbogus\n", Some(3), US),
            ("description \"a\nb\"\nbogus\n", Some(3), US),
            ("task\r\n\r\nbogus\r\n", Some(3), US),
            ("'task'\n", Some(1), US),
            ("nice \\\n 99\n", Some(2), IN),
            ("description a\\\n b c\n", Some(2), UT),
            // Illegal interval.
            ("task\nkill timeout x\n", Some(2), II),
            ("task\nkill timeout -1\n", Some(2), II),
            ("task\nnotify timeout x\n", Some(2), II),
            ("task\nnotify timeout\n", Some(2), ET),
            ("task\nnotify later\n", Some(2), US),
            ("task\nnotify timeout 5 6\n", Some(2), UT),
            ("task\nkill timeout 5s\n", Some(2), II),
            ("task\nkill timeout 1.5\n", Some(2), II),
            ("task\nkill timeout 10000000000000000000\n", Some(2), II),
            ("task\nrespawn limit 1 x\n", Some(2), II),
            ("task\nrespawn limit 1 -1\n", Some(2), II),
            ("task\nrespawn limit 1 5x\n", Some(2), II),
            ("task\nrespawn limit 1 99999999999999999999\n", Some(2), II),
            // Illegal exit status.
            ("task\nnormal exit foo\n", Some(2), IE),
            ("task\nnormal exit -1\n", Some(2), IE),
            ("task\nnormal exit 2147483648\n", Some(2), IE),
            ("task\nnormal exit 0 1x\n", Some(2), IE),
            ("task\nnormal exit term\n", Some(2), IE),
            ("task\nnormal exit SIGterm\n", Some(2), IE),
            ("task\nexit-container-on-failure 256\n", Some(2), IE),
            ("task\nexit-container-on-failure x\n", Some(2), IE),
            // Illegal signal: the odd format without a line.
            ("task\nkill signal FOO\n", None, IS),
            ("task\nkill signal SIGFOO\n", None, IS),
            ("task\nkill signal -1\n", None, IS),
            ("task\nkill signal 9x\n", None, IS),
            ("task\nkill signal 2147483648\n", None, IS),
            ("task\nreload signal FOO\n", None, IS),
            ("\n\n\nreload signal SIGBOGUS\n", None, IS),
            // Illegal file creation mask.
            ("task\numask 999\n", Some(2), IM),
            ("task\numask 1000\n", Some(2), IM),
            ("task\numask 0800\n", Some(2), IM),
            ("task\numask 8\n", Some(2), IM),
            ("task\numask -1\n", Some(2), IM),
            ("task\numask foo\n", Some(2), IM),
            ("task\numask 99foo\n", Some(2), IM),
            // Illegal nice value.
            ("task\nnice 20\n", Some(2), IN),
            ("task\nnice -21\n", Some(2), IN),
            ("task\nnice x\n", Some(2), IN),
            ("task\nnice 1.5\n", Some(2), IN),
            ("task\nnice 5x\n", Some(2), IN),
            // Illegal oom adjustment / score.
            ("task\noom 16\n", Some(2), IO),
            ("task\noom 20\n", Some(2), IO),
            ("task\noom -18\n", Some(2), IO),
            ("task\noom foo\n", Some(2), IO),
            ("task\noom 12foo\n", Some(2), IO),
            ("task\noom score 1001\n", Some(2), IOS),
            ("task\noom score -1001\n", Some(2), IOS),
            ("task\noom score foo\n", Some(2), IOS),
            ("task\noom score 12foo\n", Some(2), IOS),
            // Illegal limit (limit values, respawn limit COUNT).
            ("task\nlimit nofile x 1\n", Some(2), IL),
            ("task\nlimit nofile 1 x\n", Some(2), IL),
            ("task\nlimit nofile 1k 2\n", Some(2), IL),
            ("task\nlimit nofile 1 2.5\n", Some(2), IL),
            ("task\nrespawn limit x 1\n", Some(2), IL),
            ("task\nrespawn limit -1 5\n", Some(2), IL),
            ("task\nrespawn limit 5x 1\n", Some(2), IL),
            ("task\nrespawn limit 99999999999999999999 5\n", Some(2), IL),
            // Event expression errors.
            ("task\nstart on and\n", Some(2), EE),
            ("task\nstart on or foo\n", Some(2), EE),
            ("start on a and\n", Some(1), EE),
            ("start on a or or b\n", Some(1), EE),
            ("start on a or and b\n", Some(1), EE),
            ("start on (and a)\n", Some(1), EE),
            ("start on a or (b or)\n", Some(1), EE),
            ("start on ()\n", Some(1), EE),
            ("start on a and\nb\n", Some(1), EE),
            ("start on (a and\n)\n", Some(2), EE),
            ("task\nstop on or\n", Some(2), EE),
            ("start on a b (c)\n", Some(1), EO),
            ("start on frodo (foo or bar)\n", Some(1), EO),
            ("start on (foo or bar) frodo\n", Some(1), EO),
            ("start on (a) (b)\n", Some(1), EO),
            ("task\nstop on (a\n  b) c\n", Some(3), EO),
            ("start on foo A=1 bar\n", Some(1), EV),
            ("start on foo a B!=1 c\n", Some(1), EV),
            ("start on wibble foo KEY=bar baz\n", Some(1), EV),
            ("start on (x or\n  foo A=1 bar)\n", Some(2), EV),
            ("start on a)\n", Some(1), MP),
            ("start on foo or bar or foo)\n", Some(1), MP),
            ("start on (a))\n", Some(1), MP),
            ("start on (a", Some(1), MP),
            ("start on (a\n", Some(2), MP),
            ("start on foo or (bar or foo\n", Some(2), MP),
            ("task\nstop on (a\n", Some(3), MP),
            ("start on ((a)\n", Some(2), MP),
            ("start on (a\ntask\n", Some(3), MP),
        ],
    );
}

// ---------------------------------------------------------------------------
// Tokenizer (§6)
// ---------------------------------------------------------------------------

#[test]
fn tokenizer_arguments() {
    check_ok(
        "tokenizer args",
        &[
            // Comments, blank lines, leading whitespace.
            (
                "# comment\ntask # trailing comment\n   # indented\n\n",
                &[("task", "true")],
            ),
            ("  \t task\n", &[("task", "true")]),
            ("description foo#bar", &[("description", "foo")]),
            ("description \"foo#bar\"", &[("description", "foo#bar")]),
            ("description 'a # b'", &[("description", "a # b")]),
            // Quoting.
            (
                "description foo\"bar baz\"qux",
                &[("description", "foobar bazqux")],
            ),
            ("description 'a \"b\" c'", &[("description", "a \"b\" c")]),
            ("description \"it's\"", &[("description", "it's")]),
            ("description \"a  b\"   ", &[("description", "a  b")]),
            ("description a'b'c", &[("description", "abc")]),
            ("description \"a\"'b'", &[("description", "ab")]),
            ("emits \"my event\"", &[("emits", "[\"my event\"]")]),
            ("instance \"$A $B\"", &[("instance", "$A $B")]),
            // TAB and CR separate tokens like spaces.
            ("nice\t5", &[("nice", "5")]),
            ("nice\r5", &[("nice", "5")]),
            ("manual\ttask", &[("start_on", NONE), ("task", "true")]),
            ("debug # comment", &[("debug", "true")]),
            // Backslashes.
            ("description a\\ b", &[("description", "a b")]),
            ("description a\\\\b", &[("description", "a\\b")]),
            ("description a\\\tb", &[("description", "a\tb")]),
            ("description a\\nb", &[("description", "a\\nb")]),
            ("description a\\#b", &[("description", "a\\#b")]),
            ("description a\\\"b", &[("description", "a\\\"b")]),
            ("description \"a\\\"b\"", &[("description", "a\\\"b")]),
            // Continuation inside a token: LF and surrounding whitespace
            // collapse into one space.
            ("description a\\\n   b", &[("description", "a b")]),
            ("description \"a\n   b\"", &[("description", "a b")]),
            ("description \"a   \n   b\"", &[("description", "a b")]),
            // Continuation between stanza name and argument.
            (
                "description \\\n  foo\nnice 3\n",
                &[("description", "foo"), ("nice", "3")],
            ),
            // Line numbers keep counting through continuations.
            (
                "description \"a\nb\"\nexec /bin/x\n",
                &[("description", "a b"), ("main.line", "3")],
            ),
            // Stanza names are case-sensitive and not dequoted; see errors.
            // CR is whitespace.
            (
                "task\r\ndescription \"a b\"\r\nnice 3\r\n",
                &[("task", "true"), ("description", "a b"), ("nice", "3")],
            ),
            // manual / debug do not check the rest of the line.
            ("manual task", &[("start_on", NONE), ("task", "true")]),
            (
                "start on a\nmanual task\n",
                &[("start_on", NONE), ("task", "true")],
            ),
            (
                "manual   respawn",
                &[("start_on", NONE), ("respawn", "true")],
            ),
            ("debug task", &[("debug", "true"), ("task", "true")]),
            ("manual # comment\n", &[("start_on", NONE)]),
        ],
    );
}

#[test]
fn tokenizer_escaped_quote_does_not_open_quote() {
    // `\"` stays `\"` and does not open a quote: the space after it splits
    // the tokens, so `description \"a b\"` has two arguments.
    check_err(
        "escaped quote",
        &[
            ("task\ndescription \\\"a b\\\"\n", Some(2), UT),
            ("task\ndescription a\\'b c'\n", Some(2), UT),
        ],
    );
}

#[test]
fn tokenizer_exec_raw_command() {
    check_ok(
        "exec raw text",
        &[
            (
                "exec /bin/echo \"a   b\" # c",
                &[("main", "exec:/bin/echo \"a   b\"")],
            ),
            ("exec foo \\\n  bar", &[("main", "exec:foo bar")]),
            ("exec foo   \\\n   bar\n", &[("main", "exec:foo bar")]),
            (
                "exec /bin/a \\\n  --b \\\n  --c\nnice 1\n",
                &[
                    ("main", "exec:/bin/a --b --c"),
                    ("main.line", "1"),
                    ("nice", "1"),
                ],
            ),
            ("exec echo 'a # b'", &[("main", "exec:echo 'a # b'")]),
            (
                "exec echo \"a # b\" # c",
                &[("main", "exec:echo \"a # b\"")],
            ),
            ("exec echo a\\#b # c", &[("main", "exec:echo a\\#b")]),
            ("exec echo a\\ b", &[("main", "exec:echo a\\ b")]),
            ("exec echo a\\\\b", &[("main", "exec:echo a\\\\b")]),
            ("exec echo \\\"a", &[("main", "exec:echo \\\"a")]),
            ("exec echo \"a\n   b\"", &[("main", "exec:echo \"a b\"")]),
            ("exec /bin/foo\t \t", &[("main", "exec:/bin/foo")]),
            ("exec    /bin/foo", &[("main", "exec:/bin/foo")]),
            ("exec /bin/foo\r\n", &[("main", "exec:/bin/foo")]),
            (
                "exec echo $HOME > /tmp/x 2>&1",
                &[("main", "exec:echo $HOME > /tmp/x 2>&1")],
            ),
            (
                "exec /bin/foo # comment\ntask\n",
                &[("main", "exec:/bin/foo"), ("task", "true")],
            ),
            (
                "pre-start exec echo \"x\"  # c",
                &[("pre-start", "exec:echo \"x\"")],
            ),
            (
                "post-stop exec rm -f '/tmp/a b'",
                &[("post-stop", "exec:rm -f '/tmp/a b'")],
            ),
            ("\n\nexec /bin/x\n", &[("main.line", "3")]),
        ],
    );
}

#[test]
fn tokenizer_script_blocks() {
    check_ok(
        "script blocks",
        &[
            // Common indentation removed.
            (
                "script\n    echo a\n    echo b\nend script\n",
                &[("main", "script:echo a\necho b\n"), ("main.line", "1")],
            ),
            (
                "script\n    a\n      b\n    c\nend script\n",
                &[("main", "script:a\n  b\nc\n")],
            ),
            (
                "script\n\ta\n\t\tb\nend script\n",
                &[("main", "script:a\n\tb\n")],
            ),
            // First line more indented than later ones.
            (
                "script\n    a\n  b\nend script\n",
                &[("main", "script:  a\nb\n")],
            ),
            (
                "script\n  a\n b\nend script\n",
                &[("main", "script: a\nb\n")],
            ),
            // Prefix is matched character for character.
            (
                "script\n  a\n\tb\nend script\n",
                &[("main", "script:  a\n\tb\n")],
            ),
            (
                "script\na\n  b\nend script\n",
                &[("main", "script:a\n  b\n")],
            ),
            ("script\n\n  a\nend script\n", &[("main", "script:\n  a\n")]),
            // A blank line makes W = 0: no stripping at all.
            (
                "script\n  a\n\n  b\nend script\n",
                &[("main", "script:  a\n\n  b\n")],
            ),
            // A whitespace-only line counts with what it has.
            (
                "script\n  a\n \n  b\nend script\n",
                &[("main", "script: a\n\n b\n")],
            ),
            // No escape, quote or comment processing in the body.
            (
                "script\n  echo \"x\n  y\\\n  # not a comment\nend script\n",
                &[("main", "script:echo \"x\ny\\\n# not a comment\n")],
            ),
            // `script` may be followed by whitespace / comment.
            (
                "script   # comment\n  a\nend script\n",
                &[("main", "script:a\n")],
            ),
            // end script variants that terminate.
            (
                "script\n  a\n\t\tend script  # done\ntask\n",
                &[("main", "script:a\n"), ("task", "true")],
            ),
            ("script\n  a\nend  script\n", &[("main", "script:a\n")]),
            ("script\n  a\nend\tscript\n", &[("main", "script:a\n")]),
            ("script\n  a\nend script", &[("main", "script:a\n")]),
            ("script\n  a\nend script#c\n", &[("main", "script:a\n")]),
            ("script\n  a\nend script   \n", &[("main", "script:a\n")]),
            // Lines that do not terminate stay in the body.
            (
                "script\n  a\n  endscript\n  b\nend script\n",
                &[("main", "script:a\nendscript\nb\n")],
            ),
            (
                "script\n  a\n  end scripts\nend script\n",
                &[("main", "script:a\nend scripts\n")],
            ),
            (
                "script\n  a\n  end script foo\nend script\n",
                &[("main", "script:a\nend script foo\n")],
            ),
            // Parsing resumes after the block.
            (
                "script\n  a\nend script\nnice 3\n",
                &[("main", "script:a\n"), ("nice", "3")],
            ),
            (
                "task\n\npre-start script\n  a\nend script\nexec /bin/x\n",
                &[
                    ("pre-start", "script:a\n"),
                    ("pre-start.line", "3"),
                    ("main.line", "6"),
                ],
            ),
            // CRLF: CR is whitespace for stanzas but stays in the body.
            (
                "task\r\nscript\r\n  echo a\r\nend script\r\nnice 3\r\n",
                &[
                    ("task", "true"),
                    ("main", "script:echo a\r\n"),
                    ("nice", "3"),
                ],
            ),
            (
                "pre-start script\r\n  a\r\n  b\r\nend script\r\n",
                &[("pre-start", "script:a\r\nb\r\n")],
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Event expressions (§6.5)
// ---------------------------------------------------------------------------

#[test]
fn event_expressions() {
    check_ok(
        "expressions",
        &[
            ("start on a or b and c", &[("start_on", "((a or b) and c)")]),
            ("start on a and b or c", &[("start_on", "((a and b) or c)")]),
            (
                "start on a and b and c",
                &[("start_on", "((a and b) and c)")],
            ),
            (
                "start on a or b or c or d",
                &[("start_on", "(((a or b) or c) or d)")],
            ),
            (
                "start on a and (b or c)",
                &[("start_on", "(a and (b or c))")],
            ),
            (
                "start on (a or b) and (c or d)",
                &[("start_on", "((a or b) and (c or d))")],
            ),
            (
                "start on ((a))",
                &[("start_on", "a"), ("start_on.match", "\"a\" []")],
            ),
            ("start on (a)and(b)", &[("start_on", "(a and b)")]),
            ("start on ( a and ( b ) )", &[("start_on", "(a and b)")]),
            ("stop on a or b and c", &[("stop_on", "((a or b) and c)")]),
            // Arguments.
            (
                "start on foo A=1 B!=2",
                &[
                    ("start_on", "foo A=1 B!=2"),
                    ("start_on.match", "\"foo\" [\"A=1\", \"B!=2\"]"),
                ],
            ),
            (
                "start on foo bar baz",
                &[("start_on.match", "\"foo\" [\"bar\", \"baz\"]")],
            ),
            (
                "start on foo bar KEY=v",
                &[("start_on.match", "\"foo\" [\"bar\", \"KEY=v\"]")],
            ),
            (
                "start on foo \"a b\"",
                &[("start_on.match", "\"foo\" [\"a b\"]")],
            ),
            (
                "start on foo VAR=\"x y\"",
                &[("start_on.match", "\"foo\" [\"VAR=x y\"]")],
            ),
            (
                "start on foo A=$X",
                &[("start_on.match", "\"foo\" [\"A=$X\"]")],
            ),
            (
                "stop on net-device-down IFACE!=lo",
                &[("stop_on.match", "\"net-device-down\" [\"IFACE!=lo\"]")],
            ),
            (
                "start on runlevel [2345]",
                &[("start_on.match", "\"runlevel\" [\"[2345]\"]")],
            ),
            (
                "start on started foo or stopped bar",
                &[("start_on", "(started foo or stopped bar)")],
            ),
            // Quoted operators are operands.
            ("start on \"and\"", &[("start_on.match", "\"and\" []")]),
            ("start on a or \"or\"", &[("start_on", "(a or or)")]),
            ("start on 'and' and b", &[("start_on", "(and and b)")]),
            (
                "start on foo \"and\" bar",
                &[("start_on.match", "\"foo\" [\"and\", \"bar\"]")],
            ),
            // Continuation across lines inside parentheses, with comments.
            (
                "start on (a and # comment\n   b)  # comment\ntask\n",
                &[("start_on", "(a and b)"), ("task", "true")],
            ),
            ("start on (a\n  or\n  b)\n", &[("start_on", "(a or b)")]),
            (
                "start on (a or # c1\n  b # c2\n  )\nexec /bin/x\n",
                &[("start_on", "(a or b)"), ("main.line", "4")],
            ),
            ("start on a and \\\n  b\n", &[("start_on", "(a and b)")]),
            (
                "start on a # comment\ntask\n",
                &[("start_on", "a"), ("task", "true")],
            ),
            ("start on a and b\r\n", &[("start_on", "(a and b)")]),
            (
                "start on (a or b) and c or d",
                &[("start_on", "(((a or b) and c) or d)")],
            ),
            ("start on (a) or (b)", &[("start_on", "(a or b)")]),
            // Backslash-LF inside a token joins it: `or b` is one argument.
            (
                "start on a or\\\n b",
                &[("start_on.match", "\"a\" [\"or b\"]")],
            ),
            (
                "stop on (a and\n b)\ntask\n",
                &[("stop_on", "(a and b)"), ("task", "true")],
            ),
            (
                "start on (a or b)\nstop on c\nmanual\n",
                &[("start_on", NONE), ("stop_on", "c")],
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Numeric conversions (§7.4, §7.5, §9 items 10–14)
// ---------------------------------------------------------------------------

#[test]
fn oom_values() {
    check_ok(
        "oom",
        &[
            ("oom 0", &[("oom_score_adj", "0")]),
            ("oom 15", &[("oom_score_adj", "1000")]),
            ("oom -17", &[("oom_score_adj", "-1000")]),
            ("oom -16", &[("oom_score_adj", "-941")]),
            ("oom 1", &[("oom_score_adj", "66")]),
            ("oom 7", &[("oom_score_adj", "466")]),
            ("oom -1", &[("oom_score_adj", "-58")]),
            ("oom -8", &[("oom_score_adj", "-470")]),
            ("oom never", &[("oom_score_adj", "-1000")]),
            ("oom score never", &[("oom_score_adj", "-1000")]),
            ("oom score -1000", &[("oom_score_adj", "-1000")]),
            ("oom score 1000", &[("oom_score_adj", "1000")]),
            ("oom score 0", &[("oom_score_adj", "0")]),
            ("oom score 250", &[("oom_score_adj", "250")]),
            ("oom score -999", &[("oom_score_adj", "-999")]),
        ],
    );
}

#[test]
fn limit_values() {
    check_ok(
        "limit",
        &[
            (
                "limit nofile 1024 unlimited",
                &[("limits", "nofile=1024/inf")],
            ),
            (
                "limit nofile unlimited 1024",
                &[("limits", "nofile=inf/1024")],
            ),
            (
                "limit core unlimited unlimited",
                &[("limits", "core=inf/inf")],
            ),
            ("limit core -1 -1", &[("limits", "core=inf/inf")]),
            (
                "limit core -2 0",
                &[("limits", "core=18446744073709551614/0")],
            ),
            ("limit nofile 0 0", &[("limits", "nofile=0/0")]),
            (
                "limit stack 18446744073709551614 1",
                &[("limits", "stack=18446744073709551614/1")],
            ),
            ("limit as 1 2", &[("limits", "as=1/2")]),
            ("limit core 1 2", &[("limits", "core=1/2")]),
            ("limit cpu 1 2", &[("limits", "cpu=1/2")]),
            ("limit data 1 2", &[("limits", "data=1/2")]),
            ("limit fsize 1 2", &[("limits", "fsize=1/2")]),
            ("limit memlock 1 2", &[("limits", "memlock=1/2")]),
            ("limit msgqueue 1 2", &[("limits", "msgqueue=1/2")]),
            ("limit nice 1 2", &[("limits", "nice=1/2")]),
            ("limit nofile 1 2", &[("limits", "nofile=1/2")]),
            ("limit nproc 1 2", &[("limits", "nproc=1/2")]),
            ("limit rss 1 2", &[("limits", "rss=1/2")]),
            ("limit rtprio 1 2", &[("limits", "rtprio=1/2")]),
            ("limit sigpending 1 2", &[("limits", "sigpending=1/2")]),
            ("limit stack 1 2", &[("limits", "stack=1/2")]),
            (
                "limit nofile 10 20\nlimit core 1 2\nlimit nofile 30 40\n",
                &[("limits", "core=1/2 nofile=30/40")],
            ),
        ],
    );
}

/// A limit value too large for an unsigned long is rejected: §7.5 says the
/// value is parsed like C `strtoul` (which reports ERANGE) and §5 makes a
/// bad value `Illegal limit`; Upstart 1.13 rejects it (test_parse_job.c,
/// "with too-large hard value argument"). Kept apart from the main error
/// table because the spec text does not spell out overflow for `limit`.
#[test]
fn limit_value_overflow_is_rejected() {
    check_err(
        "limit overflow",
        &[
            ("task\nlimit core 10 20000000000000000000\n", Some(2), IL),
            ("task\nlimit core 20000000000000000000 10\n", Some(2), IL),
        ],
    );
}

#[test]
fn respawn_limit_values() {
    check_ok(
        "respawn limit",
        &[
            (
                "respawn limit 3 10",
                &[
                    ("respawn", "false"),
                    ("respawn_limit", "3"),
                    ("respawn_interval", "10"),
                ],
            ),
            (
                "respawn limit unlimited",
                &[
                    ("respawn", "false"),
                    ("respawn_limit", "0"),
                    ("respawn_interval", "0"),
                ],
            ),
            (
                "respawn limit 0 5",
                &[("respawn_limit", "0"), ("respawn_interval", "5")],
            ),
            (
                "respawn limit 5 0",
                &[("respawn_limit", "5"), ("respawn_interval", "0")],
            ),
            (
                "respawn limit 100 3600 # comment",
                &[("respawn_limit", "100"), ("respawn_interval", "3600")],
            ),
        ],
    );
}

#[test]
fn normal_exit_values() {
    check_ok(
        "normal exit",
        &[
            ("normal exit 0", &[("normal_exit", "[0]")]),
            (
                "normal exit 0 1 TERM SIGHUP",
                &[("normal_exit", "[0, 1, 3840, 256]")],
            ),
            ("normal exit 255 256", &[("normal_exit", "[255, 256]")]),
            ("normal exit 2147483647", &[("normal_exit", "[2147483647]")]),
            ("normal exit KILL", &[("normal_exit", "[2304]")]),
            ("normal exit SIGKILL", &[("normal_exit", "[2304]")]),
            (
                "normal exit 0 TERM\nnormal exit 2",
                &[("normal_exit", "[0, 3840, 2]")],
            ),
            ("normal exit 1\nnormal exit 1", &[("normal_exit", "[1, 1]")]),
        ],
    );
}

/// Signal names in §7.4 with their Linux numbers.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

#[test]
fn kill_and_reload_values() {
    check_ok(
        "kill/reload",
        &[
            ("kill timeout 0", &[("kill_timeout", "0")]),
            ("kill timeout 300", &[("kill_timeout", "300")]),
            ("kill signal KILL", &[("kill_signal", "9")]),
            ("kill signal SIGKILL", &[("kill_signal", "9")]),
            ("kill signal 9", &[("kill_signal", "9")]),
            ("kill signal 0", &[("kill_signal", "0")]),
            ("kill signal 2147483647", &[("kill_signal", "2147483647")]),
            ("kill signal SIGUSR1", &[("kill_signal", "10")]),
            ("reload signal SIGHUP", &[("reload_signal", "1")]),
            ("reload signal 12", &[("reload_signal", "12")]),
            (
                "reload signal USR1",
                &[("reload_signal", "10"), ("kill_signal", "15")],
            ),
            (
                "kill signal INT",
                &[("kill_signal", "2"), ("reload_signal", "1")],
            ),
        ],
    );

    // Every signal name, with and without SIG, for kill, reload and
    // normal exit.
    let mut fails = Vec::new();
    let mut n = 0;
    for (name, num) in SIGNALS {
        for prefix in ["", "SIG"] {
            let kill = num.to_string();
            let ne = format!("[{}]", num << 8);
            let cases = [
                (
                    format!("kill signal {prefix}{name}"),
                    "kill_signal",
                    kill.clone(),
                ),
                (
                    format!("reload signal {prefix}{name}"),
                    "reload_signal",
                    kill.clone(),
                ),
                (format!("normal exit {prefix}{name}"), "normal_exit", ne),
            ];
            for (input, f, want) in &cases {
                let tag = format!("[signal names #{n}]");
                ok_row(&mut fails, &tag, input, &[(*f, want.as_str())]);
                n += 1;
            }
        }
    }
    finish("signal names", n, fails);
}

#[test]
fn umask_and_nice_values() {
    check_ok(
        "umask/nice",
        &[
            ("umask 0", &[("umask", "0o0")]),
            ("umask 02", &[("umask", "0o2")]),
            ("umask 022", &[("umask", "0o22")]),
            ("umask 077", &[("umask", "0o77")]),
            ("umask 777", &[("umask", "0o777")]),
            ("umask 0777", &[("umask", "0o777")]),
            ("umask 7", &[("umask", "0o7")]),
            ("nice -20", &[("nice", "-20")]),
            ("nice 19", &[("nice", "19")]),
            ("nice 0", &[("nice", "0")]),
            ("nice 10", &[("nice", "10")]),
        ],
    );
}

// ---------------------------------------------------------------------------
// cgroup (cgroups.md §1)
// ---------------------------------------------------------------------------

#[test]
fn cgroup_forms_and_merging() {
    check_ok(
        "cgroup",
        &[
            // 1–4 argument forms.
            ("cgroup memory", &[("cgroups", "memory: $UPSTART_CGROUP{}")]),
            ("cgroup cpu grp", &[("cgroups", "cpu: grp{}")]),
            (
                "cgroup cpu shares 512",
                &[("cgroups", "cpu: $UPSTART_CGROUP{shares=512}")],
            ),
            (
                "cgroup cpu grp shares 512",
                &[("cgroups", "cpu: grp{shares=512}")],
            ),
            (
                "cgroup cpu \"a silly name\"",
                &[("cgroups", "cpu: a silly name{}")],
            ),
            (
                "cgroup blkio grp throttle.read_bps_device \"8:16 1048576\"",
                &[(
                    "cgroups",
                    "blkio: grp{throttle.read_bps_device=8:16 1048576}",
                )],
            ),
            (
                "cgroup cpu shares 512 # comment",
                &[("cgroups", "cpu: $UPSTART_CGROUP{shares=512}")],
            ),
            (
                "cgroup cpu $UPSTART_CGROUP/sub",
                &[("cgroups", "cpu: $UPSTART_CGROUP/sub{}")],
            ),
            ("cgroup cpu db/$foo", &[("cgroups", "cpu: db/$foo{}")]),
            // Empty value given as "".
            (
                "cgroup cpu key \"\"",
                &[("cgroups", "cpu: $UPSTART_CGROUP{key=}")],
            ),
            ("cgroup cpu grp key \"\"", &[("cgroups", "cpu: grp{key=}")]),
            // $UPSTART_CGROUP (quoted or not) is the implicit name.
            (
                "cgroup cpu $UPSTART_CGROUP",
                &[("cgroups", "cpu: $UPSTART_CGROUP{}")],
            ),
            (
                "cgroup cpu \"$UPSTART_CGROUP\"\ncgroup cpu\n",
                &[("cgroups", "cpu: $UPSTART_CGROUP{}")],
            ),
            (
                "cgroup cpu\ncgroup cpu $UPSTART_CGROUP shares 5\n",
                &[("cgroups", "cpu: $UPSTART_CGROUP{shares=5}")],
            ),
            (
                "cgroup cpu $UPSTART_CGROUP shares 5\ncgroup cpu shares 6\n",
                &[("cgroups", "cpu: $UPSTART_CGROUP{shares=6}")],
            ),
            // ${UPSTART_CGROUP} is an explicit, different name.
            (
                "cgroup cpu ${UPSTART_CGROUP}\ncgroup cpu\n",
                &[("cgroups", "cpu: ${UPSTART_CGROUP}{} $UPSTART_CGROUP{}")],
            ),
            // Merge rules (§1.1).
            // controller not yet listed → append controller.
            (
                "cgroup memory\ncgroup cpu",
                &[(
                    "cgroups",
                    "memory: $UPSTART_CGROUP{}; cpu: $UPSTART_CGROUP{}",
                )],
            ),
            // controller listed, name not listed → append name.
            ("cgroup cpu a\ncgroup cpu b", &[("cgroups", "cpu: a{} b{}")]),
            (
                "cgroup cpu a k 1\ncgroup cpu b k 1",
                &[("cgroups", "cpu: a{k=1} b{k=1}")],
            ),
            // controller and name listed, no key → nothing.
            ("cgroup cpu a\ncgroup cpu a", &[("cgroups", "cpu: a{}")]),
            (
                "cgroup cpu a k 1\ncgroup cpu a",
                &[("cgroups", "cpu: a{k=1}")],
            ),
            (
                "cgroup cpu\ncgroup cpu",
                &[("cgroups", "cpu: $UPSTART_CGROUP{}")],
            ),
            // key listed → replace value.
            (
                "cgroup cpu a k 1\ncgroup cpu a k 2",
                &[("cgroups", "cpu: a{k=2}")],
            ),
            (
                "cgroup cpu k 1\ncgroup cpu k 2",
                &[("cgroups", "cpu: $UPSTART_CGROUP{k=2}")],
            ),
            // key not listed → append setting.
            (
                "cgroup cpu a k 1\ncgroup cpu a j 2",
                &[("cgroups", "cpu: a{k=1,j=2}")],
            ),
            (
                "cgroup cpu a k 1\ncgroup cpu a j 2\ncgroup cpu a k 3",
                &[("cgroups", "cpu: a{k=3,j=2}")],
            ),
            // Order of first appearance is kept.
            (
                "cgroup memory\ncgroup cpu\ncgroup memory limit_in_bytes 1",
                &[(
                    "cgroups",
                    "memory: $UPSTART_CGROUP{limit_in_bytes=1}; cpu: $UPSTART_CGROUP{}",
                )],
            ),
            (
                "cgroup cpu a\ncgroup memory a\ncgroup cpu b",
                &[("cgroups", "cpu: a{} b{}; memory: a{}")],
            ),
            (
                "cgroup cpu b\ncgroup cpu a\ncgroup cpu b k v",
                &[("cgroups", "cpu: b{k=v} a{}")],
            ),
        ],
    );
    check_err(
        "cgroup errors",
        &[
            ("cgroup", Some(1), ET),
            ("task\ncgroup\n", Some(2), ET),
            ("task\ncgroup # comment\n", Some(2), ET),
            ("task\n\ncgroup a b c d e\n", Some(3), UT),
            ("cgroup cpu a k v extra # c\n", Some(1), UT),
        ],
    );
}

// ---------------------------------------------------------------------------
// Overrides (§4)
// ---------------------------------------------------------------------------

const OVERRIDE_CONF: &str = "\
description \"conf description\"
author conf-author
version 1
usage conf-usage
instance $A
start on foo
stop on bar
env A=1
export A
emits x
normal exit 1
cgroup cpu a k 1
limit nofile 1 2
exec /bin/conf
pre-start exec /bin/pre
expect fork
kill timeout 10
kill signal INT
reload signal USR1
console none
umask 077
nice 5
oom score 10
chroot /a
chdir /a
setuid a
setgid a
apparmor switch a
respawn limit 1 1
";

#[test]
fn overrides() {
    let rows: &[(&str, &[(&str, &str)])] = &[
        // Empty and comment-only override: nothing changes.
        (
            "",
            &[
                ("description", "conf description"),
                ("main", "exec:/bin/conf"),
            ],
        ),
        (
            "# nothing\n\n",
            &[("start_on", "foo"), ("normal_exit", "[1]")],
        ),
        // Single-valued stanzas are replaced.
        (
            "description \"over description\"\nauthor o\nversion 2\nusage u2\ninstance $B\n",
            &[
                ("description", "over description"),
                ("author", "o"),
                ("version", "2"),
                ("usage", "u2"),
                ("instance", "$B"),
                ("name", "test"),
                ("path", PATH),
            ],
        ),
        (
            "start on baz\nstop on qux\n",
            &[("start_on", "baz"), ("stop_on", "qux")],
        ),
        (
            "exec /bin/override\n",
            &[
                ("main", "exec:/bin/override"),
                ("pre-start", "exec:/bin/pre"),
            ],
        ),
        (
            "script\n  echo over\nend script\n",
            &[("main", "script:echo over\n")],
        ),
        (
            "expect daemon\nkill timeout 20\nkill signal TERM\nreload signal HUP\n",
            &[
                ("expect", "Daemon"),
                ("kill_timeout", "20"),
                ("kill_signal", "15"),
                ("reload_signal", "1"),
            ],
        ),
        (
            "console log\numask 022\nnice -5\noom 15\n",
            &[
                ("console", "Log"),
                ("umask", "0o22"),
                ("nice", "-5"),
                ("oom_score_adj", "1000"),
            ],
        ),
        (
            "chroot /b\nchdir /b\nsetuid b\nsetgid b\napparmor switch b\nrespawn limit 2 2\n",
            &[
                ("chroot", "/b"),
                ("chdir", "/b"),
                ("setuid", "b"),
                ("setgid", "b"),
                ("apparmor_switch", "b"),
                ("respawn_limit", "2"),
                ("respawn_interval", "2"),
                ("respawn", "false"),
            ],
        ),
        ("task\nrespawn\n", &[("task", "true"), ("respawn", "true")]),
        // Accumulating stanzas add to the conf's.
        (
            "env B=2\nexport B\nemits y\nnormal exit 2 TERM\n",
            &[
                ("env", "[\"A=1\", \"B=2\"]"),
                ("export", "[\"A\", \"B\"]"),
                ("emits", "[\"x\", \"y\"]"),
                ("normal_exit", "[1, 2, 3840]"),
            ],
        ),
        ("env A=2\n", &[("env.effective", "[\"A=2\"]")]),
        (
            "cgroup cpu a k 2\ncgroup cpu a j 3\ncgroup memory\n",
            &[("cgroups", "cpu: a{k=2,j=3}; memory: $UPSTART_CGROUP{}")],
        ),
        ("limit core 3 4\n", &[("limits", "core=3/4 nofile=1/2")]),
        ("limit nofile 5 6\n", &[("limits", "nofile=5/6")]),
        // `manual` in the override clears the conf's start on only.
        ("manual\n", &[("start_on", NONE), ("stop_on", "bar")]),
        ("manual\nstart on again\n", &[("start_on", "again")]),
        ("start on again\nmanual\n", &[("start_on", NONE)]),
    ];

    let conf = parse(OVERRIDE_CONF).expect("override base .conf must parse");
    let mut fails = Vec::new();
    for (i, (text, expects)) in rows.iter().enumerate() {
        let tag = format!("[overrides #{i}] override {text:?}");
        match apply_override(&conf, OVERRIDE_PATH, text) {
            Ok(c) => compare(&mut fails, &tag, &c, expects),
            Err(e) => fails.push(format!("{tag}: unexpected error `{e}`")),
        }
    }

    // An empty override yields exactly the .conf's class.
    match apply_override(&conf, OVERRIDE_PATH, "") {
        Ok(c) if c == conf => {}
        Ok(c) => fails.push(format!(
            "[overrides] empty override changed the class: {c:?}"
        )),
        Err(e) => fails.push(format!("[overrides] empty override failed: {e}")),
    }
    finish("overrides", rows.len() + 1, fails);
}

#[test]
fn override_errors() {
    let rows: &[ErrRow] = &[
        ("description b\nbogus\n", Some(2), US),
        ("\n\nnice 99\n", Some(3), IN),
        ("manual\nstart on (a\n", Some(3), MP),
        ("script\n  echo\n", Some(3), UB),
        ("exec\n", Some(1), ET),
        ("task extra\n", Some(1), UT),
        ("task\nkill signal FOO\n", None, IS),
    ];
    let conf = parse("start on foo\nexec /bin/conf\n").expect("base .conf must parse");
    let before = conf.clone();
    let mut fails = Vec::new();
    for (i, (text, line, msg)) in rows.iter().enumerate() {
        let tag = format!("[override errors #{i}] override {text:?}");
        let result = apply_override(&conf, OVERRIDE_PATH, text);
        err_check(&mut fails, &tag, result, OVERRIDE_PATH, *line, msg);
    }
    // The caller keeps the .conf-only class, untouched.
    if conf != before {
        fails.push("[override errors] the .conf class was modified".to_string());
    }
    if field(&conf, "start_on") != "foo" || field(&conf, "main") != "exec:/bin/conf" {
        fails.push("[override errors] the .conf class lost its stanzas".to_string());
    }
    finish("override errors", rows.len(), fails);
}
