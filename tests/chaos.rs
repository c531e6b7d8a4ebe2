//! PID 1 under load and faults: orphan storms, kill storms, event floods
//! and hostile control traffic. Each test drives the real binaries and
//! checks that init keeps serving, loses nothing and leaks nothing.

mod common;

use common::namespace::Namespace;
use common::procs;
use common::wire::{self, closed_by_peer, header, hung_up};
use outset::control::client::Client;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A session init and its address, killed when dropped.
type Session = common::Started;

impl Session {
    fn start(tag: &str, jobs: &[(&str, &str)]) -> Session {
        common::start_session(tag, jobs, &[])
    }

    /// The daemon is alive and answers a status query correctly.
    fn assert_serving(&self, what: &str) {
        assert!(
            procs::alive(self.init_pid()),
            "init died ({what}); log:\n{}",
            self.log()
        );
        let (code, out, err) = self.ctl(&["status", "svc"]);
        assert_eq!(
            (code, out.as_str()),
            (0, "svc stop/waiting\n"),
            "status while {what}: {err}\nlog:\n{}",
            self.log()
        );
    }

    fn rss_kib(&self) -> u64 {
        procs::status_field(self.init_pid(), "VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.init_pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A raw connection to the control socket.
    fn raw(&self) -> UnixStream {
        wire::raw(&self.address)
    }

    /// A raw connection past the D-Bus handshake (SASL EXTERNAL), ready
    /// for hand-made messages.
    fn raw_authenticated(&self) -> UnixStream {
        wire::raw_authenticated(&self.address)
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(self.init_pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "init did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

const SVC: (&str, &str) = ("svc", "console none\nexec sleep 1000\n");

#[test]
fn a_thousand_orphans_exiting_at_once_leave_no_zombie() {
    // 1000 subshells block opening a FIFO, the job ends (they become PID
    // 1's orphans), then the test opens the FIFO once: they all exit in
    // the same instant and their SIGCHLDs merge.
    let pid1 = Namespace::serving(
        "orphans",
        &[(
            "burst",
            "start on startup\ntask\nconsole none\nscript\n  mkfifo @DIR@/gate\n  i=0\n  while [ $i -lt 1000 ]; do\n    (read x < @DIR@/gate) &\n    i=$((i+1))\n  done\n  echo forked > @DIR@/burst.out\nend script\n",
        )],
    );
    pid1.wait_for("the orphans", 120, || {
        pid1.ctl_ok(&["status", "burst"]) == "burst stop/waiting\n"
            && pid1.dir.0.join("burst.out").exists()
    });
    let init = pid1.init;
    pid1.wait_for("1000 orphans of PID 1", 120, || {
        procs::children(init)
            .into_iter()
            .filter(|p| procs::comm(*p) == "sh")
            .count()
            == 1000
    });
    // Open and close the writing end: every reader sees end of file. A
    // subshell counted above may not have opened the FIFO yet; it would
    // then wait for a writer for ever, so the gate is opened and closed
    // again until all are gone (non-blocking: no reader left is no error).
    let gate = pid1.dir.0.join("gate");
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&gate)
            .expect("open the gate"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while pid1.processes().len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        use std::os::unix::fs::OpenOptionsExt;
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&gate),
        );
    }
    let zombies = pid1.zombies();
    assert!(
        zombies.is_empty(),
        "{} zombies left: {:?}",
        zombies.len(),
        &zombies[..zombies.len().min(20)]
    );
    assert_eq!(pid1.processes(), vec![init], "only PID 1 is left");
    assert!(pid1.alive());
    assert_eq!(pid1.ctl_ok(&["status", "burst"]), "burst stop/waiting\n");
    assert!(pid1.stop().success());
}

/// The job's main process as (host pid, namespace pid), from /proc.
fn sleeper(init: i32) -> Vec<i32> {
    procs::children(init)
        .into_iter()
        .filter(|p| procs::comm(*p) == "sleep")
        .collect()
}

fn kill9(pid: i32) {
    // SAFETY: kill(2).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

#[test]
fn ten_thousand_kills_of_a_respawning_job_keep_init_consistent() {
    let pid1 = Namespace::serving(
        "killstorm",
        &[(
            "victim",
            "start on startup\nrespawn\nrespawn limit unlimited\nconsole none\nexec sleep 100000\n",
        )],
    );
    let init = pid1.init;
    pid1.wait_for("the first run", 60, || sleeper(init).len() == 1);
    pid1.ctl_ok(&["status", "victim"]);
    let fds_before = pid1.fd_count();

    const KILLS: usize = 10_000;
    let mut last = 0;
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    while kills < KILLS {
        assert!(
            Instant::now() < deadline,
            "only {kills} kills; log tail:\n{}",
            tail(&pid1.log())
        );
        if let Some(&p) = sleeper(init).iter().find(|p| **p != last) {
            kill9(p);
            last = p;
            kills += 1;
        }
    }

    // It respawned once per kill and is running again, exactly once.
    pid1.wait_for("the last respawn", 120, || {
        pid1.log()
            .matches("victim main process ended, respawning")
            .count()
            == KILLS
            && sleeper(init).iter().any(|p| *p != last)
    });
    assert!(pid1.alive());
    let live = sleeper(init);
    assert_eq!(live.len(), 1, "one main process: {live:?}");
    let ns_pid = procs::ns_pid(live[0]).expect("namespace pid");
    // initctl agrees with /proc.
    assert_eq!(
        pid1.ctl_ok(&["list"]),
        format!("victim start/running, process {ns_pid}\n")
    );
    assert!(!pid1.log().contains("respawning too fast"));
    // No descriptor was leaked along the way (control connections close
    // asynchronously, so allow them to go).
    pid1.wait_for("PID 1's descriptors to come back", 60, || {
        pid1.fd_count() <= fds_before
    });
    assert!(pid1.stop().success());
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn killing_a_job_faster_than_its_respawn_limit_stops_it() {
    let pid1 = Namespace::serving(
        "respawnlimit",
        &[
            (
                "victim",
                "start on startup\nrespawn\nrespawn limit 3 100000\nconsole none\nexec sleep 100000\n",
            ),
            (
                "after",
                "start on stopped victim\ntask\nconsole none\nexec /bin/sh -c 'echo \"$RESULT $PROCESS\" > @DIR@/after.out'\n",
            ),
        ],
    );
    let init = pid1.init;
    let mut last = 0;
    for round in 0..4 {
        pid1.wait_for(&format!("run {round}"), 60, || {
            sleeper(init).iter().any(|p| *p != last)
        });
        let p = sleeper(init)[0];
        kill9(p);
        last = p;
    }
    let out = pid1.dir.0.join("after.out");
    pid1.wait_for("the job to stop", 60, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(
        std::fs::read_to_string(&out).expect("after.out"),
        "failed respawn\n"
    );
    let log = pid1.log();
    assert_eq!(
        log.matches("victim main process ended, respawning").count(),
        3,
        "{log}"
    );
    assert!(
        log.contains("init: victim respawning too fast, stopped"),
        "{log}"
    );
    assert_eq!(pid1.ctl_ok(&["status", "victim"]), "victim stop/waiting\n");
    assert!(sleeper(init).is_empty(), "nothing left running");
    assert!(pid1.stop().success());
}

/// Emit `count` events on one connection without waiting for them.
fn flood(address: &str, client: usize, count: usize) {
    let c = Client::connect(address).expect("connect");
    let payload = "x".repeat(64);
    for i in 0..count {
        let env = vec![
            format!("CLIENT={client}"),
            format!("N={i}"),
            format!("P={payload}"),
        ];
        c.manager::<_, ()>("EmitEvent", &("flood", env, false))
            .expect("EmitEvent");
    }
}

/// 8 clients emit `total` events together while a ninth keeps asking for
/// a job's status with initctl; every status answer must be right.
fn flood_round(s: &Session, total: usize) {
    const CLIENTS: usize = 8;
    let floods: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let address = s.address.clone();
            std::thread::spawn(move || flood(&address, n, total / CLIENTS))
        })
        .collect();
    let mut answered = 0;
    while !floods.iter().all(|t| t.is_finished()) || answered == 0 {
        s.assert_serving("flooded with events");
        answered += 1;
    }
    for t in floods {
        t.join().expect("flood client");
    }
    // Events are handled in order: once this one has finished, so has
    // every event of the flood.
    let (code, _, err) = s.ctl(&["emit", "flood-done"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_event_flood_from_eight_clients_neither_stalls_nor_grows_init() {
    let s = Session::start(
        "flood",
        &[
            SVC,
            // Something the flood really drives: a short task per 10,000th event.
            (
                "counter",
                "start on flood N=*0000\ninstance $CLIENT-$N\ntask\nconsole none\nexec /bin/true\n",
            ),
        ],
    );
    // Warm-up: the allocator, the queue and the connections reach their
    // working size.
    flood_round(&s, 20_000);
    let rss_before = s.rss_kib();
    flood_round(&s, 100_000);
    let rss_after = s.rss_kib();
    // 100,000 events of ~100 bytes of environment each: keeping even one
    // copy of each (a leak) would add ~10 MB, while a steady state costs
    // nothing beyond what the warm-up already reached; 8 MiB leaves room
    // for allocator slack and thread-stack pages touched for the first time.
    assert!(
        rss_after <= rss_before + 8 * 1024,
        "VmRSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    s.assert_serving("after the flood");
    s.stop();
}

#[test]
fn garbage_on_the_control_socket_is_refused_and_init_keeps_serving() {
    let s = Session::start("garbage", &[SVC]);
    let mut noise = 0x1234_5678_u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect()
    };
    // Garbage instead of a handshake.
    for _ in 0..20 {
        let mut c = s.raw();
        let _ = c.write_all(&bytes(65536));
        assert!(closed_by_peer(&mut c, 30), "garbage handshake not refused");
    }
    // Garbage after a correct handshake.
    for _ in 0..20 {
        let mut c = s.raw_authenticated();
        let _ = c.write_all(&bytes(65536));
        assert!(closed_by_peer(&mut c, 30), "garbage message not refused");
    }
    s.assert_serving("after garbage");
    s.stop();
}

#[test]
fn huge_message_claims_cost_init_nothing() {
    let s = Session::start("huge", &[SVC]);
    s.assert_serving("before");
    // Claims beyond D-Bus's 128 MiB limit are refused outright.
    for (body, fields) in [(0x7fff_ffff, 16), (16, 0x7fff_ffff), (128 << 20, 128 << 20)] {
        let mut c = s.raw_authenticated();
        c.write_all(&header(body, fields)).expect("header");
        assert!(
            closed_by_peer(&mut c, 30),
            "claim {body}/{fields} not refused"
        );
    }
    // Claims under that limit but over init's own are tests/control_limits.rs's.
    s.assert_serving("after huge messages");
    s.stop();
}

#[test]
fn a_client_that_never_reads_is_dropped_and_nobody_waits_for_it() {
    let s = Session::start("noread", &[SVC]);
    let mut deaf = s.raw_authenticated();
    // Broadcast far more signals than its socket can hold.
    let c = Client::connect(&s.address).expect("connect");
    let big = "y".repeat(4096);
    for i in 0..2000 {
        c.manager::<_, ()>(
            "EmitEvent",
            &("loud", vec![format!("N={i}"), format!("B={big}")], false),
        )
        .expect("EmitEvent while a client does not read");
    }
    let (code, _, err) = s.ctl(&["emit", "loud-done"]);
    assert_eq!(code, 0, "{err}");
    s.assert_serving("while a client does not read");
    // Reading would make it a client that reads: watch for the hang-up.
    assert!(
        hung_up(&deaf, 60),
        "the client that does not read was never dropped"
    );
    assert!(closed_by_peer(&mut deaf, 30));
    s.assert_serving("after dropping it");
    s.stop();
}

#[test]
fn many_half_open_connections_do_not_lock_out_initctl() {
    let s = Session::start("halfopen", &[SVC]);
    s.assert_serving("before");
    let fds_before = s.fd_count();
    let mut held = Vec::new();
    for i in 0..300 {
        let mut c = s.raw();
        match i % 3 {
            // Nothing at all.
            0 => {}
            // Half a handshake.
            1 => {
                let _ = c.write_all(b"\0AUTH EXTERNAL 30");
            }
            // Only the credentials byte.
            _ => {
                let _ = c.write_all(b"\0");
            }
        }
        held.push(c);
    }
    for round in 0..5 {
        s.assert_serving(&format!("with 300 half-open connections (round {round})"));
    }
    drop(held);
    common::wait_until(
        "the descriptors to be released",
        60,
        || s.fd_count() <= fds_before,
        || format!("descriptors: {} before, {} now", fds_before, s.fd_count()),
    );
    s.assert_serving("after");
    s.stop();
}

#[test]
fn initctl_still_answers_while_a_job_respawns_in_a_loop() {
    // A sanity check of the kill-storm harness on a session init: a job
    // dying at once forever, with `respawn limit unlimited`.
    let s = Session::start(
        "spin",
        &[
            SVC,
            (
                "spin",
                "respawn\nrespawn limit unlimited\nconsole none\nexec /bin/false\n",
            ),
        ],
    );
    let (code, _, err) = s.ctl(&["start", "--no-wait", "spin"]);
    assert_eq!(code, 0, "{err}");
    common::wait_until(
        "200 respawns",
        60,
        || {
            s.log()
                .matches("spin main process ended, respawning")
                .count()
                >= 200
        },
        || s.log(),
    );
    s.assert_serving("a job respawns in a loop");
    let (code, _, err) = s.ctl(&["stop", "spin"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = s.ctl(&["status", "spin"]);
    assert_eq!(out, "spin stop/waiting\n");
    s.stop();
}

/// The host pid of the namespace process whose own pid is `ns`.
fn host_pid(pid1: &Namespace, ns: i32) -> Option<i32> {
    pid1.processes()
        .into_iter()
        .find(|p| procs::ns_pid(*p) == Some(ns))
}

#[test]
fn a_followed_process_reaped_elsewhere_never_gets_its_pid_reused_signal() {
    // `expect fork` follows the shell's child C, but the shell (not init)
    // is C's parent and reaps it. Init must notice C is gone, and must
    // never signal the unrelated process that gets C's pid next.
    let pid1 = Namespace::serving(
        "pidreuse",
        &[(
            "forking",
            "start on startup\nexpect fork\nconsole none\nexec /bin/sh -c 'sleep 100000 & echo $! > @DIR@/child.pid; wait; exec sleep 100001'\n",
        )],
    );
    let file = pid1.dir.0.join("child.pid");
    pid1.wait_for("the followed child", 60, || {
        pid1.ctl_ok(&["status", "forking"])
            .contains("start/running")
            && std::fs::read_to_string(&file).is_ok_and(|s| s.ends_with('\n'))
    });
    let c_ns: i32 = std::fs::read_to_string(&file)
        .expect("child.pid")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(common::pid_of(&pid1.ctl_ok(&["status", "forking"])), c_ns);
    let c_host = host_pid(&pid1, c_ns).expect("C on the host");
    kill9(c_host);
    // The shell reaps C and carries on as `sleep 100001`.
    pid1.wait_for("C to be reaped by its shell", 60, || {
        !std::path::Path::new(&format!("/proc/{c_host}")).exists()
            && pid1.processes().iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("100001"))
            })
    });
    // Give C's pid to a new process leading its own group.
    let o = pid1
        .inside(
            30,
            &[
                "sh",
                "-c",
                &format!(
                    "echo {} > /proc/sys/kernel/ns_last_pid; setsid sleep 100002 >/dev/null 2>&1 & echo $!",
                    c_ns - 1
                ),
            ],
        )
        .output()
        .expect("reuse the pid");
    let victim_ns: i32 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(victim_ns, c_ns, "the pid was not reused; cannot test");
    let victim = host_pid(&pid1, c_ns).expect("the new holder of the pid");
    pid1.wait_for("the new process to run sleep", 30, || {
        procs::comm(victim) == "sleep"
    });

    // Stop the job at once: whether init has already noticed C's end or
    // not, the process now holding C's pid must not be signalled.
    let _ = pid1.ctl(&["stop", "--no-wait", "forking"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        procs::alive(victim),
        "the process that reused the pid was signalled; log:\n{}",
        pid1.log()
    );
    // Init notices C's end (reported with an unknown status, taken as 0:
    // the job stops normally).
    pid1.wait_for("the job to stop", 60, || {
        pid1.ctl_ok(&["status", "forking"]) == "forking stop/waiting\n"
    });
    assert!(procs::alive(victim));
    assert!(!pid1.log().contains(&format!(
        "Sending TERM signal to forking main process ({c_ns})"
    )));
    assert!(pid1.stop().success());
}

#[test]
fn stubborn_and_daemonising_jobs_as_pid1() {
    let pid1 = Namespace::serving_with(
        "stubborn",
        &[
            // Ignores its stop signal: killed when the kill timeout ends.
            (
                "stubborn",
                "console none\nkill timeout 1\nexec /bin/sh -c 'trap \"\" TERM; while :; do sleep 1; done'\n",
            ),
            // Forks twice and lets the middle process exit: followed.
            (
                "tracked",
                "console none\nexpect daemon\nexec /bin/sh -c '(setsid sleep 100003 & echo $! > @DIR@/tracked.pid) & exit 0'\n",
            ),
            // The same without `expect`: the job ends with its first
            // process and the daemon is left to run untracked.
            (
                "untracked",
                "console none\nexec /bin/sh -c '(setsid sleep 100004 & echo $! > @DIR@/untracked.pid) & exit 0'\n",
            ),
        ],
        &[],
        &["--verbose"],
    );
    let out = pid1.ctl_ok(&["start", "stubborn"]);
    let stubborn = host_pid(&pid1, common::pid_of(&out)).expect("stubborn pid");
    // Running means exec'd, not that the shell has set its trap yet.
    pid1.wait_for("the job to ignore TERM", 30, || {
        procs::ignores(stubborn, libc::SIGTERM)
    });
    assert_eq!(
        pid1.ctl_ok(&["stop", "stubborn"]),
        "stubborn stop/waiting\n"
    );
    let log = pid1.log();
    assert!(
        log.contains("Sending TERM signal to stubborn main process"),
        "{log}"
    );
    assert!(
        log.contains("Sending KILL signal to stubborn main process"),
        "{log}"
    );
    assert!(
        log.contains("stubborn main process") && log.contains("killed by KILL signal"),
        "{log}"
    );
    assert!(procs::state(stubborn).is_none(), "killed and reaped");

    let out = pid1.ctl_ok(&["start", "tracked"]);
    let read = |name: &str| -> i32 {
        let f = pid1.dir.0.join(name);
        pid1.wait_for(name, 30, || {
            std::fs::read_to_string(&f).is_ok_and(|s| s.ends_with('\n'))
        });
        std::fs::read_to_string(&f)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let tracked = read("tracked.pid");
    assert_eq!(
        common::pid_of(&out),
        tracked,
        "status shows the daemon: {out}"
    );
    let tracked_host = host_pid(&pid1, tracked).expect("daemon");
    assert_eq!(pid1.ctl_ok(&["stop", "tracked"]), "tracked stop/waiting\n");
    pid1.wait_for("the followed daemon to be stopped", 30, || {
        procs::state(tracked_host).is_none()
    });

    let out = pid1.ctl_ok(&["start", "untracked"]);
    let untracked = read("untracked.pid");
    let untracked_host = host_pid(&pid1, untracked).expect("daemon");
    // Upstart's behaviour: the job is over when its main process exits.
    assert!(
        out.ends_with("stop/waiting\n") || out.contains("start/running"),
        "{out}"
    );
    pid1.wait_for("the job to end", 30, || {
        pid1.ctl_ok(&["status", "untracked"]) == "untracked stop/waiting\n"
    });
    assert!(
        procs::alive(untracked_host),
        "the untracked daemon keeps running, reparented to PID 1"
    );
    assert!(procs::children(pid1.init).contains(&untracked_host));
    assert!(pid1.stop().success());
}

#[test]
fn running_out_of_descriptors_fails_jobs_not_init() {
    const JOBS: usize = 16;
    let jobs: Vec<(String, String)> = (1..=JOBS)
        .map(|n| {
            (
                format!("fd{n}"),
                "start on go\nexec sleep 100000\n".to_string(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    // Let PID 1 settle with no client connected, then cap its descriptors
    // (soft and hard, so it cannot raise them) at what it holds plus room
    // for the emitting connection (its socket, a few files
    // while it authenticates) and fewer than JOBS `console log` jobs (a
    // pty each while running; a status pipe and the pty's other end while
    // spawning).
    let pid1 = Namespace::serving("nofile", &refs);
    let init = pid1.init;
    pid1.ctl_ok(&["status", "fd1"]);
    pid1.wait_for("no client connected", 30, || pid1.client_count() == 0);
    // Descriptors of a connection just gone may still be closing: only
    // fewer can follow, which leaves more room, not less.
    let cap = (pid1.fd_count() + 10) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: cap,
        rlim_max: cap,
    };
    // SAFETY: prlimit on another process with a valid rlimit.
    let set = unsafe { libc::prlimit(init, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    let o = pid1.ctl(&["emit", "--no-wait", "go"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every job ends up running (with `console none` once no pty could
    // be had) or failed with Upstart's message.
    pid1.wait_for("every job to run or fail", 60, || {
        sleeper(init).len() + pid1.log().matches("init: Failed to spawn fd").count() == JOBS
    });
    // Which descriptor runs out first (a pty, a status pipe, a pidfd)
    // depends on timing; either way a job fails with the C library's text.
    let log = pid1.log();
    assert!(log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("init: Failed to spawn fd")
            || log.contains("init: Failed to create pty - disabling logging for job"),
        "{log}"
    );
    assert!(pid1.alive(), "init died; log:\n{}", pid1.log());
    // Free the descriptors the running jobs hold (their ptys and pidfds).
    for p in sleeper(init) {
        kill9(p);
    }
    pid1.wait_for("the jobs to end", 60, || sleeper(init).is_empty());
    let list = pid1.ctl_ok(&["list"]);
    assert_eq!(
        list.lines().filter(|l| l.ends_with("stop/waiting")).count(),
        JOBS,
        "{list}"
    );
    assert!(pid1.stop().success());
}

#[test]
fn fork_failing_with_eagain_fails_jobs_not_init() {
    // A pids cgroup (v1's or v2's, whichever the host has) caps init and
    // everything it starts.
    let cg = common::pids_cgroup::PidsCgroup::new();
    let jobs: Vec<(String, String)> = (1..=3)
        .map(|n| {
            (
                format!("fork{n}"),
                "start on go\nconsole none\nexec sleep 100000\n".to_string(),
            )
        })
        .collect();
    let mut refs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    refs.push(SVC);
    let s = Session::start("eagain", &refs);
    let client = Client::connect(&s.address).expect("connect");
    client
        .manager::<_, zbus::OwnedObjectPath>("GetJobByName", &("fork1",))
        .expect("GetJobByName");
    cg.enter(s.init_pid());
    cg.fill();
    // The connection made before needs no new thread or process.
    client
        .manager::<_, ()>("EmitEvent", &("go", Vec::<String>::new(), false))
        .expect("EmitEvent");
    common::wait_until(
        "three failed spawns",
        60,
        || s.log().matches("Failed to spawn fork").count() == 3,
        || s.log(),
    );
    let log = s.log();
    for n in 1..=3 {
        assert!(
            log.contains(&format!(
                "Failed to spawn fork{n} main process: Resource temporarily unavailable"
            )),
            "{log}"
        );
    }
    // Still serving on the existing connection.
    client
        .manager::<_, zbus::OwnedObjectPath>("GetJobByName", &("fork2",))
        .expect("GetJobByName under exhaustion");
    std::fs::write(cg.dir.join("pids.max"), "max").expect("lift the cap");
    for n in 1..=3 {
        let (code, out, _) = s.ctl(&["status", &format!("fork{n}")]);
        assert_eq!((code, out), (0, format!("fork{n} stop/waiting\n")));
    }
    s.assert_serving("after fork failures");
    s.stop();
}
