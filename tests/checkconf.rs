//! init-checkconf end to end: Upstart's options, output and exit status,
//! overrides, shell checks and the JSON dump.

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
    assert_eq!(stderr(&o), "");

    // Upstart's -f names the file too; errors go to stderr.
    let o = checkconf(&["-f", "bad.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "ERROR: File bad.conf: syntax invalid:\nbad.conf:2: Expected event\n"
    );

    // More than one file (an outset extra): each is reported.
    let o = checkconf(&["good.conf", "--file=bad.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "File good.conf: syntax ok\n");
    assert_eq!(
        stderr(&o),
        "ERROR: File bad.conf: syntax invalid:\nbad.conf:2: Expected event\n"
    );
}

#[test]
fn missing_file_and_usage_errors() {
    let t = TempDir::new("cc-missing");
    let o = checkconf(&["nope.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "ERROR: File nope.conf does not exist\n");

    t.write("job.txt", "exec /bin/true\n");
    let o = checkconf(&["job.txt"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ERROR: File must end in .conf\n");

    let o = checkconf(&[], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ERROR: Must specify configuration file\n");

    let o = checkconf(&["--bogus", "x.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("init-checkconf: invalid option: --bogus\n"));

    let o = checkconf(&["-h"], &t.0);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(" -s, --noscript        : Do not check script sections.\n"));

    // -x and -i name Upstart's programs: they must exist and be executable.
    t.write("good.conf", "exec /bin/true\n");
    let o = checkconf(&["-x", "/nonexistent/init", "good.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ERROR: Path /nonexistent/init does not exist\n");
    let o = checkconf(&["-i", "good.conf", "good.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ERROR: File good.conf not executable\n");
    let o = checkconf(&["-x", "/bin/true", "-i/bin/true", "good.conf"], &t.0);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "File good.conf: syntax ok\n");
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
        stderr(&o),
        "ERROR: File job.conf: syntax invalid:\njob.override:2: Illegal nice value, expected -20 to 19\n"
    );
}

#[test]
fn shell_syntax_errors_fail_unless_noscript() {
    let t = TempDir::new("cc-sh");
    t.write(
        "job.conf",
        "exec /bin/true\n\npre-start script\n  echo ok\n  if true; then\n    echo\nend script\n",
    );
    let o = checkconf(&["job.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.starts_with(
            "ERROR: File job.conf: shell syntax invalid in pre-start section:\njob.conf:7: 'pre-start' script: sh -n: "
        ),
        "{err}"
    );
    for noscript in ["-s", "--noscript"] {
        let o = checkconf(&[noscript, "job.conf"], &t.0);
        assert_eq!(o.status.code(), Some(0), "{noscript}");
        assert_eq!(stdout(&o), "File job.conf: syntax ok\n");
        assert_eq!(stderr(&o), "");
    }
    // A plain `script` block is Upstart's "script" section.
    t.write("main.conf", "script\n  case x in\nend script\n");
    let o = checkconf(&["main.conf"], &t.0);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("ERROR: File main.conf: shell syntax invalid in script section:\n")
    );
}
