//! Files init writes where others may write too: a link planted at their
//! name is never followed, and a session directory that is not the
//! session user's is refused; init carries on either way.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;

/// An init that is killed when the test ends, passed or not.
struct Init(Child);

impl Drop for Init {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `outset --user` through `sh -c SCRIPT` (which ends by exec'ing
/// outset with `"$@"`), runtime directory `DIR/run`, logs in `DIR/logs`.
fn start(dir: &TempDir, script: &str, extra: &[&str]) -> Init {
    std::fs::create_dir_all(dir.0.join("conf")).expect("conf");
    let log = std::fs::File::create(dir.0.join("daemon.log")).expect("log");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_outset"))
        .args(["--user", "--no-startup-event"])
        .args(extra)
        .arg("--confdir")
        .arg(dir.0.join("conf"))
        .arg("--logdir")
        .arg(dir.0.join("logs"))
        .env("XDG_RUNTIME_DIR", dir.0.join("run"))
        .env("DIR", &dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Init)
        .expect("outset")
}

/// Wait until the init's log holds `text`; its log.
fn wait_log(dir: &TempDir, init: &mut Init, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(dir.0.join("daemon.log")).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        let gone = init.0.try_wait().ok().flatten();
        assert!(
            gone.is_none() && Instant::now() < deadline,
            "no {text:?} (init ended: {gone:?}); log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_link_planted_at_the_session_file_is_not_followed() {
    let dir = TempDir::new("plant-session");
    let victim = dir.write("victim", "precious\n");
    std::fs::create_dir_all(dir.0.join("run/upstart/sessions")).expect("sessions");
    // $$ is the pid outset will have once sh execs it.
    let script = r#"ln -s "$DIR/victim" "$DIR/run/upstart/sessions/$$.session" && exec "$@""#;
    let mut child = start(&dir, script, &[]);
    wait_log(&dir, &mut child, "session init running");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let session = dir
        .0
        .join(format!("run/upstart/sessions/{}.session", child.0.id()));
    let meta = std::fs::symlink_metadata(&session).expect("session file");
    assert!(meta.file_type().is_file(), "the link was replaced");
    let text = std::fs::read_to_string(&session).expect("session file");
    assert!(text.starts_with("UPSTART_SESSION=unix:abstract="), "{text}");
    assert!(child.0.try_wait().expect("wait").is_none(), "init lives");
}

#[test]
fn a_session_directory_of_another_user_is_refused() {
    let dir = TempDir::new("plant-sessdir");
    let sessions = dir.0.join("run/upstart/sessions");
    std::fs::create_dir_all(&sessions).expect("sessions");
    std::os::unix::fs::chown(&sessions, Some(65534), Some(65534)).expect("chown");
    let mut child = start(&dir, r#"exec "$@""#, &[]);
    let log = wait_log(&dir, &mut child, "session init running");
    assert!(
        log.contains("Unable to write session file") && log.contains("is not owned by uid"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_dir(&sessions).expect("sessions").count(),
        0,
        "nothing written there"
    );
    assert!(child.0.try_wait().expect("wait").is_none(), "init lives");
}

#[test]
fn a_link_planted_at_the_failed_state_file_is_not_followed() {
    let dir = TempDir::new("plant-state");
    let victim = dir.write("victim", "precious\n");
    std::fs::create_dir_all(dir.0.join("logs")).expect("logs");
    std::os::unix::fs::symlink(&victim, dir.0.join("logs/upstart.state")).expect("plant");
    dir.write("bad-state", "{ this is not json");
    let script = r#"exec "$@" 3<"$DIR/bad-state""#;
    let mut child = start(&dir, script, &["--restart", "--state-fd", "3"]);
    wait_log(&dir, &mut child, "session init running");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let kept = dir.0.join("logs/upstart.state");
    assert!(std::fs::symlink_metadata(&kept)
        .expect("kept")
        .file_type()
        .is_file());
    assert_eq!(std::fs::read(&kept).expect("kept"), b"{ this is not json");
    assert!(child.0.try_wait().expect("wait").is_none(), "init lives");
}
