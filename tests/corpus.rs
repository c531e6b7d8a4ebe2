//! Every real job file in the shared corpus: the valid ones load, the ones
//! Upstart 1.13.2 rejects fail at the same line with the same message.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use outset::config::{load_sources, ClassDefaults, ConfSource, ConfigError};

/// `file -> (line, message)` from the table in the corpus README.
fn expected_rejections(readme: &str) -> BTreeMap<String, (usize, String)> {
    let mut out = BTreeMap::new();
    for row in readme
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("| "))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // | file | line | message | cause |
        if let [_, file, line, message, _cause, _] = cells.as_slice() {
            if let Ok(line) = line.parse::<usize>() {
                out.insert(file.to_string(), (line, message.to_string()));
            }
        }
    }
    out
}

fn broken_list(jobs: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(jobs.join("BROKEN"))
        .expect("BROKEN list")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn conf_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read corpus")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    v.sort();
    v
}

#[test]
fn init_checkconf_accepts_valid_and_locates_broken() {
    let corpus = common::corpus_dir();
    let jobs = corpus.join("jobs");
    let broken = broken_list(&jobs);
    let readme = std::fs::read_to_string(corpus.join("README.md")).expect("README");
    let expected = expected_rejections(&readme);
    assert_eq!(
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        broken,
        "README table and BROKEN list disagree"
    );

    let files = conf_files(&jobs);
    assert!(files.len() >= 392, "only {} .conf files", files.len());
    let out = Command::new(env!("CARGO_BIN_EXE_init-checkconf"))
        .current_dir(&jobs)
        .args(&files)
        .output()
        .expect("run init-checkconf");
    assert_eq!(
        out.status.code(),
        Some(1),
        "broken files must make it exit 1"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let ok: BTreeSet<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("File ")?.strip_suffix(": syntax ok"))
        .map(str::to_string)
        .collect();
    // Errors go to stderr, each an `ERROR: File F: ...:` line and details.
    let mut invalid: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bad_scripts = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in stderr.lines() {
        if let Some(f) = line
            .strip_prefix("ERROR: File ")
            .and_then(|l| l.strip_suffix(": syntax invalid:"))
        {
            current = Some(f.to_string());
            invalid.insert(f.to_string(), Vec::new());
        } else if let Some((f, _)) = line
            .strip_prefix("ERROR: File ")
            .and_then(|l| l.split_once(": shell syntax invalid in "))
        {
            current = None;
            bad_scripts.insert(f.to_string());
        } else if let Some(f) = &current {
            invalid.entry(f.clone()).or_default().push(line.to_string());
        }
    }

    // Two real files carry shell syntax errors in their scripts; Upstart
    // loads them, but its init-checkconf rejects them.
    let want: BTreeSet<String> = [
        "ak2consulting__statsd-c-buildpackage__debian__upstart.conf",
        "openwebos__luna-service2__files__launch__ls-hubd_watchdog.conf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(bad_scripts, want);

    for f in &files {
        if broken.contains(f) {
            let (line, msg) = &expected[f];
            let errors = invalid.get(f).unwrap_or_else(|| panic!("{f} was accepted"));
            assert_eq!(errors, &[format!("{f}:{line}: {msg}")], "{f}");
        } else if !want.contains(f) {
            assert!(ok.contains(f), "{f} rejected: {:?}", invalid.get(f));
        }
    }
    assert_eq!(ok.len() + invalid.len() + bad_scripts.len(), files.len());
}

#[test]
fn loading_the_corpus_as_a_directory() {
    let corpus = common::corpus_dir();
    let jobs = corpus.join("jobs");
    let broken = broken_list(&jobs);
    let files = conf_files(&jobs);
    let loaded = load_sources(&[ConfSource::dir(&jobs)], &ClassDefaults::default());

    assert_eq!(loaded.jobs.len(), files.len() - broken.len());
    assert!(loaded.source_errors.is_empty());
    let failed: BTreeSet<String> = loaded
        .errors
        .iter()
        .map(|e| {
            Path::new(e.path())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(failed, broken);

    // Overrides apply only where their .conf is present.
    let with_override: BTreeSet<&str> = loaded
        .jobs
        .iter()
        .filter(|j| j.override_path.is_some())
        .map(|j| j.name.as_str())
        .collect();
    let pairs = [
        "apparmor",
        "lightdm",
        "lxc-android-config",
        "rc-sysinit",
        "ssh",
    ]
    .iter()
    .map(|n| format!("ArtOS-Dev__Linux_Ubuntu_Touch__etc__init__{n}"))
    .chain(std::iter::once(
        "ArtOS-Dev__Linux_Ubuntu_Touch__usr__share__upstart__sessions__indicator-sound".to_string(),
    ))
    .collect::<Vec<_>>();
    let pairs: BTreeSet<&str> = pairs.iter().map(String::as_str).collect();
    assert_eq!(with_override, pairs);
    // An override without its .conf creates no job.
    let names: BTreeSet<&str> = loaded.jobs.iter().map(|j| j.name.as_str()).collect();
    for entry in std::fs::read_dir(&jobs)
        .expect("read corpus")
        .filter_map(Result::ok)
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file.strip_suffix(".override") {
            assert_eq!(
                names.contains(stem),
                jobs.join(format!("{stem}.conf")).exists(),
                "{file}"
            );
        }
    }

    let ssh = loaded
        .jobs
        .iter()
        .find(|j| j.name == "ArtOS-Dev__Linux_Ubuntu_Touch__etc__init__ssh")
        .expect("ssh job");
    assert_eq!(
        ssh.class
            .start_on
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("startup")
    );
    let main = ssh.class.processes.values().next().expect("main process");
    assert_eq!(
        main.command,
        "/usr/sbin/sshd -D -o PasswordAuthentication=yes"
    );

    let lightdm = loaded
        .jobs
        .iter()
        .find(|j| j.name == "ArtOS-Dev__Linux_Ubuntu_Touch__etc__init__lightdm")
        .expect("lightdm job");
    assert_eq!(lightdm.class.rare.oom_score_adj, 10);
    assert!(lightdm
        .class
        .env
        .contains(&"XDG_DATA_DIRS=/custom/xdg/data:/usr/share".to_string()));
    assert_eq!(
        lightdm
            .class
            .start_on
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("(((filesystem and started dbus) and android) or runlevel PREVLEVEL=S)")
    );
}

#[test]
fn templates_load_as_upstart_did() {
    let dir = common::corpus_dir().join("templates");
    let loaded = load_sources(&[ConfSource::dir(&dir)], &ClassDefaults::default());
    assert_eq!(loaded.jobs.len(), 7);
    let mut errors: Vec<String> = loaded
        .errors
        .iter()
        .map(|e| match e {
            ConfigError::Parse { path, line, kind } => format!(
                "{}:{line}: {kind}",
                Path::new(path)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            ),
            other => other.to_string(),
        })
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            "dgreid__platform2__shill__init__shill.conf.in.conf:38: Unknown stanza",
            "mafintosh__dmon__templates__upstart.conf:6: Unknown stanza",
        ]
    );
}
