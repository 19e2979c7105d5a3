//! The SBOM of this checkout, made the way a release makes it.

use super::*;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Generated once per test process: `cargo cyclonedx` runs for both targets.
pub(crate) fn sbom() -> &'static [u8] {
    static SBOM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SBOM.get_or_init(|| generate(&root(), 1_700_000_000).unwrap())
}

fn component<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
}

#[test]
fn the_sbom_lists_the_crates_and_the_c_libraries_reproducibly() {
    let bytes = sbom();
    assert!(check(bytes).unwrap() > 300);
    let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!((doc["bomFormat"].as_str(), doc["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
    assert_eq!(doc["metadata"]["timestamp"], "2023-11-14T22:13:20.000000000Z", "the commit time");
    assert!(doc.get("serialNumber").is_none(), "no random serial number");
    let targets: Vec<&str> =
        doc["metadata"]["properties"].as_array().unwrap().iter().map(|p| p["value"].as_str().unwrap()).collect();
    assert_eq!(targets, ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]);
    // Crates, with their lock file checksums and licenses.
    let tokio = component(&doc, "tokio");
    assert!(tokio["purl"].as_str().unwrap().starts_with("pkg:cargo/tokio@"), "{tokio}");
    assert_eq!(tokio["hashes"][0]["alg"], "SHA-256");
    assert!(tokio["licenses"][0]["expression"].as_str().unwrap().contains("MIT"));
    assert!(doc["components"].as_array().unwrap().iter().all(|c| c["name"] != "openim-testkit"), "no test crates");
    // The C libraries, with the versions built, linked from their crates.
    for (name, version, cpe) in [
        ("librdkafka", "2.12.1", "cpe:2.3:a:confluent:librdkafka:2.12.1:"),
        ("openssl", "3.6.3", "cpe:2.3:a:openssl:openssl:3.6.3:"),
        ("sqlite", "3.46.0", "cpe:2.3:a:sqlite:sqlite:3.46.0:"),
        ("zlib", "1.3.2", "cpe:2.3:a:zlib:zlib:1.3.2:"),
    ] {
        let c = component(&doc, name);
        assert_eq!(c["version"], version, "{name}");
        assert!(c["cpe"].as_str().unwrap().starts_with(cpe), "{c}");
        assert_eq!(c["purl"], format!("pkg:generic/{name}@{version}"));
        let bom_ref = c["bom-ref"].as_str().unwrap();
        let linked = doc["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["dependsOn"].as_array().into_iter().flatten().any(|r| r == bom_ref));
        assert!(linked, "{name} is a dependency of the crate that links it");
    }
    // Nothing of this machine: the checkout's path is relative.
    let text = String::from_utf8_lossy(bytes);
    let checkout = std::fs::canonicalize(root()).unwrap().display().to_string();
    assert!(!text.contains(&checkout), "the SBOM names {checkout}");
    // The same commit, the same bytes; nothing left in the checkout.
    assert_eq!(generate(&root(), 1_700_000_000).unwrap(), bytes, "reproducible");
    let stray: Vec<_> = std::fs::read_dir(root().join("crates/openim"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".openim-sbom-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_referrer_attaches_the_sbom_to_an_index() {
    let index = br#"{"schemaVersion":2}"#;
    let item = referrer("openim-api", index, b"{\"bomFormat\":\"CycloneDX\"}", "2023-11-14T22:13:20Z").unwrap();
    assert_eq!(item.needs, Takes::Referrers);
    assert_eq!(item.subject.as_deref(), Some(oci::sha256(index).as_str()));
    assert!(item.tags.is_empty(), "a referrer is found through its subject, not a tag");
    let m: serde_json::Value = serde_json::from_slice(&item.top().bytes).unwrap();
    assert_eq!(m["artifactType"], SBOM_TYPE);
    assert_eq!(m["config"]["mediaType"], EMPTY_TYPE);
    assert_eq!(m["subject"]["digest"], oci::sha256(index));
    assert_eq!(item.blobs[0].0, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    assert!(check(b"{\"bomFormat\":\"SPDX\"}").is_err());
}
