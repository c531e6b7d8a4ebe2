//! upstart-event-bridge: forward the system init's events into a session
//! init as `:sys:NAME`.

use clap::Parser;
use outset::bridge::{event::EventBridge, options, run};

#[derive(Parser)]
#[command(
    name = "upstart-event-bridge",
    version,
    about = "Bridge system init events into a session init"
)]
struct Cli {
    #[command(flatten)]
    common: options::Common,
    /// The system init's address.
    #[arg(long, value_name = "ADDRESS", default_value = options::SYSTEM_ADDRESS)]
    system_address: String,
}

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse();
    // Its init is always the session's.
    cli.common.user = true;
    run::main(
        &cli.common,
        EventBridge {
            system: cli.system_address,
        },
    )
}
