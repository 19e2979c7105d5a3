//! The release of `v1.2.3` end to end, against three local registries with htpasswd, one of them
//! configured like Aliyun ACR Personal (`classes: [image]`, which answers exactly ACR's
//! `403 DENIED: unknown manifest class`): all 13 images with both platforms reach all three,
//! signed; the chart, the compose bundle and the SBOM reach the other two (the SBOM as a referrer
//! through the referrers tag: CNCF distribution, like GHCR, has no referrers API); `verify`
//! passes from each registry, and so does a verifier we did not write (sigstore-rs, the Sigstore
//! project's Rust client); a second run uploads nothing and moves no tag; an image replaced under
//! its tag, with its old signatures copied next to it, fails both verifiers.
//!
//! (Debian's skopeo and podman would be the obvious second verifier, but Debian builds them
//! with sigstore signatures disabled: "Debian-local change: sigstore disabled".)

use std::path::Path;
use std::process::Command;

use super::*;
use crate::push::{Item, Takes, image_items, publish};
use crate::release::{ReleaseConfig, decide};
use crate::testing::{PASSWORD, TestRegistry, USER, config, creds};

/// sigstore-rs (through `cosign-check`, which `cargo xtask setup sign` installs) on `image`.
fn cosign_check(key: &Path, image: &str) -> Result<String, String> {
    let (tool, path) = crate::build::find_tool("cosign-check", "cargo xtask setup sign").unwrap();
    let out = Command::new(tool)
        .env("PATH", path)
        .env("COSIGN_CHECK_PASSWORD", PASSWORD)
        .arg("--key")
        .arg(key)
        .args(["--http", "--user", USER, image])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(text) }
}

fn cfg(full: &TestRegistry, acr: &TestRegistry, ghcr: &TestRegistry) -> ReleaseConfig {
    let mut cfg = config(&[full, acr, ghcr]);
    cfg.registries[1].takes = vec![Takes::Images];
    cfg.registries[1].note = Some("like ACR Personal".into());
    cfg
}

#[test]
fn a_release_reaches_three_registries_verifies_everywhere_and_repeats_as_a_no_op() {
    let (full, acr, ghcr) = (TestRegistry::start(), TestRegistry::images_only(), TestRegistry::start());
    let cfg = cfg(&full, &acr, &ghcr);
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");

    // What `cargo xtask release` does for the tag v1.2.3, with fake binaries.
    let ctx = crate::tags::GitContext {
        event: crate::tags::Event::Push,
        git_ref: "refs/tags/v1.2.3".into(),
        sha: "860c1904a1ce19322e91d3fc4a7d67e1e4b2e2b4".into(),
        repo_tags: vec!["v1.2.3".into()],
    };
    let tags = crate::tags::compute(&ctx).unwrap();
    let decision = decide(&ctx, &tags, &|_| Ok(0)).unwrap();
    let layout = crate::push::tests::images(tmp.path(), "one", &decision.image_tag);
    let assembled_indexes: std::collections::BTreeMap<String, String> = layout
        .refs()
        .unwrap()
        .iter()
        .map(|(name, d)| {
            (name.split_once(':').unwrap().0.trim_start_matches("openim-").to_owned(), d.digest().to_string())
        })
        .collect();
    let infra = crate::artifact::infra_images(&root.join("compose")).unwrap();
    let pins = crate::artifact::Pins {
        images: assembled_indexes,
        infra: infra.iter().map(|i| (i.clone(), crate::oci::sha256(i.as_bytes()))).collect(),
    };
    let meta = crate::image::tests::meta();
    let artifacts =
        crate::release::release_artifacts(&root, &cfg, &meta, "1.2.3", &decision.image_tag, &pins, tmp.path()).unwrap();
    let sbom = crate::sbom::tests::sbom();
    let items = crate::release::items(&layout, &cfg, &decision, sbom, "2023-11-14T22:13:20Z", &artifacts).unwrap();
    let (private, public) = crate::sign::tests::new_key();
    let sbom_digest = crate::oci::sha256(sbom);
    let signer = crate::sign::Signer::from_pem(&private).unwrap().annotate(SBOM_ANNOTATION, &sbom_digest);
    let pushed = publish(&cfg, &[], &items, false, Some(&signer), &creds).unwrap();

    let services = crate::image::SERVICES.len();
    assert_eq!(services, 13);
    let per_image_tags = decision.image_tags.len() + 3; // the release tags and three signatures
    assert_eq!(pushed[1].digests.len(), services, "ACR-like: the images only");
    assert_eq!(pushed[1].stats.tags_written as usize, services * per_image_tags);
    for p in [&pushed[0], &pushed[2]] {
        assert_eq!(p.digests.len(), services + 2, "images, chart and bundle: {}", p.registry);
        // The SBOM's referrers tag per image, and the chart's and bundle's version tag.
        assert_eq!(p.stats.tags_written as usize, services * (per_image_tags + 1) + 2, "{}: {:?}", p.registry, p.stats);
    }
    let skipped = &pushed[1].skipped;
    assert_eq!(skipped.len(), services + 2, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("chart openim: `provider1` takes images only, not helm (like ACR Personal)"))
    );
    assert!(skipped.iter().any(|s| s.starts_with("sbom openim-api: `provider1` takes images only, not referrers")));

    // A second run: no blob, no manifest, no tag.
    let again = publish(&cfg, &[], &items, false, Some(&signer), &creds).unwrap();
    for p in &again {
        let s = &p.stats;
        assert_eq!(
            (s.blobs_uploaded, s.blobs_mounted, s.manifests_put, s.tags_written),
            (0, 0, 0, 0),
            "{}: {s:?}",
            p.registry
        );
    }

    // Every image verifies from every registry: both platforms, three signatures, the SBOM
    // (attached, or on ACR the release's file).
    let key = PublicKey::from_pem(&public).unwrap();
    let pub_file = tmp.path().join("cosign.pub");
    std::fs::write(&pub_file, &public).unwrap();
    let login = Some((USER.to_owned(), PASSWORD.to_owned()));
    for (i, reg) in [&full, &acr, &ghcr].into_iter().enumerate() {
        for svc in crate::image::SERVICES {
            let name = format!("{}/openimsdk/openim-{}:1.2.3", reg.host(), svc.name);
            let file = (i == 1).then_some(sbom);
            let v = verify(&name, &key, login.clone(), true, file).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(v.platforms.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["linux/amd64", "linux/arm64"]);
            assert_eq!(v.sbom.0, sbom_digest);
            assert_eq!(v.sbom.1.starts_with("attached"), i != 1, "{name}: {}", v.sbom.1);
        }
        // The verifier we did not write: the index and both arches of one image.
        let name = format!("{}/openimsdk/openim-api:v1.2.3", reg.host());
        let v = verify(&name, &key, login.clone(), true, Some(sbom)).unwrap();
        let repo = name.rsplit_once(':').unwrap().0;
        for digest in std::iter::once(&v.index).chain(v.platforms.iter().map(|(_, d)| d)) {
            let out = cosign_check(&pub_file, &format!("{repo}@{digest}"))
                .unwrap_or_else(|e| panic!("sigstore-rs refused {repo}@{digest}: {e}"));
            assert!(out.contains("verified"), "{out}");
        }
    }
    // On ACR, without the file: the SBOM is missing, and the error says where to find it.
    let name = format!("{}/openimsdk/openim-api:1.2.3", acr.host());
    let e = format!("{:#}", verify(&name, &key, login.clone(), true, None).unwrap_err());
    assert!(e.contains("pass the release's openim.cdx.json with --sbom"), "{e}");
    // Another SBOM than the signed one is refused.
    let e = format!("{:#}", verify(&name, &key, login.clone(), true, Some(b"{}")).unwrap_err());
    assert!(e.contains("but the signature names"), "{e}");

    // Another key: both verifiers refuse.
    let (_, stranger) = crate::sign::tests::new_key();
    let name = format!("{}/openimsdk/openim-api:1.2.3", full.host());
    let e = format!(
        "{:#}",
        verify(&name, &PublicKey::from_pem(&stranger).unwrap(), login.clone(), true, None).unwrap_err()
    );
    assert!(e.contains("does not verify"), "{e}");
    let stranger_file = tmp.path().join("stranger.pub");
    std::fs::write(&stranger_file, &stranger).unwrap();
    assert!(cosign_check(&stranger_file, &name).unwrap_err().contains("no signature checks"));

    // The image replaced under its tag (another build), its old signatures copied to the new
    // digests' signature tags: the payloads name the old digests, so both verifiers refuse.
    let other = crate::push::tests::images(tmp.path(), "two", &decision.image_tag);
    let replaced: Vec<Item> = image_items(&other, &["openim-api".to_owned()], "1.2.3", &["1.2.3".into()]).unwrap();
    let original = items.iter().find(|i| i.repository == "openim-api" && i.what == "image").unwrap();
    let mut forged = replaced.clone();
    for (old, new) in original.manifests.iter().zip(&replaced[0].manifests) {
        let mut sig =
            signer.signature(&format!("{}/openimsdk/openim-api", full.host()), "openim-api", &old.digest).unwrap();
        sig.tags = vec![crate::sign::signature_tag(&new.digest).unwrap()];
        forged.push(sig);
    }
    publish(&cfg, &["provider0".to_owned()], &forged, true, None, &creds_fn).unwrap();
    let e = format!("{:#}", verify(&name, &key, login.clone(), true, None).unwrap_err());
    assert!(e.contains("the payload signs"), "{e}");
    assert!(cosign_check(&pub_file, &name).unwrap_err().contains("no signature checks"));
}

fn creds_fn(r: &crate::release::Registry) -> anyhow::Result<Option<(String, String)>> {
    creds(r)
}
