//! `cargo xtask`: the project's automation, one module per subcommand. CI and the GitHub workflows
//! call these instead of carrying shell of their own.

mod ci;
mod tags;

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
    /// The image tags of this build, from the GitHub Actions context or the local checkout.
    Tags(tags::Tags),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(cmd) => cmd.run(),
        Command::Tags(cmd) => cmd.run(),
    }
}
