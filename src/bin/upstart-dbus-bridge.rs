//! upstart-dbus-bridge: D-Bus signals on a message bus become `dbus`
//! events.

use clap::Parser;
use outset::bridge::dbus::{DbusBridge, Which};
use outset::bridge::{options::Common, run};

#[derive(Parser)]
#[command(
    name = "upstart-dbus-bridge",
    version,
    about = "Bridge D-Bus signals into init events"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// Listen on the D-Bus system bus (the default without --user).
    #[arg(long, conflicts_with = "session")]
    system: bool,
    /// Listen on the D-Bus session bus (the default with --user).
    #[arg(long)]
    session: bool,
    /// Set BUS=NAME in every event.
    #[arg(long, value_name = "NAME")]
    bus_name: Option<String>,
    /// Emit an event for every signal, whether a job asks for it or not.
    #[arg(long)]
    always: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let which = if cli.system {
        Which::System
    } else if cli.session || cli.common.user {
        Which::Session
    } else {
        Which::System
    };
    run::main(
        &cli.common,
        DbusBridge::new(which, cli.bus_name, cli.always),
    )
}
