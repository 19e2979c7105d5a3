use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::*;

/// A minimal ELF header for `arch`, followed by some bytes.
pub(crate) fn fake_binary(arch: ImageArch, payload: &[u8]) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    let machine: u16 = if arch == ImageArch::Amd64 { 62 } else { 183 };
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf.extend_from_slice(payload);
    elf
}

pub(crate) fn meta() -> Meta {
    Meta {
        version: "1.2.3".into(),
        revision: "860c1904a1ce19322e91ac35af1ab07466440c37".into(),
        created: 1_700_000_000,
        source: "https://example.com/openim-rs".into(),
        licenses: "Apache-2.0".into(),
        image_prefix: "openim-".into(),
    }
}

fn binaries(dir: &Path) -> BTreeMap<ImageArch, PathBuf> {
    ImageArch::ALL
        .iter()
        .map(|a| {
            let p = dir.join(format!("openim-{}", a.name()));
            std::fs::write(&p, fake_binary(*a, a.name().repeat(1000).as_bytes())).unwrap();
            (*a, p)
        })
        .collect()
}

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn read_json<T: serde::de::DeserializeOwned>(layout: &Layout, digest: &str) -> T {
    serde_json::from_slice(&std::fs::read(layout.blob_path(digest)).unwrap()).unwrap()
}

#[test]
fn the_same_inputs_give_the_same_digests_and_services_share_their_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let bins = binaries(tmp.path());
    let a = Layout::create(&tmp.path().join("a")).unwrap();
    let b = Layout::create(&tmp.path().join("b")).unwrap();
    let first = assemble(&a, &bins, &config_dir(), &meta(), "1.2.3").unwrap();
    let second = assemble(&b, &bins, &config_dir(), &meta(), "1.2.3").unwrap();
    assert_eq!(first.indexes, second.indexes, "reproducible");
    assert_eq!(std::fs::read(a.dir.join("index.json")).unwrap(), std::fs::read(b.dir.join("index.json")).unwrap());
    assert_eq!(first.indexes.len(), SERVICES.len());

    // A later commit time changes every digest.
    let c = Layout::create(&tmp.path().join("c")).unwrap();
    let later = assemble(&c, &bins, &config_dir(), &Meta { created: 1_700_000_001, ..meta() }, "1.2.3").unwrap();
    assert!(later.indexes.values().all(|d| !first.indexes.values().any(|x| x == d)));

    // Per arch: one set of layers for every service; only the config differs.
    for arch in ImageArch::ALL {
        let manifests: Vec<ImageManifest> = first.manifests.values().map(|m| read_json(&a, &m[arch.name()])).collect();
        let layers: Vec<_> = manifests.iter().map(|m| m.layers().clone()).collect();
        assert!(layers.windows(2).all(|w| w[0] == w[1]), "{} services share their layers", arch.name());
        assert_eq!(layers[0].len(), 3);
        let configs: std::collections::HashSet<_> = manifests.iter().map(|m| m.config().digest().to_string()).collect();
        assert_eq!(configs.len(), SERVICES.len(), "each service has its own config");
    }
    let amd: ImageManifest = read_json(&a, &first.manifests["api"]["amd64"]);
    let arm: ImageManifest = read_json(&a, &first.manifests["api"]["arm64"]);
    assert_eq!(amd.layers()[..2], arm.layers()[..2], "base and config layers are the same for both arches");
    assert_ne!(amd.layers()[2], arm.layers()[2]);
}

#[test]
fn images_run_the_service_as_non_root_with_its_ports_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(&tmp.path().join("oci")).unwrap();
    let out = assemble(&layout, &binaries(tmp.path()), &config_dir(), &meta(), "1.2.3").unwrap();

    let index: ImageIndex = read_json(&layout, &out.indexes["msggateway"]);
    let platforms: Vec<String> = index
        .manifests()
        .iter()
        .map(|m| {
            let p = m.platform().as_ref().unwrap();
            format!("{}/{}", p.os(), p.architecture())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let ann = index.annotations().as_ref().unwrap();
    assert_eq!(ann["org.opencontainers.image.title"], "openim-msggateway");
    assert_eq!(ann["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(ann["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");

    let manifest: ImageManifest = read_json(&layout, &out.manifests["msggateway"]["arm64"]);
    let config: ImageConfiguration = read_json(&layout, manifest.config().digest().as_ref());
    assert_eq!(config.architecture().to_string(), "arm64");
    let c = config.config().as_ref().unwrap();
    assert_eq!(c.user().as_deref(), Some("65532:65532"));
    assert_eq!(
        c.entrypoint().as_deref().unwrap(),
        ["/usr/local/bin/openim", "msggateway", "--config", "/etc/openim/config"]
    );
    let mut ports = c.exposed_ports().clone().unwrap();
    ports.sort();
    assert_eq!(ports, ["10001/tcp", "10140/tcp", "12140/tcp"]);
    let labels = c.labels().as_ref().unwrap();
    for key in ["source", "revision", "version", "created", "title", "licenses"] {
        assert!(labels.contains_key(&format!("org.opencontainers.image.{key}")), "label {key}");
    }
    assert_eq!(labels["org.opencontainers.image.revision"], "860c1904a1ce19322e91ac35af1ab07466440c37");

    // index.json names every service's index by reference.
    let refs = layout.refs().unwrap();
    assert_eq!(refs["openim-api:1.2.3"].digest().to_string(), out.indexes["api"]);
}

#[test]
fn layers_hold_the_files_owned_and_stamped_as_intended() {
    let layer = oci::layer(base_entries(), 1_700_000_000).unwrap();
    let raw = {
        use std::io::Read as _;
        let mut s = Vec::new();
        flate2::read::GzDecoder::new(layer.gz.as_slice()).read_to_end(&mut s).unwrap();
        s
    };
    assert_eq!(oci::sha256(&raw), layer.diff_id);
    let mut archive = tar::Archive::new(raw.as_slice());
    let mut seen = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(h.mtime().unwrap(), 1_700_000_000, "{path}");
        if path == "var/lib/openim/" {
            assert_eq!(h.uid().unwrap(), UID, "the data directory belongs to the service user");
        }
        seen.push(path);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "entries are sorted");
    assert!(seen.contains(&"etc/ssl/certs/ca-certificates.crt".to_owned()));
    assert!(ca_bundle().matches("BEGIN CERTIFICATE").count() > 100, "Mozilla's roots");
}

#[test]
fn a_binary_for_the_wrong_machine_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bins = binaries(tmp.path());
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, fake_binary(ImageArch::Amd64, b"x")).unwrap();
    bins.insert(ImageArch::Arm64, wrong.clone());
    let layout = Layout::create(&tmp.path().join("oci")).unwrap();
    let e = format!("{:#}", assemble(&layout, &bins, &config_dir(), &meta(), "t").unwrap_err());
    assert!(e.contains("wrong") && e.contains("not arm64"), "{e}");
    assert!(check_elf(b"#!/bin/sh\n", ImageArch::Amd64).is_err());
}

#[test]
fn the_exposed_ports_are_the_config_defaults() {
    for svc in SERVICES.iter().filter(|s| s.name != "standalone") {
        let text = std::fs::read_to_string(config_dir().join(format!("openim-{}.yml", svc.name))).unwrap();
        let ports: Vec<u16> = text
            .lines()
            .filter(|l| l.starts_with("listen:") || l.starts_with("rpc_listen:") || l.starts_with("admin_listen:"))
            .filter_map(|l| l.split('#').next()?.trim().rsplit(':').next()?.parse().ok())
            .collect();
        assert_eq!(svc.ports, ports.as_slice(), "openim-{}.yml", svc.name);
    }
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}
