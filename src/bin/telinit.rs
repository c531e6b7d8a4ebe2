//! telinit: change runlevel (emit `runlevel`), reload (`q`) or re-exec (`u`).

use clap::Parser;
use std::process::ExitCode;

use outset::control::client::Client;

#[derive(Parser)]
#[command(name = "telinit", version, about = "Change runlevel")]
struct Args {
    /// Extra KEY=VALUE for the runlevel event (repeatable).
    #[arg(short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Accepted for compatibility and ignored.
    #[arg(short = 't', value_name = "SECONDS")]
    timeout: Option<String>,
    runlevel: Option<String>,
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("telinit: {msg}");
    eprintln!("Try `telinit --help' for more information.");
    ExitCode::from(1)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("telinit: {msg}");
    ExitCode::from(1)
}

/// The session init when `UPSTART_SESSION` is set, else the system one.
fn address() -> String {
    std::env::var("UPSTART_SESSION")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unix:abstract=/com/ubuntu/upstart".to_string())
}

fn call(method: &str, body: &(impl serde::Serialize + zbus::Type)) -> ExitCode {
    let client = match Client::connect(&address()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("Unable to connect to Upstart: {}", e.message)),
    };
    match client.manager::<_, ()>(method, body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.message),
    }
}

/// `telinit u`: ask for a stateful re-exec, ignore the (usually cut)
/// reply, then wait until the new image answers on the control socket.
fn reexec() -> ExitCode {
    let client = match Client::connect(&address()) {
        Ok(c) => c,
        Err(e) => return fail(&format!("Unable to connect to Upstart: {}", e.message)),
    };
    let _ = client.manager::<_, ()>("Restart", &());
    drop(client);
    // Bounded, so a failed re-exec does not leave telinit waiting forever.
    for _ in 0..600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let answers = Client::connect(&address()).is_ok_and(|c| {
            c.property(
                outset::control::paths::MANAGER_PATH,
                outset::control::paths::MANAGER_IFACE,
                "version",
            )
            .is_ok()
        });
        if answers {
            return ExitCode::SUCCESS;
        }
    }
    fail("init did not come back after the re-exec")
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let msg = e.to_string();
            return usage_error(
                msg.lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: "),
            );
        }
    };
    let Some(level) = args.runlevel else {
        return usage_error("missing runlevel");
    };
    let mut chars = level.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return usage_error(&format!("illegal runlevel: {level}"));
    };
    if !"0123456SsQqUu".contains(c) {
        return usage_error(&format!("illegal runlevel: {level}"));
    }
    let _ = nix::unistd::setuid(nix::unistd::geteuid());
    if !nix::unistd::getuid().is_root() {
        return fail("Need to be root");
    }
    match c {
        'Q' | 'q' => {
            if std::env::var("UPSTART_SESSION").is_ok_and(|s| !s.is_empty()) {
                return call("ReloadConfiguration", &());
            }
            // SAFETY: kill(2).
            if unsafe { libc::kill(1, libc::SIGHUP) } < 0 {
                return fail(nix::errno::Errno::last().desc());
            }
            ExitCode::SUCCESS
        }
        'U' | 'u' => reexec(),
        _ => {
            let level = c.to_ascii_uppercase();
            // Runlevels 0 and 6 make outset's PID 1 run its system stop.
            let env = outset::pid1::runlevel::switch_env(level, args.env);
            call("EmitEvent", &("runlevel", env, false))
        }
    }
}
