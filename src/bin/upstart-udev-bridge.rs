//! upstart-udev-bridge: turn uevents into `SUBSYSTEM-device-ACTION` events.

use clap::Parser;
use outset::bridge::{options::Common, run, udev::UdevBridge};

#[derive(Parser)]
#[command(
    name = "upstart-udev-bridge",
    version,
    about = "Bridge udev events into init"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    /// Keep bytes that are not printable in the events' values.
    #[arg(long)]
    no_strip: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::main(&cli.common, UdevBridge::new(cli.no_strip))
}
