//! The offline bundle, loaded by its own `load.sh` into a real registry with skopeo.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::image::ImageArch;
use crate::testing::{PASSWORD, TestRegistry, USER};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Images of both arches (from stand-in binaries) under `tag`, and what was assembled.
fn images(dir: &Path, tag: &str) -> (Layout, crate::image::Assembled) {
    let bins: BTreeMap<_, _> = ImageArch::ALL
        .iter()
        .map(|a| {
            let p = dir.join(a.name());
            std::fs::write(&p, crate::image::tests::fake_binary(*a, a.name().as_bytes())).unwrap();
            (*a, p)
        })
        .collect();
    let layout = Layout::create(&dir.join("oci")).unwrap();
    let meta = crate::image::tests::meta();
    let assembled = crate::image::assemble(&layout, &bins, &root().join("config"), &meta, tag).unwrap();
    (layout, assembled)
}

/// Every service image goes into a registry through the bundle's `load.sh` (skopeo, both
/// arches), with the digests the release plan lists; the bundle holds the compose files with
/// `.env` naming those images, and it is reproducible.
#[test]
fn the_offline_bundle_loads_into_a_registry_with_the_plan_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, assembled) = images(dir.path(), "1.2.3");
    let sbom = crate::sbom::tests::sbom();
    let (name, tar) =
        bundle(&layout, &root().join("compose"), &root().join("config"), 1_700_000_000, None, Some(sbom)).unwrap();
    assert_eq!(name, "openim-offline-1.2.3");
    let (_, again) =
        bundle(&layout, &root().join("compose"), &root().join("config"), 1_700_000_000, None, Some(sbom)).unwrap();
    assert_eq!(oci::sha256(&tar), oci::sha256(&again), "reproducible");

    let unpacked = dir.path().join("unpacked");
    tar::Archive::new(&tar[..]).unpack(&unpacked).unwrap();
    let b = unpacked.join(&name);
    let env = std::fs::read_to_string(b.join(".env")).unwrap();
    assert!(env.contains("\nOPENIM_REGISTRY=localhost/openim\n") && env.contains("\nOPENIM_VERSION=1.2.3\n"), "{env}");
    for f in ["docker-compose.yml", "standalone.yml", "config/share.yml", "README.txt", "load.sh", "images.tar"] {
        assert!(b.join(f).is_file(), "{f} in the bundle");
    }
    assert_eq!(std::fs::read(b.join("openim.cdx.json")).unwrap(), sbom, "the release's SBOM");

    let reg = TestRegistry::start();
    let dest = format!("docker://{}/openimsdk", reg.host());
    let creds = format!("{USER}:{PASSWORD}");
    let out = Command::new("sh")
        .arg(b.join("load.sh"))
        .args([&dest, "--quiet", "--dest-tls-verify=false", "--dest-creds", &creds])
        .output()
        .unwrap();
    assert!(out.status.success(), "load.sh: {}", String::from_utf8_lossy(&out.stderr));

    for (svc, index) in &assembled.indexes {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", "--creds", &creds])
            .arg(format!("docker://{}/openimsdk/openim-{svc}:1.2.3", reg.host()))
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo inspect {svc}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(&oci::sha256(&out.stdout), index, "openim-{svc}: the plan's index digest");
        let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let arches: Vec<&str> = raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["platform"]["architecture"].as_str())
            .collect();
        assert_eq!(arches, ["amd64", "arm64"], "openim-{svc}");
    }
}

/// Blobs the images do not use (left by an earlier build in the same layout) stay out.
#[test]
fn the_bundle_holds_only_what_its_images_use() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = images(dir.path(), "1.2.3");
    let (_, clean) = bundle(&layout, &root().join("compose"), &root().join("config"), 0, None, None).unwrap();
    layout.put(oci_spec::image::MediaType::ImageLayerGzip, b"stale layer").unwrap();
    let (_, with_stale) = bundle(&layout, &root().join("compose"), &root().join("config"), 0, None, None).unwrap();
    assert_eq!(oci::sha256(&clean), oci::sha256(&with_stale));

    // Two tags in one layout: which one to bundle is not guessed, and the other stays out.
    let (layout, _) = images(dir.path(), "1.2.4");
    let err = bundle(&layout, &root().join("compose"), &root().join("config"), 0, None, None).unwrap_err();
    assert!(err.to_string().contains("--tag"), "{err}");
    let (_, older) = bundle(&layout, &root().join("compose"), &root().join("config"), 0, Some("1.2.3"), None).unwrap();
    assert_eq!(oci::sha256(&clean), oci::sha256(&older));
    let err = bundle(&layout, &root().join("compose"), &root().join("config"), 0, Some("9.9.9"), None).unwrap_err();
    assert!(err.to_string().contains("no images tagged 9.9.9"), "{err}");
}
