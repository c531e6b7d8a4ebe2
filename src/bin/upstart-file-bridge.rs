//! upstart-file-bridge: turn file changes into `file` events.

use clap::Parser;
use outset::bridge::{file::FileBridge, options::Common, run};

#[derive(Parser)]
#[command(
    name = "upstart-file-bridge",
    version,
    about = "Bridge file events into init"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    run::main(&cli.common, FileBridge::new(cli.common.user))
}
