use super::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn archive(target: &str) -> Archive {
    let name = format!("openim-{target}.tar.gz");
    Archive { checksum: format!("{name}.sha256"), name, target: target.into(), path: None }
}

fn targets(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|t| t.to_string()).collect()
}

/// A `.tar.gz` as dist lays it out: everything under `openim-<target>/`.
fn tar_gz(dir_name: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, format!("{dir_name}/{name}"), *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Writes the archive and a checksum file saying `checksum` (the right one when `None`).
fn write_release(dir: &Path, data: &[u8], checksum: Option<&str>) -> (PathBuf, PathBuf) {
    let archive = dir.join("openim-riscv64gc-unknown-linux-gnu.tar.gz");
    std::fs::write(&archive, data).unwrap();
    let sum = checksum.map(str::to_owned).unwrap_or_else(|| crate::oci::sha256_hex(data));
    let checksum_file = dir.join("openim-riscv64gc-unknown-linux-gnu.tar.gz.sha256");
    std::fs::write(&checksum_file, format!("{sum}  openim-riscv64gc-unknown-linux-gnu.tar.gz\n")).unwrap();
    (archive, checksum_file)
}

const COMPLETE: &[(&str, &[u8])] =
    &[("openim", b"\x7fELF"), ("LICENSE", b"Apache"), ("README.md", b"# openim"), ("config/share.yml", b"secret: x")];

#[test]
fn an_archive_is_checked_against_its_checksum_and_contents() {
    // Not the host's target: the binary is not run.
    let target = "riscv64gc-unknown-linux-gnu";
    let dir = tempfile::tempdir().unwrap();
    let good = tar_gz("openim-riscv64gc-unknown-linux-gnu", COMPLETE);
    let (archive, sum) = write_release(dir.path(), &good, None);
    verify(&archive, &sum, target).unwrap();

    let (archive, sum) = write_release(dir.path(), &good, Some(&"0".repeat(64)));
    let err = verify(&archive, &sum, target).unwrap_err().to_string();
    assert!(err.contains("hashes to"), "{err}");

    let no_license: Vec<_> = COMPLETE.iter().filter(|(n, _)| *n != "LICENSE").copied().collect();
    let (archive, sum) = write_release(dir.path(), &tar_gz("openim-x", &no_license), None);
    let err = verify(&archive, &sum, target).unwrap_err().to_string();
    assert!(err.contains("no `LICENSE` inside"), "{err}");

    let no_binary: Vec<_> = COMPLETE.iter().filter(|(n, _)| *n != "openim").copied().collect();
    let (archive, sum) = write_release(dir.path(), &tar_gz("openim-x", &no_binary), None);
    let err = verify(&archive, &sum, target).unwrap_err().to_string();
    assert!(err.contains("no `openim` binary"), "{err}");
}

#[test]
fn a_plan_needs_one_archive_and_checksum_per_configured_target() {
    let want = targets(&["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"]);
    let good = vec![archive("aarch64-apple-darwin"), archive("x86_64-unknown-linux-gnu")];
    check_plan(&good, &want).unwrap();

    let missing = vec![archive("x86_64-unknown-linux-gnu")];
    assert!(check_plan(&missing, &want).unwrap_err().to_string().contains("asks for"));

    let mut doubled = good.clone();
    doubled.push(archive("x86_64-unknown-linux-gnu"));
    assert!(check_plan(&doubled, &want).is_err());

    let mut no_checksum = good.clone();
    no_checksum[0].checksum = "openim-aarch64-apple-darwin.tar.gz.sha512".into();
    let err = check_plan(&no_checksum, &want).unwrap_err().to_string();
    assert!(err.contains("expected `openim-aarch64-apple-darwin.tar.gz`"), "{err}");
}

#[test]
fn a_manifest_lists_its_archives_with_their_checksums() {
    let manifest = serde_json::json!({
        "artifacts": {
            "openim-x86_64-unknown-linux-gnu.tar.gz": {
                "kind": "executable-zip",
                "target_triples": ["x86_64-unknown-linux-gnu"],
                "checksum": "openim-x86_64-unknown-linux-gnu.tar.gz.sha256",
                "path": "/t/distrib/openim-x86_64-unknown-linux-gnu.tar.gz"
            },
            "openim-x86_64-unknown-linux-gnu.tar.gz.sha256": {
                "kind": "checksum",
                "target_triples": ["x86_64-unknown-linux-gnu"]
            },
            "sha256.sum": { "kind": "unified-checksum" }
        }
    });
    let found = archives(&manifest).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].target, "x86_64-unknown-linux-gnu");
    assert_eq!(found[0].path.as_deref(), Some(Path::new("/t/distrib/openim-x86_64-unknown-linux-gnu.tar.gz")));

    let mut unchecked = manifest.clone();
    unchecked["artifacts"]["openim-x86_64-unknown-linux-gnu.tar.gz"].as_object_mut().unwrap().remove("checksum");
    assert!(archives(&unchecked).unwrap_err().to_string().contains("no checksum"));
}

#[test]
fn the_configured_targets_and_version_are_read_from_the_workspace() {
    let configured = configured_targets(&root().join("dist-workspace.toml")).unwrap();
    assert!(configured.contains("x86_64-unknown-linux-gnu") && configured.contains("aarch64-unknown-linux-gnu"));
    let version = workspace_version(&root().join("Cargo.toml")).unwrap();
    semver::Version::parse(&version).unwrap();
}

/// The real cargo-dist plans an archive and a checksum for every configured target.
/// `cargo xtask ci` runs it (with dist installed by `cargo xtask setup dist`).
#[test]
#[ignore = "needs cargo-dist: run through `cargo xtask ci`"]
fn dist_plans_an_archive_and_checksum_for_every_target() {
    let planned = plan(&root()).unwrap();
    check_plan(&planned, &configured_targets(&root().join("dist-workspace.toml")).unwrap()).unwrap();
}
