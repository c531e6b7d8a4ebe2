//! upstart-local-bridge: lines `NAME=VALUE` on a local socket become
//! events.

use clap::Parser;
use outset::bridge::{local::LocalBridge, options::Common, run};

#[derive(Parser)]
#[command(
    name = "upstart-local-bridge",
    version,
    about = "Bridge local socket input into init events"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// The socket to listen on (`@NAME` for the abstract namespace).
    #[arg(long, value_name = "PATH")]
    path: String,
    /// The name of the event each line raises.
    #[arg(long, value_name = "EVENT")]
    event: String,
    /// Accept clients of any user (default: only the bridge's own).
    #[arg(long)]
    any_user: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::main(
        &cli.common,
        LocalBridge::new(cli.path, cli.event, cli.any_user),
    )
}
