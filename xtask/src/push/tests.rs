//! Pushes to real registries: Debian's `docker-registry` (CNCF distribution) with htpasswd auth,
//! two of them standing in for two providers, started per test. `.ci/run` installs it with
//! skopeo (the independent check) and htpasswd.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::image::{self, ImageArch};
use crate::testing::{PASSWORD, TestRegistry, USER, config, creds};

/// Assembles every service for both arches into `dir`, tagged `tag`, with binaries whose
/// content depends on `flavour`.
fn images(dir: &Path, flavour: &str, tag: &str) -> Layout {
    let bins = ImageArch::ALL
        .iter()
        .map(|a| {
            let p = dir.join(format!("bin-{flavour}-{}", a.name()));
            let payload = format!("{flavour}{}", a.name()).repeat(5000);
            std::fs::write(&p, image::tests::fake_binary(*a, payload.as_bytes())).unwrap();
            (*a, p)
        })
        .collect();
    let meta = image::tests::meta();
    let layout = Layout::create(&dir.join(format!("oci-{flavour}"))).unwrap();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    image::assemble(&layout, &bins, &config, &meta, tag).unwrap();
    layout
}

fn tags() -> Vec<String> {
    ["1.2.3", "v1.2.3", "1.2", "1", "sha-860c190", "latest"].map(String::from).to_vec()
}

fn skopeo_raw(reg: &TestRegistry, image: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", &format!("{USER}:{PASSWORD}")])
        .arg(format!("docker://{}/openimsdk/{image}", reg.host()))
        .output()
        .expect("skopeo (Debian package; .ci/run installs it)");
    assert!(out.status.success(), "skopeo inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn all_services_reach_two_registries_and_a_second_push_uploads_nothing() {
    let (a, b) = (TestRegistry::start(), TestRegistry::start());
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let cfg = config(&[&a, &b]);

    let first = push_all(&layout, &cfg, &[], "1.2.3", &tags(), false, &creds).unwrap();
    assert_eq!(first.len(), 2);
    let services = image::SERVICES.len() as u64;
    for p in &first {
        // 3 layers per arch, of which base and config are shared by both arches, plus one
        // config per service and arch: each distinct blob crosses the wire once per registry.
        assert_eq!(p.stats.blobs_uploaded, 4 + 2 * services, "{}: {:?}", p.registry, p.stats);
        assert!(p.stats.blobs_mounted >= 4 * (services - 1), "layers are mounted across repositories: {:?}", p.stats);
        assert_eq!(p.images.len() as u64, services);
    }

    // An independent client sees a two-platform index under each tag.
    for reg in [&a, &b] {
        for tag in ["1.2.3", "latest", "sha-860c190"] {
            let index = skopeo_raw(reg, &format!("openim-api:{tag}"));
            assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
            let platforms: Vec<String> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m["platform"]["os"].as_str().unwrap(),
                        m["platform"]["architecture"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{tag}");
        }
    }

    // The same commit again: nothing uploaded, nothing mounted, no tag moved.
    let second = push_all(&layout, &cfg, &[], "1.2.3", &tags(), false, &creds).unwrap();
    for p in &second {
        assert_eq!((p.stats.blobs_uploaded, p.stats.bytes_uploaded, p.stats.blobs_mounted), (0, 0, 0), "{:?}", p.stats);
        assert_eq!(p.images, first[0].images, "same digests");
    }
}

#[test]
fn a_release_tag_never_moves_without_force() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&[&reg]);
    let original = images(tmp.path(), "one", "1.2.3");
    push_all(&original, &cfg, &[], "1.2.3", &tags(), false, &creds).unwrap();

    let changed = images(tmp.path(), "two", "1.2.3");
    let e = format!("{:#}", push_all(&changed, &cfg, &[], "1.2.3", &tags(), false, &creds).unwrap_err());
    assert!(e.contains("never moves") && e.contains(":1.2.3"), "{e}");
    // Refused before anything was written: the tag still names the original.
    let api = original.refs().unwrap()["openim-api:1.2.3"].digest().to_string();
    let mut client = Registry::new(&reg.host(), creds(&cfg.registries[0]).unwrap(), true).unwrap();
    assert_eq!(client.manifest_digest("openimsdk/openim-api", "1.2.3").unwrap(), Some(api));

    // Floating tags may move; with --force the release tag does too.
    let floating: Vec<String> = ["1.2", "1", "latest", "main"].map(String::from).to_vec();
    push_all(&changed, &cfg, &[], "1.2.3", &floating, false, &creds).unwrap();
    push_all(&changed, &cfg, &[], "1.2.3", &tags(), true, &creds).unwrap();
    let moved = changed.refs().unwrap()["openim-api:1.2.3"].digest().to_string();
    assert_eq!(client.manifest_digest("openimsdk/openim-api", "1.2.3").unwrap(), Some(moved));
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "t");
    let bad =
        |_: &release::Registry| -> anyhow::Result<Option<(String, String)>> { Ok(Some((USER.into(), "wrong".into()))) };
    let e = format!("{:#}", push_all(&layout, &config(&[&reg]), &[], "t", &["t".into()], false, &bad).unwrap_err());
    assert!(e.contains("provider0") && e.contains("401"), "{e}");
}

#[test]
fn release_tags_are_full_versions_only() {
    for t in ["1.2.3", "v1.2.3", "1.2.3-rc.1", "v0.1.0"] {
        assert!(is_release_tag(t), "{t}");
    }
    for t in ["1.2", "1", "latest", "main", "sha-860c190", "release-v1.2", "nightly"] {
        assert!(!is_release_tag(t), "{t}");
    }
}
