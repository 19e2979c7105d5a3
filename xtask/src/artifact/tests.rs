//! The chart and compose bundle: stamping, reproducibility, and a push to a real registry that
//! the real `helm` (v4; `.ci/run` installs it, `OPENIM_HELM` names it) pulls and renders.

use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::testing::{PASSWORD, TestRegistry, USER};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unpack(gz: &[u8]) -> BTreeMap<String, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut out = BTreeMap::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut e, &mut text).unwrap();
        out.insert(path, text);
    }
    out
}

#[test]
fn the_chart_is_stamped_and_reproducible() {
    let a = package_chart(&root().join("charts/openim"), "1.2.3+build.5", "1.2.3", 1_700_000_000).unwrap();
    let b = package_chart(&root().join("charts/openim"), "1.2.3+build.5", "1.2.3", 1_700_000_000).unwrap();
    assert_eq!((a.digest.as_str(), &a.package), (b.digest.as_str(), &b.package));
    assert_eq!((a.repository.as_str(), a.tag.as_str()), ("openim", "1.2.3_build.5"));
    assert_eq!(a.file_name, "openim-1.2.3+build.5.tgz");
    let files = unpack(&a.package);
    let chart = &files["openim/Chart.yaml"];
    assert!(chart.contains("\nversion: 1.2.3+build.5\n") && chart.contains("\nappVersion: \"1.2.3\"\n"), "{chart}");
    assert!(chart.starts_with("# The release pipeline"), "comments are kept: {chart}");
    assert!(files.contains_key("openim/values.yaml") && files.contains_key("openim/templates/standalone.yaml"));
    let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
    assert_eq!((config["name"].as_str(), config["version"].as_str()), (Some("openim"), Some("1.2.3+build.5")));
    let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(manifest["config"]["mediaType"], HELM_CONFIG_TYPE);
    assert_eq!(manifest["layers"][0]["mediaType"], HELM_CHART_TYPE);

    let other = package_chart(&root().join("charts/openim"), "1.2.4", "1.2.4", 1_700_000_000).unwrap();
    assert_ne!(other.digest, a.digest);
    let err = package_chart(&root().join("charts/openim"), "release-v1.2", "x", 0).unwrap_err();
    assert!(format!("{err:#}").contains("not SemVer"), "{err:#}");
}

#[test]
fn stamping_names_what_is_missing() {
    let err = stamp_chart("apiVersion: v2\nname: x\nversion: 1.0.0\n", "1.2.3", "1.2.3").unwrap_err();
    assert!(err.to_string().contains("appVersion"), "{err}");
    let err = stamp_env("OPENIM_VERSION=main\nOPENIM_CONFIG=x\n", "r", "t").unwrap_err();
    assert!(err.to_string().contains("OPENIM_REGISTRY"), "{err}");
    // Indented keys (of a nested map) are not the chart's own.
    let err = stamp_chart("dependencies:\n  - version: 1.0.0\nappVersion: x\n", "1.2.3", "1.2.3").unwrap_err();
    assert!(err.to_string().contains("`version:`"), "{err}");
}

#[test]
fn the_compose_bundle_names_the_release_images() {
    let a = compose_bundle(
        &root().join("compose"),
        &root().join("config"),
        "1.2.4-dev.7",
        "ghcr.io/openimsdk",
        "1.2.4-dev.7",
        1_700_000_000,
    )
    .unwrap();
    let files = unpack(&a.package);
    let env = &files["openim-compose/.env"];
    assert!(
        env.contains("OPENIM_REGISTRY=ghcr.io/openimsdk\n") && env.contains("OPENIM_VERSION=1.2.4-dev.7\n"),
        "{env}"
    );
    assert!(env.contains("OPENIM_CONFIG=./config\n"), "{env}");
    assert!(files.contains_key("openim-compose/docker-compose.yml"));
    assert!(files.contains_key("openim-compose/config/share.yml"));
    let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(manifest["artifactType"], COMPOSE_ARTIFACT_TYPE);
    assert_eq!(a.file_name, "openim-compose-1.2.4-dev.7.tar.gz");
}

fn helm() -> (PathBuf, tempfile::TempDir) {
    let helm = std::env::var_os("OPENIM_HELM")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tools/helm/helm/helm")))
        .filter(|p| p.is_file())
        .expect("a helm binary: set OPENIM_HELM (.ci/run installs it into ~/.cache/tools/helm)");
    (helm, tempfile::tempdir().unwrap())
}

fn helm_cmd(helm: &PathBuf, home: &tempfile::TempDir) -> Command {
    let mut c = Command::new(helm);
    for (var, sub) in [("HELM_CONFIG_HOME", "config"), ("HELM_CACHE_HOME", "cache"), ("HELM_DATA_HOME", "data")] {
        c.env(var, home.path().join(sub));
    }
    c
}

/// Pushed as `helm push` would, the chart is what the real helm pulls, shows and renders, with the
/// image tag the release stamped; a second push uploads nothing.
#[test]
fn helm_pulls_and_renders_the_pushed_chart() {
    let reg = TestRegistry::start();
    let chart = package_chart(&root().join("charts/openim"), "1.2.3", "1.2.3", 1_700_000_000).unwrap();
    let mut r = Registry::new(&reg.host(), Some((USER.into(), PASSWORD.into())), true).unwrap();
    chart.push(&mut r, "openimsdk", false).unwrap();
    assert_eq!(r.stats.blobs_uploaded, 2);
    chart.push(&mut r, "openimsdk", false).unwrap();
    assert_eq!(r.stats.blobs_uploaded, 2, "a second push uploads no blob");
    // The same version with other content is refused, unless forced.
    let changed = package_chart(&root().join("charts/openim"), "1.2.3", "1.2.3", 1_700_000_001).unwrap();
    let err = changed.push(&mut r, "openimsdk", false).unwrap_err().to_string();
    assert!(err.contains("never changes"), "{err}");
    changed.push(&mut r, "openimsdk", true).unwrap();
    chart.push(&mut r, "openimsdk", true).unwrap();

    let (helm, home) = helm();
    let login = helm_cmd(&helm, &home)
        .args(["registry", "login", &reg.host(), "--plain-http", "-u", USER, "-p", PASSWORD])
        .output()
        .unwrap();
    assert!(login.status.success(), "helm registry login: {}", String::from_utf8_lossy(&login.stderr));
    let url = format!("oci://{}/openimsdk/openim", reg.host());
    let show =
        helm_cmd(&helm, &home).args(["show", "chart", &url, "--version", "1.2.3", "--plain-http"]).output().unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "helm show chart: {}", String::from_utf8_lossy(&show.stderr));
    assert!(shown.contains("version: 1.2.3") && shown.contains("appVersion: 1.2.3"), "{shown}");
    let render =
        helm_cmd(&helm, &home).args(["template", "im", &url, "--version", "1.2.3", "--plain-http"]).output().unwrap();
    let rendered = String::from_utf8_lossy(&render.stdout);
    assert!(render.status.success(), "helm template: {}", String::from_utf8_lossy(&render.stderr));
    assert!(rendered.contains("image: docker.io/openim/openim-standalone:1.2.3"), "{rendered}");
}
