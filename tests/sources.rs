//! Configuration sources: scanning, job names, override lookup across
//! directories, first-source-wins and `/etc/init.conf`.

mod common;

use common::TempDir;
use outset::config::{load_sources, scan_dir, ClassDefaults, ConfSource, ConfigError};

fn registered(sources: &[ConfSource]) -> Vec<(String, String)> {
    load_sources(sources, &ClassDefaults::default())
        .registered()
        .iter()
        .map(|j| {
            let cmd = j
                .class
                .processes
                .values()
                .next()
                .map(|p| p.command.clone())
                .unwrap_or_default();
            (j.name.clone(), cmd)
        })
        .collect()
}

#[test]
fn scanning_skips_backups_and_vcs_and_recurses() {
    let t = TempDir::new("scan");
    t.write("a.conf", "exec a\n");
    t.write("sub/bar.conf", "exec bar\n");
    t.write(".x.conf", "exec x\n");
    t.write("foo.conf.dpkg-old", "exec no\n");
    t.write(".foo.conf~", "exec no\n");
    t.write("foo.conf.bak", "exec no\n");
    t.write(".git/hidden.conf", "exec no\n");
    t.write("RCS/r.conf", "exec no\n");
    t.write("old.dpkg-new/d.conf", "exec no\n");
    t.write("lonely.override", "manual\n");
    std::os::unix::fs::symlink(t.0.join("a.conf"), t.0.join("link.conf")).expect("symlink");

    let files: Vec<String> = scan_dir(&t.0)
        .expect("scan")
        .iter()
        .map(|p| p.strip_prefix(&t.0).expect("prefix").display().to_string())
        .collect();
    assert_eq!(files, [".x.conf", "a.conf", "link.conf", "sub/bar.conf"]);

    let jobs = registered(&[ConfSource::dir(&t.0)]);
    let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [".x", "a", "link", "sub/bar"]);
    assert!(scan_dir(&t.0.join("missing"))
        .expect("missing is fine")
        .is_empty());
}

#[test]
fn first_source_wins_and_overrides_follow_source_order() {
    let first = TempDir::new("first");
    let second = TempDir::new("second");
    first.write("foo.conf", "exec first\n");
    second.write("foo.conf", "exec second\n");
    // An override in an earlier directory than its .conf applies…
    first.write("bar.override", "exec overridden\n");
    second.write("bar.conf", "exec bar\n");
    // …one in a later directory does not.
    first.write("baz.conf", "exec baz\n");
    second.write("baz.override", "exec ignored\n");

    let sources = [ConfSource::dir(&first.0), ConfSource::dir(&second.0)];
    let mut jobs = registered(&sources);
    jobs.sort();
    assert_eq!(
        jobs,
        [
            ("bar".to_string(), "overridden".to_string()),
            ("baz".to_string(), "baz".to_string()),
            ("foo".to_string(), "first".to_string()),
        ]
    );
    // Both foo classes were parsed; only the first is registered.
    let loaded = load_sources(&sources, &ClassDefaults::default());
    assert_eq!(loaded.jobs.iter().filter(|j| j.name == "foo").count(), 2);

    // Removing the first definition promotes the second.
    std::fs::remove_file(first.0.join("foo.conf")).expect("remove");
    let jobs = registered(&sources);
    assert!(jobs.contains(&("foo".to_string(), "second".to_string())));
}

#[test]
fn an_invalid_override_leaves_the_conf_alone_and_is_reported() {
    let t = TempDir::new("badov");
    t.write("job.conf", "env A=1\nexec job\n");
    let ov = t.write("job.override", "env B=2\nexec\n");
    let loaded = load_sources(&[ConfSource::dir(&t.0)], &ClassDefaults::default());
    assert_eq!(loaded.jobs.len(), 1);
    let job = &loaded.jobs[0];
    assert_eq!(job.class.env, ["A=1"]);
    assert!(job.override_path.is_none());
    assert_eq!(
        loaded.errors,
        [ConfigError::Parse {
            path: ov.display().to_string(),
            line: 2,
            kind: outset::config::ParseErrorKind::ExpectedToken,
        }]
    );
    assert_eq!(
        loaded.errors[0].to_string(),
        format!("{}:2: Expected token", ov.display())
    );
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let t = TempDir::new("bad");
    t.write("a.conf", "exec a\n");
    t.write("b.conf", "exec b\nbogus stanza\n");
    t.write("c.conf", "kill signal FOO\n");
    t.write("d.conf", "exec d\n");
    let loaded = load_sources(&[ConfSource::dir(&t.0)], &ClassDefaults::default());
    let names: Vec<&str> = loaded.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["a", "d"]);
    let msgs: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            format!("{}:2: Unknown stanza", t.0.join("b.conf").display()),
            format!(
                "{}: Error while loading configuration file: Illegal signal status, expected integer",
                t.0.join("c.conf").display()
            ),
        ]
    );
}

#[test]
fn init_conf_file_source_accepts_only_comments() {
    let t = TempDir::new("initconf");
    let good = t.write("good/init.conf", "# comment only\n\n   # another\n");
    let bad = t.write("bad/init.conf", "# fine\nexec foo\n");
    let loaded = load_sources(&[ConfSource::file(&good)], &ClassDefaults::default());
    assert!(loaded.errors.is_empty() && loaded.jobs.is_empty());
    let loaded = load_sources(
        &[
            ConfSource::file(&bad),
            ConfSource::file(t.0.join("absent.conf")),
        ],
        &ClassDefaults::default(),
    );
    assert!(loaded.jobs.is_empty());
    let msgs: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs, [format!("{}:2: Unknown stanza", bad.display())]);
}
