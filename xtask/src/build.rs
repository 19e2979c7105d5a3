//! `cargo xtask build`: the static (musl) `openim` binary for linux/amd64 and linux/arm64.
//!
//! Three builders:
//! - `zigbuild` (default): cargo-zigbuild, with zig as the C compiler and linker for every
//!   target, so no container engine and no cross toolchain is needed. librdkafka's own
//!   `./configure` reads only plain `CC`/`CXX` (not cc-rs' `CC_<target>`): without them it would
//!   silently compile librdkafka with the host's gcc against glibc. So they are set to
//!   `xtask/zig-cc.sh`, which runs zig for the build script's musl `TARGET`.
//! - `cross`: `cross build` in cross-rs' containers, for machines with Docker or podman and
//!   access to its images. `Cross.toml` passes the same `CC`/`CXX` through.
//! - `cargo`: plain cargo, for the host's own architecture only, with `musl-gcc` as C compiler.
//!
//! Every build is checked: an ELF for the target's machine, with no program interpreter (static).
//! Paths of the checkout and of Cargo's home are remapped so that two checkouts of one commit
//! build the same bytes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::image::{ImageArch, check_elf, target_dir};

/// The package and binary every image runs.
pub const PACKAGE: &str = "openim";
pub const BINARY: &str = "openim";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Builder {
    Zigbuild,
    Cross,
    Cargo,
}

/// `cargo xtask build`.
#[derive(clap::Args)]
pub struct Build {
    /// Architectures to build.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = ImageArch::ALL)]
    pub arch: Vec<ImageArch>,
    /// How to compile.
    #[arg(long, value_enum, default_value_t = Builder::Zigbuild)]
    pub builder: Builder,
    /// Cargo profile (`release`; CI's smoke test uses `smoke`, an unoptimised build without
    /// debug info).
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Also write Cargo's timing report (target/cargo-timings/): where a build's time goes.
    #[arg(long)]
    pub timings: bool,
}

/// What one build produced.
#[derive(Debug)]
pub struct Built {
    pub arch: ImageArch,
    pub path: PathBuf,
    pub bytes: u64,
    pub seconds: f64,
}

impl std::fmt::Display for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (arch, path, mb) = (self.arch.name(), self.path.display(), self.bytes as f64 / 1e6);
        write!(f, "{arch:<5} {path} ({mb:.1} MB, static) in {:.0} s", self.seconds)
    }
}

impl Build {
    pub fn run(self) -> anyhow::Result<()> {
        for b in self.build()? {
            eprintln!("  {b}");
        }
        Ok(())
    }

    /// Builds every requested architecture: one cargo invocation for all targets with zigbuild
    /// (they share the host's build scripts and keep both cores busy), one per target otherwise.
    pub fn build(&self) -> anyhow::Result<Vec<Built>> {
        let groups: Vec<Vec<ImageArch>> = match self.builder {
            Builder::Zigbuild => vec![self.arch.clone()],
            Builder::Cross | Builder::Cargo => self.arch.iter().map(|a| vec![*a]).collect(),
        };
        let mut out = Vec::new();
        for arches in groups {
            let names: Vec<&str> = arches.iter().map(|a| a.name()).collect();
            eprintln!(
                "==> {PACKAGE} for linux/{} ({:?}, profile {})",
                names.join(", linux/"),
                self.builder,
                self.profile
            );
            let started = Instant::now();
            let mut cmd = match self.builder {
                Builder::Zigbuild => zigbuild()?,
                Builder::Cross => cross(arches[0])?,
                Builder::Cargo => plain_cargo(arches[0])?,
            };
            for arch in &arches {
                cmd.args(["--target", arch.triple()]).env(rustflags_var(*arch), remap_flags());
            }
            if self.timings {
                cmd.arg("--timings");
            }
            cmd.args(["--profile", &self.profile, "-p", PACKAGE, "--bin", BINARY])
                .args(["--message-format", "json-render-diagnostics"]);
            let executables = run_cargo(cmd, &arches)?;
            let seconds = started.elapsed().as_secs_f64();
            for (arch, path) in executables {
                let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                check_elf(&data, arch).with_context(|| path.display().to_string())?;
                check_static(&data).with_context(|| path.display().to_string())?;
                if self.builder == Builder::Zigbuild {
                    let deps = dependencies(&data).with_context(|| path.display().to_string())?;
                    eprintln!(
                        "    {}: {} crates listed in .dep-v0 (cargo auditable)",
                        path.display(),
                        deps.packages.len()
                    );
                }
                out.push(Built { arch, path, bytes: data.len() as u64, seconds });
            }
        }
        Ok(out)
    }
}

/// Where `cargo xtask build --profile P` leaves the binary of `arch`.
pub fn binary_path(arch: ImageArch, profile: &str) -> PathBuf {
    let dir = if profile == "dev" { "debug" } else { profile };
    target_dir().join(arch.triple()).join(dir).join(BINARY)
}

/// `CARGO_TARGET_<TRIPLE>_RUSTFLAGS`: only the target's code, not build scripts, gets them.
fn rustflags_var(arch: ImageArch) -> String {
    format!("CARGO_TARGET_{}_RUSTFLAGS", arch.triple().to_uppercase().replace('-', "_"))
}

/// Remaps Cargo's home and the target directory (where registry sources and generated code live)
/// to fixed names. Workspace sources are already passed to rustc relative to the workspace root,
/// so the checkout's own path is not in the binary, nor in these flags: a checkout elsewhere
/// reuses the same build.
fn remap_flags() -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut flags = Vec::new();
    if let Some(home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", home.display()));
    }
    if let Ok(target) = std::path::absolute(target_dir()) {
        flags.push(format!("--remap-path-prefix={}=/target", target.display()));
    }
    flags.join(" ")
}

/// Where the vendored OpenSSL (Kafka's TLS) would look for loadable modules and engines: the
/// places of a stock OpenSSL under `/usr/local`, not its build directory. OpenSSL compiles its
/// install prefix in, and openssl-src installs into the target directory, whose path would
/// otherwise end up in the binary (and differ between machines). Make variables given in
/// `GNUMAKEFLAGS` override the Makefile's, and nothing else reads it (cargo's jobserver takes
/// `MAKEFLAGS`). A static binary loads neither, so only the bytes change.
pub const OPENSSL_DIRS: &str = "MODULESDIR=/usr/local/lib/ossl-modules ENGINESDIR=/usr/local/lib/engines-3";

/// Checks a binary built elsewhere as a build checks its own: the arch's ELF, static, with its
/// dependency list.
pub fn check_built(path: &Path, arch: ImageArch) -> anyhow::Result<()> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    check_elf(&data, arch).with_context(|| path.display().to_string())?;
    check_static(&data).with_context(|| path.display().to_string())?;
    dependencies(&data).with_context(|| path.display().to_string())?;
    Ok(())
}

/// The dependency list `cargo auditable` embedded in a binary (section `.dep-v0`), read with
/// `auditable-info` (the reader of the cargo-auditable project); the binary's own package must
/// be its root.
pub fn dependencies(data: &[u8]) -> anyhow::Result<auditable_serde::VersionInfo> {
    let info = auditable_info::audit_info_from_slice(data, 8 << 20)
        .context("no dependency list (.dep-v0): was it built with `cargo auditable`?")?;
    if !info.packages.iter().any(|p| p.root && p.name == PACKAGE) {
        bail!("the dependency list's root is not the `{PACKAGE}` package");
    }
    Ok(info)
}

/// `cargo auditable zigbuild`: cargo-zigbuild, under cargo-auditable (which embeds the
/// dependency list in the binary; it runs `cargo zigbuild` with itself as rustc's workspace
/// wrapper), with `xtask/zig-cc.sh` as the plain `CC`/`CXX` that librdkafka's configure
/// reads (copied into the target directory, whose path does not change with the checkout), and
/// cargo-zigbuild's directory first on PATH (the script runs zig through it).
fn zigbuild() -> anyhow::Result<Command> {
    let (_, path) = find_tool("cargo-zigbuild", "cargo xtask setup cross")?;
    find_tool("cargo-auditable", "cargo xtask setup cross")?;
    let [cc, cxx] = compiler_wrappers()?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["auditable", "zigbuild"])
        .env("PATH", path)
        .env("CC", cc)
        .env("CXX", cxx)
        .env("GNUMAKEFLAGS", OPENSSL_DIRS);
    Ok(cmd)
}

/// Writes `xtask/zig-cc.sh` as `cc` and `c++` under `<target dir>/xtask/zig-cc`.
pub fn compiler_wrappers() -> anyhow::Result<[PathBuf; 2]> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::path::absolute(target_dir().join("xtask/zig-cc"))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let script = include_str!("../zig-cc.sh");
    let files = [dir.join("cc"), dir.join("c++")];
    for file in &files {
        if std::fs::read_to_string(file).ok().as_deref() != Some(script) {
            std::fs::write(file, script).with_context(|| format!("write {}", file.display()))?;
        }
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod {}", file.display()))?;
    }
    Ok(files)
}

/// `cross build`; its containers carry `<arch>-linux-musl-gcc`, passed to librdkafka's
/// configure through `Cross.toml`.
fn cross(arch: ImageArch) -> anyhow::Result<Command> {
    let (cross, path) = find_tool("cross", "cargo install cross --locked (and a Docker or podman engine)")?;
    let gcc = match arch {
        ImageArch::Amd64 => "x86_64-linux-musl",
        ImageArch::Arm64 => "aarch64-linux-musl",
    };
    let mut cmd = Command::new(cross);
    // Host build scripts keep the host compiler (cc-rs would fall back to CC).
    cmd.arg("build")
        .env("PATH", path)
        .env("CC", format!("{gcc}-gcc"))
        .env("CXX", format!("{gcc}-g++"))
        .env("HOST_CC", "cc")
        .env("HOST_CXX", "c++")
        .env("GNUMAKEFLAGS", OPENSSL_DIRS);
    Ok(cmd)
}

/// Plain cargo for the host's architecture, with Debian's `musl-gcc` (package musl-tools).
fn plain_cargo(arch: ImageArch) -> anyhow::Result<Command> {
    let host = match std::env::consts::ARCH {
        "x86_64" => ImageArch::Amd64,
        "aarch64" => ImageArch::Arm64,
        other => bail!("plain cargo builds only for the host, and {other} is not amd64 or arm64"),
    };
    if arch != host {
        bail!("plain cargo builds only for the host ({}); use --builder zigbuild for {}", host.name(), arch.name());
    }
    find_tool("musl-gcc", "apt-get install musl-tools")?;
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build").env("CC", "musl-gcc").env("HOST_CC", "cc").env("HOST_CXX", "c++");
    Ok(cmd)
}

/// The tool caches `cargo xtask setup` installs into, under `~/.cache/tools`.
const TOOL_DIRS: &[&str] = &[
    "zig/bin",
    "auditable/bin",
    "cyclonedx/bin",
    "dist/bin",
    "compose/bin",
    "helm/venv/bin",
    "lint/bin",
    "cosign-check/bin",
];

/// Finds `name` on PATH or in the tool caches `cargo xtask setup` installs into (`~/.cache/tools/*/bin`);
/// returns it and the PATH to run it with (its own directory first, then PATH and the caches).
pub fn find_tool(name: &str, install: &str) -> anyhow::Result<(PathBuf, std::ffi::OsString)> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.extend(TOOL_DIRS.iter().map(|d| PathBuf::from(&home).join(".cache/tools").join(d)));
    }
    let found = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    let Some(tool) = found else {
        bail!("`{name}` is not on PATH (nor in ~/.cache/tools/*/bin): install it with `{install}`");
    };
    // Its own directory first: a pip-installed cargo-zigbuild finds zig through that Python.
    let mut path = vec![tool.parent().unwrap_or(Path::new("/")).to_path_buf()];
    path.extend(dirs);
    Ok((tool, std::env::join_paths(path)?))
}

/// Runs a cargo build with JSON messages on stdout (cargo's own progress stays on stderr) and
/// returns the binary it reports for each of `arches`.
fn run_cargo(mut cmd: Command, arches: &[ImageArch]) -> anyhow::Result<Vec<(ImageArch, PathBuf)>> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("run {cmd:?}"))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut executables = Vec::new();
    let (mut units, mut built) = (0usize, 0usize);
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        units += 1;
        if msg["fresh"] == false {
            built += 1;
            if built % 25 == 0 {
                eprintln!("    [{:>4.0} s] {built} units built, {units} done", started.elapsed().as_secs_f64());
            }
        }
        if msg["target"]["name"] == BINARY
            && let Some(exe) = msg["executable"].as_str()
        {
            let arch = arches.iter().find(|a| exe.contains(&format!("/{}/", a.triple())));
            let arch = arch.with_context(|| format!("cargo built {exe}, for none of the targets asked"))?;
            executables.push((*arch, PathBuf::from(exe)));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("building {PACKAGE} failed ({status})");
    }
    for arch in arches {
        if !executables.iter().any(|(a, _)| a == arch) {
            bail!("cargo reported no `{BINARY}` executable for {}", arch.triple());
        }
    }
    Ok(executables)
}

/// Fails unless the ELF has no program interpreter (`PT_INTERP`), i.e. is statically linked.
pub fn check_static(data: &[u8]) -> anyhow::Result<()> {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| data.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        bail!("truncated ELF header");
    };
    for i in 0..usize::from(phnum) {
        let at = usize::from(phentsize)
            .checked_mul(i)
            .and_then(|off| usize::try_from(phoff).ok()?.checked_add(off))
            .context("program header offset overflows")?;
        let ty = data.get(at..at.saturating_add(4)).context("truncated program header")?;
        if u32::from_le_bytes([ty[0], ty[1], ty[2], ty[3]]) == 3 {
            bail!("dynamically linked (it has a program interpreter); the images have no libc");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header and program headers of the given types (PT_LOAD = 1, PT_INTERP = 3).
    fn elf_with_segments(types: &[u32]) -> Vec<u8> {
        let mut elf = crate::image::tests::fake_binary(ImageArch::Amd64, b"");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff: right after the header
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes()); // e_phnum
        for ty in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&ty.to_le_bytes());
            elf.extend_from_slice(&ph);
        }
        elf
    }

    #[test]
    fn a_static_binary_has_no_interpreter_and_a_dynamic_one_is_refused() {
        // The test binary itself is dynamically linked against glibc.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_static(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        check_static(&elf_with_segments(&[1, 1, 6])).unwrap();
        let err = check_static(&elf_with_segments(&[6, 3, 1])).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        let mut truncated = elf_with_segments(&[1, 3]);
        truncated.truncate(64 + 56 + 2);
        assert!(check_static(&truncated).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn rustflags_go_to_the_target_only() {
        assert_eq!(rustflags_var(ImageArch::Arm64), "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS");
        assert_eq!(binary_path(ImageArch::Amd64, "dev"), target_dir().join("x86_64-unknown-linux-musl/debug/openim"));
    }
}
