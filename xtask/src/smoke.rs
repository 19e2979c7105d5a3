//! The images of really cross-built binaries: reproducible, runnable in a container engine
//! (amd64, podman) and under emulation (arm64, `qemu-aarch64-static`).
//!
//! These tests need the static binaries `cargo xtask build --profile smoke` makes, named by
//! `OPENIM_SMOKE_AMD64` and `OPENIM_SMOKE_ARM64`. `cargo xtask ci` builds them and runs these
//! tests; a plain `cargo nextest run` skips them as ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::image::{self, ImageArch};
use crate::oci::Layout;

use crate::smoke_vars::{AMD64 as AMD64_VAR, ARM64 as ARM64_VAR};

fn binary(arch: ImageArch) -> PathBuf {
    let var = if arch == ImageArch::Amd64 { AMD64_VAR } else { ARM64_VAR };
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} names no cross-built binary: run these tests through `cargo xtask ci`"));
    assert!(path.is_file(), "{var}={} does not exist", path.display());
    path
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn assemble(dir: &Path, arches: &[ImageArch], tag: &str) -> (Layout, image::Assembled) {
    let binaries: BTreeMap<_, _> = arches.iter().map(|a| (*a, binary(*a))).collect();
    let layout = Layout::create(dir).unwrap();
    let assembled = image::assemble(&layout, &binaries, &root().join("config"), &image::tests::meta(), tag).unwrap();
    (layout, assembled)
}

/// `openim 0.1.0` (or `openim-standalone 0.1.0` from a subcommand).
fn assert_version(out: &str) {
    let (name, version) = out.trim().split_once(' ').unwrap_or_default();
    assert!(name.starts_with("openim") && semver::Version::parse(version).is_ok(), "not a version: {out}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn check(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{what}: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Polls `http://127.0.0.1:<port>/healthz` until it answers 200, or panics after `limit`.
fn wait_healthy(port: u16, limit: Duration, child: &mut impl FnMut() -> Option<String>) {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(resp) = client.get(format!("http://127.0.0.1:{port}/healthz")).send()
            && resp.status().is_success()
        {
            return;
        }
        if let Some(why) = child() {
            panic!("the server exited before it was healthy: {why}");
        }
        assert!(Instant::now() < deadline, "no healthy /healthz on {port} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The same binaries give the same digests, assembled twice into separate layouts; the
/// binaries are static ELF files of their arch.
#[test]
#[ignore = "needs cross-built binaries: run through `cargo xtask ci`"]
fn cross_built_images_are_reproducible() {
    // Nothing in the binaries depends on where the checkout, Cargo's home or the target
    // directory are, so another checkout of the commit builds the same bytes.
    let home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
    let target = std::path::absolute(image::target_dir()).unwrap();
    let checkout = std::fs::canonicalize(root()).unwrap();
    for arch in ImageArch::ALL {
        let data = std::fs::read(binary(arch)).unwrap();
        image::check_elf(&data, arch).unwrap();
        crate::build::check_static(&data).unwrap();
        for path in [home.clone(), target.display().to_string(), checkout.display().to_string()] {
            let needle = path.as_bytes();
            let hits = (0..data.len()).filter(|&i| data[i] == b'/' && data[i..].starts_with(needle)).count();
            assert_eq!(hits, 0, "the {} binary names {path} {hits} times", arch.name());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = assemble(&dir.path().join("a"), &ImageArch::ALL, "1.2.3");
    let (_, b) = assemble(&dir.path().join("b"), &ImageArch::ALL, "1.2.3");
    assert_eq!(a.indexes, b.indexes);
    assert_eq!(a.manifests, b.manifests);
    assert_eq!(a.indexes.len(), image::SERVICES.len());
}

/// Each cross-built binary carries the list of the crates built into it (`cargo auditable`),
/// as a scanner reads it from an image: read back with `auditable-info`, it has the `openim`
/// package as its root, the C libraries' wrapper crates with the versions they build, and every
/// crate of the lock file that the binary links (and only those).
#[test]
#[ignore = "needs cross-built binaries: run through `cargo xtask ci`"]
fn cross_built_binaries_list_their_crates() {
    let lock: toml::Value = toml::from_str(&std::fs::read_to_string(root().join("Cargo.lock")).unwrap()).unwrap();
    let locked: std::collections::BTreeSet<(String, String)> = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["version"].as_str().unwrap().to_owned()))
        .collect();
    for arch in ImageArch::ALL {
        let info = auditable_info::audit_info_from_file(&binary(arch), Default::default()).unwrap();
        let version = |name: &str| -> String {
            let p = info.packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} not listed"));
            p.version.to_string()
        };
        assert!(info.packages.iter().any(|p| p.root && p.name == "openim"), "{}: root", arch.name());
        assert_eq!(version("rdkafka-sys"), "4.10.0+2.12.1", "librdkafka 2.12.1");
        assert!(version("libsqlite3-sys").starts_with("0.30"), "SQLite, bundled");
        assert!(version("openssl-src").ends_with("+3.6.3"), "OpenSSL 3.6.3, vendored");
        assert!(info.packages.len() > 200, "{}: {} crates", arch.name(), info.packages.len());
        for p in &info.packages {
            assert!(
                locked.contains(&(p.name.clone(), p.version.to_string())),
                "{} {} is not in Cargo.lock",
                p.name,
                p.version
            );
        }
        assert!(
            !info.packages.iter().any(|p| p.name == "openim-testkit" || p.name == "xtask"),
            "no test or tool crates"
        );
        // The release's SBOM lists every crate linked into the binary (two tools, one answer).
        let sbom: serde_json::Value = serde_json::from_slice(crate::sbom::tests::sbom()).unwrap();
        let listed: std::collections::BTreeSet<(String, String)> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["version"].as_str().unwrap().to_owned()))
            .collect();
        for p in info.packages.iter().filter(|p| !p.root && p.kind == auditable_serde::DependencyKind::Runtime) {
            let id = (p.name.clone(), p.version.to_string());
            assert!(listed.contains(&id), "{} {} is not in the SBOM", p.name, p.version);
        }
    }
}

/// The amd64 standalone image, copied into podman's storage with skopeo, prints its version and
/// answers its health check; it runs as the non-root user.
#[test]
#[ignore = "needs cross-built binaries and podman: run through `cargo xtask ci`"]
fn the_amd64_image_runs_in_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = assemble(&dir.path().join("oci"), &[ImageArch::Amd64], "smoke");
    // podman needs no rlimits it may not set on these machines (see ENVIRONMENT.md).
    let conf = dir.path().join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    let podman = |args: &[&str]| Command::new("podman").env("CONTAINERS_CONF", &conf).args(args).output().unwrap();
    let image = format!("localhost/openim-standalone-smoke:{}", std::process::id());
    let copy = Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:openim-standalone:smoke", layout.dir.display()))
        .arg(format!("containers-storage:{image}"))
        .output()
        .unwrap();
    check("skopeo copy into containers-storage", &copy);

    // The entrypoint is `openim standalone --config …`: the flag goes to the subcommand.
    assert_version(&check("podman run --version", &podman(&["run", "--rm", &image, "--version"])));

    let user = check("podman inspect", &podman(&["image", "inspect", "--format", "{{.Config.User}}", &image]));
    assert_eq!(user.trim(), "65532:65532");

    let port = free_port();
    let name = format!("openim-smoke-{}", std::process::id());
    // The image's own entrypoint (`openim standalone --config /etc/openim/config`), REST
    // published on a free port, as the image's non-root user with its own data directory.
    let run = podman(&["run", "-d", "--name", &name, "-p", &format!("127.0.0.1:{port}:10002"), &image]);
    check("podman run -d", &run);
    let mut exited = || {
        let state = podman(&["inspect", "--format", "{{.State.Status}}", &name]);
        let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
        (state == "exited").then(|| {
            let logs = podman(&["logs", &name]);
            format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr))
        })
    };
    wait_healthy(port, Duration::from_secs(60), &mut exited);
    let stop = podman(&["stop", "-t", "10", &name]);
    let exit = podman(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    podman(&["rm", "-f", &name]);
    podman(&["rmi", "-f", &image]);
    check("podman stop", &stop);
    assert_eq!(String::from_utf8_lossy(&exit.stdout).trim(), "0", "SIGTERM stops the server cleanly");
}

/// The arm64 binary prints its version and serves the standalone server under qemu.
#[test]
#[ignore = "needs cross-built binaries and qemu-user-static: run through `cargo xtask ci`"]
fn the_arm64_binary_runs_under_qemu() {
    let bin = binary(ImageArch::Arm64);
    let out = Command::new("qemu-aarch64-static").arg(&bin).arg("--version").output().unwrap();
    assert_version(&check("qemu-aarch64-static openim --version", &out));

    let data = tempfile::tempdir().unwrap();
    let (api, admin, ws) = (free_port(), free_port(), free_port());
    let mut child: Child = Command::new("qemu-aarch64-static")
        .arg(&bin)
        .args(["standalone", "--config"])
        .arg(root().join("config"))
        .env("OPENIM_API__LISTEN", format!("127.0.0.1:{api}"))
        .env("OPENIM_API__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("OPENIM_MSGGATEWAY__LISTEN", format!("127.0.0.1:{ws}"))
        .env("OPENIM_STORAGE__DATA_DIR", data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = || child.try_wait().ok().flatten().map(|s| s.to_string());
    wait_healthy(api, Duration::from_secs(120), &mut exited);
    let _ = child.kill();
    let _ = child.wait();
}

/// The administrator secret of the compose smoke test (compose interpolates it on `up` and `down`).
const SMOKE_SECRET: &str = "smoke-admin-secret-0123456789abcdef01234567";

/// `compose/standalone.yml`, the smallest trial, run by `cargo xtask compose-up` (the real
/// Docker Compose v2 against podman's Docker-compatible API) with the amd64 image: `up --wait`
/// returns once the container's health check (`openim healthcheck standalone`, the binary
/// checking itself) passes, and REST answers on the published port.
#[test]
#[ignore = "needs cross-built binaries, podman and docker compose: run through `cargo xtask ci`"]
fn the_standalone_compose_file_starts_healthy_in_podman() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _) = assemble(&dir.path().join("oci"), &[ImageArch::Amd64], &format!("smoke-{}", std::process::id()));
    let conf = dir.path().join("containers.conf");
    std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
    let podman = |args: &[&str]| Command::new("podman").env("CONTAINERS_CONF", &conf).args(args).output().unwrap();

    // podman's Docker API, for Compose.
    let socket = dir.path().join("podman.sock");
    let mut service = Command::new("podman")
        .env("CONTAINERS_CONF", &conf)
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "podman system service never listened on {}", socket.display());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Health checks do not run by themselves here (podman schedules them through systemd): run
    // them, as the engine would, until the test is done.
    let project = format!("openim-smoke-{}", std::process::id());
    let container = format!("{project}-openim-1");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (done, conf, container) = (done.clone(), conf.clone(), container.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = Command::new("podman")
                    .env("CONTAINERS_CONF", &conf)
                    .args(["healthcheck", "run", &container])
                    .output();
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };

    let api = free_port();
    let up = crate::compose::ComposeUp {
        dir: root().join("compose"),
        file: "standalone.yml".into(),
        layout: Some(layout.dir.clone()),
        transport: "containers-storage".into(),
        project: project.clone(),
        timeout: 120,
        docker_host: Some(format!("unix://{}", socket.display())),
        env: vec![
            ("OPENIM_CONFIG".into(), root().join("config").display().to_string()),
            ("OPENIM_API_PORT".into(), api.to_string()),
            // No secret ships in .env (init-secrets.sh generates them).
            ("OPENIM_SECRET".into(), SMOKE_SECRET.into()),
            ("OPENIM_WS_PORT".into(), free_port().to_string()),
        ],
        init_secrets: false,
    }
    .run();
    let health = podman(&["inspect", "--format", "{{.State.Health.Status}}", &container]);
    let logs = podman(&["logs", &container]);
    let api_health = reqwest::blocking::get(format!("http://127.0.0.1:{api}/healthz")).map(|r| r.status().as_u16());

    let down = crate::compose::compose_command()
        .current_dir(root().join("compose"))
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("OPENIM_SECRET", SMOKE_SECRET)
        .args(["-f", "standalone.yml", "-p", &project, "down", "-v", "--timeout", "10"])
        .output()
        .unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    prober.join().unwrap();
    for r in crate::compose::layout_refs(&layout.dir).unwrap() {
        podman(&["rmi", "-f", &format!("{}/{r}", crate::compose::LOCAL_REGISTRY)]);
    }
    let _ = service.kill();
    let _ = service.wait();

    let logs = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    up.unwrap_or_else(|e| panic!("cargo xtask compose-up: {e:#}\ncontainer log: {logs}"));
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "healthy", "{logs}");
    assert_eq!(api_health.ok(), Some(200), "REST on the published port");
    check("docker compose down -v", &down);
}
