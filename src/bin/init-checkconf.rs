//! init-checkconf: check job files offline, without a running daemon.

use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use outset::config::{load_job_file, ClassDefaults, JobClass, ProcessType};

#[derive(Parser)]
#[command(
    name = "init-checkconf",
    about = "Check job configuration files for errors",
    version
)]
struct Args {
    /// Also print each parsed job as JSON.
    #[arg(short, long)]
    debug: bool,
    /// Treat shell syntax errors in script sections as errors, not warnings.
    #[arg(short, long)]
    strict: bool,
    /// Job files (`NAME.conf`; a `NAME.override` beside it is applied).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut all_ok = true;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let (ok, lines) = check(file, &args);
        all_ok &= ok;
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Check one file; returns whether it is valid and the lines to print.
fn check(file: &Path, args: &Args) -> (bool, Vec<String>) {
    let shown = file.display().to_string();
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = base.strip_suffix(".conf").unwrap_or(&base).to_string();
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
    let mut errors: Vec<String> = override_err.iter().map(ToString::to_string).collect();
    let mut warnings = Vec::new();
    match &class {
        // Upstart loads a job whose script has a shell syntax error (it
        // fails when run), so by default that is only a warning.
        Ok(class) if args.strict => errors.extend(shell_errors(&shown, class)),
        Ok(class) => warnings.extend(shell_errors(&shown, class)),
        Err(e) => errors.push(e.to_string()),
    }
    let mut lines = Vec::new();
    if errors.is_empty() {
        lines.push(format!("File {shown}: syntax ok"));
        if let (true, Ok(class)) = (args.debug, &class) {
            lines.push(serde_json::to_string_pretty(class).unwrap_or_default());
        }
    } else {
        lines.push(format!("ERROR: File {shown}: syntax invalid:"));
        lines.extend(errors.iter().cloned());
    }
    lines.extend(warnings.into_iter().map(|w| format!("WARNING: {w}")));
    (errors.is_empty(), lines)
}

/// Run `sh -n` over every script section.
fn shell_errors(shown: &str, class: &JobClass) -> Vec<String> {
    let mut errors = Vec::new();
    for kind in ProcessType::ALL {
        let Some(proc_) = class.process(kind).filter(|p| p.script) else {
            continue;
        };
        if let Err((offset, msg)) = sh_check(&proc_.command) {
            errors.push(format!(
                "{shown}:{}: '{}' script: sh -n: {msg}",
                proc_.line + offset,
                kind.name()
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
