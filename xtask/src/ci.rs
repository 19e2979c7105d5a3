//! `cargo xtask ci`: the checks a pull request must pass, in the order that fails fastest.

use std::process::Command;

use anyhow::{Context as _, bail};

#[derive(clap::Args)]
pub struct Ci {
    /// Skip `cargo fmt --check` and clippy (tests only).
    #[arg(long)]
    tests_only: bool,
}

impl Ci {
    pub fn run(self) -> anyhow::Result<()> {
        if !self.tests_only {
            step("format", &["fmt", "--all", "--", "--check"])?;
            step("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
        }
        step("tests", &["nextest", "run", "--workspace", "--no-fail-fast"])
    }
}

fn step(name: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("==> {name}: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO")).args(args).status().with_context(|| format!("run cargo {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
