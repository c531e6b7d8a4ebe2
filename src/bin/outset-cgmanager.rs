//! outset-cgmanager: the cgroup manager that jobs with `cgroup` stanzas
//! talk to (outset-cgmanager(8)).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use outset::cgroup::manager::{self, Options, DEFAULT_SOCKET, IFACE, PATH};

#[derive(Parser, Debug)]
#[command(
    name = "outset-cgmanager",
    version,
    about = "cgroup manager speaking the cgmanager D-Bus API"
)]
struct Args {
    /// Listen on (or, with --ping, connect to) this socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Log every call.
    #[arg(long)]
    debug: bool,
    /// Do not serve: call Ping on a running manager and exit 0 if it answers.
    #[arg(long)]
    ping: bool,
    /// Milliseconds between looks for empty remove-on-empty cgroups.
    #[arg(long, value_name = "MS", default_value_t = 200, hide = true)]
    sweep_interval: u64,
}

/// Connect and call Ping(0), giving up after `PING_TIMEOUT` (a manager
/// that accepts but never answers must not hang its caller).
fn ping(socket: &PathBuf) -> Result<(), String> {
    let stream = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = zbus::block_on(async move {
            let conn = zbus::connection::Builder::unix_stream(stream)
                .p2p()
                .build()
                .await?;
            conn.call_method(None::<&str>, PATH, Some(IFACE), "Ping", &(0i32,))
                .await?;
            Ok::<(), zbus::Error>(())
        });
        let _ = tx.send(result);
    });
    match rx.recv_timeout(PING_TIMEOUT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{}: {e}", socket.display())),
        Err(_) => Err(format!("{}: no answer", socket.display())),
    }
}

const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = Args::parse();
    if args.ping {
        return match ping(&args.socket) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("outset-cgmanager: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let log = manager::logger(args.debug);
    // Up to 1024 clients, each a descriptor: raise the soft limit to the
    // hard one, as init does.
    if let Err(e) = outset::spawn::nofile::raise() {
        eprintln!("outset-cgmanager: unable to raise the descriptor limit: {e}");
    }
    let opts = Options {
        socket: args.socket,
        sweep_interval: Duration::from_millis(args.sweep_interval.max(10)),
    };
    match manager::run(&opts, log.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            slog::crit!(log, "{e}");
            ExitCode::FAILURE
        }
    }
}
