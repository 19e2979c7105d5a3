//! `cargo xtask ci`: the checks a pull request must pass, in the order that fails fastest.
//!
//! Before the test suite it cross-builds the `openim` binary for both architectures (profile
//! `smoke`: unoptimised, so it builds fast) and hands the binaries to the image smoke tests
//! (`smoke.rs`: reproducible images, the amd64 image in podman, the arm64 binary under qemu),
//! which a plain `cargo nextest run` leaves out as ignored.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::build::{Build, Builder};
use crate::image::ImageArch;
use crate::setup::{self, Group, Progress};

#[derive(clap::Args)]
pub struct Ci {
    /// Skip `cargo fmt --check` and clippy (tests only).
    #[arg(long)]
    tests_only: bool,
    /// Skip the cross-builds and the image smoke tests that need them.
    #[arg(long)]
    no_cross: bool,
    /// Test only this package (default: the workspace).
    #[arg(long, short)]
    package: Option<String>,
    /// Only the tests this nextest filter expression selects (e.g. `test(/^mysql::/)`).
    #[arg(long, short = 'E')]
    filter: Option<String>,
    /// Install and start nothing (the machine has what the selected tests need).
    #[arg(long)]
    no_setup: bool,
}

impl Ci {
    pub fn run(self) -> anyhow::Result<()> {
        if !self.tests_only {
            step("format", &["fmt", "--all", "--", "--check"], &[])?;
            step("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
        }
        let progress = Progress::new();
        let groups: &[Group] = if self.no_setup { &[Group::Nextest] } else { &Group::ALL };
        let prepared = setup::prepare(groups, &progress)?;
        let mut env = prepared.env.clone();
        let mut args = vec!["nextest", "run", "--no-fail-fast"];
        match &self.package {
            Some(p) => args.extend(["--package", p]),
            None => args.push("--workspace"),
        }
        if let Some(f) = &self.filter {
            args.extend(["-E", f]);
        }
        if !self.no_cross {
            progress.line("cross-build: cargo xtask build --profile smoke (both arches, for the image smoke tests)");
            let built = Build {
                arch: ImageArch::ALL.to_vec(),
                builder: Builder::Zigbuild,
                profile: "smoke".into(),
                timings: false,
            }
            .build()?;
            for b in built {
                eprintln!("    {b}");
                let var = match b.arch {
                    ImageArch::Amd64 => crate::smoke_vars::AMD64,
                    ImageArch::Arm64 => crate::smoke_vars::ARM64,
                };
                env.push((var.into(), b.path.into()));
            }
            args.extend(["--run-ignored", "all"]);
        }
        progress.line("tests");
        step("tests", &args, &env)
    }
}

fn step(name: &str, args: &[&str], env: &[(String, std::ffi::OsString)]) -> anyhow::Result<()> {
    eprintln!("==> {name}: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("run cargo {name}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}
