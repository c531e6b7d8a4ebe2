//! upstart-socket-bridge: turn connections into `socket` events (socket activation).

use clap::Parser;
use outset::bridge::{options::Common, run, socket::SocketBridge};

#[derive(Parser)]
#[command(
    name = "upstart-socket-bridge",
    version,
    about = "Bridge socket events into init"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::main(&cli.common, SocketBridge::default())
}
