//! Image signatures in the layout `cosign sign --key` writes and `cosign verify --key` reads (and
//! containers/image, so skopeo and podman, with a `sigstoreSigned` policy).
//!
//! For a manifest or index `sha256:<hex>` in a repository, the signature is an image of its own
//! in the same repository, tagged `sha256-<hex>.sig`:
//! - one layer of type `application/vnd.dev.cosign.simplesigning.v1+json`, the *payload*, which
//!   names the signed digest and the repository (`docker-reference`), with the ECDSA P-256
//!   signature of the payload's bytes (DER, base64) in its `dev.cosignproject.cosign/signature`
//!   annotation;
//! - an image config (`application/vnd.oci.image.config.v1+json`), which is why registries that
//!   store images only (Aliyun ACR Personal) take it, where an OCI 1.1 referrer is refused.
//!
//! Each index is signed, and so is each per-arch manifest in it: a client that pulls one
//! platform checks the signature of what it pulls (as `cosign sign --recursive` does). ECDSA
//! nonces are derived from the key and the message (RFC 6979), so the same image signed with the
//! same key gives the same signature image, and a re-run moves no `.sig` tag.
//!
//! The key: `OPENIM_SIGNING_KEY`, a P-256 private key in PEM (PKCS#8 `PRIVATE KEY` or SEC1
//! `EC PRIVATE KEY`; `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` makes one).
//! Its public key (`openssl pkey -pubout`) is what `cosign verify --key` and
//! `cargo xtask verify --key` take.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};

use crate::oci;
use crate::push::{Item, MANIFEST_TYPE, Manifest, Source, Takes};

pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const KEY_ENV: &str = "OPENIM_SIGNING_KEY";

/// A signing key, and the annotations it signs with every payload.
pub struct Signer {
    key: SigningKey,
    annotations: BTreeMap<String, String>,
}

impl Signer {
    /// The key in `OPENIM_SIGNING_KEY`, if set.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        match std::env::var(KEY_ENV) {
            Ok(pem) if !pem.trim().is_empty() => Self::from_pem(&pem).context(KEY_ENV).map(Some),
            _ => Ok(None),
        }
    }

    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = if pem.contains("BEGIN EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_pem(pem).map(SigningKey::from).context("not a P-256 SEC1 private key")?
        } else if pem.contains("BEGIN PRIVATE KEY") {
            SigningKey::from_pkcs8_pem(pem).context("not a P-256 PKCS#8 private key")?
        } else {
            bail!(
                "expected a PEM `PRIVATE KEY` or `EC PRIVATE KEY` (P-256); an encrypted cosign key must be exported first"
            );
        };
        Ok(Self { key, annotations: BTreeMap::new() })
    }

    /// Signs `key: value` into every payload (its `optional` object), as `cosign sign -a` does.
    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The public key in PEM (`PUBLIC KEY`), as `cosign verify --key` takes it.
    pub fn public_pem(&self) -> anyhow::Result<String> {
        Ok(self.key.verifying_key().to_public_key_pem(LineEnding::LF)?)
    }

    /// The signature image for `digest` in `repository` (`host/namespace/image`).
    pub fn signature(&self, repository: &str, image: &str, digest: &str) -> anyhow::Result<Item> {
        let payload = payload(repository, digest, &self.annotations)?;
        let sig: DerSignature = self.key.sign(&payload);
        let sig_b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
        let payload_digest = oci::sha256(&payload);
        let config = oci::canonical_json(&serde_json::json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{ "created": "0001-01-01T00:00:00Z" }],
            "os": "",
            "rootfs": { "type": "layers", "diff_ids": [payload_digest] },
            "config": {},
        }))?;
        let manifest = oci::canonical_json(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": { "mediaType": CONFIG_TYPE, "digest": oci::sha256(&config), "size": config.len() },
            "layers": [{
                "mediaType": PAYLOAD_TYPE,
                "digest": payload_digest,
                "size": payload.len(),
                "annotations": { SIGNATURE_ANNOTATION: sig_b64 },
            }],
        }))?;
        Ok(Item {
            needs: Takes::Images,
            what: "signature".into(),
            repository: image.to_owned(),
            blobs: vec![(oci::sha256(&config), Source::Bytes(config)), (payload_digest, Source::Bytes(payload))],
            manifests: vec![Manifest::new(MANIFEST_TYPE, manifest)?],
            tags: vec![signature_tag(digest)?],
            subject: None,
        })
    }
}

/// The tag of the signature of `digest`: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> anyhow::Result<String> {
    let hex = digest.strip_prefix("sha256:").with_context(|| format!("`{digest}` is not a sha256 digest"))?;
    Ok(format!("sha256-{hex}.sig"))
}

/// The simple-signing payload: what is signed. Keys in the order cosign writes them (which is
/// also sorted order); `optional` holds the annotations (`null` when there are none).
pub fn payload(repository: &str, digest: &str, annotations: &BTreeMap<String, String>) -> anyhow::Result<Vec<u8>> {
    let optional = if annotations.is_empty() { serde_json::Value::Null } else { serde_json::to_value(annotations)? };
    Ok(serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature",
        },
        "optional": optional,
    }))?)
}

/// A public key that checks signatures.
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        Ok(Self(VerifyingKey::from_public_key_pem(pem).context("not a P-256 `PUBLIC KEY` in PEM")?))
    }

    /// Checks a signature image's manifest and payload: the signature is over the payload with
    /// this key, and the payload names `digest` and `repository`. Returns the payload.
    pub fn check(
        &self,
        manifest: &[u8],
        payload: &[u8],
        repository: &str,
        digest: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let m: serde_json::Value = serde_json::from_slice(manifest).context("the signature manifest is not JSON")?;
        let layers = m["layers"].as_array().context("the signature manifest has no layers")?;
        let payload_digest = oci::sha256(payload);
        let mut problems = Vec::new();
        for layer in layers.iter().filter(|l| l["mediaType"] == PAYLOAD_TYPE) {
            if layer["digest"] != payload_digest.as_str() {
                continue;
            }
            let Some(sig) = layer["annotations"][SIGNATURE_ANNOTATION].as_str() else {
                problems.push("a payload layer without a signature".to_owned());
                continue;
            };
            let der = base64::engine::general_purpose::STANDARD.decode(sig).context("signature is not base64")?;
            let sig = DerSignature::from_bytes(&der).context("signature is not DER ECDSA")?;
            if let Err(e) = self.0.verify(payload, &sig) {
                problems.push(format!("the signature does not verify with this key ({e})"));
                continue;
            }
            let p: serde_json::Value = serde_json::from_slice(payload).context("the payload is not JSON")?;
            let signed = p["critical"]["image"]["docker-manifest-digest"].as_str().unwrap_or("");
            let identity = p["critical"]["identity"]["docker-reference"].as_str().unwrap_or("");
            if signed != digest {
                problems.push(format!("the payload signs {signed}, not {digest}"));
            } else if identity != repository {
                problems.push(format!("the payload names {identity}, not {repository}"));
            } else {
                return Ok(p);
            }
        }
        if problems.is_empty() {
            bail!("no signature layer carries the payload {payload_digest}");
        }
        bail!("{}", problems.join("; "))
    }
}

#[cfg(test)]
pub(crate) mod tests;
