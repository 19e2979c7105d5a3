//! `cargo xtask push`: the images of the OCI layout to every registry of `release.toml`, under
//! every tag of the build.
//!
//! Per registry: first every release tag already there is checked (a full version such as
//! `1.2.3` or `v1.2.3` never moves to another digest without `--force`; `1.2`, `1`, `latest`,
//! branch and `sha-` tags do), so a refusal leaves the registry untouched. Then, per service,
//! blobs the repository has are skipped, blobs another repository of the same registry has are
//! mounted, the rest uploaded; per-arch manifests go by digest, then the index under each tag.
//! Last, every index is read back and must list linux/amd64 and linux/arm64 with the digests
//! pushed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::oci::Layout;
use crate::registry::{Registry, Stats};
use crate::release::{self, ReleaseConfig};

const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// What one registry got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub registry: String,
    pub stats: Stats,
    /// Image → index digest.
    pub images: BTreeMap<String, String>,
}

/// Whether a tag names one release exactly (and so must never move).
pub fn is_release_tag(tag: &str) -> bool {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(t).is_ok()
}

/// Pushes the images named `<prefix><service>:<from_tag>` in `layout` to `registry`
/// (`host/namespace`), under `tags`.
pub fn push_to(
    layout: &Layout,
    reg: &mut Registry,
    namespace: &str,
    images: &[String],
    from_tag: &str,
    tags: &[String],
    force: bool,
) -> anyhow::Result<BTreeMap<String, String>> {
    let refs = layout.refs()?;
    let mut plan = Vec::new();
    for image in images {
        let name = format!("{image}:{from_tag}");
        let d = refs
            .get(&name)
            .with_context(|| format!("{}: no image {name} (run `cargo xtask image`)", layout.dir.display()))?;
        plan.push((image.clone(), format!("{namespace}/{image}"), d.digest().to_string()));
    }
    // 1. No release tag moves.
    for (_, repo, digest) in &plan {
        for tag in tags.iter().filter(|t| is_release_tag(t)) {
            if let Some(existing) = reg.manifest_digest(repo, tag)?
                && existing != *digest
            {
                if !force {
                    bail!(
                        "{}/{repo}:{tag} already points at {existing}, not {digest}: a release tag never moves \
                         (rebuild the same commit, or pass --force)",
                        reg.host()
                    );
                }
                eprintln!("    {}/{repo}:{tag}: moving from {existing} (--force)", reg.host());
            }
        }
    }
    // 2. Blobs, manifests, index.
    let mut holder: HashMap<String, String> = HashMap::new(); // blob digest → a repo that has it
    let mut out = BTreeMap::new();
    for (image, repo, index_digest) in &plan {
        let index_bytes = std::fs::read(layout.blob_path(index_digest))?;
        let index: ImageIndex = serde_json::from_slice(&index_bytes).context("parse index")?;
        for m in index.manifests() {
            let m_digest = m.digest().to_string();
            let m_bytes = std::fs::read(layout.blob_path(&m_digest))?;
            let manifest: ImageManifest = serde_json::from_slice(&m_bytes).context("parse manifest")?;
            let blobs = std::iter::once(manifest.config()).chain(manifest.layers().iter());
            for b in blobs {
                let digest = b.digest().to_string();
                let from = holder.get(&digest).filter(|r| *r != repo).cloned();
                let path = layout.blob_path(&digest);
                reg.ensure_blob(repo, &digest, &|| Ok(std::fs::read(&path)?), from.as_deref())?;
                holder.entry(digest).or_insert_with(|| repo.clone());
            }
            reg.put_manifest(repo, &m_digest, MANIFEST_TYPE, &m_bytes)?;
        }
        for tag in tags {
            reg.put_manifest(repo, tag, INDEX_TYPE, &index_bytes)?;
        }
        // 3. Read back.
        for tag in tags {
            verify(reg, repo, tag, &index)?;
        }
        eprintln!("    {}/{repo}: {} tags -> {index_digest}", reg.host(), tags.len());
        out.insert(image.clone(), index_digest.clone());
    }
    Ok(out)
}

/// Reads `repo:tag` back and checks it is the index pushed, with both platforms.
fn verify(reg: &mut Registry, repo: &str, tag: &str, want: &ImageIndex) -> anyhow::Result<()> {
    let got: ImageIndex = serde_json::from_slice(&reg.get_manifest(repo, tag)?)
        .with_context(|| format!("{}/{repo}:{tag} is not an OCI index", reg.host()))?;
    let platforms = |i: &ImageIndex| -> BTreeMap<String, String> {
        i.manifests()
            .iter()
            .filter_map(|m| {
                let p = m.platform().as_ref()?;
                Some((format!("{}/{}", p.os(), p.architecture()), m.digest().to_string()))
            })
            .collect()
    };
    let (got, want) = (platforms(&got), platforms(want));
    for platform in ["linux/amd64", "linux/arm64"] {
        if !want.contains_key(platform) {
            continue; // a partial (single-arch) local build
        }
        if got.get(platform) != want.get(platform) {
            bail!(
                "{}/{repo}:{tag} read back lists {platform} as {:?}, pushed {:?}",
                reg.host(),
                got.get(platform),
                want.get(platform)
            );
        }
    }
    Ok(())
}

/// Credentials from the registry's environment variables (none when both are unset).
pub fn credentials_from_env(r: &release::Registry) -> anyhow::Result<Option<(String, String)>> {
    match (std::env::var(&r.username_env), std::env::var(&r.password_env)) {
        (Ok(u), Ok(p)) if !u.is_empty() && !p.is_empty() => Ok(Some((u, p))),
        (Err(_), Err(_)) => Ok(None),
        _ => bail!("registry `{}`: set both {} and {} (or neither)", r.name, r.username_env, r.password_env),
    }
}

/// Where a registry's credentials come from.
pub type Credentials<'a> = &'a dyn Fn(&release::Registry) -> anyhow::Result<Option<(String, String)>>;

/// Pushes to every registry of `cfg` (or those named in `only`).
pub fn push_all(
    layout: &Layout,
    cfg: &ReleaseConfig,
    only: &[String],
    from_tag: &str,
    tags: &[String],
    force: bool,
    credentials: Credentials<'_>,
) -> anyhow::Result<Vec<Pushed>> {
    let images: Vec<String> =
        crate::image::SERVICES.iter().map(|s| format!("{}{}", cfg.image_prefix, s.name)).collect();
    let mut out = Vec::new();
    for r in cfg.registries.iter().filter(|r| only.is_empty() || only.contains(&r.name)) {
        let (host, namespace) = r.repository.split_once('/').context("repository is host/namespace")?;
        eprintln!("==> {} ({})", r.name, r.repository);
        let mut reg = Registry::new(host, credentials(r)?, r.insecure)?;
        let pushed = push_to(layout, &mut reg, namespace, &images, from_tag, tags, force)
            .with_context(|| format!("push to {} ({})", r.name, r.repository))?;
        let s = &reg.stats;
        eprintln!(
            "    {} blobs uploaded ({:.1} MB), {} mounted, {} already there; {} manifests; {} requests, {} retries",
            s.blobs_uploaded,
            s.bytes_uploaded as f64 / 1e6,
            s.blobs_mounted,
            s.blobs_present,
            s.manifests_put,
            s.requests,
            s.retries
        );
        out.push(Pushed { registry: r.name.clone(), stats: reg.stats.clone(), images: pushed });
    }
    Ok(out)
}

/// `cargo xtask push`.
#[derive(clap::Args)]
pub struct Push {
    /// Only these registries (names from release.toml).
    #[arg(long = "registry")]
    registries: Vec<String>,
    /// Move a release tag that points at another digest.
    #[arg(long)]
    force: bool,
    /// The OCI layout (default: <target dir>/oci).
    #[arg(long)]
    layout: Option<PathBuf>,
    /// The release configuration.
    #[arg(long, default_value = "release.toml")]
    config: PathBuf,
}

impl Push {
    pub fn run(self) -> anyhow::Result<()> {
        let ctx = crate::tags::context_from_env()?;
        let tags = crate::tags::compute(&ctx)?;
        if !tags.push {
            bail!("{}: pull-request builds are never pushed", ctx.git_ref);
        }
        let cfg = ReleaseConfig::load(&self.config)?;
        let layout = Layout { dir: self.layout.unwrap_or_else(|| crate::image::target_dir().join("oci")) };
        push_all(&layout, &cfg, &self.registries, &tags.tags[0], &tags.tags, self.force, &credentials_from_env)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
