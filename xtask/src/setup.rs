//! `cargo xtask setup [GROUP…]`, and the first step of `cargo xtask ci`: installs what the tests
//! need, reusing what is there, and says what it found in one progress line per group.
//!
//! | group | what |
//! | --- | --- |
//! | `nextest` | cargo-nextest (crates.io) |
//! | `services` | MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379): reused when listening, else started, else installed from Debian (`xtask/setup/services.sh`) |
//! | `kafka` | tansu 0.6.0, a Kafka-protocol broker (crates.io); the tests start their own brokers |
//! | `s3` | s3s-fs 0.14.1, an S3 server over a directory that checks SigV4 signatures (crates.io); the object-store tests start their own |
//! | `mongo` | SecantusDB, a MongoDB-wire server (PyPI); `cargo xtask ci` starts one for the run unless `OPENIM_TEST_MONGO_URL` names a server |
//! | `cross`, `images`, `helm`, `dist`, `compose`, `lint` | the release pipeline's tools (`xtask/setup/tools.sh`: zig, cargo-zigbuild, docker-registry, skopeo, podman, qemu, helm, cargo-dist, docker compose, actionlint, zizmor) |
//! | `sign` | `cosign-check`, a cosign signature verifier on sigstore-rs (`xtask/cosign-check`), for the release tests |
//! | `python` | the PyPI `openim-sdk-core` client in a virtualenv (`tests/compat/setup_python_sdk.sh`) |
//! | `browser` | Debian's Chromium and the official SDK's node modules (`npm ci` in `tests/sdk`) |
//!
//! Tools go under `~/.cache/tools` (virtualenvs, cargo roots) or come from Debian's packages;
//! nothing is downloaded from anywhere but crates.io, PyPI, npm and Debian.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// What can be installed, in the order `cargo xtask ci` installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    Nextest,
    Services,
    Kafka,
    S3,
    Mongo,
    Cross,
    Images,
    Helm,
    Dist,
    Compose,
    Lint,
    Sign,
    Python,
    Browser,
}

impl Group {
    pub const ALL: [Group; 14] = [
        Group::Nextest,
        Group::Services,
        Group::Kafka,
        Group::S3,
        Group::Mongo,
        Group::Cross,
        Group::Images,
        Group::Helm,
        Group::Dist,
        Group::Compose,
        Group::Lint,
        Group::Sign,
        Group::Python,
        Group::Browser,
    ];
}

/// Progress lines with the seconds since the start: `==> [93s] kafka broker: tansu 0.6.0`.
#[derive(Clone, Copy)]
pub struct Progress {
    start: Instant,
}

impl Progress {
    pub fn new() -> Self {
        Self { start: Instant::now() }
    }

    pub fn line(&self, msg: impl std::fmt::Display) {
        eprintln!("==> [{}s] {msg}", self.start.elapsed().as_secs());
    }
}

/// The tool caches, `~/.cache/tools/<name>`.
pub fn tools_dir(name: &str) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/tools").join(name))
}

/// The checkout's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is in the workspace").to_path_buf()
}

/// What the tests are given: where the tools are, and the servers started for the run (stopped
/// when this is dropped).
#[derive(Default)]
pub struct Prepared {
    pub env: Vec<(String, OsString)>,
    _servers: Vec<Server>,
}

/// `cargo xtask setup`.
#[derive(clap::Args)]
pub struct Setup {
    /// Only these groups (default: all).
    #[arg(value_enum)]
    groups: Vec<Group>,
}

impl Setup {
    pub fn run(self) -> anyhow::Result<()> {
        let groups = if self.groups.is_empty() { Group::ALL.to_vec() } else { self.groups };
        let progress = Progress::new();
        for g in groups {
            install(g, &progress)?;
        }
        Ok(())
    }
}

/// Installs `groups` and starts the servers the tests need for one run.
pub fn prepare(groups: &[Group], progress: &Progress) -> anyhow::Result<Prepared> {
    let mut out = Prepared::default();
    for &g in groups {
        if let Some((key, value)) = install(g, progress)? {
            out.env.push((key.into(), value));
        }
        if g == Group::Mongo && std::env::var_os("OPENIM_TEST_MONGO_URL").is_none() {
            let server = Server::secantus()?;
            let url = format!("mongodb://127.0.0.1:{}/?directConnection=true", server.port);
            progress.line(format!("mongodb: SecantusDB on {url} (for this run)"));
            out.env.push(("OPENIM_TEST_MONGO_URL".into(), url.into()));
            out._servers.push(server);
        }
    }
    Ok(out)
}

/// Installs one group; returns the variable that tells the tests where it is, if any.
fn install(group: Group, progress: &Progress) -> anyhow::Result<Option<(&'static str, OsString)>> {
    let script = |name: &str, args: &[&str]| run_script(&root().join("xtask/setup").join(name), args, progress);
    match group {
        Group::Nextest => {
            if !succeeds(Command::new(env!("CARGO")).args(["nextest", "--version"])) {
                progress.line("installing cargo-nextest (crates.io)");
                cargo_install(&["cargo-nextest", "--locked"], progress)?;
            }
            progress.line(format!(
                "test runner: {}",
                first_line(Command::new(env!("CARGO")).args(["nextest", "--version"]))?
            ));
            Ok(None)
        }
        Group::Services => script("services.sh", &[]).map(|()| None),
        Group::Kafka => {
            let bin = match std::env::var_os("OPENIM_TANSU") {
                Some(p) => PathBuf::from(p),
                None => tools_dir("tansu")?.join("bin/tansu"),
            };
            if !succeeds(Command::new(&bin).arg("--version")) {
                let root = tools_dir("tansu")?;
                progress
                    .line(format!("installing tansu 0.6.0 (Kafka-protocol broker, crates.io) into {}", root.display()));
                // A test broker: opt-level 1 builds in about half the time of the release profile.
                let root = root.to_string_lossy();
                let args = ["tansu", "--version", "0.6.0", "--features", "libsql", "--root", &root];
                cargo_install_with(&args, &[("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")], progress)?;
            }
            progress.line(format!("kafka broker: {}", first_line(Command::new(&bin).arg("--version"))?));
            Ok(Some(("OPENIM_TANSU", bin.into())))
        }
        Group::S3 => {
            let bin = match std::env::var_os("OPENIM_S3S_FS") {
                Some(p) => PathBuf::from(p),
                None => tools_dir("s3s-fs")?.join("bin/s3s-fs"),
            };
            if !succeeds(Command::new(&bin).arg("--version")) {
                let root = tools_dir("s3s-fs")?;
                progress.line(format!("installing s3s-fs 0.14.1 (S3 server, crates.io) into {}", root.display()));
                let root = root.to_string_lossy();
                let args = ["s3s-fs", "--version", "0.14.1", "--features", "binary", "--locked", "--root", &root];
                cargo_install_with(&args, &[("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")], progress)?;
            }
            progress.line(format!("s3 server: {}", first_line(Command::new(&bin).arg("--version"))?));
            Ok(Some(("OPENIM_S3S_FS", bin.into())))
        }
        Group::Mongo => {
            if std::env::var_os("OPENIM_TEST_MONGO_URL").is_none() {
                let venv = tools_dir("secantus")?;
                if !succeeds(Command::new(venv.join("bin/secantusd-py")).arg("--help")) {
                    progress.line(format!(
                        "installing SecantusDB (MongoDB-wire test server, PyPI) into {}",
                        venv.display()
                    ));
                    venv_install(&venv, &["SecantusDB==0.7.0b3"])?;
                }
            } else {
                progress.line("mongodb: OPENIM_TEST_MONGO_URL is set, using that server");
            }
            Ok(None)
        }
        Group::Cross => script("tools.sh", &["cross"]).map(|()| None),
        Group::Images => script("tools.sh", &["images"]).map(|()| None),
        Group::Helm => {
            script("tools.sh", &["helm"])?;
            Ok(Some(("OPENIM_HELM", tools_dir("helm")?.join("helm/helm").into())))
        }
        Group::Dist => script("tools.sh", &["dist"]).map(|()| None),
        Group::Compose => script("tools.sh", &["compose"]).map(|()| None),
        Group::Lint => script("tools.sh", &["lint"]).map(|()| None),
        Group::Sign => {
            // Built from the checkout (xtask/cosign-check, its own Cargo.lock); again when its
            // sources change (a hash of them, not their times: every clone is new).
            let root_dir = tools_dir("cosign-check")?;
            let bin = root_dir.join("bin/cosign-check");
            let source = root().join("xtask/cosign-check");
            let mut hashed = Vec::new();
            for f in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
                hashed.extend(std::fs::read(source.join(f)).with_context(|| format!("read xtask/cosign-check/{f}"))?);
            }
            let hash = crate::oci::sha256(&hashed);
            let stamp = root_dir.join(".source-hash");
            if !bin.is_file() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(hash.as_str()) {
                progress.line(format!("installing cosign-check (sigstore-rs, crates.io) into {}", root_dir.display()));
                let (path, root_arg) = (source.to_string_lossy(), root_dir.to_string_lossy());
                cargo_install(&["--path", &path, "--locked", "--debug", "--force", "--root", &root_arg], progress)?;
                std::fs::write(&stamp, &hash).with_context(|| format!("write {}", stamp.display()))?;
            }
            progress.line(format!("signature checker: {} (sigstore-rs 0.15)", bin.display()));
            Ok(None)
        }
        Group::Python => {
            let venv = match std::env::var_os("OPENIM_PY_VENV") {
                Some(v) => PathBuf::from(v),
                None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/openim-venv"),
            };
            let out = Command::new("bash")
                .arg(root().join("tests/compat/setup_python_sdk.sh"))
                .env("OPENIM_PY_VENV", &venv)
                .output()
                .context("run tests/compat/setup_python_sdk.sh")?;
            if !out.status.success() {
                bail!("tests/compat/setup_python_sdk.sh failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            progress.line(format!("python SDK: openim-sdk-core in {}", venv.display()));
            Ok(Some(("OPENIM_PY_VENV", venv.into())))
        }
        Group::Browser => browser(progress).map(|()| None),
    }
}

/// Debian's Chromium and the flows' node modules (again when `package-lock.json` changed).
fn browser(progress: &Progress) -> anyhow::Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        progress.line("installing Chromium (Debian package chromium) for the official SDK's browser tests");
        apt_install(&["chromium"])?;
    }
    let dir = root().join("tests/sdk");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed) < modified(&dir.join("package-lock.json")) {
        progress.line("installing the official SDK and playwright-core (npm ci in tests/sdk)");
        run_quiet(Command::new("npm").args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]).current_dir(&dir))
            .context("npm ci in tests/sdk")?;
    }
    let version = npm_version(&dir, "@openim/wasm-client-sdk").unwrap_or_else(|| "?".into());
    progress
        .line(format!("browser: {}; official SDK {version}", first_line(Command::new(&chromium).arg("--version"))?));
    Ok(())
}

/// The installed version of an npm package in `dir`.
fn npm_version(dir: &Path, package: &str) -> Option<String> {
    let manifest = std::fs::read_to_string(dir.join("node_modules").join(package).join("package.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&manifest).ok()?;
    Some(format!("{package} {}", v["version"].as_str()?))
}

/// `apt-get install` (through sudo when not root), updating the package index once if the
/// first try fails.
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() { Command::new("apt-get") } else { Command::new("sudo") };
        if !is_root() {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_quiet(&mut cmd)
    };
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(packages);
    if apt(&args).is_err() {
        apt(&["update", "-qq"]).context("apt-get update")?;
        apt(&args).with_context(|| format!("apt-get install {}", packages.join(" ")))?;
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A virtualenv at `venv` with `packages` (pip arguments) installed.
fn venv_install(venv: &Path, packages: &[&str]) -> anyhow::Result<()> {
    run_quiet(Command::new("python3").args(["-m", "venv"]).arg(venv))
        .with_context(|| format!("python3 -m venv {}", venv.display()))?;
    run_quiet(Command::new(venv.join("bin/pip")).arg("install").arg("-q").args(packages))
        .with_context(|| format!("pip install {} into {}", packages.join(" "), venv.display()))
}

fn cargo_install(args: &[&str], progress: &Progress) -> anyhow::Result<()> {
    cargo_install_with(args, &[], progress)
}

/// `cargo install`, with a progress line every half minute (a crate count) instead of cargo's
/// output, which is shown only when it fails.
fn cargo_install_with(args: &[&str], env: &[(&str, &str)], progress: &Progress) -> anyhow::Result<()> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("install").args(args).envs(env.iter().copied());
    // The crates are built in a directory of their own, not in the workspace's target dir.
    cmd.env_remove("CARGO_TARGET_DIR").env("CARGO_TERM_COLOR", "never");
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("run cargo install")?;
    let stderr = child.stderr.take().context("cargo's stderr")?;
    let (mut compiled, mut tail, mut last) = (0usize, Vec::new(), Instant::now());
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        if line.trim_start().starts_with("Compiling") {
            compiled += 1;
        }
        if last.elapsed() >= Duration::from_secs(30) {
            progress.line(format!("    cargo install {}: {compiled} crates compiled", args[0]));
            last = Instant::now();
        }
        tail.push(line);
        if tail.len() > 40 {
            tail.remove(0);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo install {} failed ({status}):\n{}", args.join(" "), tail.join("\n"));
    }
    Ok(())
}

/// Runs an installer script, each line it prints becoming a progress line.
fn run_script(script: &Path, args: &[&str], progress: &Progress) -> anyhow::Result<()> {
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", script.display()))?;
    let stdout = child.stdout.take().context("the script's stdout")?;
    for line in BufReader::new(stdout).lines() {
        progress.line(line?);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{} {} failed ({status})", script.display(), args.join(" "));
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The first line a command prints.
fn first_line(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// Runs a command, showing its output only when it fails.
pub fn run_quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A server started for one run, stopped (and its data removed) on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// SecantusDB on a free port and a fresh data directory.
    fn secantus() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("a data directory for SecantusDB")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(tools_dir("secantus")?.join("bin/secantusd-py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--storage-path")
            .arg(dir.path().join("data"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start secantusd-py")?;
        let mut server = Self { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                let log = std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
                bail!("SecantusDB exited ({status}) before listening on {port}:\n{log}");
            }
            if Instant::now() > deadline {
                bail!("SecantusDB did not listen on {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
