//! Upstart's own stateful re-exec payloads (1.6 to 1.13) load into
//! outset's engine, and what they describe is there afterwards
//! (extensions.md §5).

use outset::config::{ProcessType, SourceKind};
use outset::event::Progress;
use outset::job::{EventWaiter, Goal, JobKey, State};
use outset::reexec::{import, ImportError};
use serde_json::Value;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

const FD_PLACEHOLDER: &str = "@JOB_PROCESS_FD@";

fn state_dir() -> PathBuf {
    let corpus = std::env::var_os("OUTSET_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    corpus.join("upstart-state")
}

/// Every payload of the corpus, by file name. A missing corpus is a
/// failure, not a skip.
fn payloads() -> Vec<(String, String)> {
    let dir = state_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {}: {e}", dir.display()));
    let mut out: Vec<(String, String)> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, text)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no payloads in {}", dir.display());
    out
}

/// A pipe whose read end stands in for an in-flight spawn's status pipe.
fn status_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

fn fill_in(text: &str, fd: &OwnedFd) -> String {
    text.replace(FD_PLACEHOLDER, &fd.as_raw_fd().to_string())
}

/// What the JSON says, counted without the importer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    sessions: usize,
    conf_sources: usize,
    conf_files: usize,
    job_classes: usize,
    jobs: usize,
    events: usize,
    blocked: usize,
    // Default session only (what is restored).
    restored_sources: usize,
    restored_classes: usize,
    restored_jobs: usize,
    restored_events: usize,
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn session(v: &Value) -> i64 {
    v.get("session").and_then(Value::as_i64).unwrap_or(0)
}

fn count(v: &Value) -> Counts {
    let mut c = Counts {
        sessions: list(v, "sessions").len(),
        conf_sources: list(v, "conf_sources").len(),
        job_classes: list(v, "job_classes").len(),
        events: list(v, "events").len(),
        ..Counts::default()
    };
    for s in list(v, "conf_sources") {
        c.conf_files += list(s, "conf_files").len();
        let job_source = s.get("type").and_then(Value::as_str) != Some("CONF_DIR");
        if session(s) == 0 && job_source {
            c.restored_sources += 1;
        }
    }
    for e in list(v, "events") {
        c.blocked += list(e, "blocking").len();
        if session(e) == 0 {
            c.restored_events += 1;
        }
    }
    for class in list(v, "job_classes") {
        let jobs = list(class, "jobs");
        c.jobs += jobs.len();
        if session(class) == 0 {
            c.restored_classes += 1;
            c.restored_jobs += jobs.len();
        }
        for j in jobs {
            c.blocked += list(j, "blocking").len();
        }
    }
    c
}

#[test]
fn every_payload_loads() {
    let (read, _write) = status_pipe();
    let mut seen_template = false;
    for (name, raw) in payloads() {
        seen_template |= raw.contains(FD_PLACEHOLDER);
        let text = fill_in(&raw, &read);
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = count(&json);
        let imp = import(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = &imp.summary;
        println!("{name}: {s}");

        let got = Counts {
            sessions: s.sessions,
            conf_sources: s.conf_sources,
            conf_files: s.conf_files,
            job_classes: s.job_classes,
            jobs: s.jobs,
            events: s.events,
            blocked: s.blocked,
            restored_sources: imp.sources.len(),
            restored_classes: imp.engine.slots.len(),
            restored_jobs: imp
                .engine
                .slots
                .values()
                .map(|slot| slot.instances.len())
                .sum(),
            restored_events: imp.engine.events.len(),
        };
        assert_eq!(got, want, "{name}");
        assert_eq!(s.skipped_sources, want.conf_sources - want.restored_sources);
        assert_eq!(s.skipped_classes, want.job_classes - want.restored_classes);
        assert_eq!(s.skipped_jobs, want.jobs - want.restored_jobs);
        assert_eq!(s.skipped_events, want.events - want.restored_events);
        assert_eq!(s.blocked, s.blocked_restored + s.blocked_dropped, "{name}");
        assert_eq!(
            s.job_env_present,
            json.get("job_environment").is_some(),
            "{name}"
        );

        // With sources listed, every class is linked to its file.
        if want.restored_sources > 0 {
            for (job, slot) in &imp.engine.slots {
                let tail = format!("/{job}.conf");
                assert!(slot.class.path.ends_with(&tail), "{name}: {job}");
            }
        }

        // Every reference points at something that exists.
        let ids: Vec<u64> = imp.engine.events.iter().map(|e| e.id).collect();
        for (job, slot) in &imp.engine.slots {
            assert_eq!(&slot.class.name, &**job);
            let trees = slot
                .start_on
                .iter()
                .chain(slot.instances.values().filter_map(|i| i.stop_on.as_ref()));
            for tree in trees {
                for id in tree.held() {
                    assert!(ids.contains(&id), "{name}: {job} holds unknown event {id}");
                }
            }
            for inst in slot.instances.values() {
                if let Some(id) = inst.blocker {
                    assert!(ids.contains(&id), "{name}: {job} blocked by unknown {id}");
                }
            }
        }
        for ev in &imp.engine.events {
            for w in &ev.blocking {
                if let EventWaiter::Job(key) = w {
                    assert!(imp.engine.instance(key).is_some(), "{name}: {key}");
                }
            }
        }
        for (fd, key, process) in &imp.spawns {
            assert_eq!(*fd, read.as_raw_fd(), "{name}");
            let pid = imp.engine.instance(key).map_or(0, |i| i.pid(*process));
            assert!(imp.engine.spawn_pending(pid), "{name}: {key}");
        }
    }
    assert!(seen_template, "no payload carries {FD_PLACEHOLDER}");
}

fn load_1_13(read: &OwnedFd) -> outset::reexec::Imported {
    let (_, raw) = payloads()
        .into_iter()
        .find(|(n, _)| n == "upstart-1.13.json")
        .expect("upstart-1.13.json in the corpus");
    import(&fill_in(&raw, read)).expect("upstart-1.13.json")
}

#[test]
fn upstart_1_13_details() {
    let (read, _write) = status_pipe();
    let imp = load_1_13(&read);

    assert_eq!(
        imp.cgroup_manager.as_deref(),
        Some("unix:path=/sys/fs/cgroup/cgmanager/sock")
    );
    assert_eq!(
        imp.engine.options.cgroup_manager.as_deref(),
        Some("unix:path=/sys/fs/cgroup/cgmanager/sock")
    );
    assert_eq!(imp.bus_address, None);
    assert_eq!(imp.log_priority, None);
    assert_eq!(
        imp.job_env,
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin",
            "TERM=linux"
        ]
    );

    // `//etc/init` is normalised.
    let sources: Vec<(String, SourceKind)> = imp
        .sources
        .iter()
        .map(|s| (s.path.display().to_string(), s.kind))
        .collect();
    assert_eq!(
        sources,
        [
            ("/etc/init.conf".to_string(), SourceKind::File),
            ("/etc/init".to_string(), SourceKind::Dir)
        ]
    );

    // A class with a partly satisfied start condition.
    let cups = &imp.engine.slots["cups"];
    assert_eq!(cups.class.path, "/etc/init/cups.conf");
    let start_on = cups.class.start_on.as_ref().expect("cups start on");
    assert_eq!(
        start_on.to_string(),
        "(filesystem and (started dbus or runlevel [2345]))"
    );
    assert_eq!(
        cups.class
            .stop_on
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("runlevel [016]")
    );
    let runlevel = imp
        .engine
        .events
        .iter()
        .find(|e| e.name == "runlevel")
        .expect("runlevel event");
    assert_eq!(runlevel.progress, Progress::Handling);
    assert_eq!(runlevel.blockers, 2);
    let tree = cups.start_on.as_ref().expect("cups tree");
    assert_eq!(tree.held().collect::<Vec<_>>(), [runlevel.id]);
    assert!(!tree.value(), "filesystem has not happened yet");
    let cups_main = &cups.instances[""];
    assert_eq!(
        (cups_main.goal, cups_main.state),
        (Goal::Start, State::Running)
    );
    assert_eq!(cups_main.pid(ProcessType::Main), 764);

    // The script of a class survives as a script.
    let fallback = &imp.engine.slots["udev-fallback-graphics"].class;
    let main = fallback.process(ProcessType::Main).expect("main");
    assert!(main.script);
    assert!(main.command.contains("modprobe -q -b vesafb"));

    // cgroup stanzas.
    let cg = &imp.engine.slots["cgroup-job1"].class.rare.cgroups;
    let controllers: Vec<&str> = cg.iter().map(|c| c.controller.as_str()).collect();
    assert_eq!(controllers, ["cpuset", "memory", "blkio"]);
    assert_eq!(cg[2].names[0].settings[0].key, "throttle.write_bps_device");
    assert_eq!(cg[2].names[0].settings[0].value, "8:16 1048576");

    // The spawn caught between fork and exec.
    let key = JobKey::new("upstart-force-slow-child", "");
    let slow = imp.engine.instance(&key).expect("slow child");
    assert_eq!((slow.goal, slow.state), (Goal::Start, State::Spawned));
    assert_eq!(slow.pid(ProcessType::Main), 2403);
    assert_eq!(
        imp.spawns,
        [(read.as_raw_fd(), key.clone(), ProcessType::Main)]
    );
    assert!(imp.engine.spawn_pending(2403));
    assert!(imp.scripts.is_empty());
    let log = imp
        .logs
        .iter()
        .find(|l| l.job == key)
        .expect("slow child's log");
    assert_eq!(log.path, "/var/log/upstart/upstart-force-slow-child.log");
    assert_eq!((log.pty_fd, log.file_fd), (18, None));
}

#[test]
fn the_template_needs_its_descriptor() {
    let (_, raw) = payloads()
        .into_iter()
        .find(|(n, _)| n == "upstart-1.13.json")
        .expect("upstart-1.13.json in the corpus");
    assert!(matches!(import(&raw), Err(ImportError::Json(_))));
}

#[test]
fn string_trees_of_1_8_are_parsed() {
    let (read, _write) = status_pipe();
    let (_, raw) = payloads()
        .into_iter()
        .find(|(n, _)| n == "upstart-1.8.json")
        .expect("upstart-1.8.json in the corpus");
    let imp = import(&fill_in(&raw, &read)).expect("import");
    let avahi = &imp.engine.slots["avahi-daemon"];
    assert_eq!(
        avahi
            .class
            .start_on
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("(filesystem and started dbus)")
    );
    let inst = &avahi.instances[""];
    let stop = inst.stop_on.as_ref().expect("instance stop on");
    assert_eq!(stop.nodes.len(), 1);
    assert_eq!(stop.held().count(), 0);
    // The string form loses which leaves held events, while the events
    // still count those holds (kept verbatim): 1 + 3 holds nobody has.
    assert_eq!(imp.summary.unheld_blockers, 4);
}

#[test]
fn chroot_sessions_are_counted_not_restored() {
    let (read, _write) = status_pipe();
    let (_, raw) = payloads()
        .into_iter()
        .find(|(n, _)| n == "upstart-session-infinity.json")
        .expect("upstart-session-infinity.json in the corpus");
    let imp = import(&fill_in(&raw, &read)).expect("import");
    let s = &imp.summary;
    assert_eq!(s.sessions, 2);
    assert!(s.skipped_classes > 0);
    assert!(s.skipped_sources > 0);
    assert!(imp
        .sources
        .iter()
        .all(|src| !src.path.starts_with("/var/lib/schroot")));
}
