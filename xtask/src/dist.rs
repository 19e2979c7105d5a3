//! `cargo xtask dist`: binary release archives with cargo-dist, checked before anything ships.
//!
//! cargo-dist (`dist`, configured in `dist-workspace.toml`) builds the `openim` binary for a
//! target and packs it with the README, the licence and the `config/` defaults into
//! `openim-<target>.tar.gz`, with `openim-<target>.tar.gz.sha256` beside it. This wraps it so
//! that the workflow and a person on a laptop run the same thing, and checks what it made: the
//! checksum matches the archive, the archive holds the binary, licence, README and
//! configuration, and on the host's own target the unpacked binary answers `--version` with the
//! workspace's version.
//!
//! `--plan` asks dist what a release would contain without building, and checks that every
//! target of `dist-workspace.toml` gets an archive and a checksum.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::build::{BINARY, PACKAGE};

/// The files every archive holds beside the binary (under its top directory).
const ALONGSIDE: &[&str] = &["LICENSE", "README.md", "config/share.yml"];

/// `cargo xtask dist`.
#[derive(clap::Args)]
pub struct Dist {
    /// Rust target triple to build (default: the host's).
    #[arg(long)]
    pub target: Option<String>,
    /// Only print and check the plan: what a release would hold, without building.
    #[arg(long)]
    pub plan: bool,
}

/// One archive of the release and its checksum file, as dist names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Archive {
    pub name: String,
    pub target: String,
    pub checksum: String,
    /// Where dist left it (only after a build).
    pub path: Option<PathBuf>,
}

impl Dist {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        if self.plan {
            let archives = plan(Path::new("."))?;
            check_plan(&archives, &configured_targets(Path::new("dist-workspace.toml"))?)?;
            for a in &archives {
                eprintln!("  {:<28} {:<42} {}", a.target, a.name, a.checksum);
            }
            eprintln!("==> dist plan: {} archives, each with a checksum", archives.len());
            return Ok(());
        }
        let target = self.target.unwrap_or_else(host_triple);
        eprintln!("==> dist build --artifacts=local --target {target} (profile `dist`)");
        let archives = build(&target)?;
        for archive in &archives {
            let path = archive.path.as_deref().context("dist reported no path for its archive")?;
            let checksum_path = path.with_file_name(&archive.checksum);
            verify(path, &checksum_path, &target)?;
            let mb = std::fs::metadata(path)?.len() as f64 / 1e6;
            eprintln!("    {} ({mb:.1} MB) and {}: checked", path.display(), archive.checksum);
        }
        eprintln!("==> dist: {} archive(s) in {:.0} s", archives.len(), started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// The host's target triple, as rustc names it.
fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().ok();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("host: ")).unwrap_or("x86_64-unknown-linux-gnu").to_owned()
}

fn dist_command() -> anyhow::Result<Command> {
    let (dist, path) = crate::build::find_tool("dist", "cargo xtask setup dist")?;
    let mut cmd = Command::new(dist);
    cmd.env("PATH", path);
    Ok(cmd)
}

/// `dist plan` for the workspace at `root`: the archives a release would hold.
pub fn plan(root: &Path) -> anyhow::Result<Vec<Archive>> {
    let mut cmd = dist_command()?;
    cmd.current_dir(root).args(["plan", "--output-format=json", "--no-local-paths"]);
    archives(&run_json(cmd)?)
}

/// `dist build` for one target: the archives it made.
fn build(target: &str) -> anyhow::Result<Vec<Archive>> {
    let mut cmd = dist_command()?;
    cmd.args(["build", "--artifacts=local", "--output-format=json", "--target", target]);
    let archives = archives(&run_json(cmd)?)?;
    if archives.is_empty() {
        bail!("dist built no archive for {target}: is it one of the targets in dist-workspace.toml?");
    }
    Ok(archives)
}

/// Runs dist with its JSON manifest on stdout (progress on stderr, passed through).
fn run_json(mut cmd: Command) -> anyhow::Result<serde_json::Value> {
    let out = cmd.stderr(std::process::Stdio::inherit()).output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("dist's manifest (stdout) is not JSON")
}

/// The `executable-zip` artifacts of a dist manifest, each with its checksum artifact.
pub fn archives(manifest: &serde_json::Value) -> anyhow::Result<Vec<Archive>> {
    let artifacts = manifest["artifacts"].as_object().context("dist manifest: no `artifacts`")?;
    let mut out = Vec::new();
    for (name, artifact) in artifacts {
        if artifact["kind"] != "executable-zip" {
            continue;
        }
        let targets = artifact["target_triples"].as_array().map(Vec::as_slice).unwrap_or_default();
        let [target] = targets else { bail!("dist manifest: archive `{name}` has targets {targets:?}, not one") };
        let checksum = artifact["checksum"]
            .as_str()
            .with_context(|| format!("dist manifest: archive `{name}` has no checksum artifact"))?;
        out.push(Archive {
            name: name.clone(),
            target: target.as_str().unwrap_or_default().to_owned(),
            checksum: checksum.to_owned(),
            path: artifact["path"].as_str().map(PathBuf::from),
        });
    }
    out.sort();
    Ok(out)
}

/// The `targets` of `dist-workspace.toml`.
pub fn configured_targets(file: &Path) -> anyhow::Result<BTreeSet<String>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("parse {}", file.display()))?;
    let targets = doc
        .get("dist")
        .and_then(|d| d.get("targets"))
        .and_then(|t| t.as_array())
        .with_context(|| format!("{}: no [dist] targets", file.display()))?;
    Ok(targets.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
}

/// Every configured target has exactly one `openim-<target>.tar.gz` with a `.sha256` beside it.
pub fn check_plan(archives: &[Archive], targets: &BTreeSet<String>) -> anyhow::Result<()> {
    let planned: BTreeSet<String> = archives.iter().map(|a| a.target.clone()).collect();
    if &planned != targets || planned.len() != archives.len() {
        bail!(
            "dist plans archives for {planned:?} ({} archives), dist-workspace.toml asks for {targets:?}",
            archives.len()
        );
    }
    for a in archives {
        let want = format!("{PACKAGE}-{}.tar.gz", a.target);
        if a.name != want || a.checksum != format!("{want}.sha256") {
            bail!(
                "dist plans `{}` with checksum `{}` for {}; expected `{want}` and `{want}.sha256`",
                a.name,
                a.checksum,
                a.target
            );
        }
    }
    Ok(())
}

/// Checks an archive against its checksum file and its contents; on the host's target, runs the
/// unpacked binary's `--version`.
pub fn verify(archive: &Path, checksum_file: &Path, target: &str) -> anyhow::Result<()> {
    let data = std::fs::read(archive).with_context(|| format!("read {}", archive.display()))?;
    let listed = std::fs::read_to_string(checksum_file).with_context(|| format!("read {}", checksum_file.display()))?;
    let listed = listed.split_whitespace().next().unwrap_or_default();
    let actual = crate::oci::sha256_hex(&data);
    if listed != actual {
        bail!("{}: says {listed}, but {} hashes to {actual}", checksum_file.display(), archive.display());
    }
    let mut binary = None;
    let mut names = BTreeSet::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(data.as_slice()));
    for entry in tar.entries().with_context(|| format!("read {}", archive.display()))? {
        let mut entry = entry.with_context(|| format!("read {}", archive.display()))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        // Everything sits under one directory named like the archive.
        let inner = path.split_once('/').map(|(_, rest)| rest.to_owned()).unwrap_or_default();
        if inner == BINARY {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            binary = Some(bytes);
        }
        names.insert(inner);
    }
    let Some(binary) = binary else { bail!("{}: no `{BINARY}` binary inside", archive.display()) };
    for want in ALONGSIDE {
        if !names.contains(*want) {
            bail!("{}: no `{want}` inside (it has {names:?})", archive.display());
        }
    }
    if target == host_triple() {
        let dir = tempdir()?;
        let exe = dir.join(BINARY);
        std::fs::write(&exe, &binary)?;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
        let out = Command::new(&exe).arg("--version").output().with_context(|| format!("run {}", exe.display()))?;
        let _ = std::fs::remove_dir_all(&dir);
        let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let want = format!("{BINARY} {}", workspace_version(Path::new("Cargo.toml"))?);
        if !out.status.success() || said != want {
            bail!(
                "{}: the unpacked binary's --version said `{said}` ({}), expected `{want}`",
                archive.display(),
                out.status
            );
        }
    }
    Ok(())
}

/// `[workspace.package] version` of the root manifest: the version `openim` reports.
pub fn workspace_version(manifest: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("read {}", manifest.display()))?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("parse {}", manifest.display()))?;
    let version = doc.get("workspace").and_then(|w| w.get("package")).and_then(|p| p.get("version"));
    let version = version.and_then(|v| v.as_str());
    version.map(str::to_owned).with_context(|| format!("{}: no [workspace.package] version", manifest.display()))
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("openim-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests;
