//! init-checkconf end to end: output format, exit status, overrides,
//! shell checks and the JSON dump.

mod common;

use common::TempDir;
use std::process::{Command, Output};

fn checkconf(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_init-checkconf"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run init-checkconf")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn valid_and_invalid_files() {
    let t = TempDir::new("cc");
    t.write(
        "good.conf",
        "description \"ok\"\nstart on startup\nexec /bin/true\n",
    );
    t.write("bad.conf", "# line 1\nstart on a or\n");
    let o = checkconf(&["good.conf"], &t.0);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "File good.conf: syntax ok\n");

    let o = checkconf(&["good.conf", "bad.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "File good.conf: syntax ok\nERROR: File bad.conf: syntax invalid:\nbad.conf:2: Expected event\n"
    );
}

#[test]
fn missing_file_and_usage_errors() {
    let t = TempDir::new("cc-missing");
    let o = checkconf(&["nope.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "ERROR: File nope.conf: syntax invalid:\nnope.conf: Error while loading configuration file: No such file or directory\n"
    );
    let o = checkconf(&[], &t.0);
    assert_eq!(o.status.code(), Some(2));
    let o = checkconf(&["--bogus", "x.conf"], &t.0);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn override_beside_the_file_is_applied_and_checked() {
    let t = TempDir::new("cc-ov");
    t.write("job.conf", "start on startup\nexec /bin/true\n");
    t.write("job.override", "manual\n");
    let o = checkconf(&["-d", "job.conf"], &t.0);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let json = out
        .strip_prefix("File job.conf: syntax ok\n")
        .expect("ok line first");
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON dump");
    assert_eq!(v["name"], "job");
    assert!(
        v["start_on"].is_null(),
        "manual in the override clears start on"
    );
    assert_eq!(v["processes"]["main"]["command"], "/bin/true");

    t.write("job.override", "\nnice 40\n");
    let o = checkconf(&["job.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "ERROR: File job.conf: syntax invalid:\njob.override:2: Illegal nice value, expected -20 to 19\n"
    );
}

#[test]
fn shell_syntax_errors_warn_or_fail_with_strict() {
    let t = TempDir::new("cc-sh");
    t.write(
        "job.conf",
        "exec /bin/true\n\npre-start script\n  echo ok\n  if true; then\n    echo\nend script\n",
    );
    let o = checkconf(&["job.conf"], &t.0);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("File job.conf: syntax ok"));
    let warning = lines.next().expect("warning line");
    assert!(
        warning.starts_with("WARNING: job.conf:7: 'pre-start' script: sh -n: "),
        "{warning}"
    );
    let o = checkconf(&["--strict", "job.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "ERROR: File job.conf: syntax invalid:\njob.conf:7: 'pre-start' script: sh -n: "
        ),
        "{out}"
    );
}
