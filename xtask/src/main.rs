//! `cargo xtask`: the project's automation, one module per subcommand. CI and the GitHub workflows
//! call these instead of carrying shell of their own.

mod artifact;
mod build;
mod bundle;
mod changelog;
mod ci;
mod compose;
mod dist;
mod github;
mod hooks;
mod image;
mod oci;
mod push;
mod registry;
mod release;
mod sbom;
mod setup;
mod sign;
#[cfg(test)]
mod smoke;
mod tags;
#[cfg(test)]
mod testing;
mod verify;
#[cfg(test)]
mod workflows;

/// The variables naming the cross-built binaries of the image smoke tests (`smoke.rs`).
mod smoke_vars {
    pub const AMD64: &str = "OPENIM_SMOKE_AMD64";
    pub const ARM64: &str = "OPENIM_SMOKE_ARM64";
}

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "OpenIM project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Formatting, lints and the test suite, as CI runs them (installing and starting what the
    /// tests need first).
    Ci(ci::Ci),
    /// Install what the tests and the release pipeline need (all, or the groups named).
    Setup(setup::Setup),
    /// Check a published image: both platforms, and the signatures of its index and manifests.
    Verify(verify::Verify),
    /// The static `openim` binary for linux/amd64 and linux/arm64.
    Build(build::Build),
    /// The image tags of this build, from the GitHub Actions context or the local checkout.
    Tags(tags::Tags),
    /// OCI images of every service for each architecture, in an OCI layout under target/.
    Image(image::Image),
    /// Decide from the git context what to publish, build, and publish it (or --dry-run).
    Release(release::Release),
    /// Binary release archives (cargo-dist) for a target, checked; or the release's plan.
    Dist(dist::Dist),
    /// Push the images to the registries of release.toml under the build's tags.
    Push(push::Push),
    /// Run a compose file of compose/ with the images of target/oci, until all are healthy.
    ComposeUp(compose::ComposeUp),
    /// The offline bundle: every image of target/oci (an OCI archive), compose files, config,
    /// and a script that loads the images without registry access.
    Bundle(bundle::Bundle),
    /// Run a git hook's checks (what .githooks/<name> calls).
    Hook(hooks::Hook),
    /// Install or uninstall the git hooks of .githooks/ for this clone.
    Hooks(hooks::Hooks),
    /// Check the commit messages of a range and a pull request title (CI).
    Commits(hooks::Commits),
    /// Write CHANGELOG.md from the Conventional Commits between release tags.
    Changelog(changelog::Changelog),
    /// Open (or comment on) the issue that tracks failed release runs.
    ReportFailure(github::ReportFailure),
    /// Open a pull request that brings a regenerated CHANGELOG.md to main (after a release).
    ChangelogPr(github::ChangelogPr),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(cmd) => cmd.run(),
        Command::Setup(cmd) => cmd.run(),
        Command::Verify(cmd) => cmd.run(),
        Command::Build(cmd) => cmd.run(),
        Command::Tags(cmd) => cmd.run(),
        Command::Image(cmd) => cmd.run(),
        Command::Push(cmd) => cmd.run(),
        Command::Dist(cmd) => cmd.run(),
        Command::Release(cmd) => cmd.run(),
        Command::ComposeUp(cmd) => cmd.run(),
        Command::Bundle(cmd) => cmd.run(),
        Command::Hook(cmd) => cmd.run(),
        Command::Hooks(cmd) => cmd.run(),
        Command::Commits(cmd) => cmd.run(),
        Command::Changelog(cmd) => cmd.run(),
        Command::ReportFailure(cmd) => cmd.run(),
        Command::ChangelogPr(cmd) => cmd.run(),
    }
}
