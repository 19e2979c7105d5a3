//! Signatures: what we sign checks with our verifier and with one we did not write
//! (containers/image in skopeo, with a `sigstoreSigned` policy), and a tampered one fails both.

use std::process::Command;

use super::*;

/// A fresh P-256 key from openssl, in PKCS#8 PEM, and its public key.
pub(crate) fn new_key() -> (String, String) {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let private = String::from_utf8(out.stdout).unwrap();
    let public = Signer::from_pem(&private).unwrap().public_pem().unwrap();
    (private, public)
}

#[test]
fn a_signature_checks_with_its_key_only_and_is_reproducible() {
    let (private, public) = new_key();
    let signer = Signer::from_pem(&private).unwrap();
    let digest = oci::sha256(b"an index");
    let item = signer.signature("example.com/ns/openim-api", "openim-api", &digest).unwrap();
    assert_eq!(item.tags, [format!("sha256-{}.sig", digest.trim_start_matches("sha256:"))]);
    assert_eq!(item.needs, Takes::Images);
    let manifest = &item.top().bytes;
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json", "an image config: ACR takes it");
    let payload = payload("example.com/ns/openim-api", &digest, &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(payload.clone()).unwrap(),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"example.com/ns/openim-api"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
    );
    let key = PublicKey::from_pem(&public).unwrap();
    key.check(manifest, &payload, "example.com/ns/openim-api", &digest).unwrap();
    // Annotations are signed into `optional`, as `cosign sign -a` does.
    let annotated = Signer::from_pem(&private).unwrap().annotate("dev.openim.sbom", "sha256:00");
    let annotated_item = annotated.signature("example.com/ns/openim-api", "openim-api", &digest).unwrap();
    let signed_payload = match &annotated_item.blobs[1].1 {
        Source::Bytes(b) => b.clone(),
        Source::File(_) => unreachable!(),
    };
    let p = key.check(&annotated_item.top().bytes, &signed_payload, "example.com/ns/openim-api", &digest).unwrap();
    assert_eq!(p["optional"]["dev.openim.sbom"], "sha256:00");
    // The same input, the same bytes (RFC 6979): a re-run moves no tag.
    let again = signer.signature("example.com/ns/openim-api", "openim-api", &digest).unwrap();
    assert_eq!(again.top().digest, item.top().digest);

    // Another digest, another repository, another key, a changed payload: all refused.
    let other = oci::sha256(b"another index");
    let e = key.check(manifest, &payload, "example.com/ns/openim-api", &other).unwrap_err().to_string();
    assert!(e.contains("signs"), "{e}");
    let e = key.check(manifest, &payload, "example.com/ns/openim-push", &digest).unwrap_err().to_string();
    assert!(e.contains("names"), "{e}");
    let (_, stranger) = new_key();
    let e = PublicKey::from_pem(&stranger).unwrap().check(manifest, &payload, "example.com/ns/openim-api", &digest);
    assert!(e.unwrap_err().to_string().contains("does not verify"));
    // A changed payload, with the manifest naming its digest: only the ECDSA check stands between.
    let tampered = String::from_utf8(payload.clone()).unwrap().replace("openim-api", "openim-apj").into_bytes();
    let forged = String::from_utf8(manifest.clone())
        .unwrap()
        .replace(&oci::sha256(&payload), &oci::sha256(&tampered))
        .into_bytes();
    let e = key.check(&forged, &tampered, "example.com/ns/openim-apj", &digest).unwrap_err().to_string();
    assert!(e.contains("does not verify"), "{e}");
    assert!(Signer::from_pem("-----BEGIN RSA PRIVATE KEY-----").is_err());
}
