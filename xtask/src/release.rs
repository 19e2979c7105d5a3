//! The release configuration (`release.toml`) and what every release step shares.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::image::Meta;
use crate::tags::{GitContext, TagSet};

/// `release.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    pub source: String,
    pub licenses: String,
    pub image_prefix: String,
    #[serde(rename = "registry")]
    pub registries: Vec<Registry>,
}

/// One registry the images go to.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub name: String,
    /// `host/namespace`; images are `<repository>/<image_prefix><service>`.
    pub repository: String,
    pub username_env: String,
    pub password_env: String,
    /// Plain HTTP (a local test registry only).
    #[serde(default)]
    pub insecure: bool,
}

impl ReleaseConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let cfg: Self = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        for r in &cfg.registries {
            if !r.repository.contains('/') {
                bail!("{}: registry `{}`: repository `{}` is not host/namespace", path.display(), r.name, r.repository);
            }
        }
        Ok(cfg)
    }
}

/// The commit time in seconds: `SOURCE_DATE_EPOCH` when set, else the commit's own.
pub fn commit_time(sha: &str) -> anyhow::Result<i64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a number of seconds"));
    }
    let out =
        std::process::Command::new("git").args(["show", "-s", "--format=%ct", sha]).output().context("run git")?;
    if !out.status.success() {
        bail!("git show {sha}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8(out.stdout)?;
    text.trim().parse().with_context(|| format!("commit time of {sha}: `{}`", text.trim()))
}

/// The labels' values for a build of `ctx`.
pub fn meta(ctx: &GitContext, tags: &TagSet) -> anyhow::Result<Meta> {
    let cfg = ReleaseConfig::load(Path::new("release.toml"))?;
    Ok(Meta {
        version: tags.version.clone(),
        revision: ctx.sha.clone(),
        created: commit_time(&ctx.sha)?,
        source: cfg.source,
        licenses: cfg.licenses,
        image_prefix: cfg.image_prefix,
    })
}
