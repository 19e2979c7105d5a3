//! The release's SBOM: CycloneDX 1.5 JSON of the `openim` binary (the one binary every image
//! runs), for linux/amd64 and linux/arm64.
//!
//! The Rust crates come from `cargo cyclonedx` (the CycloneDX project's generator, run for each
//! target with the build's features, build-only dependencies left out). The C libraries built
//! from source into the static binary are added as components of their own, with the versions
//! the build compiles (read from the crates that vendor them) and CPEs, so scanners match their
//! advisories: librdkafka (rdkafka-sys), OpenSSL (openssl-src), SQLite (libsqlite3-sys) and zlib
//! (libz-sys). Paths of the checkout are made relative and the timestamp is the commit's, so the
//! same commit gives the same bytes.
//!
//! It is attached to every image index as an OCI 1.1 referrer (artifact type
//! `application/vnd.cyclonedx+json`), written into the release assets and the offline bundle, and
//! its digest is in the signed payload of each image's signature.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::image::ImageArch;
use crate::oci;
use crate::push::{Item, MANIFEST_TYPE, Manifest, Source, Takes};

pub const SBOM_TYPE: &str = "application/vnd.cyclonedx+json";
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const FILE_NAME: &str = "openim.cdx.json";

/// The SBOM of the `openim` binary for every arch, as canonical JSON.
pub fn generate(root: &Path, created: i64) -> anyhow::Result<Vec<u8>> {
    let (tool, path) = crate::build::find_tool("cargo-cyclonedx", "cargo xtask setup cross")?;
    let mut merged: Option<serde_json::Value> = None;
    for arch in ImageArch::ALL {
        let doc = cyclonedx(root, &tool, &path, arch, created)?;
        merged = Some(match merged {
            None => doc,
            Some(base) => merge(base, doc)?,
        });
    }
    let mut bom = merged.context("no arch")?;
    bom["metadata"]["properties"] = serde_json::json!(
        ImageArch::ALL
            .iter()
            .map(|a| serde_json::json!({ "name": "cdx:rustc:sbom:target:triple", "value": a.triple() }))
            .collect::<Vec<_>>()
    );
    add_c_libraries(root, &mut bom)?;
    // Paths of this checkout become relative to it.
    let checkout = format!("file://{}", std::fs::canonicalize(root)?.display());
    let text = serde_json::to_string(&bom)?.replace(&checkout, "file://.");
    oci::canonical_json(&serde_json::from_str::<serde_json::Value>(&text)?)
}

/// `cargo cyclonedx` for `arch`: the document of the `openim` package.
fn cyclonedx(
    root: &Path,
    tool: &Path,
    path: &std::ffi::OsStr,
    arch: ImageArch,
    created: i64,
) -> anyhow::Result<serde_json::Value> {
    // It writes a file next to every workspace member's Cargo.toml: a name of our own, removed.
    let name = format!(".openim-sbom-{}-{}", std::process::id(), arch.name());
    let out = Command::new(tool)
        .arg("cyclonedx")
        .args(["--manifest-path", "crates/openim/Cargo.toml", "--format", "json", "--spec-version", "1.5"])
        .args(["--target", arch.triple(), "--no-build-deps", "--override-filename", &name, "-q"])
        .env("PATH", path)
        .env("SOURCE_DATE_EPOCH", created.to_string())
        .current_dir(root)
        .output()
        .context("run cargo cyclonedx")?;
    let file = root.join("crates/openim").join(format!("{name}.json"));
    let doc = std::fs::read(&file);
    remove_generated(root, &name);
    if !out.status.success() {
        bail!("cargo cyclonedx --target {} failed: {}", arch.triple(), String::from_utf8_lossy(&out.stderr));
    }
    let doc = doc.with_context(|| format!("cargo cyclonedx wrote no {}", file.display()))?;
    serde_json::from_slice(&doc).with_context(|| file.display().to_string())
}

/// Removes the files named `<name>.json` that `cargo cyclonedx` wrote into the workspace members.
fn remove_generated(root: &Path, name: &str) {
    let members = std::fs::read_dir(root.join("crates")).into_iter().flatten().flatten().map(|e| e.path());
    for dir in members.chain([root.join("xtask")]) {
        let _ = std::fs::remove_file(dir.join(format!("{name}.json")));
    }
}

/// `base` with the components and dependencies of `other` it lacks.
fn merge(mut base: serde_json::Value, other: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    for key in ["components", "dependencies"] {
        let id = if key == "components" { "bom-ref" } else { "ref" };
        let have: std::collections::BTreeSet<String> =
            base[key].as_array().into_iter().flatten().filter_map(|c| c[id].as_str().map(str::to_owned)).collect();
        let extra: Vec<serde_json::Value> = other[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c[id].as_str().is_some_and(|r| !have.contains(r)))
            .cloned()
            .collect();
        base[key].as_array_mut().with_context(|| format!("an SBOM without {key}"))?.extend(extra);
    }
    Ok(base)
}

/// A C library built from source into the binary, by the crate that vendors it.
struct CLibrary {
    name: &'static str,
    /// The crate whose build compiles it.
    builder: &'static str,
    /// The crate of the SBOM that links it (the builder, or the crate that uses a build-only builder).
    linked_by: &'static str,
    cpe_vendor: &'static str,
    /// How to read its version: from the builder's version (`+<version>`) or a header.
    version: fn(&semver::Version, &Path) -> anyhow::Result<String>,
}

fn build_metadata(v: &semver::Version, _: &Path) -> anyhow::Result<String> {
    if v.build.is_empty() {
        bail!("{v} carries no +<library version>");
    }
    Ok(v.build.to_string())
}

/// `#define <name> "<version>"` in a header of the crate's sources.
fn header_define(dir: &Path, header: &str, define: &str) -> anyhow::Result<String> {
    let path = dir.join(header);
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("#define ")?.trim_start().strip_prefix(define)?;
            Some(rest.trim().trim_matches('"').to_owned())
        })
        .with_context(|| format!("{}: no #define {define}", path.display()))
}

const C_LIBRARIES: [CLibrary; 4] = [
    CLibrary {
        name: "librdkafka",
        builder: "rdkafka-sys",
        linked_by: "rdkafka-sys",
        cpe_vendor: "confluent",
        version: build_metadata,
    },
    CLibrary {
        name: "openssl",
        builder: "openssl-src",
        linked_by: "openssl-sys",
        cpe_vendor: "openssl",
        version: build_metadata,
    },
    CLibrary {
        name: "sqlite",
        builder: "libsqlite3-sys",
        linked_by: "libsqlite3-sys",
        cpe_vendor: "sqlite",
        version: |_, dir| header_define(dir, "sqlite3/sqlite3.h", "SQLITE_VERSION"),
    },
    CLibrary {
        name: "zlib",
        builder: "libz-sys",
        linked_by: "libz-sys",
        cpe_vendor: "zlib",
        version: |_, dir| header_define(dir, "src/zlib/zlib.h", "ZLIB_VERSION"),
    },
];

/// Adds the C libraries as components, each a dependency of the crate that links it.
fn add_c_libraries(root: &Path, bom: &mut serde_json::Value) -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .context("run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"].as_array().context("cargo metadata without packages")?;
    for lib in &C_LIBRARIES {
        let pkg = packages
            .iter()
            .find(|p| p["name"] == lib.builder)
            .with_context(|| format!("{} (which builds {}) is not a dependency", lib.builder, lib.name))?;
        let version: semver::Version = pkg["version"].as_str().unwrap_or("").parse()?;
        let manifest = Path::new(pkg["manifest_path"].as_str().unwrap_or(""));
        let dir = manifest.parent().context("manifest path")?;
        let lib_version = (lib.version)(&version, dir).with_context(|| format!("the version of {}", lib.name))?;
        let bom_ref = format!("c:{}@{lib_version}", lib.name);
        let linker = bom["components"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == lib.linked_by)
            .and_then(|c| c["bom-ref"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("{} is not in the SBOM", lib.linked_by))?;
        let description =
            format!("C library, built from source by the {} crate {version} and linked statically", lib.builder);
        bom["components"].as_array_mut().context("components")?.push(serde_json::json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": lib.name,
            "version": lib_version,
            "description": description,
            "scope": "required",
            "purl": format!("pkg:generic/{}@{lib_version}", lib.name),
            "cpe": format!("cpe:2.3:a:{}:{}:{lib_version}:*:*:*:*:*:*:*", lib.cpe_vendor, lib.name),
        }));
        let deps = bom["dependencies"].as_array_mut().context("dependencies")?;
        match deps.iter_mut().find(|d| d["ref"] == linker.as_str()) {
            Some(d) => match d["dependsOn"].as_array_mut() {
                Some(list) => list.push(bom_ref.into()),
                None => d["dependsOn"] = serde_json::json!([bom_ref]),
            },
            None => deps.push(serde_json::json!({ "ref": linker, "dependsOn": [bom_ref] })),
        }
    }
    Ok(())
}

/// The referrer that attaches `sbom` to the image index `subject` (its bytes) in `image`'s
/// repository: the empty config, the SBOM as its one layer.
pub fn referrer(image: &str, subject: &[u8], sbom: &[u8], created: &str) -> anyhow::Result<Item> {
    let empty = b"{}".to_vec();
    let manifest = oci::canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": SBOM_TYPE,
        "config": { "mediaType": EMPTY_TYPE, "digest": oci::sha256(&empty), "size": 2 },
        "layers": [{
            "mediaType": SBOM_TYPE,
            "digest": oci::sha256(sbom),
            "size": sbom.len(),
            "annotations": { "org.opencontainers.image.title": FILE_NAME },
        }],
        "subject": { "mediaType": crate::push::INDEX_TYPE, "digest": oci::sha256(subject), "size": subject.len() },
        "annotations": { "org.opencontainers.image.created": created },
    }))?;
    Ok(Item {
        needs: Takes::Referrers,
        what: "sbom".into(),
        repository: image.to_owned(),
        blobs: vec![(oci::sha256(&empty), Source::Bytes(empty)), (oci::sha256(sbom), Source::Bytes(sbom.to_vec()))],
        manifests: vec![Manifest::new(MANIFEST_TYPE, manifest)?],
        tags: Vec::new(),
        subject: Some(oci::sha256(subject)),
    })
}

/// Checks an SBOM: CycloneDX, describing `openim`, with the C libraries the binary links;
/// returns how many components it lists.
pub fn check(sbom: &[u8]) -> anyhow::Result<usize> {
    let doc: serde_json::Value = serde_json::from_slice(sbom).context("the SBOM is not JSON")?;
    if doc["bomFormat"] != "CycloneDX" {
        bail!("the SBOM is not CycloneDX (bomFormat {})", doc["bomFormat"]);
    }
    if doc["metadata"]["component"]["name"] != "openim" {
        bail!("the SBOM describes {}, not openim", doc["metadata"]["component"]["name"]);
    }
    let components = doc["components"].as_array().context("the SBOM lists no components")?;
    for lib in &C_LIBRARIES {
        if !components.iter().any(|c| c["name"] == lib.name && c["type"] == "library") {
            bail!("the SBOM does not list {}", lib.name);
        }
    }
    Ok(components.len())
}

#[cfg(test)]
pub(crate) mod tests;
