//! Pushes to real registries: Debian's `docker-registry` (CNCF distribution) with htpasswd auth,
//! two of them standing in for two providers, started per test. `cargo xtask setup images` installs it with
//! skopeo (the independent check) and htpasswd.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::artifact::Pins;
use crate::image::{self, ImageArch};
use crate::testing::{Fault, FaultProxy, PASSWORD, Seen, TestRegistry, USER, config, creds};

/// Assembles every service for both arches into `dir`, tagged `tag`, with binaries whose
/// content depends on `flavour`.
pub(crate) fn images(dir: &Path, flavour: &str, tag: &str) -> Layout {
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
        .expect("skopeo (Debian package; `cargo xtask setup images` installs it)");
    assert!(out.status.success(), "skopeo inspect {image}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn items(layout: &Layout, tags: &[String]) -> Vec<Item> {
    image_items(layout, &image_names(&config(&[])), "1.2.3", tags).unwrap()
}

/// What `reg` (as `cfg` names it) says `openimsdk/<repo>:<tag>` is.
fn tag_digest(cfg: &ReleaseConfig, i: usize, repo: &str, tag: &str) -> Option<String> {
    let r = &cfg.registries[i];
    let mut client = Registry::new(r.repository.split_once('/').unwrap().0, creds(r).unwrap(), true).unwrap();
    client.manifest_digest(&format!("openimsdk/{repo}"), tag).unwrap()
}

#[test]
fn all_services_reach_two_registries_and_a_second_push_uploads_nothing() {
    let (a, b) = (TestRegistry::start(), TestRegistry::start());
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let cfg = config(&[&a, &b]);
    let items = items(&layout, &tags());

    let first = publish(&cfg, &[], &items, false, None, &creds).unwrap();
    assert_eq!(first.len(), 2);
    let services = image::SERVICES.len() as u64;
    for p in &first {
        // 3 layers per arch, of which base and config are shared by both arches, plus one
        // config per service and arch: each distinct blob crosses the wire once per registry.
        assert_eq!(p.stats.blobs_uploaded, 4 + 2 * services, "{}: {:?}", p.registry, p.stats);
        assert!(p.stats.blobs_mounted >= 4 * (services - 1), "layers are mounted across repositories: {:?}", p.stats);
        assert_eq!(p.stats.manifests_put, 3 * services, "two per-arch manifests and an index each");
        assert_eq!(p.stats.tags_written, tags().len() as u64 * services);
        assert_eq!(p.digests.len() as u64, services);
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

    // The same commit again: nothing uploaded or mounted, no manifest sent, no tag moved.
    let second = publish(&cfg, &[], &items, false, None, &creds).unwrap();
    for p in &second {
        let s = &p.stats;
        assert_eq!(
            (s.blobs_uploaded, s.bytes_uploaded, s.blobs_mounted, s.manifests_put, s.tags_written),
            (0, 0, 0, 0, 0),
            "{s:?}"
        );
        assert_eq!(s.tags_unchanged, tags().len() as u64 * services);
        assert_eq!(p.digests, first[0].digests, "same digests");
    }
}

#[test]
fn a_release_tag_never_moves_without_force() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&[&reg]);
    let original = images(tmp.path(), "one", "1.2.3");
    publish(&cfg, &[], &items(&original, &tags()), false, None, &creds).unwrap();

    let changed = images(tmp.path(), "two", "1.2.3");
    let e = format!("{:#}", publish(&cfg, &[], &items(&changed, &tags()), false, None, &creds).unwrap_err());
    assert!(e.contains("never moves") && e.contains(":1.2.3"), "{e}");
    // Refused before anything was written: the tag still names the original.
    let api = original.refs().unwrap()["openim-api:1.2.3"].digest().to_string();
    assert_eq!(tag_digest(&cfg, 0, "openim-api", "1.2.3"), Some(api));

    // Floating tags may move; with --force the release tag does too.
    let floating: Vec<String> = ["1.2", "1", "latest", "main"].map(String::from).to_vec();
    publish(&cfg, &[], &items(&changed, &floating), false, None, &creds).unwrap();
    publish(&cfg, &[], &items(&changed, &tags()), true, None, &creds).unwrap();
    let moved = changed.refs().unwrap()["openim-api:1.2.3"].digest().to_string();
    assert_eq!(tag_digest(&cfg, 0, "openim-api", "1.2.3"), Some(moved));
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let reg = TestRegistry::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let bad =
        |_: &release::Registry| -> anyhow::Result<Option<(String, String)>> { Ok(Some((USER.into(), "wrong".into()))) };
    let e = format!("{:#}", publish(&config(&[&reg]), &[], &items(&layout, &tags()), false, None, &bad).unwrap_err());
    assert!(e.contains("provider0") && e.contains("401"), "{e}");
}

/// The chart and the compose bundle of a release, as items.
fn artifacts() -> Vec<Item> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let chart =
        crate::artifact::package_chart(&root.join("charts/openim"), "1.2.3", "1.2.3", 1_700_000_000, &Pins::default())
            .unwrap();
    let compose = crate::artifact::compose_bundle(
        &root.join("compose"),
        &root.join("config"),
        "1.2.3",
        "example.com/openim",
        "1.2.3",
        1_700_000_000,
        &Pins::default(),
    )
    .unwrap();
    vec![chart.item(), compose.item()]
}

/// Like Aliyun ACR Personal: a registry that stores images only gets the images and the plan's
/// reason for the rest; told it takes everything, it fails the run in phase 1 with a message
/// naming it, the artifact and the media type, and no tag is written anywhere.
#[test]
fn an_images_only_registry_gets_the_images_and_says_why_it_skips_the_rest() {
    let (a, acr, c) = (TestRegistry::start(), TestRegistry::images_only(), TestRegistry::start());
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let mut all = items(&layout, &tags());
    all.extend(artifacts());

    // Told everything: refused, named, and nothing tagged on any registry.
    let mut cfg = config(&[&a, &acr, &c]);
    let e = format!("{:#}", publish(&cfg, &[], &all, false, None, &creds).unwrap_err());
    for want in [
        "`provider1`",
        "chart openim",
        "application/vnd.cncf.helm.config.v1+json",
        "403",
        "unknown manifest class",
        "`helm`",
        "no tag was written",
    ] {
        assert!(e.contains(want), "{want} not in: {e}");
    }
    for i in 0..3 {
        assert_eq!(tag_digest(&cfg, i, "openim-api", "1.2.3"), None, "provider{i}");
        assert_eq!(tag_digest(&cfg, i, "openim", "1.2.3"), None, "provider{i}");
    }

    // Told the truth: images everywhere, chart and bundle on the other two, the reason shown.
    cfg.registries[1].takes = vec![Takes::Images];
    cfg.registries[1].note = Some("like ACR Personal".into());
    let pushed = publish(&cfg, &[], &all, false, None, &creds).unwrap();
    let services = image::SERVICES.len();
    assert_eq!(pushed[0].digests.len(), services + 2);
    assert_eq!(pushed[1].digests.len(), services);
    assert_eq!(pushed[2].digests.len(), services + 2);
    assert_eq!(pushed[1].skipped.len(), 2, "{:?}", pushed[1].skipped);
    assert!(
        pushed[1].skipped[0].starts_with("chart openim: `provider1` takes images only, not helm (like ACR Personal)"),
        "{:?}",
        pushed[1].skipped
    );
    assert!(
        pushed[1].skipped[1].starts_with("compose openim-compose: `provider1` takes images only, not artifacts"),
        "{:?}",
        pushed[1].skipped
    );
    for i in 0..3 {
        assert!(tag_digest(&cfg, i, "openim-api", "v1.2.3").is_some(), "provider{i}");
        assert_eq!(tag_digest(&cfg, i, "openim", "1.2.3").is_some(), i != 1, "provider{i}");
    }
}

/// Faults a proxy injects before the registry answers: rate limits with `Retry-After` in both
/// forms, GHCR's secondary rate limit, a server error, a dropped connection. The push retries
/// through all of them; a registry that never recovers is a clear error.
#[test]
fn pushes_retry_through_rate_limits_and_transport_errors() {
    let reg = TestRegistry::start();
    let status =
        |code: u16, retry_after: Option<String>, body: &str| Fault::Status { code, retry_after, body: body.into() };
    // Faults for the first try of the first request of each kind named; what was injected is logged.
    type Pending = Vec<(&'static str, &'static str, Fault)>;
    let injected = Arc::new(Mutex::new(Vec::new()));
    let faults = |mut pending: Pending| -> crate::testing::Decide {
        let log = injected.clone();
        Box::new(move |seen: &Seen<'_>| {
            let i = pending.iter().position(|(m, p, _)| *m == seen.method && seen.path.contains(p))?;
            let (m, p, f) = pending.remove(i);
            log.lock().unwrap().push(format!("{m} {p}"));
            Some(f)
        })
    };
    let too_many = r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#;
    // 1. While pushing: a rate limit asking for 2 s (delay-seconds), a server error on an
    // upload start, a connection dropped on a manifest, a bad gateway on a tag.
    let proxy = FaultProxy::start(
        reg.port,
        faults(vec![
            ("HEAD", "/blobs/", status(429, Some("2".into()), too_many)),
            ("POST", "/blobs/uploads/", status(503, None, "unavailable")),
            ("PUT", "/manifests/sha256:", Fault::Drop),
            ("PUT", "/manifests/1.2.3", status(502, None, "bad gateway")),
        ]),
    );
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let cfg = crate::testing::config_for(&[proxy.host()]);
    let s = publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap()[0].stats.clone();
    assert_eq!(injected.lock().unwrap().len(), 4, "every fault was met: {:?}", injected.lock().unwrap());
    assert_eq!(s.retries, 4, "{s:?}");
    // The backoffs of the other three are a few tens of milliseconds (base_ms 20).
    assert!((2000..3000).contains(&s.wait_ms), "Retry-After: 2 was waited: {s:?}");
    assert!(tag_digest(&cfg, 0, "openim-api", "1.2.3").is_some());

    // 2. Retry-After as an HTTP date, 3 s ahead (whole seconds: 2 to 3 s from now).
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(3));
    proxy.set(faults(vec![("HEAD", "/manifests/", status(503, Some(at), "unavailable"))]));
    let s = publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap()[0].stats.clone();
    assert_eq!(s.retries, 1, "{s:?}");
    assert!((1900..3100).contains(&s.wait_ms), "the HTTP date was waited for: {s:?}");

    // 3. GHCR's secondary rate limit: a 403 whose message says so and names no time waits at
    // least the longest wait (5 s here; a minute by default), not the short backoff (a new tag:
    // the PUT carries the message); on a HEAD, which has no body, a `Retry-After` says it.
    proxy.set(faults(vec![("PUT", "/manifests/main", status(403, None, "You have exceeded a secondary rate limit"))]));
    let main: Vec<String> = vec!["main".into()];
    let s = publish(&cfg, &[], &items(&layout, &main), false, None, &creds).unwrap()[0].stats.clone();
    assert_eq!(s.retries, 1, "{s:?}");
    assert!(s.wait_ms >= 5000, "{s:?}");
    proxy.set(faults(vec![("HEAD", "/manifests/", status(403, Some("1".into()), ""))]));
    let s = publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap()[0].stats.clone();
    assert_eq!((s.retries, s.wait_ms), (1, 1000), "{s:?}");
    // A plain 403 is no rate limit: refused at once.
    proxy.set(faults(vec![("HEAD", "/manifests/", status(403, None, "denied"))]));
    let e = format!("{:#}", publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap_err());
    assert!(e.contains("403") && !e.contains("gave up"), "{e}");

    // A registry that answers 503 to everything: the tries run out, and the error says so.
    proxy.set(Box::new(|_: &Seen<'_>| Some(Fault::Status { code: 503, retry_after: None, body: "down".into() })));
    let e = format!("{:#}", publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap_err());
    assert!(e.contains("gave up after 4 tries") && e.contains("503") && e.contains("HEAD http://"), "{e}");
    // One asking for a longer wait than the run allows is an error at once.
    proxy.set(Box::new(|_: &Seen<'_>| {
        Some(Fault::Status { code: 429, retry_after: Some("3600".into()), body: String::new() })
    }));
    let e = format!("{:#}", publish(&cfg, &[], &items(&layout, &tags()), false, None, &creds).unwrap_err());
    assert!(e.contains("retry after 3600 s"), "{e}");
}

/// The third registry starts failing once phase 1 reaches it: no tag moves anywhere. After it
/// recovers, a re-run completes, uploading only what the third still lacked.
#[test]
fn a_failure_in_phase_one_moves_no_tag_and_a_rerun_completes() {
    let (a, b, c) = (TestRegistry::start(), TestRegistry::start(), TestRegistry::start());
    let uploads = Arc::new(AtomicU64::new(0));
    let count = uploads.clone();
    // Down from its 20th upload on.
    let proxy = FaultProxy::start(
        c.port,
        Box::new(move |seen: &Seen<'_>| {
            if seen.method == "PUT" && count.fetch_add(1, Ordering::SeqCst) >= 20 {
                return Some(Fault::Status { code: 503, retry_after: None, body: "down".into() });
            }
            None
        }),
    );
    let tmp = tempfile::tempdir().unwrap();
    let layout = images(tmp.path(), "one", "1.2.3");
    let cfg = crate::testing::config_for(&[a.host(), b.host(), proxy.host()]);
    let mut all = items(&layout, &tags());
    all.extend(artifacts());
    let e = format!("{:#}", publish(&cfg, &[], &all, false, None, &creds).unwrap_err());
    assert!(e.contains("`provider2`") && e.contains("phase 1") && e.contains("gave up"), "{e}");
    for i in 0..3 {
        for (repo, tag) in
            [("openim-api", "1.2.3"), ("openim-api", "latest"), ("openim-push", "1.2"), ("openim", "1.2.3")]
        {
            assert_eq!(tag_digest(&cfg, i, repo, tag), None, "provider{i} {repo}:{tag}");
        }
    }
    proxy.set(Box::new(|_: &Seen<'_>| None));
    let pushed = publish(&cfg, &[], &all, false, None, &creds).unwrap();
    assert_eq!(
        (pushed[0].stats.blobs_uploaded, pushed[0].stats.manifests_put),
        (0, 0),
        "the first two hold everything"
    );
    assert!(pushed[2].stats.blobs_present > 0, "the third keeps what it got: {:?}", pushed[2].stats);
    for i in 0..3 {
        assert!(tag_digest(&cfg, i, "openim-api", "latest").is_some(), "provider{i}");
        assert!(tag_digest(&cfg, i, "openim", "1.2.3").is_some(), "provider{i}");
    }
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
