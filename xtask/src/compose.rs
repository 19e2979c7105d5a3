//! `cargo xtask compose-up`: runs a compose file of `compose/` with the images of an OCI layout
//! (`cargo xtask image`), copied into the local container engine with skopeo, and waits until
//! every container is healthy (`docker compose up --wait`). The compose job of the CI workflow
//! runs it, then a message smoke test; here a test runs `standalone.yml` against podman.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

/// The registry name the loaded images get in the engine (`OPENIM_REGISTRY` for compose).
pub const LOCAL_REGISTRY: &str = "localhost/openim";

#[derive(clap::Args)]
pub struct ComposeUp {
    /// The directory of the compose files.
    #[arg(long, default_value = "compose")]
    pub dir: PathBuf,
    /// The compose file in that directory: `docker-compose.yml` (everything) or `standalone.yml`.
    #[arg(long, default_value = "docker-compose.yml")]
    pub file: String,
    /// The OCI layout holding the images (default: <target dir>/oci).
    #[arg(long)]
    pub layout: Option<PathBuf>,
    /// Where skopeo copies the images: `docker-daemon` (Docker) or `containers-storage` (podman).
    #[arg(long, default_value = "docker-daemon")]
    pub transport: String,
    /// The Compose project name.
    #[arg(long, default_value = "openim")]
    pub project: String,
    /// Seconds to wait for every container to be healthy.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// The engine's API socket (`DOCKER_HOST`), if not the default.
    #[arg(long)]
    pub docker_host: Option<String>,
    /// More variables for compose (`KEY=VALUE`, e.g. `OPENIM_API_PORT=20002`).
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Run `init-secrets.sh` of the directory first (it writes random secrets into its `.env`).
    #[arg(long)]
    pub init_secrets: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("not KEY=VALUE: {s:?}"))
}

/// The `name:tag` references of an OCI layout's images.
pub fn layout_refs(layout: &Path) -> anyhow::Result<Vec<String>> {
    let path = layout.join("index.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let index: serde_json::Value = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let refs: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_owned))
        .collect();
    if refs.is_empty() {
        bail!("{}: no named images (run `cargo xtask image` first)", path.display());
    }
    Ok(refs)
}

/// `docker compose` as the machine has it: the standalone `docker-compose` binary, or the
/// Docker CLI's plugin.
pub fn compose_command() -> Command {
    match crate::build::find_tool("docker-compose", "cargo xtask setup compose") {
        Ok((bin, path)) => {
            let mut c = Command::new(bin);
            c.env("PATH", path);
            c
        }
        Err(_) => {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        }
    }
}

impl ComposeUp {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let layout = self.layout.clone().unwrap_or_else(|| crate::image::target_dir().join("oci"));
        let refs = layout_refs(&layout)?;
        let mut tags: Vec<&str> = refs.iter().filter_map(|r| r.rsplit_once(':').map(|(_, t)| t)).collect();
        tags.sort();
        tags.dedup();
        let [tag] = tags[..] else {
            bail!("{}: images of several tags ({}): keep one", layout.display(), tags.join(", "));
        };
        eprintln!("==> loading {} images (tag {tag}) into {} with skopeo", refs.len(), self.transport);
        for r in &refs {
            let out = Command::new("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("oci:{}:{r}", layout.display()))
                .arg(format!("{}:{LOCAL_REGISTRY}/{r}", self.transport))
                .output()
                .context("run skopeo (Debian/Ubuntu package skopeo)")?;
            if !out.status.success() {
                bail!("skopeo copy {r}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }

        if self.init_secrets {
            let status = Command::new("sh").arg("init-secrets.sh").current_dir(&self.dir).status();
            match status {
                Ok(s) if s.success() => {}
                other => bail!("{}: init-secrets.sh failed: {other:?}", self.dir.display()),
            }
        }
        let compose = |args: &[&str]| {
            let mut c = compose_command();
            c.current_dir(&self.dir).args(["-f", &self.file, "-p", &self.project]).args(args);
            c.env("OPENIM_REGISTRY", LOCAL_REGISTRY).env("OPENIM_VERSION", tag);
            if let Some(host) = &self.docker_host {
                c.env("DOCKER_HOST", host);
            }
            c.envs(self.env.iter().map(|(k, v)| (k, v)));
            c
        };
        let file = self.dir.join(&self.file);
        eprintln!("==> docker compose -f {} up -d --wait (at most {} s)", file.display(), self.timeout);
        let timeout = self.timeout.to_string();
        let status =
            compose(&["up", "-d", "--wait", "--wait-timeout", &timeout]).status().context("run docker compose")?;
        if !status.success() {
            // What is not healthy, and why: each container's last lines.
            let _ = compose(&["ps", "-a"]).status();
            let _ = compose(&["logs", "--no-color", "--tail", "40"]).status();
            bail!("docker compose -f {} up --wait failed ({status}): see the containers above", file.display());
        }
        eprintln!("==> every container of {} is healthy, in {:.0} s", file.display(), started.elapsed().as_secs_f64());
        Ok(())
    }
}
