//! Signed images on a registry that takes everything and on one that takes images only (like
//! ACR Personal): `verify` passes on both, and so does a verifier we did not write (sigstore-rs,
//! the Sigstore project's Rust client), for the index and each platform. An image replaced under
//! its tag, with the old signatures copied next to it, fails both.
//!
//! (Debian's skopeo and podman would be the obvious second verifier, but Debian builds them
//! with sigstore signatures disabled: "Debian-local change: sigstore disabled".)

use std::path::Path;
use std::process::Command;

use super::*;
use crate::push::{Item, image_items, image_names, publish};
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

#[test]
fn signed_images_verify_with_ours_and_with_sigstore_rs_and_a_replaced_one_fails_both() {
    let (full, acr) = (TestRegistry::start(), TestRegistry::images_only());
    let tmp = tempfile::tempdir().unwrap();
    let layout = crate::push::tests::images(tmp.path(), "one", "1.2.3");
    let mut cfg = config(&[&full, &acr]);
    cfg.registries[1].takes = vec![crate::push::Takes::Images];
    let tags: Vec<String> = vec!["1.2.3".into(), "latest".into()];
    let items = image_items(&layout, &image_names(&cfg), "1.2.3", &tags).unwrap();
    let (private, public) = crate::sign::tests::new_key();
    let signer = crate::sign::Signer::from_pem(&private).unwrap();
    let pushed = publish(&cfg, &[], &items, false, Some(&signer), &creds).unwrap();
    // Three signatures per image (the index and two arches) on both, ACR-like included.
    for p in &pushed {
        assert_eq!(p.stats.tags_written as usize, items.len() * (tags.len() + 3), "{}: {:?}", p.registry, p.stats);
    }
    let again = publish(&cfg, &[], &items, false, Some(&signer), &creds).unwrap();
    assert!(
        again.iter().all(|p| p.stats.tags_written == 0 && p.stats.manifests_put == 0),
        "signatures are reproducible"
    );

    let key = PublicKey::from_pem(&public).unwrap();
    let pub_file = tmp.path().join("cosign.pub");
    std::fs::write(&pub_file, &public).unwrap();
    let creds = Some((USER.to_owned(), PASSWORD.to_owned()));
    for reg in [&full, &acr] {
        for image in ["openim-api", "openim-msggateway"] {
            let name = format!("{}/openimsdk/{image}:1.2.3", reg.host());
            let v = verify(&name, &key, creds.clone(), true).unwrap();
            assert_eq!(v.platforms.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["linux/amd64", "linux/arm64"]);
            let repo = name.rsplit_once(':').unwrap().0;
            for digest in std::iter::once(&v.index).chain(v.platforms.iter().map(|(_, d)| d)) {
                let out = cosign_check(&pub_file, &format!("{repo}@{digest}"))
                    .unwrap_or_else(|e| panic!("sigstore-rs refused {repo}@{digest}: {e}"));
                assert!(out.contains("verified"), "{out}");
            }
            cosign_check(&pub_file, &name).unwrap_or_else(|e| panic!("sigstore-rs refused {name}: {e}"));
        }
    }
    // Another key: both refuse.
    let (_, stranger) = crate::sign::tests::new_key();
    let name = format!("{}/openimsdk/openim-api:1.2.3", full.host());
    let e = format!("{:#}", verify(&name, &PublicKey::from_pem(&stranger).unwrap(), creds.clone(), true).unwrap_err());
    assert!(e.contains("does not verify"), "{e}");
    let stranger_file = tmp.path().join("stranger.pub");
    std::fs::write(&stranger_file, &stranger).unwrap();
    let e = cosign_check(&stranger_file, &name).unwrap_err();
    assert!(e.contains("no signature checks"), "{e}");

    // The image replaced under its tag (another build), its old signatures copied to the new
    // digests' signature tags: the payloads name the old digests, so both verifiers refuse.
    let other = crate::push::tests::images(tmp.path(), "two", "1.2.3");
    let replaced: Vec<Item> = image_items(&other, &["openim-api".to_owned()], "1.2.3", &tags).unwrap();
    let original = items.iter().find(|i| i.repository == "openim-api").unwrap();
    let mut forged = replaced.clone();
    for (old, new) in original.manifests.iter().zip(&replaced[0].manifests) {
        let mut sig =
            signer.signature(&format!("{}/openimsdk/openim-api", full.host()), "openim-api", &old.digest).unwrap();
        sig.tags = vec![crate::sign::signature_tag(&new.digest).unwrap()];
        forged.push(sig);
    }
    publish(&cfg, &["provider0".to_owned()], &forged, true, None, &creds_fn).unwrap();
    let e = format!("{:#}", verify(&name, &key, creds.clone(), true).unwrap_err());
    assert!(e.contains("the payload signs"), "{e}");
    let e = cosign_check(&pub_file, &name).unwrap_err();
    assert!(e.contains("no signature checks"), "{e}");
}

fn creds_fn(r: &crate::release::Registry) -> anyhow::Result<Option<(String, String)>> {
    creds(r)
}
