//! Writing OCI content reproducibly: layer tarballs, canonical JSON, and an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) that skopeo, podman and registries read.
//!
//! The types are `oci-spec`'s; only the bytes are ours. Every blob is written byte-for-byte the
//! same for the same inputs: tar entries sorted, owners and times fixed, gzip with no timestamp
//! (flate2's default header), and JSON in canonical form (`olpc-cjson`: sorted keys, no
//! whitespace), because `oci-spec` keeps labels and annotations in `HashMap`s whose order varies.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use oci_spec::image::{Descriptor, DescriptorBuilder, Digest, ImageIndex, ImageIndexBuilder, MediaType};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The SHA-256 of `bytes` in lower-case hex (as `sha256sum` prints it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `value` as canonical JSON.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).context("serialize canonical JSON")?;
    Ok(out)
}

/// One entry of a layer.
pub enum Entry {
    Dir { path: String, mode: u32, uid: u64 },
    File { path: String, mode: u32, data: Vec<u8> },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } => path,
        }
    }
}

/// A layer: its uncompressed digest (the image config's `diff_id`) and the gzipped blob.
pub struct Layer {
    pub diff_id: String,
    pub gz: Vec<u8>,
}

/// Builds a layer from `entries` (sorted here by path), all owned by root unless a directory
/// says otherwise, all with modification time `mtime` (seconds).
pub fn layer(entries: Vec<Entry>, mtime: u64) -> anyhow::Result<Layer> {
    let raw = tar(entries, mtime)?;
    let diff_id = sha256(&raw);
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw)?;
    Ok(Layer { diff_id, gz: gz.finish()? })
}

/// A reproducible tar of `entries` (sorted here by path), all owned by root unless a directory
/// says otherwise, all with modification time `mtime` (seconds).
pub fn tar(mut entries: Vec<Entry>, mtime: u64) -> anyhow::Result<Vec<u8>> {
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for e in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(mtime);
        h.set_gid(0);
        match e {
            Entry::Dir { path, mode, uid } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*uid);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(0);
                h.set_size(data.len() as u64);
                tar.append_data(&mut h, path, data.as_slice())?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

/// An OCI image layout on disk.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// Opens (creating if needed) the layout at `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("create {}", blobs.display()))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    /// Stores `bytes` (unless a blob with that digest is there) and describes it.
    pub fn put(&self, media_type: MediaType, bytes: &[u8]) -> anyhow::Result<Descriptor> {
        let digest = sha256(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)?;
        }
        descriptor(media_type, bytes.len() as u64, &digest)
    }

    /// Stores `value` as canonical JSON.
    pub fn put_json<T: serde::Serialize>(&self, media_type: MediaType, value: &T) -> anyhow::Result<Descriptor> {
        self.put(media_type, &canonical_json(value)?)
    }

    /// Writes `index.json`, listing `refs` (reference name → descriptor), sorted by name.
    pub fn write_index(&self, refs: &BTreeMap<String, Descriptor>) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("index.json"), index_json(refs)?)?;
        Ok(())
    }

    /// The reference names of `index.json` and what they point at.
    pub fn refs(&self) -> anyhow::Result<BTreeMap<String, Descriptor>> {
        let index = ImageIndex::from_file(self.dir.join("index.json"))?;
        let mut out = BTreeMap::new();
        for d in index.manifests() {
            let Some(name) = d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.ref.name")) else {
                bail!("{}: a manifest without a ref.name", self.dir.display());
            };
            out.insert(name.clone(), d.clone());
        }
        Ok(out)
    }
}

/// The `index.json` of a layout listing `refs` (reference name → descriptor), sorted by name.
pub fn index_json(refs: &BTreeMap<String, Descriptor>) -> anyhow::Result<Vec<u8>> {
    let manifests: Vec<Descriptor> = refs
        .iter()
        .map(|(name, d)| {
            let mut d = d.clone();
            let mut ann = d.annotations().clone().unwrap_or_default();
            ann.insert("org.opencontainers.image.ref.name".into(), name.clone());
            d.set_annotations(Some(ann));
            d
        })
        .collect();
    let index: ImageIndex = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    canonical_json(&index)
}

pub fn descriptor(media_type: MediaType, size: u64, digest: &str) -> anyhow::Result<Descriptor> {
    let digest: Digest = digest.parse().with_context(|| format!("digest {digest}"))?;
    Ok(DescriptorBuilder::default().media_type(media_type).size(size).digest(digest).build()?)
}
