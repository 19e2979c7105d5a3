//! The release's non-image artifacts, stamped with the release version and pushed to the same
//! registries as OCI artifacts:
//! - the Helm chart `charts/openim`, packaged as `helm package` does (`openim-<version>.tgz`,
//!   every file under `openim/`), pushed as `helm push` does (Helm's config and content media
//!   types, the tag being the version with `+` as `_`), so `helm install oci://…` takes it;
//! - the compose bundle (`compose/` with `.env` naming the release's registry and image tag, and
//!   `config/`), pushed as an artifact of type `application/vnd.openim.compose.bundle.v1`.
//!
//! Both are reproducible like the images: sorted entries, the commit time, no gzip timestamp.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};

use crate::oci::{self, Entry};

pub const HELM_CONFIG_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const COMPOSE_ARTIFACT_TYPE: &str = "application/vnd.openim.compose.bundle.v1";
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
const TAR_GZ_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chart,
    Compose,
}

/// A packaged artifact and the OCI manifest it is pushed as.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub kind: Kind,
    /// The repository name under a registry's namespace (`openim`, `openim-compose`).
    pub repository: String,
    /// The tag it is pushed under.
    pub tag: String,
    /// The file name of the package (`openim-1.2.3.tgz`).
    pub file_name: String,
    pub package: Vec<u8>,
    /// The config blob (Helm's chart metadata, or OCI's empty `{}`).
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl Artifact {
    /// Wraps `package` (and, for a chart, its metadata as `config`) in an OCI manifest.
    fn new(
        kind: Kind,
        file_name: String,
        package: Vec<u8>,
        config: Option<Vec<u8>>,
        annotations: BTreeMap<&str, String>,
    ) -> anyhow::Result<Self> {
        let version = annotations.get("org.opencontainers.image.version").context("no version annotation")?;
        let repository = annotations.get("org.opencontainers.image.title").context("no title annotation")?.clone();
        let tag = helm_tag(version);
        let (config_type, layer_type, artifact_type, config) = match kind {
            Kind::Chart => (HELM_CONFIG_TYPE, HELM_CHART_TYPE, None, config.context("a chart needs its metadata")?),
            Kind::Compose => (EMPTY_CONFIG_TYPE, TAR_GZ_TYPE, Some(COMPOSE_ARTIFACT_TYPE), b"{}".to_vec()),
        };
        let descriptor = |media_type: &str, bytes: &[u8]| serde_json::json!({ "mediaType": media_type, "digest": oci::sha256(bytes), "size": bytes.len() });
        let mut layer = descriptor(layer_type, &package);
        layer["annotations"] = serde_json::json!({ "org.opencontainers.image.title": file_name });
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor(config_type, &config),
            "layers": [layer],
            "annotations": annotations,
        });
        if let Some(t) = artifact_type {
            manifest["artifactType"] = t.into();
        }
        let manifest = oci::canonical_json(&manifest)?;
        let digest = oci::sha256(&manifest);
        Ok(Self { kind, repository, tag, file_name, package, config, manifest, digest })
    }

    /// The artifact as a publishing item: its two blobs, its manifest, its version tag.
    pub fn item(&self) -> crate::push::Item {
        crate::push::Item {
            needs: self.kind.needs(),
            what: match self.kind {
                Kind::Chart => "chart".into(),
                Kind::Compose => "compose".into(),
            },
            repository: self.repository.clone(),
            blobs: [&self.config, &self.package]
                .into_iter()
                .map(|b| (oci::sha256(b), crate::push::Source::Bytes(b.clone())))
                .collect(),
            manifests: vec![crate::push::Manifest {
                digest: self.digest.clone(),
                media_type: MANIFEST_TYPE.into(),
                config_type: self.config_type().into(),
                bytes: self.manifest.clone(),
            }],
            tags: vec![self.tag.clone()],
            subject: None,
        }
    }

    fn config_type(&self) -> &'static str {
        match self.kind {
            Kind::Chart => HELM_CONFIG_TYPE,
            Kind::Compose => EMPTY_CONFIG_TYPE,
        }
    }
}

impl Kind {
    /// What a registry must take to get it.
    pub fn needs(self) -> crate::push::Takes {
        match self {
            Kind::Chart => crate::push::Takes::Helm,
            Kind::Compose => crate::push::Takes::Artifacts,
        }
    }
}

/// Helm's OCI tag for a chart version (OCI tags cannot hold `+`).
pub fn helm_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// The digests a release pins its deployments to.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    /// Service (`api`, `rpc-user`, …) → the digest of its image index.
    pub images: BTreeMap<String, String>,
    /// An infrastructure image as the compose files name it (`mariadb:11.4`) → its index digest.
    pub infra: BTreeMap<String, String>,
}

/// Packages the chart in `dir` with `version` and `app_version` stamped into `Chart.yaml`, and
/// the images' digests into `global.image.digests` of `values.yaml`.
pub fn package_chart(
    dir: &Path,
    version: &str,
    app_version: &str,
    mtime: u64,
    pins: &Pins,
) -> anyhow::Result<Artifact> {
    let chart_yaml = dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).with_context(|| format!("read {}", chart_yaml.display()))?;
    let stamped = stamp_chart(&text, version, app_version).with_context(|| chart_yaml.display().to_string())?;
    let meta: serde_yaml::Value = serde_yaml::from_str(&stamped).with_context(|| chart_yaml.display().to_string())?;
    let name = meta["name"].as_str().with_context(|| format!("{}: no `name`", chart_yaml.display()))?.to_owned();
    if meta["version"].as_str() != Some(version) || meta["appVersion"].as_str() != Some(app_version) {
        bail!("{}: stamping version {version} / appVersion {app_version} did not take", chart_yaml.display());
    }
    semver::Version::parse(version).with_context(|| format!("chart version `{version}` is not SemVer 2"))?;

    let mut entries = Vec::new();
    for (rel, data) in files(dir)? {
        // The subcharts' too: their appVersion is their images' default tag.
        let data = if rel == "Chart.yaml" {
            stamped.clone().into_bytes()
        } else if rel == "values.yaml" && !pins.images.is_empty() {
            let text = String::from_utf8(data).context("values.yaml is not UTF-8")?;
            stamp_digests(&text, &pins.images).with_context(|| dir.join(&rel).display().to_string())?.into_bytes()
        } else if rel.ends_with("/Chart.yaml") {
            let text = String::from_utf8(data).with_context(|| format!("{rel} is not UTF-8"))?;
            stamp_chart(&text, version, app_version).with_context(|| dir.join(&rel).display().to_string())?.into_bytes()
        } else {
            data
        };
        entries.push(Entry::File { path: format!("{name}/{rel}"), mode: 0o644, data });
    }
    let package = oci::layer(entries, mtime)?.gz;
    let config = oci::canonical_json(&serde_json::to_value(&meta)?)?;
    let annotations = BTreeMap::from([
        ("org.opencontainers.image.title", name.clone()),
        ("org.opencontainers.image.version", version.to_owned()),
        ("org.opencontainers.image.description", meta["description"].as_str().unwrap_or_default().to_owned()),
        ("org.opencontainers.image.created", crate::image::rfc3339(mtime as i64)),
    ]);
    Artifact::new(Kind::Chart, format!("{name}-{version}.tgz"), package, Some(config), annotations)
}

/// `values.yaml` with its `    digests: {}` line (under `global.image`) replaced by the map.
fn stamp_digests(text: &str, digests: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let line = "    digests: {}";
    if text.lines().filter(|l| *l == line).count() != 1 {
        bail!("no single `{line}` line (under global.image) to stamp the image digests into");
    }
    let mut block = String::from("    digests:");
    for (service, digest) in digests {
        check_digest(digest)?;
        block.push_str(&format!("\n      {service}: \"{digest}\""));
    }
    Ok(text.replacen(line, &block, 1))
}

fn check_digest(digest: &str) -> anyhow::Result<()> {
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{digest}` is not a sha256 digest");
    }
    Ok(())
}

/// The compose file `text` with every image pinned by digest: the release's images
/// (`${OPENIM_REGISTRY}/openim-<service>:${OPENIM_VERSION}` gets `@<digest>`, so any registry of
/// the release serves it) and the infrastructure images `pins.infra` names. An image line
/// neither covers is an error when pins are given.
pub fn pin_compose(text: &str, pins: &Pins) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let Some((indent, image)) = line.split_once("image: ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let image = image.trim();
        let digest = if image.starts_with("${OPENIM_REGISTRY") {
            let service = image
                .split_once("/openim-")
                .and_then(|(_, rest)| rest.split_once(':'))
                .map(|(service, _)| service)
                .with_context(|| format!("`{image}` is not <registry>/openim-<service>:<tag>"))?;
            pins.images.get(service).with_context(|| format!("no digest for the {service} image"))?
        } else if pins.infra.is_empty() {
            // Not resolved (a dry run without access to their registry): left as they are.
            out.push_str(line);
            out.push('\n');
            continue;
        } else {
            pins.infra.get(image).with_context(|| format!("no digest for `{image}`"))?
        };
        check_digest(digest)?;
        if image.contains('@') {
            bail!("`{image}` is already pinned");
        }
        out.push_str(&format!("{indent}image: {image}@{digest}\n"));
    }
    Ok(out)
}

/// The infrastructure pins (`mariadb:11.4` → digest) of a compose bundle's package (tar.gz).
pub fn infra_pins_of_bundle(package: &[u8]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(package));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.path()?.to_string_lossy().ends_with(".yml") {
            continue;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text)?;
        for line in text.lines() {
            if let Some((_, image)) = line.split_once("image: ")
                && !image.trim().starts_with("${OPENIM_REGISTRY")
                && let Some((name, digest)) = image.trim().split_once('@')
            {
                out.insert(name.to_owned(), digest.to_owned());
            }
        }
    }
    Ok(out)
}

/// The infrastructure pins of the compose bundle of `version` already on a registry of `cfg`
/// (the first that has it), if any.
pub fn published_infra_pins(
    cfg: &crate::release::ReleaseConfig,
    version: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    for r in cfg.registries.iter().filter(|r| r.takes(crate::push::Takes::Artifacts)) {
        let (host, namespace) = r.repository.split_once('/')?;
        let found = (|| -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
            let mut reg = crate::registry::Registry::new(host, crate::push::credentials_from_env(r)?, r.insecure)?;
            let repo = format!("{namespace}/openim-compose");
            let Some(manifest) = reg.get_manifest(&repo, &helm_tag(version))? else { return Ok(None) };
            let m: serde_json::Value = serde_json::from_slice(&manifest)?;
            let layer = m["layers"][0]["digest"].as_str().context("a bundle without a layer")?;
            Ok(Some(infra_pins_of_bundle(&reg.get_blob(&repo, layer)?)?))
        })();
        match found {
            Ok(Some(pins)) if !pins.is_empty() => {
                eprintln!("    the infrastructure pins of the published bundle {version} on `{}`", r.name);
                return Some(pins);
            }
            Ok(_) => {}
            Err(e) => eprintln!("    `{}`: no published bundle {version} read ({e:#})", r.name),
        }
    }
    None
}

/// The infrastructure images the compose files in `dir` name (not the release's own).
pub fn infra_images(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (rel, data) in files(dir)? {
        if !rel.ends_with(".yml") {
            continue;
        }
        let text = String::from_utf8(data).with_context(|| format!("{rel} is not UTF-8"))?;
        for line in text.lines() {
            if let Some((_, image)) = line.split_once("image: ")
                && !image.trim().starts_with("${OPENIM_REGISTRY")
                && !out.contains(&image.trim().to_owned())
            {
                out.push(image.trim().to_owned());
            }
        }
    }
    Ok(out)
}

/// The digests of the infrastructure images the compose files name (`mariadb:11.4`, …), as the
/// registry serves them now (a `HEAD` of each tag: no pull is spent).
pub fn resolve_infra(images: &[String], insecure: bool) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for image in images {
        let (host, repo, tag) = image_ref(image)?;
        let mut reg = crate::registry::Registry::new(&host, None, insecure)?;
        let digest =
            reg.manifest_digest(&repo, &tag)?.with_context(|| format!("{host}/{repo}:{tag} does not exist"))?;
        eprintln!("    {image} -> {digest}");
        out.insert(image.clone(), digest);
    }
    Ok(out)
}

/// `image` (`redis:7.2`, `apache/kafka:3.9.1`, `ghcr.io/x/y:1`) as registry host, repository
/// and tag, the way Docker reads it: no host means Docker Hub, and an official image there lives
/// under `library/`.
pub fn image_ref(image: &str) -> anyhow::Result<(String, String, String)> {
    let (host, path) = match image.split_once('/') {
        Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => (h.to_owned(), rest.to_owned()),
        _ => ("docker.io".to_owned(), image.to_owned()),
    };
    let path = if host == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
    let (repo, tag) = path.rsplit_once(':').with_context(|| format!("`{image}` has no tag"))?;
    Ok((host, repo.to_owned(), tag.to_owned()))
}

/// `Chart.yaml` with its top-level `version` and `appVersion` replaced, comments kept.
fn stamp_chart(text: &str, version: &str, app_version: &str) -> anyhow::Result<String> {
    let mut seen = (false, false);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with("version:") {
            out.push_str(&format!("version: {version}\n"));
            seen.0 = true;
        } else if line.starts_with("appVersion:") {
            out.push_str(&format!("appVersion: \"{app_version}\"\n"));
            seen.1 = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    match seen {
        (true, true) => Ok(out),
        (false, _) => bail!("no top-level `version:` line to stamp"),
        (_, false) => bail!("no top-level `appVersion:` line to stamp"),
    }
}

/// The compose bundle: `compose/` (with `.env` stamped, and every image pinned by digest when
/// `pins` has any) and `config/`, under `openim-compose/`.
pub fn compose_bundle(
    compose_dir: &Path,
    config_dir: &Path,
    version: &str,
    registry: &str,
    image_tag: &str,
    mtime: u64,
    pins: &Pins,
) -> anyhow::Result<Artifact> {
    let root = "openim-compose";
    let mut entries = Vec::new();
    let mut has_env = false;
    for (rel, data) in files(compose_dir)? {
        let data = if rel == ".env" {
            has_env = true;
            stamp_env(&String::from_utf8(data).context("compose/.env is not UTF-8")?, registry, image_tag)
                .with_context(|| compose_dir.join(".env").display().to_string())?
                .into_bytes()
        } else if rel.ends_with(".yml") && !pins.images.is_empty() {
            let text = String::from_utf8(data).with_context(|| format!("compose/{rel} is not UTF-8"))?;
            pin_compose(&text, pins).with_context(|| compose_dir.join(&rel).display().to_string())?.into_bytes()
        } else {
            data
        };
        entries.push(Entry::File { path: format!("{root}/{rel}"), mode: 0o644, data });
    }
    if !has_env {
        bail!("{}: no .env to stamp", compose_dir.display());
    }
    for (rel, data) in files(config_dir)? {
        entries.push(Entry::File { path: format!("{root}/config/{rel}"), mode: 0o644, data });
    }
    let package = oci::layer(entries, mtime)?.gz;
    let annotations = BTreeMap::from([
        ("org.opencontainers.image.title", root.to_owned()),
        ("org.opencontainers.image.version", version.to_owned()),
        ("org.opencontainers.image.created", crate::image::rfc3339(mtime as i64)),
    ]);
    Artifact::new(Kind::Compose, format!("{root}-{version}.tar.gz"), package, None, annotations)
}

/// `.env` with `OPENIM_REGISTRY`, `OPENIM_VERSION` and `OPENIM_CONFIG` (the bundle's `./config`)
/// set; other lines kept.
pub(crate) fn stamp_env(text: &str, registry: &str, image_tag: &str) -> anyhow::Result<String> {
    let values = [("OPENIM_REGISTRY", registry), ("OPENIM_VERSION", image_tag), ("OPENIM_CONFIG", "./config")];
    let mut seen = [false; 3];
    let mut out = String::new();
    for line in text.lines() {
        match values.iter().position(|(key, _)| line.strip_prefix(key).is_some_and(|rest| rest.starts_with('='))) {
            Some(i) => {
                out.push_str(&format!("{}={}\n", values[i].0, values[i].1));
                seen[i] = true;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        bail!("no {}= line to stamp", values[i].0);
    }
    Ok(out)
}

/// Every file under `dir` as (relative path, bytes), sorted.
pub(crate) fn files(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir)?.to_str().context("non-UTF-8 file name")?.to_owned();
                let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                out.push((rel, data));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
