use super::*;
use crate::image::tests::meta;

const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

fn ctx(event: Event, git_ref: &str, repo_tags: &[&str]) -> GitContext {
    GitContext {
        event,
        git_ref: git_ref.into(),
        sha: SHA.into(),
        repo_tags: repo_tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// Decides with a fake history: 7 commits since any tag, 42 from the root.
fn decision(event: Event, git_ref: &str, repo_tags: &[&str]) -> anyhow::Result<Decision> {
    let c = ctx(event, git_ref, repo_tags);
    let tags = crate::tags::compute(&c)?;
    decide(&c, &tags, &|tag| Ok(if tag.is_some() { 7 } else { 42 }))
}

#[test]
fn each_trigger_gets_its_mode_tags_and_version() {
    let d = decision(Event::PullRequest, "refs/pull/12/merge", &[]).unwrap();
    assert_eq!((d.mode, d.image_tags.len(), d.version), (Mode::Test, 0, None));

    let d = decision(Event::Push, "refs/heads/main", &["v1.2.3"]).unwrap();
    assert_eq!(d.mode, Mode::Edge);
    assert_eq!(d.image_tags, ["main", "sha-860c190"]);
    assert_eq!(d.version, None);

    let d = decision(Event::Schedule, "refs/heads/main", &[]).unwrap();
    assert_eq!(d.mode, Mode::Nightly);
    assert_eq!(d.image_tags, ["nightly", "main", "sha-860c190"]);

    let d = decision(Event::Push, "refs/tags/v1.2.3", &["v1.2.3", "v1.1.0"]).unwrap();
    assert_eq!(d.mode, Mode::Release);
    assert_eq!(d.image_tags, ["1.2.3", "v1.2.3", "1.2", "1", "sha-860c190", "latest"]);
    assert_eq!((d.version.as_deref(), d.image_tag.as_str()), (Some("1.2.3"), "1.2.3"));

    let d = decision(Event::Push, "refs/tags/v2.0.0-rc.1", &["v2.0.0-rc.1"]).unwrap();
    assert_eq!((d.mode, d.version.as_deref()), (Mode::Release, Some("2.0.0-rc.1")));
    assert_eq!(d.image_tags, ["2.0.0-rc.1", "v2.0.0-rc.1", "sha-860c190"]);
}

#[test]
fn release_branches_get_the_next_patch_as_a_dev_pre_release() {
    let tags = ["v1.2.0", "v1.2.3", "v1.2.2-rc.1", "v1.3.0", "v0.9.0"];
    let d = decision(Event::Push, "refs/heads/release-v1.2", &tags).unwrap();
    assert_eq!(d.mode, Mode::Release);
    assert_eq!(d.version.as_deref(), Some("1.2.4-dev.7"));
    assert_eq!(d.image_tag, "1.2.4-dev.7");
    assert_eq!(d.image_tags, ["release-v1.2", "sha-860c190", "1.2.4-dev.7"]);
    // A version line with no release yet counts from the root.
    let d = decision(Event::Push, "refs/heads/release-v2.0", &tags).unwrap();
    assert_eq!(d.version.as_deref(), Some("2.0.0-dev.42"));
    // The dev version sorts below the release it leads to, and never moves (a release tag).
    assert!(semver::Version::parse("1.2.4-dev.7").unwrap() < semver::Version::parse("1.2.4").unwrap());
    assert!(crate::push::is_release_tag("1.2.4-dev.7"));

    // After a release candidate, the builds sort above it and below the release.
    let d = decision(Event::Push, "refs/heads/release-v1.2", &["v1.2.3", "v1.2.4-rc.1"]).unwrap();
    assert_eq!(d.version.as_deref(), Some("1.2.4-rc.1.dev.7"));
    let v = semver::Version::parse("1.2.4-rc.1.dev.7").unwrap();
    assert!(semver::Version::parse("1.2.4-rc.1").unwrap() < v && v < semver::Version::parse("1.2.4").unwrap());
    // A branch that only looks like a release branch is built, not published.
    let d = decision(Event::Push, "refs/heads/release-v1.2-hotfix", &tags).unwrap();
    assert_eq!(d.mode, Mode::Test);
    assert!(d.why.contains("release-v1.2-hotfix"), "{}", d.why);
}

#[test]
fn other_branches_and_tags_only_build() {
    for (event, r) in [
        (Event::Push, "refs/heads/feature/x"),
        (Event::Push, "refs/tags/nightly-2026"),
        (Event::Push, "refs/tags/1.2.3"),
        (Event::WorkflowDispatch, "refs/heads/dev"),
    ] {
        let d = decision(event, r, &[]).unwrap();
        assert_eq!(d.mode, Mode::Test, "{r}");
        assert!(d.image_tags.is_empty(), "{r}");
    }
    let d = decision(Event::WorkflowDispatch, "refs/heads/main", &[]).unwrap();
    assert_eq!(d.mode, Mode::Edge);
}

/// The plan of a release lists every service's per-arch manifests and index, the chart and the
/// compose bundle, and the chart, bundle and image tags agree.
#[test]
fn a_release_plan_lists_everything_with_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bins = ImageArch::ALL
        .iter()
        .map(|a| {
            let p = dir.path().join(a.name());
            std::fs::write(&p, crate::image::tests::fake_binary(*a, a.name().as_bytes())).unwrap();
            (*a, p)
        })
        .collect();
    let d = decision(Event::Push, "refs/tags/v1.2.3", &["v1.2.3"]).unwrap();
    let cfg = ReleaseConfig::load(&root.join("release.toml")).unwrap();
    let layout = Layout::create(&dir.path().join("oci")).unwrap();
    let assembled = crate::image::assemble(&layout, &bins, &root.join("config"), &meta(), &d.image_tag).unwrap();
    // Pinned: the images by the digests just assembled, the infrastructure by (made-up) digests
    // the release resolves from their registry.
    let infra = crate::artifact::infra_images(&root.join("compose")).unwrap();
    assert!(infra.contains(&"mariadb:11.4".to_owned()) && infra.len() >= 4, "{infra:?}");
    let pins = crate::artifact::Pins {
        images: assembled.indexes.clone(),
        infra: infra.iter().map(|i| (i.clone(), crate::oci::sha256(i.as_bytes()))).collect(),
    };
    let artifacts = release_artifacts(&root, &cfg, &meta(), "1.2.3", &d.image_tag, &pins, dir.path()).unwrap();
    let plan = Plan {
        rows: rows(&d, &cfg, &[], &assembled, &artifacts, false),
        context: ctx(Event::Push, "refs/tags/v1.2.3", &[]),
        decision: d,
        dry_run: true,
    };

    let n = crate::image::SERVICES.len();
    assert_eq!(plan.rows.len(), n * 3 + 2);
    // Signed, each image gets a row of its three signature tags (the index and both arches).
    let signed = rows(&plan.decision, &cfg, &[], &assembled, &artifacts, true);
    assert_eq!(signed.len(), n * 4 + 2);
    let sigs = signed.iter().find(|r| r.arch == "signatures").unwrap();
    assert_eq!(sigs.tags.len(), 3);
    assert!(sigs.tags.iter().all(|t| t.starts_with("sha256-") && t.ends_with(".sig")), "{:?}", sigs.tags);
    assert_eq!(sigs.tags[0], crate::sign::signature_tag(&sigs.digest).unwrap(), "the index's first");
    for svc in crate::image::SERVICES {
        let image = format!("openim-{}", svc.name);
        let arches: Vec<&str> = plan.rows.iter().filter(|r| r.image == image).map(|r| r.arch.as_str()).collect();
        assert_eq!(arches, ["amd64", "arm64", "index"], "{image}");
    }
    let index = plan.rows.iter().find(|r| r.arch == "index").unwrap();
    assert_eq!(
        index.registries,
        ["docker.io/openim", "registry.cn-hangzhou.aliyuncs.com/openimsdk", "ghcr.io/openimsdk"]
    );
    assert!(index.tags.contains(&"1.2.3".to_owned()));
    assert!(index.skipped.is_empty(), "{:?}", index.skipped);
    // ACR Personal takes images only: the chart and the bundle go to the other two, and the
    // plan says why.
    let chart = plan.rows.iter().find(|r| r.arch == "chart").unwrap();
    assert_eq!((chart.image.as_str(), chart.tags.as_slice()), ("openim", ["1.2.3".to_owned()].as_slice()));
    assert_eq!(chart.registries, ["docker.io/openim", "ghcr.io/openimsdk"]);
    assert_eq!(
        chart.skipped,
        ["registry.cn-hangzhou.aliyuncs.com/openimsdk: `aliyun` takes images only, not helm \
          (ACR Personal Edition stores image manifests only)"]
    );
    let compose = plan.rows.iter().find(|r| r.arch == "compose").unwrap();
    assert_eq!((compose.tags.as_slice(), compose.registries.len()), (["1.2.3".to_owned()].as_slice(), 2));
    assert!(compose.skipped[0].contains("not artifacts"), "{:?}", compose.skipped);
    // The JSON the workflow summary reads, and the table.
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["decision"]["mode"], "release");
    assert_eq!(json["rows"].as_array().unwrap().len(), n * 3 + 2);
    let table = plan.table();
    assert!(table.contains("| openim-api | index |"), "{table}");
    assert!(table.contains("`aliyun` takes images only, not helm"), "{table}");
    assert!(table.contains("Release version 1.2.3"), "{table}");

    // The chart renders exactly the images the plan pushes, under a tag the plan gives them.
    let tag = &plan.decision.image_tag;
    let chart = artifacts.iter().find(|a| a.kind == artifact::Kind::Chart).unwrap();
    let (helm, home) = crate::artifact::tests::helm();
    let out = crate::artifact::tests::helm_cmd(&helm, &home)
        .args(["template", "im"])
        .arg(dir.path().join(&chart.file_name))
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
    let images = crate::artifact::tests::rendered_images(&String::from_utf8_lossy(&out.stdout));
    let pushed: Vec<String> = plan
        .rows
        .iter()
        .filter(|r| r.arch == "index" && r.tags.contains(tag) && r.image != "openim-standalone")
        .map(|r| format!("{}/{}:{tag}@{}", cfg.registries[0].repository, r.image, r.digest))
        .collect();
    assert_eq!(images, pushed, "the chart's images are the plan's, pinned by digest");
    // The compose bundle names the same registry and tag.
    let compose = artifacts.iter().find(|a| a.kind == artifact::Kind::Compose).unwrap();
    let env = &crate::artifact::tests::unpack(&compose.package)["openim-compose/.env"];
    assert!(env.contains(&format!("\nOPENIM_VERSION={tag}\n")), "{env}");
    assert!(env.contains(&format!("OPENIM_REGISTRY={}\n", cfg.registries[0].repository)), "{env}");
    // Every image of the bundle is pinned: Compose pulls the digests the release pushed and
    // resolved, whatever the tags name by then.
    let unpacked = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(&compose.package[..])).unpack(unpacked.path()).unwrap();
    let bundle = unpacked.path().join("openim-compose");
    std::fs::write(bundle.join(".env"), format!("{env}OPENIM_SECRET=x\nOPENIM_TOKEN_KEY=x\nMYSQL_PASSWORD=x\nMYSQL_ROOT_PASSWORD=x\nREDIS_PASSWORD=x\nMONGO_PASSWORD=x\n")).unwrap();
    let mut seen = 0;
    for file in ["docker-compose.yml", "standalone.yml"] {
        let config = crate::artifact::tests::compose_config(&bundle, file);
        for (name, service) in config["services"].as_object().unwrap() {
            let image = service["image"].as_str().unwrap();
            let (_, digest) = image.split_once('@').unwrap_or_else(|| panic!("{file}: {name}: {image} is not pinned"));
            let want = match image.split_once("/openim-") {
                Some((_, rest)) if image.starts_with(&cfg.registries[0].repository) => {
                    pins.images[rest.split_once(':').unwrap().0].clone()
                }
                _ => pins.infra[image.split_once('@').unwrap().0].clone(),
            };
            assert_eq!(digest, want, "{file}: {name}");
            seen += 1;
        }
    }
    assert!(seen >= 15, "{seen} services");
    // A re-run reads the infrastructure pins back from the published bundle.
    assert_eq!(crate::artifact::infra_pins_of_bundle(&compose.package).unwrap(), pins.infra);
}

#[test]
fn image_references_read_as_docker_reads_them() {
    let r = |i: &str| crate::artifact::image_ref(i).unwrap();
    let t = |h: &str, r: &str, t: &str| (h.to_owned(), r.to_owned(), t.to_owned());
    assert_eq!(r("mariadb:11.4"), t("docker.io", "library/mariadb", "11.4"));
    assert_eq!(r("apache/kafka:3.9.1"), t("docker.io", "apache/kafka", "3.9.1"));
    assert_eq!(r("ghcr.io/openimsdk/openim-api:1.2.3"), t("ghcr.io", "openimsdk/openim-api", "1.2.3"));
    assert_eq!(r("127.0.0.1:5000/library/redis:7.2"), t("127.0.0.1:5000", "library/redis", "7.2"));
    assert!(crate::artifact::image_ref("redis").is_err(), "a tag is required");
}
