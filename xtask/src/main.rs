//! `cargo xtask`: the project's automation, one module per subcommand. CI and the GitHub workflows
//! call these instead of carrying shell of their own.

mod ci;
mod image;
mod oci;
mod push;
mod registry;
mod release;
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
    /// OCI images of every service for each architecture, in an OCI layout under target/.
    Image(image::Image),
    /// Push the images to the registries of release.toml under the build's tags.
    Push(push::Push),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(cmd) => cmd.run(),
        Command::Tags(cmd) => cmd.run(),
        Command::Image(cmd) => cmd.run(),
        Command::Push(cmd) => cmd.run(),
    }
}
