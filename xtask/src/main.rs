//! `cargo xtask`: the project's automation, one module per subcommand. CI and the GitHub workflows
//! call these instead of carrying shell of their own.

mod ci;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "OpenIM project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Formatting, lints and the test suite, as CI runs them.
    Ci(ci::Ci),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(cmd) => cmd.run(),
    }
}
