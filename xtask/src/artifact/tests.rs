//! The chart and compose bundle: stamping, reproducibility, and a push to a real registry that
//! the real `helm` (v4; `cargo xtask setup helm` installs it, `OPENIM_HELM` names it) pulls and renders.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize as _;

use super::*;
use crate::testing::{PASSWORD, TestRegistry, USER, creds};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn unpack(gz: &[u8]) -> BTreeMap<String, String> {
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
    let a = package_chart(&root().join("charts/openim"), "1.2.3+build.5", "1.2.3", 1_700_000_000, &Pins::default())
        .unwrap();
    let b = package_chart(&root().join("charts/openim"), "1.2.3+build.5", "1.2.3", 1_700_000_000, &Pins::default())
        .unwrap();
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

    let other =
        package_chart(&root().join("charts/openim"), "1.2.4", "1.2.4", 1_700_000_000, &Pins::default()).unwrap();
    assert_ne!(other.digest, a.digest);
    let err = package_chart(&root().join("charts/openim"), "release-v1.2", "x", 0, &Pins::default()).unwrap_err();
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
        &Pins::default(),
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

/// `docker compose config` of `file` in `dir` (the real Compose v2, which validates and
/// interpolates with `dir/.env`), as JSON.
pub(crate) fn compose_config(dir: &std::path::Path, file: &str) -> serde_json::Value {
    let out = compose_config_output(dir, file);
    assert!(out.status.success(), "docker compose -f {file} config: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn compose_config_output(dir: &std::path::Path, file: &str) -> std::process::Output {
    let (compose, path) =
        crate::build::find_tool("docker-compose", "cargo xtask setup compose").expect("docker compose");
    let mut cmd = Command::new(compose);
    cmd.args(["-f", file, "config", "--format", "json"]).current_dir(dir).env("PATH", path);
    // Variables of the environment win over .env: keep ours out.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("OPENIM_") || k.ends_with("_PASSWORD")) {
        cmd.env_remove(key);
    }
    cmd.output().unwrap()
}

/// No secret ships: `docker compose` stops naming the first one unset until `init-secrets.sh`
/// generates them (random, once: a second run changes nothing). The services use MariaDB as
/// their own user, not root.
#[test]
fn the_compose_files_ship_no_secret_and_init_secrets_generates_them() {
    let bundle = compose_bundle(
        &root().join("compose"),
        &root().join("config"),
        "1.2.4",
        "ghcr.io/openimsdk",
        "1.2.4",
        0,
        &Pins::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&bundle.package[..])).unpack(dir.path()).unwrap();
    let dir = dir.path().join("openim-compose");
    // Compose names the first unset variable it meets, in no fixed order.
    let secrets = [
        "OPENIM_SECRET",
        "OPENIM_TOKEN_KEY",
        "MYSQL_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "REDIS_PASSWORD",
        "MONGO_PASSWORD",
    ];
    for file in ["docker-compose.yml", "standalone.yml"] {
        let out = compose_config_output(&dir, file);
        let err = String::from_utf8_lossy(&out.stderr);
        let named = secrets.iter().any(|s| err.contains(&format!("required variable {s} is missing")));
        assert!(!out.status.success() && named && err.contains("init-secrets.sh"), "{file}: {err}");
    }
    let init = || {
        let out = Command::new("sh").arg("init-secrets.sh").current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(dir.join(".env")).unwrap()
    };
    let env = init();
    let mut values = std::collections::BTreeSet::new();
    for var in secrets {
        let value =
            env.lines().find_map(|l| l.strip_prefix(&format!("{var}="))).unwrap_or_else(|| panic!("{var}: {env}"));
        assert!(value.len() == 48 && value.bytes().all(|b| b.is_ascii_hexdigit()), "{var}={value}");
        values.insert(value.to_owned());
    }
    assert_eq!(values.len(), secrets.len(), "every secret is its own");
    assert!(env.contains("OPENIM_REGISTRY=ghcr.io/openimsdk\n"), "other lines are kept: {env}");
    assert_eq!(init(), env, "a second run changes nothing");

    let config = compose_config(&dir, "docker-compose.yml");
    let services = config["services"].as_object().unwrap();
    let mysql = &services["mysql"]["environment"];
    assert_eq!(mysql["MARIADB_USER"], "openim");
    assert_ne!(mysql["MARIADB_PASSWORD"], mysql["MARIADB_ROOT_PASSWORD"]);
    let api = &services["openim-api"]["environment"];
    assert_eq!(api["OPENIM_MYSQL__USERNAME"], "openim");
    assert_eq!(api["OPENIM_MYSQL__PASSWORD"], mysql["MARIADB_PASSWORD"]);
    assert_eq!(api["OPENIM_STORAGE__BACKEND"], "production");
    for key in ["OPENIM_SHARE__SECRET", "OPENIM_SHARE__TOKEN_KEY"] {
        assert!(api[key].as_str().is_some_and(|v| v.len() >= 32), "{key}: {api}");
    }
    compose_config(&dir, "standalone.yml");
}

/// The compose files of a release bundle follow the Compose specification (its JSON schema, and
/// the real `docker compose config`), run exactly the images the release pushes under the
/// bundle's registry and tag, pin every third-party image, and check the health of every
/// long-running container, which starts only once what it needs is healthy.
#[test]
fn the_compose_files_are_valid_and_run_exactly_the_released_images() {
    let (registry, tag) = ("ghcr.io/openimsdk", "1.2.4-dev.7");
    let bundle = compose_bundle(
        &root().join("compose"),
        &root().join("config"),
        "1.2.4-dev.7",
        registry,
        tag,
        0,
        &Pins::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&bundle.package[..])).unpack(dir.path()).unwrap();
    let dir = dir.path().join("openim-compose");
    let init = Command::new("sh").arg("init-secrets.sh").current_dir(&dir).output().unwrap();
    assert!(init.status.success(), "init-secrets.sh: {}", String::from_utf8_lossy(&init.stderr));

    let (check, path) =
        crate::build::find_tool("check-jsonschema", "cargo xtask setup compose").expect("check-jsonschema");
    let files = ["docker-compose.yml", "standalone.yml"];
    let out = Command::new(check)
        .args(["--builtin-schema", "vendor.compose-spec"])
        .args(files)
        .current_dir(&dir)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "the Compose schema: {}", String::from_utf8_lossy(&out.stdout));

    let released = |svc: &str| format!("{registry}/openim-{svc}:{tag}");
    for (file, expected) in [
        ("docker-compose.yml", crate::image::SERVICES.iter().filter(|s| s.name != "standalone").collect::<Vec<_>>()),
        ("standalone.yml", crate::image::SERVICES.iter().filter(|s| s.name == "standalone").collect()),
    ] {
        let config = compose_config(&dir, file);
        let services = config["services"].as_object().unwrap();
        let mut ours: Vec<&str> = Vec::new();
        for (name, svc) in services {
            let image = svc["image"].as_str().unwrap();
            if let Some(rest) = image.strip_prefix(&format!("{registry}/")) {
                assert!(expected.iter().any(|s| image == released(s.name)), "{file}: {name} runs {image}");
                ours.push(rest);
            } else {
                let pinned = image.rsplit_once(':').is_some_and(|(_, t)| t != "latest" && !t.contains('/'));
                assert!(pinned, "{file}: {name} runs {image}: pin a tag");
            }
            if svc["restart"] == "no" {
                continue; // a one-shot job (kafka-init)
            }
            assert!(svc["healthcheck"]["test"].is_array(), "{file}: {name} has no health check");
            for (dep, how) in svc["depends_on"].as_object().into_iter().flatten() {
                let condition = how["condition"].as_str().unwrap();
                assert!(
                    ["service_healthy", "service_completed_successfully"].contains(&condition),
                    "{file}: {name} waits for {dep} only to start ({condition})"
                );
            }
        }
        ours.sort();
        let mut want: Vec<String> = expected.iter().map(|s| format!("openim-{}:{tag}", s.name)).collect();
        want.sort();
        assert_eq!(ours, want, "{file} runs every released service image once");
        // The bundle's own configuration is mounted read-only.
        let openim = services.iter().find(|(_, s)| s["image"].as_str().unwrap().starts_with(registry)).unwrap().1;
        let config_mount = openim["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["target"] == "/etc/openim/config")
            .expect("config/ mounted");
        assert_eq!(config_mount["read_only"], true);
        assert_eq!(PathBuf::from(config_mount["source"].as_str().unwrap()), dir.join("config"));
    }
}

pub(crate) fn helm() -> (PathBuf, tempfile::TempDir) {
    let helm = std::env::var_os("OPENIM_HELM")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tools/helm/helm/helm")))
        .filter(|p| p.is_file())
        .expect("a helm binary: set OPENIM_HELM (`cargo xtask setup helm` installs it into ~/.cache/tools/helm)");
    (helm, tempfile::tempdir().unwrap())
}

pub(crate) fn helm_cmd(helm: &PathBuf, home: &tempfile::TempDir) -> Command {
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
    let cfg = crate::testing::config(&[&reg]);
    let push = |a: &Artifact, force: bool| {
        crate::push::publish(&cfg, &[], &[a.item()], force, None, &creds).map(|p| p[0].stats.clone())
    };
    let chart =
        package_chart(&root().join("charts/openim"), "1.2.3", "1.2.3", 1_700_000_000, &Pins::default()).unwrap();
    assert_eq!(push(&chart, false).unwrap().blobs_uploaded, 2);
    assert_eq!(push(&chart, false).unwrap().blobs_uploaded, 0, "a second push uploads no blob");
    // The same version with other content is refused, unless forced.
    let changed =
        package_chart(&root().join("charts/openim"), "1.2.3", "1.2.3", 1_700_000_001, &Pins::default()).unwrap();
    let err = format!("{:#}", push(&changed, false).unwrap_err());
    assert!(err.contains("never moves"), "{err}");
    push(&changed, true).unwrap();
    push(&chart, true).unwrap();

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
    // Every service's image carries the stamped tag: the subcharts were stamped too.
    let images = rendered_images(&rendered);
    assert_eq!(images.len(), crate::image::SERVICES.len() - 1, "{images:?}");
    for svc in crate::image::SERVICES.iter().filter(|s| s.name != "standalone") {
        let want = format!("docker.io/openim/openim-{}:1.2.3", svc.name);
        assert!(images.contains(&want), "{want} not in {images:?}");
    }
}

/// The `image:` values of rendered manifests, sorted and deduplicated.
pub(crate) fn rendered_images(rendered: &str) -> Vec<String> {
    let mut images: Vec<String> = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .map(|i| i.trim_matches('"').to_owned())
        .collect();
    images.sort();
    images.dedup();
    images
}

/// `helm template` of the chart in the checkout with `args`: stdout, or stderr as the error.
fn template(args: &[&str]) -> Result<String, String> {
    let (helm, home) = helm();
    let out =
        helm_cmd(&helm, &home).args(["template", "im"]).arg(root().join("charts/openim")).args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const ALL_FEATURES: &str = "ci/all-features-values.yaml";
const STANDALONE: &str = "ci/standalone-values.yaml";

/// The umbrella chart passes `helm lint --strict` with its defaults and with non-default values
/// (ingress, TLS, autoscaling, ServiceMonitors, an existing Secret, a disabled service; and the
/// standalone trial behind the Ingress), and
/// what it renders validates against the Kubernetes 1.30 schemas (kubernetes-validate, strict:
/// unknown fields are errors; the ServiceMonitor CRD has no schema there and is only named).
#[test]
fn the_chart_lints_and_renders_valid_kubernetes_manifests() {
    let (helm, home) = helm();
    let (validate, path) =
        crate::build::find_tool("kubernetes-validate", "cargo xtask setup helm").expect("kubernetes-validate");
    let chart = root().join("charts/openim");
    let dir = tempfile::tempdir().unwrap();
    for values in [None, Some(chart.join(ALL_FEATURES)), Some(chart.join(STANDALONE))] {
        let mut lint = helm_cmd(&helm, &home);
        lint.args(["lint", "--strict"]).arg(&chart);
        let mut args: Vec<String> = Vec::new();
        if let Some(v) = &values {
            lint.arg("-f").arg(v);
            args = vec!["-f".into(), v.display().to_string()];
        }
        let out = lint.output().unwrap();
        assert!(out.status.success(), "helm lint {values:?}: {}", String::from_utf8_lossy(&out.stdout));

        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let rendered = template(&args).unwrap_or_else(|e| panic!("helm template {values:?}: {e}"));
        let file = dir.path().join("rendered.yaml");
        std::fs::write(&file, &rendered).unwrap();
        let out = Command::new(&validate)
            .args(["--strict", "--quiet", "-k", "1.30.0"])
            .arg(&file)
            .env("PATH", &path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && !report.contains("ERROR"), "kubernetes-validate {values:?}: {report}");
        let kinds = |kind: &str| rendered.matches(&format!("\nkind: {kind}\n")).count();
        if values.as_ref().is_some_and(|v| v.ends_with(STANDALONE)) {
            assert_eq!((kinds("Deployment"), kinds("StatefulSet"), kinds("PersistentVolumeClaim")), (1, 0, 1));
            assert!(rendered.contains("service: { name: im-standalone, port: { name: api } }"), "{rendered}");
            assert!(rendered.contains("httpGet: { path: /readyz, port: admin }"), "{rendered}");
            continue;
        }
        assert_eq!(kinds("StatefulSet"), 1, "the gateway is a StatefulSet");
        // Readiness and metrics are asked on the admin port only: public ports answer /healthz.
        let workloads = kinds("Deployment") + kinds("StatefulSet");
        assert_eq!(rendered.matches("httpGet: { path: /readyz, port: admin }").count(), workloads, "{rendered}");
        assert_eq!(
            rendered.matches("- port: admin\n      path: /metrics").count(),
            kinds("ServiceMonitor"),
            "{rendered}"
        );
        match values {
            None => {
                assert_eq!((kinds("Deployment"), kinds("HorizontalPodAutoscaler"), kinds("Ingress")), (11, 0, 0));
                assert_eq!(kinds("PodDisruptionBudget"), 12);
                // The gRPC ports (7 RPC services, the gateway's push port) take only this release's pods.
                assert_eq!(kinds("NetworkPolicy"), 12);
                let internal = "app.kubernetes.io/instance: im\n              app.kubernetes.io/part-of: openim\n      ports: [{ port: grpc }]";
                assert_eq!(rendered.matches(internal).count(), 8, "{rendered}");
            }
            Some(_) => {
                assert_eq!(kinds("Deployment"), 10, "rpc-friend disabled");
                assert_eq!(kinds("HorizontalPodAutoscaler"), 9, "stateless services only");
                assert_eq!((kinds("Ingress"), kinds("ServiceMonitor"), kinds("Secret")), (1, 11, 0));
                assert!(rendered.contains("image: registry.example.com/im/openim-api:1.2.3"), "{rendered}");
                assert!(rendered.contains("http://im-msggateway-2.im-msggateway-headless:10140"), "{rendered}");
                // The backends' TLS files reach every workload, read-only.
                let mounted = "- { name: backend-tls, mountPath: /etc/openim/tls, readOnly: true }";
                assert_eq!(rendered.matches(mounted).count(), workloads, "{rendered}");
                assert_eq!(rendered.matches("secret: { secretName: openim-backend-tls }").count(), workloads);
            }
        }
    }
}

/// `values.schema.json` refuses values of the wrong type or range, naming the key.
#[test]
fn the_chart_schema_rejects_wrong_values() {
    for (set, key) in [
        ("global.msggatewayReplicas=two", "/global/msggatewayReplicas"),
        ("api.replicaCount=-1", "/api/replicaCount"),
        ("global.image.pullPolicy=Sometimes", "/global/image/pullPolicy"),
        ("ingress.enabled=yes", "/ingress/enabled"),
        ("rpc-user.replicas=2", "/rpc-user"),
        ("global.config.nosuchfile.key=1", "/global/config"),
        ("global.image.digests.api=latest", "/global/image/digests/api"),
    ] {
        let err = template(&["--set", set]).expect_err(set);
        assert!(err.contains(key), "--set {set}: {err}");
    }
    // The right types pass.
    template(&["--set", "global.msggatewayReplicas=3", "--set", "api.replicaCount=0"]).unwrap();
    // A digest pins the chart's appVersion; with another tag the chart refuses to render.
    let digest = format!("sha256:{}", "a".repeat(64));
    let pinned = template(&["--set", &format!("global.image.digests.api={digest}")]).unwrap();
    assert!(pinned.contains(&format!("docker.io/openim/openim-api:0.0.0-dev@{digest}")), "pinned: {pinned}");
    let err = template(&["--set", &format!("global.image.digests.api={digest}"), "--set", "global.image.tag=9.9.9"])
        .unwrap_err();
    assert!(err.contains("global.image.digests pins the images of"), "{err}");
}

/// The configuration the chart renders uses only files and keys of config/ (the services refuse
/// unknown keys at start), and points every service at the others' Service names.
#[test]
fn the_chart_config_has_the_keys_of_config() {
    fn keys_exist(rendered: &serde_yaml::Value, reference: &serde_yaml::Value, at: &str) {
        let serde_yaml::Value::Mapping(map) = rendered else { return };
        for (k, v) in map {
            let k = k.as_str().unwrap();
            let r = reference.get(k).unwrap_or_else(|| panic!("`{at}{k}` is not a key of config/"));
            keys_exist(v, r, &format!("{at}{k}."));
        }
    }
    for values in [vec![], vec!["-f", ALL_FEATURES]] {
        let values: Vec<String> = values
            .iter()
            .map(|v| {
                if v.ends_with(".yaml") {
                    root().join("charts/openim").join(v).display().to_string()
                } else {
                    v.to_string()
                }
            })
            .collect();
        let args: Vec<&str> = values.iter().map(String::as_str).collect();
        let rendered = template(&args).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&rendered)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .filter(|d| d["kind"] == "ConfigMap")
            .collect();
        assert_eq!(docs.len(), 1);
        let data = docs[0]["data"].as_mapping().unwrap();
        assert!(data.len() >= 7, "{data:?}");
        for (file, content) in data {
            let file = file.as_str().unwrap();
            let path = root().join("config").join(file);
            let reference: serde_yaml::Value = serde_yaml::from_str(
                &std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{file} is not a file of config/")),
            )
            .unwrap();
            let content: serde_yaml::Value = serde_yaml::from_str(content.as_str().unwrap()).unwrap();
            keys_exist(&content, &reference, &format!("{file}: "));
        }
        let share: serde_yaml::Value = serde_yaml::from_str(data["share.yml"].as_str().unwrap()).unwrap();
        assert_eq!(share["rpc"]["user"], "http://im-rpc-user:10110");
    }
}

/// The chart ships no secret: the admin secret and the token key are generated (random, 48
/// characters, different on each fresh install; kept on upgrade by `lookup`, which `helm
/// template` cannot show), backend passwords appear only when given, and the standalone pod reads
/// its admin secret from the Secret too.
#[test]
fn the_chart_generates_its_secrets_and_ships_none() {
    let secret_data = |rendered: &str| -> serde_yaml::Mapping {
        let doc = serde_yaml::Deserializer::from_str(rendered)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .find(|d| d["kind"] == "Secret")
            .expect("a Secret");
        assert_eq!(doc["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
        doc["data"].as_mapping().unwrap().clone()
    };
    let decode = |v: &serde_yaml::Value| {
        use base64::Engine as _;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
    };
    let first = template(&[]).unwrap();
    assert!(!first.contains("openIM123"), "a published default is rendered");
    let (a, b) = (secret_data(&first), secret_data(&template(&[]).unwrap()));
    for key in ["OPENIM_SHARE__SECRET", "OPENIM_SHARE__TOKEN_KEY"] {
        let value = decode(&a[key]);
        assert!(value.len() == 48 && value.chars().all(|c| c.is_ascii_alphanumeric()), "{key}: {value}");
        assert_ne!(a[key], b[key], "{key} is random per install");
    }
    assert_ne!(a["OPENIM_SHARE__SECRET"], a["OPENIM_SHARE__TOKEN_KEY"]);
    assert!(!a.contains_key("OPENIM_MYSQL__PASSWORD"), "no backend password is invented");

    let given =
        template(&["--set", "secrets.OPENIM_MYSQL__PASSWORD=db-pass", "--set", "secrets.OPENIM_SHARE__SECRET=mine"])
            .unwrap();
    let c = secret_data(&given);
    assert_eq!(decode(&c["OPENIM_MYSQL__PASSWORD"]), "db-pass");
    assert_eq!(decode(&c["OPENIM_SHARE__SECRET"]), "mine");

    let standalone = template(&["-f", &root().join("charts/openim").join(STANDALONE).display().to_string()]).unwrap();
    assert!(standalone.contains("key: OPENIM_SHARE__SECRET"), "{standalone}");
}
