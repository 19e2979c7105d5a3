//! Publishing to the registries of `release.toml`, in two phases, and `cargo xtask push`.
//!
//! What goes out is a list of [`Item`]s (an image with its per-arch manifests, a Helm chart, the
//! compose bundle, …), each needing one capability a registry lists in `takes`. A registry gets
//! the items it takes; the others are skipped with the registry's `note` as the reason.
//!
//! 0. **Check.** On every registry, every release tag (a full version such as `1.2.3`) that
//!    already exists must name the digest this run pushes (unless `--force`): nothing is written
//!    anywhere before this holds everywhere.
//! 1. **Content.** Every blob and every manifest goes to every registry by digest: blobs the
//!    repository has are skipped, blobs another repository of the registry has are mounted, the
//!    rest uploaded; manifests the repository has (a `HEAD` by digest) are not sent again. A
//!    refusal here moves no tag anywhere, and a re-run picks up where this one stopped.
//! 2. **Tags.** Only when every registry holds everything: each tag is `HEAD`ed and written only
//!    if it names another digest, then read back with `HEAD` and compared (a `GET` of a manifest
//!    counts as a pull against Docker Hub's rate limit; a `HEAD` does not).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::oci::Layout;
use crate::registry::{Registry, Stats};
use crate::release::{self, ReleaseConfig};

pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// What a registry takes (`takes` in `release.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Takes {
    /// Container images (image indexes and image manifests), and their signatures, which are
    /// image manifests too.
    Images,
    /// Helm charts (config `application/vnd.cncf.helm.config.v1+json`).
    Helm,
    /// Other OCI artifacts (a config of their own or the empty config): the compose bundle.
    Artifacts,
    /// OCI 1.1 referrers (artifacts with a `subject`): the images' SBOMs.
    Referrers,
}

impl Takes {
    pub const ALL: [Takes; 4] = [Takes::Images, Takes::Helm, Takes::Artifacts, Takes::Referrers];

    pub fn name(self) -> &'static str {
        match self {
            Takes::Images => "images",
            Takes::Helm => "helm",
            Takes::Artifacts => "artifacts",
            Takes::Referrers => "referrers",
        }
    }
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Source {
    fn read(&self) -> anyhow::Result<Vec<u8>> {
        match self {
            Source::File(p) => std::fs::read(p).with_context(|| format!("read {}", p.display())),
            Source::Bytes(b) => Ok(b.clone()),
        }
    }
}

/// A manifest (or index) as pushed.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    /// The config's media type (an index: its own), named when a registry refuses it.
    pub config_type: String,
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// `bytes` of `media_type`, with its config's media type read from it.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> anyhow::Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(&bytes).context("a manifest is JSON")?;
        let config_type = value["config"]["mediaType"].as_str().unwrap_or(media_type).to_owned();
        Ok(Self { digest: crate::oci::sha256(&bytes), media_type: media_type.to_owned(), config_type, bytes })
    }
}

/// One thing published to one repository of each registry that takes it.
#[derive(Debug, Clone)]
pub struct Item {
    pub needs: Takes,
    /// What it is, for the plan and messages: `image`, `chart`, `compose`, `signature`, `sbom`.
    pub what: String,
    /// The repository under a registry's namespace.
    pub repository: String,
    pub blobs: Vec<(String, Source)>,
    /// By digest, each after the ones it refers to; the last one is what the tags name.
    pub manifests: Vec<Manifest>,
    pub tags: Vec<String>,
    /// A referrer: the digest of the manifest or index it refers to (its `subject`). Where the
    /// registry has no referrers API, phase 2 lists it in the referrers tag `sha256-<hex>`.
    pub subject: Option<String>,
}

impl Item {
    pub fn top(&self) -> &Manifest {
        self.manifests.last().expect("an item has a manifest")
    }
}

/// What one registry got.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub registry: String,
    pub stats: Stats,
    /// Repository → digest its tags name, for every item pushed.
    pub digests: BTreeMap<String, String>,
    /// `what repository: why` for every item skipped.
    pub skipped: Vec<String>,
}

/// Whether a tag names one release exactly (and so must never move).
pub fn is_release_tag(tag: &str) -> bool {
    let t = tag.strip_prefix('v').unwrap_or(tag);
    semver::Version::parse(t).is_ok()
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

/// The items of the images `<image>:<from_tag>` in `layout`, tagged `tags`: per image, every
/// blob of both arches, the per-arch manifests, then the index.
pub fn image_items(layout: &Layout, images: &[String], from_tag: &str, tags: &[String]) -> anyhow::Result<Vec<Item>> {
    let refs = layout.refs()?;
    let mut out = Vec::new();
    for image in images {
        let name = format!("{image}:{from_tag}");
        let d = refs
            .get(&name)
            .with_context(|| format!("{}: no image {name} (run `cargo xtask image`)", layout.dir.display()))?;
        let index_bytes = std::fs::read(layout.blob_path(d.digest().as_ref()))?;
        let index: ImageIndex = serde_json::from_slice(&index_bytes).with_context(|| format!("{name}: parse index"))?;
        let (mut blobs, mut manifests) = (Vec::new(), Vec::new());
        for m in index.manifests() {
            let m_bytes = std::fs::read(layout.blob_path(m.digest().as_ref()))?;
            let manifest: ImageManifest =
                serde_json::from_slice(&m_bytes).with_context(|| format!("{name}: parse manifest {}", m.digest()))?;
            for b in std::iter::once(manifest.config()).chain(manifest.layers().iter()) {
                let digest = b.digest().to_string();
                if !blobs.iter().any(|(d, _)| *d == digest) {
                    blobs.push((digest.clone(), Source::File(layout.blob_path(&digest))));
                }
            }
            manifests.push(Manifest::new(MANIFEST_TYPE, m_bytes)?);
        }
        manifests.push(Manifest::new(INDEX_TYPE, index_bytes)?);
        out.push(Item {
            needs: Takes::Images,
            what: "image".into(),
            repository: image.clone(),
            blobs,
            manifests,
            tags: tags.to_vec(),
            subject: None,
        });
    }
    Ok(out)
}

/// One registry of the run: its client and the items it takes.
struct Target<'a> {
    cfg: &'a release::Registry,
    namespace: String,
    reg: Registry,
    items: Vec<&'a Item>,
    skipped: Vec<String>,
}

impl Target<'_> {
    fn repo(&self, item: &Item) -> String {
        format!("{}/{}", self.namespace, item.repository)
    }

    fn label(&self) -> String {
        format!("registry `{}` ({})", self.cfg.name, self.cfg.repository)
    }
}

/// Publishes `items` to every registry of `cfg` (or those named in `only`) in the two phases
/// of this module's documentation; with a `signer`, every image's index and per-arch manifests
/// are signed for each registry (the signature names the registry's repository).
pub fn publish(
    cfg: &ReleaseConfig,
    only: &[String],
    items: &[Item],
    force: bool,
    signer: Option<&crate::sign::Signer>,
    credentials: Credentials<'_>,
) -> anyhow::Result<Vec<Pushed>> {
    let mut signatures: Vec<Vec<Item>> = Vec::new();
    let mut targets = Vec::new();
    for r in cfg.registries.iter().filter(|r| only.is_empty() || only.contains(&r.name)) {
        let (host, namespace) = r.repository.split_once('/').context("repository is host/namespace")?;
        let mut reg = Registry::new(host, credentials(r)?, r.insecure)?;
        reg.retry = r.retry.clone();
        let (take, skip): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|i| r.takes(i.needs));
        let skipped = skip.iter().map(|i| format!("{} {}: {}", i.what, i.repository, r.skip_reason(i.needs))).collect();
        let mut signed = Vec::new();
        for image in take.iter().filter(|i| i.what == "image") {
            let repository = format!("{}/{}", r.repository, image.repository);
            for m in &image.manifests {
                if let Some(signer) = signer {
                    signed.push(signer.signature(&repository, &image.repository, &m.digest)?);
                }
            }
        }
        signatures.push(signed);
        targets.push(Target { cfg: r, namespace: namespace.to_owned(), reg, items: take, skipped });
    }
    for (t, signed) in targets.iter_mut().zip(&signatures) {
        t.items.extend(signed.iter());
    }
    if targets.is_empty() {
        bail!("no registry of release.toml is selected (--registry {})", only.join(", "));
    }
    // 0. No release tag moves.
    for t in &mut targets {
        eprintln!("==> {}: checking release tags", t.label());
        check_release_tags(t, force).with_context(|| format!("{}: checking release tags", t.label()))?;
    }
    // 1. Every blob and manifest, by digest, everywhere.
    for t in &mut targets {
        eprintln!("==> {}: content (phase 1 of 2)", t.label());
        push_content(t).with_context(|| format!("{}: phase 1 (content); no tag was written anywhere", t.label()))?;
    }
    // 2. Tags.
    let mut out = Vec::new();
    for t in &mut targets {
        eprintln!("==> {}: tags (phase 2 of 2)", t.label());
        // What names the images' signatures and SBOMs first, then the images' own tags: a run
        // stopped in between leaves no signed-for tag without its signature.
        write_referrers_tags(t).with_context(|| format!("{}: phase 2 (referrers tags)", t.label()))?;
        let digests = write_tags(t, force).with_context(|| format!("{}: phase 2 (tags)", t.label()))?;
        let s = &t.reg.stats;
        eprintln!(
            "    {} blobs uploaded ({:.1} MB), {} mounted, {} already there; {} manifests put, {} already there; \
             {} tags written, {} unchanged; {} requests, {} retries",
            s.blobs_uploaded,
            s.bytes_uploaded as f64 / 1e6,
            s.blobs_mounted,
            s.blobs_present,
            s.manifests_put,
            s.manifests_present,
            s.tags_written,
            s.tags_unchanged,
            s.requests,
            s.retries
        );
        for skip in &t.skipped {
            eprintln!("    skipped {skip}");
        }
        out.push(Pushed {
            registry: t.cfg.name.clone(),
            stats: t.reg.stats.clone(),
            digests,
            skipped: t.skipped.clone(),
        });
    }
    Ok(out)
}

fn check_release_tags(t: &mut Target<'_>, force: bool) -> anyhow::Result<()> {
    let items = t.items.clone();
    for item in items {
        let repo = t.repo(item);
        let digest = &item.top().digest;
        for tag in item.tags.iter().filter(|t| is_release_tag(t)) {
            if let Some(existing) = t.reg.manifest_digest(&repo, tag)?
                && existing != *digest
            {
                if !force {
                    bail!(
                        "{}: {}/{repo}:{tag} already points at {existing}, not {digest}: a release tag never moves \
                         (rebuild the same commit, or pass --force); nothing was written",
                        t.label(),
                        t.reg.host()
                    );
                }
                eprintln!("    {}/{repo}:{tag}: will move from {existing} (--force)", t.reg.host());
            }
        }
    }
    Ok(())
}

fn push_content(t: &mut Target<'_>) -> anyhow::Result<()> {
    let mut holder: HashMap<String, String> = HashMap::new(); // blob digest → a repo that has it
    let items = t.items.clone();
    for item in items {
        let repo = t.repo(item);
        for (digest, source) in &item.blobs {
            let from = holder.get(digest).filter(|r| **r != repo).cloned();
            t.reg
                .ensure_blob(&repo, digest, &|| source.read(), from.as_deref())
                .with_context(|| format!("blob {digest} of {} {repo}", item.what))?;
            holder.entry(digest.clone()).or_insert_with(|| repo.clone());
        }
        for m in &item.manifests {
            if t.reg.manifest_digest(&repo, &m.digest)?.is_some() {
                t.reg.stats.manifests_present += 1;
                continue;
            }
            t.reg.put_manifest(&repo, &m.digest, &m.media_type, &m.bytes).map_err(|e| refused(t, item, m, e))?;
            t.reg.stats.manifests_put += 1;
        }
        eprintln!("    {}/{repo}@{} ({})", t.reg.host(), item.top().digest, item.what);
    }
    Ok(())
}

/// A registry's refusal of a manifest, naming what it refused and what to do about it.
fn refused(t: &Target<'_>, item: &Item, m: &Manifest, e: anyhow::Error) -> anyhow::Error {
    let what = format!(
        "the {} {} ({} {}, config media type {})",
        item.what, item.repository, m.media_type, m.digest, m.config_type
    );
    if e.chain().any(|c| c.downcast_ref::<crate::registry::Refused>().is_some()) {
        let kind = item.needs.name();
        anyhow::anyhow!(
            "{} refused {what}: {e:#}. If the registry does not take {kind}, leave `{kind}` out of its `takes` \
             in release.toml",
            t.label()
        )
    } else {
        e.context(format!("{}: pushing {what}", t.label()))
    }
}

fn write_tags(t: &mut Target<'_>, force: bool) -> anyhow::Result<BTreeMap<String, String>> {
    let mut digests = BTreeMap::new();
    let mut items = t.items.clone();
    items.sort_by_key(|i| i.what != "signature"); // stable: signatures first, in their order
    let items = items;
    for item in items {
        let repo = t.repo(item);
        let top = item.top();
        for tag in &item.tags {
            let existing = t.reg.manifest_digest(&repo, tag)?;
            if existing.as_deref() == Some(top.digest.as_str()) {
                t.reg.stats.tags_unchanged += 1;
                continue;
            }
            if existing.is_some() && is_release_tag(tag) && !force {
                bail!(
                    "{}/{repo}:{tag} was written by someone else during this run: it now names {existing:?}",
                    t.reg.host()
                );
            }
            t.reg.put_manifest(&repo, tag, &top.media_type, &top.bytes).map_err(|e| refused(t, item, top, e))?;
            t.reg.stats.tags_written += 1;
            match t.reg.manifest_digest(&repo, tag)? {
                Some(d) if d == top.digest => {}
                other => bail!("{}/{repo}:{tag} reads back as {other:?}, pushed {}", t.reg.host(), top.digest),
            }
        }
        if !item.tags.is_empty() {
            eprintln!("    {}/{repo}: {} -> {}", t.reg.host(), item.tags.join(" "), top.digest);
        }
        if item.what != "signature" && item.subject.is_none() {
            digests.insert(item.repository.clone(), top.digest.clone());
        }
    }
    Ok(digests)
}

/// Where the registry has no referrers API (GHCR, CNCF distribution 2.x), lists each referrer in
/// the referrers tag of its subject, `sha256-<hex>` (an index of referrer descriptors, as the
/// distribution spec's fallback says), keeping what others listed there.
fn write_referrers_tags(t: &mut Target<'_>) -> anyhow::Result<()> {
    let referrers: Vec<&Item> = t.items.iter().copied().filter(|i| i.subject.is_some()).collect();
    let Some(first) = referrers.first() else { return Ok(()) };
    let probe = (t.repo(first), first.subject.clone().unwrap_or_default());
    if t.reg.has_referrers_api(&probe.0, &probe.1)? {
        eprintln!("    {}: referrers API: the registry indexes the referrers itself", t.reg.host());
        return Ok(());
    }
    let mut groups: BTreeMap<(String, String), Vec<&Item>> = BTreeMap::new();
    for item in referrers {
        let subject = item.subject.clone().unwrap_or_default();
        groups.entry((t.repo(item), subject)).or_default().push(item);
    }
    for ((repo, subject), items) in groups {
        let tag = subject.replacen(':', "-", 1);
        let mut index: serde_json::Value = match t.reg.get_manifest(&repo, &tag)? {
            Some(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{repo}:{tag} is not JSON"))?,
            None => serde_json::json!({ "schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [] }),
        };
        let listed = index["manifests"].as_array_mut().with_context(|| format!("{repo}:{tag} is not an index"))?;
        let before = listed.len();
        for item in items {
            let m = item.top();
            if listed.iter().any(|d| d["digest"] == m.digest.as_str()) {
                continue;
            }
            let value: serde_json::Value = serde_json::from_slice(&m.bytes)?;
            let mut descriptor =
                serde_json::json!({ "mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len() });
            descriptor["artifactType"] = value.get("artifactType").cloned().unwrap_or(m.config_type.clone().into());
            if let Some(a) = value.get("annotations") {
                descriptor["annotations"] = a.clone();
            }
            listed.push(descriptor);
        }
        if listed.len() == before {
            t.reg.stats.tags_unchanged += 1;
            continue;
        }
        let bytes = crate::oci::canonical_json(&index)?;
        let digest = crate::oci::sha256(&bytes);
        t.reg.put_manifest(&repo, &tag, INDEX_TYPE, &bytes)?;
        t.reg.stats.tags_written += 1;
        match t.reg.manifest_digest(&repo, &tag)? {
            Some(d) if d == digest => {
                eprintln!("    {}/{repo}:{tag}: referrers tag lists {}", t.reg.host(), before + 1)
            }
            other => bail!("{}/{repo}:{tag} reads back as {other:?}, pushed {digest}", t.reg.host()),
        }
    }
    Ok(())
}

/// The image names of `cfg`: `<prefix><service>` for every service.
pub fn image_names(cfg: &ReleaseConfig) -> Vec<String> {
    crate::image::SERVICES.iter().map(|s| format!("{}{}", cfg.image_prefix, s.name)).collect()
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
        let items = image_items(&layout, &image_names(&cfg), &tags.tags[0], &tags.tags)?;
        // Signatures (which carry the SBOM's digest) come from `cargo xtask release`; this
        // leaves any the registries hold as they are.
        publish(&cfg, &self.registries, &items, self.force, None, &credentials_from_env)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
