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
}

impl Ci {
    pub fn run(self) -> anyhow::Result<()> {
        if !self.tests_only {
            step("format", &["fmt", "--all", "--", "--check"], &[])?;
            step("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
        }
        prepare_sdk_tests()?;
        let mut env = Vec::new();
        let mut args = vec!["nextest", "run", "--no-fail-fast"];
        match &self.package {
            Some(p) => args.extend(["--package", p]),
            None => args.push("--workspace"),
        }
        if let Some(f) = &self.filter {
            args.extend(["-E", f]);
        }
        if !self.no_cross {
            eprintln!("==> cross-build: cargo xtask build --profile smoke (both arches, for the image smoke tests)");
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
                env.push((var, b.path));
            }
            args.extend(["--run-ignored", "all"]);
        }
        step("tests", &args, &env)
    }
}

/// The official SDK's flows (`tests/sdk`, run by `crates/openim/tests/it/sdk.rs`) need Debian's
/// Chromium and the flows' node modules; installs whichever is missing (the modules again when
/// `package-lock.json` changed).
fn prepare_sdk_tests() -> anyhow::Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        eprintln!("==> installing Chromium (Debian package chromium) for the official SDK's browser tests");
        run_quiet("apt-get", &["install", "-y", "-qq", "chromium"], None)
            .context("apt-get install chromium (needs root and Debian's package index)")?;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk");
    let dir = dir.as_path();
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed) < modified(&dir.join("package-lock.json")) {
        eprintln!("==> installing the official SDK and playwright-core (npm ci in tests/sdk)");
        run_quiet("npm", &["ci", "--ignore-scripts", "--no-audit", "--no-fund"], Some(dir))
            .context("npm ci in tests/sdk")?;
    }
    eprintln!("==> official SDK: {}", npm_version(dir, "@openim/wasm-client-sdk").unwrap_or_else(|| "?".into()));
    Ok(())
}

/// The installed version of an npm package in `dir`.
fn npm_version(dir: &std::path::Path, package: &str) -> Option<String> {
    let manifest = std::fs::read_to_string(dir.join("node_modules").join(package).join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    Some(format!("{package} {}", v["version"].as_str()?))
}

/// Runs a command, showing its output only when it fails.
fn run_quiet(program: &str, args: &[&str], dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut cmd = Command::new(program);
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().with_context(|| format!("run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn step(name: &str, args: &[&str], env: &[(&str, std::path::PathBuf)]) -> anyhow::Result<()> {
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
