//! init-checkconf: check job files offline, without a running daemon.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use outset::cli::options::{self, Opt, Stop};
use outset::config::{load_job_file, ClassDefaults, JobClass, ProcessType};

const fn opt(short: char, long: &'static str, arg: Option<&'static str>) -> Opt {
    Opt {
        short: Some(short),
        long,
        arg,
        help: None,
    }
}

/// Upstart's options (its `-d`, `-f`, `-i`, `-s`, `-x`, `-h`) and outset's
/// long-only extra.
const OPTIONS: &[Opt] = &[
    opt('d', "debug", None),
    opt('f', "file", Some("FILE")),
    opt('i', "initctl-path", Some("PATH")),
    opt('s', "noscript", None),
    opt('x', "upstart-path", Some("PATH")),
    opt('h', "help", None),
    Opt {
        short: None,
        long: "strict",
        arg: None,
        help: None,
    },
];

const USAGE: &str = "\
Description: Determine if specified Upstart (init(8)) job configuration
             files are valid.

Usage: init-checkconf [options] -f <conf_file>
       init-checkconf [options]    <conf_file>...

Options:

 -d, --debug           : Also print each valid job, as parsed, in JSON.
 -f <file>,            : Job configuration file to check.
 --file=<file>
 -i <path>,            : Accepted for compatibility: the path must name an
 --initctl-path=<path>   executable file, but outset needs no initctl.
 -s, --noscript        : Do not check script sections.
 -x <path>             : Accepted for compatibility: the path must name an
 --upstart-path=<path>   executable file, but outset parses the file itself.
 -h, --help            : Show this help.
 --version             : Show the version.
";

struct Args {
    debug: bool,
    check_scripts: bool,
    files: Vec<PathBuf>,
}

/// `ERROR: MESSAGE` on standard error, as Upstart's script reports.
fn error(msg: &str) {
    eprintln!("ERROR: {msg}");
}

fn parse_args() -> Result<Args, ExitCode> {
    let argv: Vec<String> = std::env::args().collect();
    let parsed = match options::parse(&argv, OPTIONS, false) {
        Ok(p) => p,
        Err(Stop::Help) => {
            print!("{USAGE}");
            return Err(ExitCode::SUCCESS);
        }
        Err(Stop::Version) => {
            print!("{}", outset::cli::help::version("init-checkconf"));
            return Err(ExitCode::SUCCESS);
        }
        Err(Stop::Error(msg)) => {
            eprintln!("init-checkconf: {msg}");
            eprint!("{USAGE}");
            return Err(ExitCode::from(1));
        }
    };
    // outset parses the file itself; a path given for Upstart's programs
    // is still checked as Upstart's script checks it.
    for long in ["upstart-path", "initctl-path"] {
        if let Some(path) = parsed.value(long) {
            use std::os::unix::fs::PermissionsExt;
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
                Ok(m) if m.is_file() => {
                    error(&format!("File {path} not executable"));
                    return Err(ExitCode::from(1));
                }
                _ => {
                    error(&format!("Path {path} does not exist"));
                    return Err(ExitCode::from(1));
                }
            }
        }
    }
    let mut files: Vec<PathBuf> = parsed
        .given
        .iter()
        .filter(|(l, _)| *l == "file")
        .filter_map(|(_, v)| v.as_ref().map(PathBuf::from))
        .collect();
    files.extend(parsed.args.iter().map(PathBuf::from));
    if files.is_empty() {
        error("Must specify configuration file");
        return Err(ExitCode::from(1));
    }
    Ok(Args {
        debug: parsed.has("debug"),
        check_scripts: !parsed.has("noscript"),
        files,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut all_ok = true;
    for file in &args.files {
        all_ok &= check(file, &args);
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Check one file, report on it, and say whether it is valid. The checks
/// and their order are Upstart's: the file exists, is named `*.conf`, its
/// script sections pass `sh -n`, and it parses.
fn check(file: &Path, args: &Args) -> bool {
    let shown = file.display().to_string();
    if !file.is_file() {
        error(&format!("File {shown} does not exist"));
        return false;
    }
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(name) = base.strip_suffix(".conf").map(str::to_string) else {
        error("File must end in .conf");
        return false;
    };
    let override_path = file
        .to_string_lossy()
        .strip_suffix(".conf")
        .map(|stem| PathBuf::from(format!("{stem}.override")))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()));

    let (class, override_err) = load_job_file(
        &name,
        file,
        override_path.as_deref(),
        &ClassDefaults::default(),
    );
    if let (true, Ok(class)) = (args.check_scripts, &class) {
        // The first failing section in the order Upstart's script checks.
        const ORDER: [&str; 5] = ["pre-start", "post-start", "script", "pre-stop", "post-stop"];
        let first = shell_errors(&shown, class)
            .into_iter()
            .min_by_key(|(section, _)| ORDER.iter().position(|s| s == section));
        if let Some((section, detail)) = first {
            error(&format!(
                "File {shown}: shell syntax invalid in {section} section:\n{detail}"
            ));
            return false;
        }
    }
    let mut errors: Vec<String> = override_err.iter().map(ToString::to_string).collect();
    if let Err(e) = &class {
        errors.push(e.to_string());
    }
    if !errors.is_empty() {
        error(&format!(
            "File {shown}: syntax invalid:\n{}",
            errors.join("\n")
        ));
        return false;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "File {shown}: syntax ok");
    if let (true, Ok(class)) = (args.debug, &class) {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(class).unwrap_or_default()
        );
    }
    true
}

/// Run `sh -n` over every script section: per failing section, its name
/// as Upstart's script names it and the shell's complaint.
fn shell_errors(shown: &str, class: &JobClass) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    for kind in ProcessType::ALL {
        let Some(proc_) = class.process(kind).filter(|p| p.script) else {
            continue;
        };
        if let Err((offset, msg)) = sh_check(&proc_.command) {
            let section = match kind.name() {
                "main" => "script",
                other => other,
            };
            errors.push((
                section,
                format!(
                    "{shown}:{}: '{}' script: sh -n: {msg}",
                    proc_.line + offset,
                    kind.name()
                ),
            ));
        }
    }
    errors
}

/// Check a script body; on error returns the line within the body (0 when
/// the shell did not say) and the shell's message.
fn sh_check(script: &str) -> Result<(), (usize, String)> {
    let mut child = Command::new("/bin/sh")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (0, format!("cannot run /bin/sh: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| (0, format!("cannot run /bin/sh: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let msg = stderr.lines().collect::<Vec<_>>().join("; ");
    if msg.is_empty() {
        return Err((0, format!("exited with {}", output.status)));
    }
    Err(split_shell_line(&msg))
}

/// dash reports `/bin/sh: N: MESSAGE`; take N out so the caller can point
/// at the line in the job file.
fn split_shell_line(msg: &str) -> (usize, String) {
    let body = msg.strip_prefix("/bin/sh: ").unwrap_or(msg);
    match body.split_once(": ") {
        Some((n, rest)) => match n.parse::<usize>() {
            Ok(n) => (n, rest.to_string()),
            Err(_) => (0, msg.to_string()),
        },
        None => (0, msg.to_string()),
    }
}
