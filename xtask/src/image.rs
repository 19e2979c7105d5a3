//! `cargo xtask image`: one OCI image per service per architecture, and a multi-arch index per
//! service, in one OCI image layout (`target/oci`), with no Docker daemon and no base image.
//!
//! Every image of an architecture is the same three layers, so a registry stores them once:
//! 1. `base`: `/etc/passwd` and `/etc/group` with the non-root user 65532, the CA certificates
//!    (Mozilla's roots from the `webpki-root-certs` crate, so they do not depend on the build
//!    machine), and the writable `/var/lib/openim` and `/tmp`;
//! 2. `config`: the defaults of `config/` in `/etc/openim/config`;
//! 3. `binary`: the one multi-call binary `/usr/local/bin/openim`.
//!
//! Services differ only in their image config: the entrypoint (`openim <service>`), the ports
//! and the title. Everything is reproducible: times come from the commit, and the same commit
//! and binaries give the same digests (see `oci.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, PlatformBuilder, RootFsBuilder,
};

use crate::oci::{self, Entry, Layout};

/// Where the image's binary, configuration and data live.
pub const BINARY: &str = "/usr/local/bin/openim";
pub const CONFIG_DIR: &str = "/etc/openim/config";
pub const DATA_DIR: &str = "/var/lib/openim";
/// The non-root user images run as (distroless' `nonroot`).
pub const UID: u64 = 65532;

/// A service image: its name after `openim-`, the subcommand it runs, the ports it listens on
/// by default (from `config/`; a test checks they agree) and what it is.
pub struct ServiceImage {
    pub name: &'static str,
    pub args: &'static [&'static str],
    pub ports: &'static [u16],
    pub description: &'static str,
}

pub const SERVICES: &[ServiceImage] = &[
    ServiceImage { name: "api", args: &["api"], ports: &[10002, 12002], description: "REST API" },
    ServiceImage {
        name: "msggateway",
        args: &["msggateway"],
        ports: &[10001, 12140, 10140],
        description: "WebSocket gateway for clients, gRPC for pushes",
    },
    ServiceImage {
        name: "msgtransfer",
        args: &["msgtransfer"],
        ports: &[12020],
        description: "seqs, storage, hand-off to push",
    },
    ServiceImage {
        name: "push",
        args: &["push"],
        ports: &[12170],
        description: "pushes to the gateways holding the receivers",
    },
    ServiceImage { name: "rpc-auth", args: &["rpc-auth"], ports: &[10200], description: "tokens" },
    ServiceImage { name: "rpc-user", args: &["rpc-user"], ports: &[10110], description: "users and online status" },
    ServiceImage { name: "rpc-friend", args: &["rpc-friend"], ports: &[10120], description: "friends" },
    ServiceImage { name: "rpc-group", args: &["rpc-group"], ports: &[10150], description: "groups" },
    ServiceImage {
        name: "rpc-conversation",
        args: &["rpc-conversation"],
        ports: &[10180],
        description: "conversations",
    },
    ServiceImage { name: "rpc-msg", args: &["rpc-msg"], ports: &[10130], description: "sending and reading messages" },
    ServiceImage {
        name: "rpc-third",
        args: &["rpc-third"],
        ports: &[10300],
        description: "object storage: pictures, voice, video, files",
    },
    ServiceImage { name: "crontask", args: &["crontask"], ports: &[12240], description: "retention clean-up" },
    ServiceImage {
        name: "standalone",
        args: &["standalone"],
        ports: &[10001, 10002, 12002],
        description: "every service in one process with embedded storage",
    },
];

/// A target architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ImageArch {
    Amd64,
    Arm64,
}

impl ImageArch {
    pub const ALL: [ImageArch; 2] = [ImageArch::Amd64, ImageArch::Arm64];

    pub fn name(self) -> &'static str {
        match self {
            ImageArch::Amd64 => "amd64",
            ImageArch::Arm64 => "arm64",
        }
    }

    pub fn triple(self) -> &'static str {
        match self {
            ImageArch::Amd64 => "x86_64-unknown-linux-musl",
            ImageArch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    fn oci(self) -> Arch {
        match self {
            ImageArch::Amd64 => Arch::Amd64,
            ImageArch::Arm64 => Arch::ARM64,
        }
    }
}

/// What the images say about themselves (OCI labels).
#[derive(Debug, Clone)]
pub struct Meta {
    /// The release version (from `cargo xtask tags`).
    pub version: String,
    pub revision: String,
    /// Commit time, seconds since the epoch: every timestamp in the images.
    pub created: i64,
    pub source: String,
    pub licenses: String,
    /// Image names are `<image_prefix><service>`.
    pub image_prefix: String,
}

/// What was assembled: for each service, its index and per-arch manifests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Assembled {
    /// Service name → index digest.
    pub indexes: BTreeMap<String, String>,
    /// (service, arch) → manifest digest.
    pub manifests: BTreeMap<String, BTreeMap<String, String>>,
    /// Arch → compressed bytes of the distinct blobs of that arch's images (layers and configs).
    pub unique_bytes: BTreeMap<String, u64>,
}

/// Assembles every service for `binaries` (arch → static binary) into `layout`, tagging each
/// index `<image_prefix><service>:<tag>`.
pub fn assemble(
    layout: &Layout,
    binaries: &BTreeMap<ImageArch, PathBuf>,
    config_dir: &Path,
    meta: &Meta,
    tag: &str,
) -> anyhow::Result<Assembled> {
    let mtime = u64::try_from(meta.created).context("commit time before 1970")?;
    let base = layout_layer(layout, oci::layer(base_entries(), mtime)?)?;
    let config = layout_layer(layout, oci::layer(config_entries(config_dir)?, mtime)?)?;
    let mut refs = layout.refs().unwrap_or_default();
    let mut out = Assembled { indexes: BTreeMap::new(), manifests: BTreeMap::new(), unique_bytes: BTreeMap::new() };

    // The binaries are compressed side by side (the slow part: tens of MB each).
    let binary_layers: Vec<(ImageArch, anyhow::Result<oci::Layer>)> = std::thread::scope(|s| {
        let jobs: Vec<_> = binaries
            .iter()
            .map(|(arch, path)| {
                s.spawn(move || {
                    let data = std::fs::read(path)
                        .with_context(|| format!("read the {} binary {}", arch.name(), path.display()))?;
                    check_elf(&data, *arch).with_context(|| path.display().to_string())?;
                    oci::layer(binary_entries(data), mtime)
                })
            })
            .collect();
        binaries.keys().copied().zip(jobs.into_iter().map(|j| j.join().expect("compression thread"))).collect()
    });

    let mut per_service: BTreeMap<&str, Vec<Descriptor>> = BTreeMap::new();
    for (arch, binary) in binary_layers {
        let binary = layout_layer(layout, binary?)?;
        let layers = [&base, &config, &binary];
        let mut unique = layers.iter().map(|(d, _)| d.size()).sum::<u64>();
        for svc in SERVICES {
            let cfg = image_config(svc, arch, meta, &layers.map(|(_, diff)| diff.clone()))?;
            let cfg = layout.put_json(MediaType::ImageConfig, &cfg)?;
            unique += cfg.size();
            let manifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(cfg)
                .layers(layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
                .build()?;
            let mut m = layout.put_json(MediaType::ImageManifest, &manifest)?;
            unique += m.size();
            m.set_platform(Some(PlatformBuilder::default().architecture(arch.oci()).os(Os::Linux).build()?));
            out.manifests
                .entry(svc.name.to_owned())
                .or_default()
                .insert(arch.name().to_owned(), m.digest().to_string());
            per_service.entry(svc.name).or_default().push(m);
        }
        out.unique_bytes.insert(arch.name().to_owned(), unique);
    }
    for (name, manifests) in per_service {
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .annotations(labels(name, meta))
            .build()?;
        let d = layout.put_json(MediaType::ImageIndex, &index)?;
        out.indexes.insert(name.to_owned(), d.digest().to_string());
        refs.insert(format!("{}{name}:{tag}", meta.image_prefix), d);
    }
    layout.write_index(&refs)?;
    Ok(out)
}

/// Stores a layer's blob; returns its descriptor and diff ID.
fn layout_layer(layout: &Layout, layer: oci::Layer) -> anyhow::Result<(Descriptor, String)> {
    Ok((layout.put(MediaType::ImageLayerGzip, &layer.gz)?, layer.diff_id))
}

fn labels(service: &str, meta: &Meta) -> std::collections::HashMap<String, String> {
    [
        ("org.opencontainers.image.title", format!("{}{service}", meta.image_prefix)),
        ("org.opencontainers.image.source", meta.source.clone()),
        ("org.opencontainers.image.revision", meta.revision.clone()),
        ("org.opencontainers.image.version", meta.version.clone()),
        ("org.opencontainers.image.created", rfc3339(meta.created)),
        ("org.opencontainers.image.licenses", meta.licenses.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn image_config(
    svc: &ServiceImage,
    arch: ImageArch,
    meta: &Meta,
    diff_ids: &[String; 3],
) -> anyhow::Result<oci_spec::image::ImageConfiguration> {
    let mut entrypoint = vec![BINARY.to_owned()];
    entrypoint.extend(svc.args.iter().map(|a| (*a).to_owned()));
    entrypoint.extend(["--config".to_owned(), CONFIG_DIR.to_owned()]);
    let mut labels = labels(svc.name, meta);
    labels.insert(
        "org.opencontainers.image.description".into(),
        format!("OpenIM-compatible server: {}", svc.description),
    );
    let config = ConfigBuilder::default()
        .user(format!("{UID}:{UID}"))
        .entrypoint(entrypoint)
        .exposed_ports(svc.ports.iter().map(|p| format!("{p}/tcp")).collect::<Vec<_>>())
        .env(vec!["PATH=/usr/local/bin".to_owned(), "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".to_owned()])
        .working_dir(DATA_DIR.to_owned())
        .labels(labels)
        .stop_signal("SIGTERM".to_owned())
        .build()?;
    let created = rfc3339(meta.created);
    let history = ["base: users, CA certificates", "config: defaults of config/", "binary: openim"]
        .map(|what| HistoryBuilder::default().created(created.clone()).created_by(what.to_owned()).build());
    Ok(ImageConfigurationBuilder::default()
        .created(created)
        .architecture(arch.oci())
        .os(Os::Linux)
        .config(config)
        .rootfs(RootFsBuilder::default().typ("layers".to_owned()).diff_ids(diff_ids.to_vec()).build()?)
        .history(history.into_iter().collect::<Result<Vec<_>, _>>()?)
        .build()?)
}

fn base_entries() -> Vec<Entry> {
    let dir = |path: &str, mode, uid| Entry::Dir { path: path.into(), mode, uid };
    let file = |path: &str, data: String| Entry::File { path: path.into(), mode: 0o644, data: data.into_bytes() };
    vec![
        dir("etc", 0o755, 0),
        dir("etc/ssl", 0o755, 0),
        dir("etc/ssl/certs", 0o755, 0),
        dir("tmp", 0o1777, 0),
        dir("var", 0o755, 0),
        dir("var/lib", 0o755, 0),
        dir("var/lib/openim", 0o755, UID),
        file(
            "etc/passwd",
            format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{UID}:{UID}:nonroot:{DATA_DIR}:/sbin/nologin\n"),
        ),
        file("etc/group", format!("root:x:0:\nnonroot:x:{UID}:\n")),
        file("etc/ssl/certs/ca-certificates.crt", ca_bundle()),
    ]
}

/// Mozilla's root certificates as a PEM bundle.
fn ca_bundle() -> String {
    use base64::Engine as _;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

fn config_entries(config_dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut entries = vec![
        Entry::Dir { path: "etc".into(), mode: 0o755, uid: 0 },
        Entry::Dir { path: "etc/openim".into(), mode: 0o755, uid: 0 },
        Entry::Dir { path: CONFIG_DIR.trim_start_matches('/').into(), mode: 0o755, uid: 0 },
    ];
    let read = std::fs::read_dir(config_dir).with_context(|| format!("read {}", config_dir.display()))?;
    for f in read {
        let path = f?.path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let name = path.file_name().and_then(|n| n.to_str()).context("config file name")?.to_owned();
            let data = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            entries.push(Entry::File {
                path: format!("{}/{name}", CONFIG_DIR.trim_start_matches('/')),
                mode: 0o644,
                data,
            });
        }
    }
    Ok(entries)
}

fn binary_entries(data: Vec<u8>) -> Vec<Entry> {
    vec![
        Entry::Dir { path: "usr".into(), mode: 0o755, uid: 0 },
        Entry::Dir { path: "usr/local".into(), mode: 0o755, uid: 0 },
        Entry::Dir { path: "usr/local/bin".into(), mode: 0o755, uid: 0 },
        Entry::File { path: BINARY.trim_start_matches('/').into(), mode: 0o755, data },
    ]
}

/// Checks that `data` is a 64-bit little-endian ELF executable for `arch`.
pub fn check_elf(data: &[u8], arch: ImageArch) -> anyhow::Result<()> {
    if data.len() < 20 || &data[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    let machine = u16::from_le_bytes([data[18], data[19]]);
    let want = match arch {
        ImageArch::Amd64 => 62,  // EM_X86_64
        ImageArch::Arm64 => 183, // EM_AARCH64
    };
    if data[4] != 2 || data[5] != 1 || machine != want {
        bail!(
            "an ELF for machine {machine} (class {}, data {}), not {} (machine {want})",
            data[4],
            data[5],
            arch.name()
        );
    }
    Ok(())
}

/// RFC 3339 (UTC, seconds) of a Unix time, without a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `cargo xtask image`: assembles the images of the binaries `cargo xtask build` made.
#[derive(clap::Args)]
pub struct Image {
    /// Architectures to assemble.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = ImageArch::ALL)]
    arch: Vec<ImageArch>,
    /// The Cargo profile `cargo xtask build` used: binaries come from
    /// target/<triple>/<profile>/openim.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Use this binary for an architecture instead of the profile's (`amd64=PATH`).
    #[arg(long = "binary", value_parser = parse_binary)]
    binaries: Vec<(ImageArch, PathBuf)>,
    /// The OCI layout to write (default: <target dir>/oci).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_binary(s: &str) -> Result<(ImageArch, PathBuf), String> {
    let (arch, path) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected ARCH=PATH"))?;
    let arch =
        <ImageArch as clap::ValueEnum>::from_str(arch, true).map_err(|_| format!("`{arch}`: not amd64 or arm64"))?;
    Ok((arch, PathBuf::from(path)))
}

/// The Cargo target directory (`CARGO_TARGET_DIR` or `target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"))
}

impl Image {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let ctx = crate::tags::context_from_env()?;
        let tags = crate::tags::compute(&ctx)?;
        let cfg = crate::release::ReleaseConfig::load(Path::new("release.toml"))?;
        let meta = crate::release::meta(&ctx, &tags, &cfg)?;
        let mut binaries = BTreeMap::new();
        for arch in &self.arch {
            let path = self
                .binaries
                .iter()
                .find(|(a, _)| a == arch)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| crate::build::binary_path(*arch, &self.profile));
            binaries.insert(*arch, path);
        }
        let out = self.out.unwrap_or_else(|| target_dir().join("oci"));
        let layout = Layout::create(&out)?;
        let assembled = assemble(&layout, &binaries, Path::new("config"), &meta, &tags.tags[0])?;
        for (svc, digest) in &assembled.indexes {
            eprintln!("  openim-{svc:<18} {digest}");
        }
        for (arch, bytes) in &assembled.unique_bytes {
            eprintln!("  {arch}: {:.1} MB of distinct compressed blobs", *bytes as f64 / 1e6);
        }
        eprintln!(
            "==> {} images ({} services × {} arches) in {} in {:.2} s",
            SERVICES.len() * binaries.len(),
            SERVICES.len(),
            binaries.len(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
