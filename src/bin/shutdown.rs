//! shutdown, and under the names reboot, halt and poweroff: bring the
//! system down through init's built-in stop (extensions.md §4), or with
//! `-f` call `reboot(2)` at once.
//!
//! Without `-f` this does what Upstart's `shutdown` did: switch to runlevel
//! 0 or 6 by emitting `runlevel RUNLEVEL=… PREVLEVEL=… [INIT_HALT=…]` over
//! init's control socket. outset's PID 1 answers runlevels 0 and 6 with its
//! system stop; jobs written for Upstart still see the same event.

use std::process::ExitCode;
use std::time::Duration;

use outset::control::client::Client;
use outset::pid1::StopAction;

/// Init's private control socket.
const INIT_ADDRESS: &str = "unix:abstract=/com/ubuntu/upstart";

struct Prog(String);

impl Prog {
    fn fail(&self, msg: &str) -> ExitCode {
        eprintln!("{}: {msg}", self.0);
        ExitCode::from(1)
    }

    fn usage(&self, msg: &str) -> ExitCode {
        eprintln!("{}: {msg}", self.0);
        eprintln!("Try `{} --help' for more information.", self.0);
        ExitCode::from(1)
    }
}

const SHUTDOWN_HELP: &str = "\
Usage: shutdown [OPTION]... TIME [MESSAGE]
Bring the system down.

  -r          reboot after shutdown
  -h          halt or power off after shutdown
  -H          halt after shutdown (implies -h)
  -P          power off after shutdown (implies -h)
  -k          only print the warning; do not shut down
  -c          cancel a shutdown that is waiting for its time
  -f, -F      accepted for compatibility (fsck hints) and ignored
      --help     display this help and exit
      --version  output version information and exit

TIME is `now', `+MINUTES' or `HH:MM'. Without -r or -h the system goes to
runlevel 1 (maintenance).
";

const REBOOT_HELP: &str = "\
Usage: PROG [OPTION]...
Reboot, halt or power off the system.

  -f, --force     call reboot(2) at once instead of asking init to stop
  -p, --poweroff  power off (halt: like poweroff)
  -n, --no-sync   with -f: do not sync(2) first
  -w, --wtmp-only do nothing (accepted for compatibility)
  -d, --no-wtmp   accepted for compatibility and ignored
  -i, -h          accepted for compatibility and ignored
      --help      display this help and exit
      --version   output version information and exit
";

fn need_root(prog: &Prog) -> Option<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    (unsafe { libc::geteuid() } != 0).then(|| prog.fail("Need to be root"))
}

/// Switch to `level` (with `INIT_HALT` for runlevel 0 when given) through
/// init's `runlevel` event.
fn switch(prog: &Prog, level: char, init_halt: Option<&str>) -> ExitCode {
    if let Some(code) = need_root(prog) {
        return code;
    }
    let extra: Vec<String> = init_halt
        .map(|h| format!("INIT_HALT={h}"))
        .into_iter()
        .collect();
    let client = match Client::connect(INIT_ADDRESS) {
        Ok(c) => c,
        Err(e) => return prog.fail(&format!("Unable to connect to Upstart: {}", e.message)),
    };
    let env = outset::pid1::runlevel::switch_env(level, extra);
    match client.manager::<_, ()>("EmitEvent", &("runlevel", env, false)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => prog.fail(&e.message),
    }
}

/// `reboot -f` and friends.
fn force(prog: &Prog, action: StopAction, no_sync: bool) -> ExitCode {
    if let Some(code) = need_root(prog) {
        return code;
    }
    let e = outset::pid1::reboot::reboot(action, no_sync);
    prog.fail(&format!("Unable to {}: {e}", action.name()))
}

/// reboot, halt, poweroff.
fn reboot_family(prog: &Prog, mut action: StopAction, args: &[String]) -> ExitCode {
    let (mut forced, mut no_sync) = (false, false);
    for arg in args {
        let shorts: Vec<char> = match arg.as_str() {
            "--force" => vec!['f'],
            "--poweroff" => vec!['p'],
            "--no-sync" => vec!['n'],
            "--wtmp-only" => vec!['w'],
            "--no-wtmp" => vec!['d'],
            "--help" => {
                print!("{}", REBOOT_HELP.replace("PROG", &prog.0));
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("{} (outset) {}", prog.0, env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            a if a.starts_with('-') && !a.starts_with("--") && a.len() > 1 => {
                a[1..].chars().collect()
            }
            a => return prog.usage(&format!("invalid argument: {a}")),
        };
        for c in shorts {
            match c {
                'f' => forced = true,
                'p' if action == StopAction::Halt => action = StopAction::PowerOff,
                'p' => {}
                'n' => no_sync = true,
                'w' => return ExitCode::SUCCESS,
                'd' | 'i' | 'h' => {}
                c => return prog.usage(&format!("invalid option: -{c}")),
            }
        }
    }
    if forced {
        return force(prog, action, no_sync);
    }
    switch(prog, action.runlevel(), action.init_halt())
}

/// shutdown [-r|-h|-H|-P] [-k] TIME [MESSAGE].
fn shutdown(prog: &Prog, args: &[String]) -> ExitCode {
    let (mut level, mut init_halt, mut warn_only) = ('1', None, false);
    let mut positional = Vec::new();
    let mut options_done = false;
    for arg in args {
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg.clone());
            continue;
        }
        match arg.as_str() {
            "--" => {
                options_done = true;
                continue;
            }
            "--help" => {
                print!("{SHUTDOWN_HELP}");
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("shutdown (outset) {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            a if a.starts_with("--") => return prog.usage(&format!("invalid option: {a}")),
            _ => {}
        }
        for c in arg[1..].chars() {
            match c {
                'r' => level = '6',
                'h' => level = '0',
                'H' => (level, init_halt) = ('0', Some("HALT")),
                'P' => (level, init_halt) = ('0', Some("POWEROFF")),
                'k' => warn_only = true,
                'f' | 'F' => {}
                'c' => return cancel(prog),
                c => return prog.usage(&format!("invalid option: -{c}")),
            }
        }
    }
    let Some(when) = positional.first() else {
        return prog.usage("time expected");
    };
    let delay = match outset::pid1::when::delay(when, outset::pid1::when::local_time_of_day()) {
        Ok(d) => d,
        Err(e) => return prog.usage(&e.to_string()),
    };
    let message = positional[1..].join(" ");
    let what = match (level, init_halt) {
        ('6', _) => "reboot",
        ('0', Some("HALT")) => "halt",
        ('0', _) => "power off",
        _ => "maintenance mode",
    };
    if warn_only || delay > 0 || !message.is_empty() {
        let mut text = format!("The system is going down for {what}");
        if delay > 0 {
            text.push_str(&format!(" in {} minute(s)", delay.div_ceil(60)));
        } else {
            text.push_str(" NOW");
        }
        if !message.is_empty() {
            text.push_str(&format!(": {message}"));
        }
        eprintln!("{text}");
    }
    if warn_only {
        return ExitCode::SUCCESS;
    }
    if delay > 0 && !wait_or_cancel(prog, delay) {
        eprintln!("Shutdown cancelled");
        return ExitCode::SUCCESS;
    }
    switch(prog, level, init_halt)
}

/// Where a waiting shutdown leaves its pid for `shutdown -c`.
fn pid_file() -> std::path::PathBuf {
    std::env::var_os("OUTSET_SHUTDOWN_PID_FILE")
        .map(Into::into)
        .unwrap_or_else(|| "/run/shutdown.pid".into())
}

/// Wait `delay` seconds unless SIGINT or SIGTERM (from `shutdown -c` or
/// the terminal) cancels first. Returns whether the time came.
fn wait_or_cancel(prog: &Prog, delay: u64) -> bool {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGTERM);
    if mask.thread_block().is_err() {
        std::thread::sleep(Duration::from_secs(delay));
        return true;
    }
    let file = pid_file();
    if let Err(e) = std::fs::write(&file, format!("{}\n", std::process::id())) {
        eprintln!("{}: unable to write {}: {e}", prog.0, file.display());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(delay);
    let came = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break true;
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as _,
        };
        // SAFETY: sigtimedwait with a set and timeout we own; the
        // signals are blocked, so they wait here instead of killing us.
        let sig = unsafe { libc::sigtimedwait(mask.as_ref(), std::ptr::null_mut(), &ts) };
        if sig == libc::SIGINT || sig == libc::SIGTERM {
            break false;
        }
    };
    let _ = std::fs::remove_file(&file);
    came
}

/// `shutdown -c`: interrupt the waiting shutdown named in the pid file.
fn cancel(prog: &Prog) -> ExitCode {
    let file = pid_file();
    let pid = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|&p| p > 1);
    let Some(pid) = pid else {
        return prog.fail("no shutdown is waiting");
    };
    // SAFETY: kill(2) on the pid the waiting shutdown recorded.
    if unsafe { libc::kill(pid, libc::SIGINT) } < 0 {
        return prog.fail(&format!(
            "unable to cancel shutdown {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let name = argv
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()?
                .to_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "shutdown".to_string());
    let args = argv.get(1..).unwrap_or_default();
    let prog = Prog(name.clone());
    match name.as_str() {
        "reboot" => reboot_family(&prog, StopAction::Reboot, args),
        "halt" => reboot_family(&prog, StopAction::Halt, args),
        "poweroff" => reboot_family(&prog, StopAction::PowerOff, args),
        _ => shutdown(&prog, args),
    }
}
