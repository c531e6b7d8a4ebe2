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
use outset::pid1::{wall, StopAction};

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
  -c          cancel a running shutdown
  -k          only send warnings, don't shutdown
      --exit-code N  the exit status (0-255) of a container's or run's init
  -g TIME     the time, as an option
  -a, -n, -f, -F, -y, -i LEVEL, -t SECS
              accepted for compatibility and ignored
      --help     display this help and exit
      --version  output version information and exit

TIME is `now', `+MINUTES' (or just MINUTES) or `HH:MM' on the 24-hour
clock. Logged-in users are sent a warning, with MESSAGE if given; within
five minutes of the time, /etc/nologin keeps new users out. A shutdown
waiting for its time is cancelled by Control-C or by `shutdown -c'.
Without -r or -h the system goes to runlevel 1 (maintenance).
";

const REBOOT_HELP: &str = "\
Usage: PROG [OPTION]... [COMMAND]
Reboot, halt or power off the system.

  -n, --no-sync    don't sync before reboot or halt
  -f, --force      force reboot or halt, don't call shutdown(8)
  -p, --poweroff   switch off the power when called as halt
  -w, --wtmp-only  don't actually reboot or halt, just write wtmp record
      --exit-code N  the exit status (0-255) of a container's init
  -d, -i, -h       accepted for compatibility and ignored
      --help       display this help and exit
      --version    output version information and exit

Without -f (and outside runlevels 0 and 6) this is `shutdown -r now',
`shutdown -H now' or `shutdown -P now'. `reboot -f COMMAND' passes COMMAND
to the firmware or boot loader.
";

fn need_root(prog: &Prog) -> Option<ExitCode> {
    (!nix::unistd::geteuid().is_root()).then(|| prog.fail("Need to be root"))
}

/// Why a runlevel switch did not happen.
enum SwitchError {
    /// Nothing listens on init's control socket.
    NoInit,
    /// Init answered with an error.
    Refused(String),
}

/// `--exit-code N` or `--exit-code=N` at `arg` (the value possibly
/// being the next argument): `None` when `arg` is another option, else
/// the code or the usage error.
fn exit_code_option(
    arg: &str,
    next: &mut dyn Iterator<Item = &String>,
) -> Option<Result<u8, String>> {
    let value = match arg.strip_prefix("--exit-code") {
        Some("") => next.next().cloned(),
        Some(rest) => Some(rest.strip_prefix('=')?.to_string()),
        None => return None,
    };
    Some(match value {
        None => Err("missing argument: --exit-code".to_string()),
        Some(v) => v
            .parse::<u8>()
            .map_err(|_| format!("invalid exit code: {v}")),
    })
}

/// Switch to `level` (with `INIT_HALT` for runlevel 0 when given, and
/// `EXIT_CODE` for a container's init) through init's `runlevel` event.
fn switch_runlevel(
    level: char,
    init_halt: Option<&str>,
    exit_code: Option<u8>,
) -> Result<(), SwitchError> {
    let mut extra: Vec<String> = init_halt
        .map(|h| format!("INIT_HALT={h}"))
        .into_iter()
        .collect();
    extra.extend(exit_code.map(|c| format!("{}={c}", outset::lifecycle::system_stop::EXIT_CODE)));
    let client = Client::connect(INIT_ADDRESS).map_err(|_| SwitchError::NoInit)?;
    let env = outset::pid1::runlevel::switch_env(level, extra);
    client
        .manager::<_, ()>("EmitEvent", &("runlevel", env, false))
        .map_err(|e| SwitchError::Refused(e.message))
}

/// reboot, halt, poweroff (Upstart's reboot(8)): without `-f`, what
/// `shutdown -r|-h -H|-h -P now` does; with `-f`, or once the system is in
/// runlevel 0 or 6, the shutdown record in wtmp and then `reboot(2)`.
fn reboot_family(prog: &Prog, mut action: StopAction, args: &[String]) -> ExitCode {
    let (mut forced, mut no_sync, mut wtmp_only) = (false, false, false);
    let mut exit_code = None;
    let mut words = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match exit_code_option(arg, &mut args) {
            Some(Ok(code)) => {
                exit_code = Some(code);
                continue;
            }
            Some(Err(e)) => return prog.usage(&e),
            None => {}
        }
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
            a if a.starts_with("--") => return prog.usage(&format!("invalid option: {a}")),
            a if a.starts_with('-') && a.len() > 1 => a.chars().skip(1).collect(),
            a => {
                words.push(a.to_string());
                continue;
            }
        };
        for c in shorts {
            match c {
                'f' => forced = true,
                'p' if action == StopAction::Halt => action = StopAction::PowerOff,
                'p' => {}
                'n' => no_sync = true,
                'w' => wtmp_only = true,
                'd' | 'i' | 'h' => {}
                c => return prog.usage(&format!("invalid option: -{c}")),
            }
        }
    }
    if let Some(code) = need_root(prog) {
        return code;
    }
    // Called by the scripts of runlevel 0 or 6: the system is already
    // going down, so do it now.
    if matches!(outset::pid1::runlevel::current_level(), '0' | '6') {
        forced = true;
    }
    if !forced && !wtmp_only {
        let option = match action {
            StopAction::Reboot => "-r",
            StopAction::Halt => "-H",
            StopAction::PowerOff => "-P",
        };
        let mut args = vec![option.to_string(), "now".to_string()];
        args.extend(exit_code.map(|c| format!("--exit-code={c}")));
        return shutdown(prog, &args);
    }
    outset::utmp::record_shutdown();
    if wtmp_only {
        return ExitCode::SUCCESS;
    }
    let e = match (action, words.first()) {
        (StopAction::Reboot, Some(command)) => {
            outset::pid1::reboot::reboot_with_command(command, no_sync)
        }
        _ => outset::pid1::reboot::reboot(action, no_sync),
    };
    prog.fail(&format!("Unable to {}: {e}", action.name()))
}

/// What `shutdown` was asked to do.
struct Request {
    level: char,
    init_halt: Option<&'static str>,
    cancel: bool,
    warn_only: bool,
    when: Option<String>,
    words: Vec<String>,
    /// `--exit-code`: the exit status of a container's init.
    exit_code: Option<u8>,
}

/// Upstart's options: `-r -h -H -P -c -k`, `-g TIME`, and the old
/// `-a -n -f -F -y`, `-i LEVEL`, `-t SECS`, accepted and ignored.
fn parse(prog: &Prog, args: &[String]) -> Result<Request, ExitCode> {
    let mut req = Request {
        level: '1',
        init_halt: None,
        cancel: false,
        warn_only: false,
        when: None,
        words: Vec::new(),
        exit_code: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match exit_code_option(arg, &mut args) {
            Some(Ok(code)) => {
                req.exit_code = Some(code);
                continue;
            }
            Some(Err(e)) => return Err(prog.usage(&e)),
            None => {}
        }
        if arg == "--" {
            req.words.extend(args.by_ref().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            req.words.push(arg.clone());
            continue;
        }
        match arg.as_str() {
            "--help" => {
                print!("{SHUTDOWN_HELP}");
                return Err(ExitCode::SUCCESS);
            }
            "--version" => {
                println!("shutdown (outset) {}", env!("CARGO_PKG_VERSION"));
                return Err(ExitCode::SUCCESS);
            }
            a if a.starts_with("--") => return Err(prog.usage(&format!("invalid option: {a}"))),
            _ => {}
        }
        let mut shorts = arg.chars().skip(1);
        while let Some(c) = shorts.next() {
            match c {
                'r' => (req.level, req.init_halt) = ('6', None),
                'h' => (req.level, req.init_halt) = ('0', None),
                'H' => (req.level, req.init_halt) = ('0', Some("HALT")),
                'P' => (req.level, req.init_halt) = ('0', Some("POWEROFF")),
                'k' => req.warn_only = true,
                'c' => req.cancel = true,
                'a' | 'n' | 'f' | 'F' | 'y' => {}
                'g' | 'i' | 't' => {
                    // The value is the rest of this word, or the next one.
                    let rest: String = shorts.by_ref().collect();
                    let value = if rest.is_empty() {
                        args.next().cloned()
                    } else {
                        Some(rest)
                    };
                    let Some(value) = value else {
                        return Err(prog.usage(&format!("missing argument: -{c}")));
                    };
                    if c == 'g' {
                        req.when = Some(value);
                    }
                }
                c => return Err(prog.usage(&format!("invalid option: -{c}"))),
            }
        }
    }
    Ok(req)
}

/// The administrator's message as Upstart sends it: each word followed by
/// a space, the whole ended by CR LF (empty without words).
fn message_of(words: &[String]) -> String {
    if words.is_empty() {
        return String::new();
    }
    let mut m: String = words.iter().map(|w| format!("{w} ")).collect();
    m.push_str("\r\n");
    m
}

/// Broadcast `text` to every logged-in user, under the usual banner.
fn broadcast(text: &str) {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| {
            if uid.is_root() {
                "root".to_string()
            } else {
                format!("uid {uid}")
            }
        });
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tty = nix::unistd::ttyname(std::io::stdin())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let secs = outset::pid1::when::local_time_of_day();
    let banner = wall::banner(&user, &host, &tty, secs / 3600 % 24, secs / 60 % 60);
    wall::wall(&banner, text);
}

/// Where `/etc/nologin` is (`OUTSET_NOLOGIN_FILE` moves it, for tests).
fn nologin_file() -> std::path::PathBuf {
    std::env::var_os("OUTSET_NOLOGIN_FILE")
        .map(Into::into)
        .unwrap_or_else(|| "/etc/nologin".into())
}

/// shutdown [-r|-h|-H|-P] [-k] [-c] TIME [MESSAGE].
fn shutdown(prog: &Prog, args: &[String]) -> ExitCode {
    let req = match parse(prog, args) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut words = req.words.iter();
    let when = match (req.cancel, req.when.clone()) {
        (true, _) => None,
        (false, Some(w)) => Some(w),
        (false, None) => match words.next() {
            Some(w) => Some(w.clone()),
            None => return prog.usage("time expected"),
        },
    };
    let delay = match when {
        None => 0,
        Some(w) => match outset::pid1::when::delay(&w, outset::pid1::when::local_time_of_day()) {
            Ok(d) => d,
            Err(e) => return prog.usage(&e.to_string()),
        },
    };
    let rest: Vec<String> = words.cloned().collect();
    let message = message_of(&rest);
    if let Some(code) = need_root(prog) {
        return code;
    }

    let waiting = std::fs::read_to_string(pid_file())
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|&p| p > 1);
    match (waiting, req.cancel) {
        (Some(pid), true) => {
            // SAFETY: kill(2) on the pid the waiting shutdown recorded.
            if unsafe { libc::kill(pid, libc::SIGINT) } < 0 {
                return prog.fail("Shutdown is not running");
            }
            if !message.is_empty() {
                broadcast(&message);
            }
            return ExitCode::SUCCESS;
        }
        // SAFETY: signal 0 only checks that the process exists.
        (Some(pid), false) if unsafe { libc::kill(pid, 0) } == 0 => {
            return prog.fail("Another shutdown is already running");
        }
        (None, true) => return prog.fail("Cannot find pid of running shutdown"),
        _ => {}
    }

    let purpose = wall::purpose(req.level, req.init_halt);
    let mut minutes = delay.div_ceil(60);
    broadcast(&wall::warning(purpose, minutes, &message));
    if req.warn_only {
        return ExitCode::SUCCESS;
    }
    let _ = std::env::set_current_dir("/");
    if minutes == 0 {
        return shutdown_now(prog, req.level, req.init_halt, req.exit_code);
    }
    let file = pid_file();
    if let Err(e) = std::fs::write(&file, format!("{}\n", std::process::id())) {
        eprintln!(
            "{}: {}: Unable to write pid file: {e}",
            prog.0,
            file.display()
        );
    }
    // Within five minutes of the end nobody new may log in.
    let forbid_logins = |minutes: u64, text: &str| {
        if minutes <= 5 {
            let _ = std::fs::write(nologin_file(), text);
        }
    };
    forbid_logins(minutes, &wall::warning(purpose, minutes, &message));
    // Until the time comes: a warning at the usual intervals, each minute.
    let first = Duration::from_secs(delay - (minutes - 1) * 60);
    let mut wait = first;
    loop {
        if !wait_or_cancel(wait) {
            eprintln!("{}: Shutdown cancelled", prog.0);
            let _ = std::fs::remove_file(nologin_file());
            let _ = std::fs::remove_file(&file);
            return ExitCode::SUCCESS;
        }
        minutes -= 1;
        wait = Duration::from_secs(60);
        let text = wall::warning(purpose, minutes, &message);
        forbid_logins(minutes, &text);
        let warn = match minutes {
            0..10 => true,
            10..60 => minutes % 15 == 0,
            60..180 => minutes % 30 == 0,
            _ => minutes % 60 == 0,
        };
        if warn {
            broadcast(&text);
        }
        if minutes == 0 {
            return shutdown_now(prog, req.level, req.init_halt, req.exit_code);
        }
    }
}

/// Ask init to change to `level`; if no init answers, try sysvinit's
/// FIFO, as a machine just moved to outset may still run sysvinit.
fn shutdown_now(
    prog: &Prog,
    level: char,
    init_halt: Option<&str>,
    exit_code: Option<u8>,
) -> ExitCode {
    let code = match switch_runlevel(level, init_halt, exit_code) {
        Ok(()) => ExitCode::SUCCESS,
        Err(SwitchError::NoInit) if outset::pid1::sysvinit::change_runlevel(level) => {
            ExitCode::SUCCESS
        }
        Err(SwitchError::NoInit) => prog.fail("Unable to shutdown system"),
        Err(SwitchError::Refused(msg)) => prog.fail(&msg),
    };
    let _ = std::fs::remove_file(nologin_file());
    let _ = std::fs::remove_file(pid_file());
    code
}

/// Where a waiting shutdown leaves its pid for `shutdown -c`.
fn pid_file() -> std::path::PathBuf {
    std::env::var_os("OUTSET_SHUTDOWN_PID_FILE")
        .map(Into::into)
        .unwrap_or_else(|| "/run/shutdown.pid".into())
}

/// Wait `left` unless SIGINT, SIGQUIT or SIGTERM (from `shutdown -c` or
/// the terminal) cancels first. Returns whether the time came.
fn wait_or_cancel(left: Duration) -> bool {
    use nix::sys::signal::{SigSet, Signal};
    let mut mask = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM] {
        mask.add(sig);
    }
    if mask.thread_block().is_err() {
        std::thread::sleep(left);
        return true;
    }
    let deadline = std::time::Instant::now() + left;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as _,
        };
        // SAFETY: sigtimedwait with a set and timeout we own; the
        // signals are blocked, so they wait here instead of killing us.
        let sig = unsafe { libc::sigtimedwait(mask.as_ref(), std::ptr::null_mut(), &ts) };
        if [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM].contains(&sig) {
            return false;
        }
    }
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
