//! `cargo xtask verify <image>`: what an operator checks on an image they pulled, from any of
//! the registries: the tag names an index with linux/amd64 and linux/arm64; the index and both
//! per-arch manifests carry a signature (cosign's `sha256-<hex>.sig` layout) that checks with the
//! release key and names this image's repository; and the SBOM whose digest the signature
//! carries is attached to the index (an OCI referrer, through the referrers API or its tag) or,
//! on a registry that stores images only (ACR Personal), is the file given with `--sbom` (the
//! release's `openim.cdx.json`).

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::registry::Registry;
use crate::sign::{PAYLOAD_TYPE, PublicKey, signature_tag};

/// `cargo xtask verify`.
#[derive(clap::Args)]
pub struct Verify {
    /// The image: `host/namespace/name:tag` or `…@sha256:<hex>` (`docker.io/…` for Docker Hub).
    image: String,
    /// The public key (PEM) the release was signed with.
    #[arg(long, default_value = "cosign.pub")]
    key: PathBuf,
    /// Plain HTTP (a local registry).
    #[arg(long)]
    insecure: bool,
    /// A username for registries that ask for one; the password is read from
    /// `OPENIM_VERIFY_PASSWORD`.
    #[arg(long)]
    username: Option<String>,
    /// The release's SBOM file (`openim.cdx.json`), for a registry that holds no SBOM.
    #[arg(long)]
    sbom: Option<PathBuf>,
}

/// What `verify` found.
#[derive(Debug)]
pub struct Verified {
    pub index: String,
    /// Platform → manifest digest.
    pub platforms: Vec<(String, String)>,
    /// The SBOM's digest, where it was found, and how many components it lists.
    pub sbom: (String, String, usize),
}

impl Verify {
    pub fn run(self) -> anyhow::Result<()> {
        let pem = std::fs::read_to_string(&self.key).with_context(|| format!("read {}", self.key.display()))?;
        let key = PublicKey::from_pem(&pem).with_context(|| self.key.display().to_string())?;
        let creds = match &self.username {
            Some(u) => Some((
                u.clone(),
                std::env::var("OPENIM_VERIFY_PASSWORD").context("--username needs OPENIM_VERIFY_PASSWORD")?,
            )),
            None => None,
        };
        let sbom = match &self.sbom {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("read {}", p.display()))?),
            None => None,
        };
        let v = verify(&self.image, &key, creds, self.insecure, sbom.as_deref())?;
        println!("{}: index {}", self.image, v.index);
        for (platform, digest) in &v.platforms {
            println!("  {platform}: {digest}");
        }
        println!("signatures: index and {} platforms check with {}", v.platforms.len(), self.key.display());
        println!("SBOM: {} ({} components), {}", v.sbom.0, v.sbom.2, v.sbom.1);
        Ok(())
    }
}

/// Checks `image` (see the module's documentation).
pub fn verify(
    image: &str,
    key: &PublicKey,
    credentials: Option<(String, String)>,
    insecure: bool,
    sbom_file: Option<&[u8]>,
) -> anyhow::Result<Verified> {
    let (host, rest) = image.split_once('/').with_context(|| format!("`{image}` is not host/namespace/name:tag"))?;
    let (repo, reference) = match rest.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => rest.rsplit_once(':').with_context(|| format!("`{image}` has no :tag or @digest"))?,
    };
    let repository = format!("{host}/{repo}");
    let mut reg = Registry::new(host, credentials, insecure)?;
    let bytes = reg.get_manifest(repo, reference)?.with_context(|| format!("{image}: no such manifest"))?;
    let index_digest = crate::oci::sha256(&bytes);
    if reference.starts_with("sha256:") && reference != index_digest {
        bail!("{image}: the registry sent a manifest whose digest is {index_digest}");
    }
    let index: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| format!("{image}: not JSON"))?;
    if index["mediaType"] != crate::push::INDEX_TYPE {
        bail!("{image}: {} is not an OCI image index (mediaType {})", index_digest, index["mediaType"]);
    }
    let mut platforms = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        let (os, arch) = (m["platform"]["os"].as_str().unwrap_or("?"), m["platform"]["architecture"].as_str());
        let digest = m["digest"].as_str().context("a manifest without a digest")?;
        platforms.push((format!("{os}/{}", arch.unwrap_or("?")), digest.to_owned()));
    }
    for want in ["linux/amd64", "linux/arm64"] {
        if !platforms.iter().any(|(p, _)| p == want) {
            let got: Vec<&str> = platforms.iter().map(|(p, _)| p.as_str()).collect();
            bail!("{image}: the index {index_digest} has no {want} (it has {})", got.join(", "));
        }
    }
    let digests = std::iter::once(("index".to_owned(), index_digest.clone())).chain(platforms.iter().cloned());
    let mut attested = None;
    for (what, digest) in digests {
        let payload = check_signature(&mut reg, repo, &repository, &digest, key)
            .with_context(|| format!("{image}: the signature of the {what} {digest}"))?;
        if what == "index" {
            attested = payload["optional"][SBOM_ANNOTATION].as_str().map(str::to_owned);
        }
    }
    let attested =
        attested.with_context(|| format!("{image}: the index's signature names no SBOM ({SBOM_ANNOTATION})"))?;
    let sbom =
        find_sbom(&mut reg, repo, &index_digest, &attested, sbom_file).with_context(|| format!("{image}: the SBOM"))?;
    Ok(Verified { index: index_digest, platforms, sbom })
}

/// The signed annotation naming the SBOM's digest.
pub const SBOM_ANNOTATION: &str = "dev.openim.sbom";

/// The SBOM of the index `digest`: attached to it (referrers API or tag), else `file`; its
/// digest must be `attested` and it must read as the release's SBOM.
fn find_sbom(
    reg: &mut Registry,
    repo: &str,
    digest: &str,
    attested: &str,
    file: Option<&[u8]>,
) -> anyhow::Result<(String, String, usize)> {
    // The attached SBOM whose layer is the signed one (an index may carry older ones too).
    let mut attached = None;
    let mut others = Vec::new();
    for d in reg.referrers(repo, digest)?.iter().filter(|d| d["artifactType"] == crate::sbom::SBOM_TYPE) {
        let m_digest = d["digest"].as_str().context("a referrer without a digest")?;
        let manifest = reg.get_manifest(repo, m_digest)?.with_context(|| format!("no manifest {m_digest}"))?;
        let m: serde_json::Value = serde_json::from_slice(&manifest)?;
        if m["subject"]["digest"] != digest {
            bail!("the referrer {m_digest} refers to {}, not {digest}", m["subject"]["digest"]);
        }
        let layer = m["layers"][0]["digest"].as_str().context("an SBOM referrer without a layer")?;
        if layer == attested {
            attached = Some((reg.get_blob(repo, layer)?, format!("attached to the index ({m_digest})")));
            break;
        }
        others.push(layer.to_owned());
    }
    let (bytes, from) = match (attached, file) {
        (Some(found), _) => found,
        (None, Some(file)) => (file.to_vec(), "the file given with --sbom".to_owned()),
        (None, None) if !others.is_empty() => {
            bail!(
                "the SBOMs attached to {digest} are {}, none of them {attested}, which the signature names",
                others.join(", ")
            )
        }
        (None, None) => bail!(
            "none is attached to {digest} on {} (a registry that stores images only): pass the release's {} \
             with --sbom",
            reg.host(),
            crate::sbom::FILE_NAME
        ),
    };
    let got = crate::oci::sha256(&bytes);
    if got != attested {
        bail!("{from} is {got}, but the signature names {attested}");
    }
    let components = crate::sbom::check(&bytes)?;
    Ok((got, from, components))
}

fn check_signature(
    reg: &mut Registry,
    repo: &str,
    repository: &str,
    digest: &str,
    key: &PublicKey,
) -> anyhow::Result<serde_json::Value> {
    let tag = signature_tag(digest)?;
    let manifest = reg.get_manifest(repo, &tag)?.with_context(|| format!("there is no {repository}:{tag}"))?;
    let m: serde_json::Value = serde_json::from_slice(&manifest).context("the signature manifest is not JSON")?;
    let mut last = None;
    for layer in m["layers"].as_array().into_iter().flatten().filter(|l| l["mediaType"] == PAYLOAD_TYPE) {
        let payload_digest = layer["digest"].as_str().context("a layer without a digest")?;
        let payload = reg.get_blob(repo, payload_digest)?;
        match key.check(&manifest, &payload, repository, digest) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{repository}:{tag} has no signature payload")))
}

#[cfg(test)]
mod tests;
