//! `cargo xtask bundle`: the offline bundle, for hosts with no registry access. One tar holds
//! - `images.tar`: every service image for both arches, as an OCI archive (a tar of an OCI image
//!   layout: what `skopeo copy oci-archive:images.tar:openim-api:<tag> …` reads);
//! - the compose files and `config/`, with `.env` naming the images as `load.sh` loads them;
//! - `load.sh` (skopeo into Docker, podman or a registry) and `README.txt`;
//! - the release's SBOM, `openim.cdx.json` (given with `--sbom`, or found next to `--plan`).
//!
//! Reproducible like the images: sorted entries, the commit time, only the blobs the images use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::oci::{self, Entry, Layout};

#[derive(clap::Args)]
pub struct Bundle {
    /// The OCI layout holding the images (`cargo xtask image`; default: <target dir>/oci).
    #[arg(long)]
    layout: Option<PathBuf>,
    /// Where to write the bundle (default: <target dir>/bundle/openim-offline-<tag>.tar).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The images of this tag (needed when the layout holds several).
    #[arg(long, conflicts_with = "plan")]
    tag: Option<String>,
    /// The images of the tag a release plan (`cargo xtask release`'s plan.json) pushed.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// The SBOM to include (default: `openim.cdx.json` next to `--plan`, if there is one).
    #[arg(long)]
    sbom: Option<PathBuf>,
}

impl Bundle {
    pub fn run(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let layout = Layout { dir: self.layout.unwrap_or_else(|| crate::image::target_dir().join("oci")) };
        let ctx = crate::tags::context_from_env()?;
        let mtime = u64::try_from(crate::release::commit_time(&ctx.sha)?).context("commit time before 1970")?;
        let tag = match (&self.tag, &self.plan) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(plan)) => {
                let text = std::fs::read_to_string(plan).with_context(|| format!("read {}", plan.display()))?;
                let plan: serde_json::Value =
                    serde_json::from_str(&text).with_context(|| plan.display().to_string())?;
                let tag = plan["decision"]["image_tag"].as_str();
                Some(
                    tag.with_context(|| format!("{}: no decision.image_tag", self.plan.as_ref().unwrap().display()))?
                        .to_owned(),
                )
            }
            (None, None) => None,
        };
        let sbom_path = self.sbom.clone().or_else(|| {
            let p = self.plan.as_ref()?.parent()?.join(crate::sbom::FILE_NAME);
            p.exists().then_some(p)
        });
        let sbom = match &sbom_path {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("read {}", p.display()))?),
            None => None,
        };
        let (name, data) =
            bundle(&layout, Path::new("compose"), Path::new("config"), mtime, tag.as_deref(), sbom.as_deref())?;
        let out = self.out.unwrap_or_else(|| crate::image::target_dir().join("bundle").join(format!("{name}.tar")));
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(&out, &data).with_context(|| format!("write {}", out.display()))?;
        eprintln!(
            "==> {} ({:.1} MB, {}) in {:.1} s",
            out.display(),
            data.len() as f64 / 1e6,
            oci::sha256(&data),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

/// The bundle of the images in `layout` of `tag` (or of the one tag there is): its name
/// (`openim-offline-<tag>`) and the tar.
pub fn bundle(
    layout: &Layout,
    compose_dir: &Path,
    config_dir: &Path,
    mtime: u64,
    tag: Option<&str>,
    sbom: Option<&[u8]>,
) -> anyhow::Result<(String, Vec<u8>)> {
    let all = layout.refs()?;
    let tag_of = |r: &str| r.rsplit_once(':').map_or("", |(_, t)| t).to_owned();
    let tags: BTreeSet<String> = all.keys().map(|r| tag_of(r)).collect();
    let tag = match tag {
        Some(t) if tags.contains(t) => t.to_owned(),
        Some(t) => bail!("{}: no images tagged {t} (there are: {tags:?})", layout.dir.display()),
        None if tags.len() == 1 => tags.into_iter().next().unwrap_or_default(),
        None => bail!("{}: images of more than one tag ({tags:?}): say which with --tag", layout.dir.display()),
    };
    let refs: BTreeMap<String, oci_spec::image::Descriptor> =
        all.into_iter().filter(|(r, _)| tag_of(r) == tag).collect();
    let tag = tag.as_str();
    let name = format!("openim-offline-{tag}");

    // The OCI archive: an index of these images, and every blob they use.
    let mut images = vec![
        Entry::File { path: "oci-layout".into(), mode: 0o644, data: read(&layout.dir.join("oci-layout"))? },
        Entry::File { path: "index.json".into(), mode: 0o644, data: oci::index_json(&refs)? },
    ];
    for digest in reachable(layout, &refs)? {
        let path = layout.blob_path(&digest);
        let hex = digest.strip_prefix("sha256:").context("a sha256 digest")?;
        images.push(Entry::File { path: format!("blobs/sha256/{hex}"), mode: 0o644, data: read(&path)? });
    }

    let mut entries = vec![
        Entry::File { path: format!("{name}/images.tar"), mode: 0o644, data: oci::tar(images, mtime)? },
        Entry::File {
            path: format!("{name}/load.sh"),
            mode: 0o755,
            data: load_script(&refs.keys().cloned().collect::<Vec<_>>()).into_bytes(),
        },
        Entry::File { path: format!("{name}/README.txt"), mode: 0o644, data: readme(tag).into_bytes() },
    ];
    for (rel, data) in crate::artifact::files(compose_dir)? {
        let data = if rel == ".env" {
            let text = String::from_utf8(data).context("compose/.env is not UTF-8")?;
            crate::artifact::stamp_env(&text, crate::compose::LOCAL_REGISTRY, tag)
                .with_context(|| compose_dir.join(".env").display().to_string())?
                .into_bytes()
        } else {
            data
        };
        entries.push(Entry::File { path: format!("{name}/{rel}"), mode: 0o644, data });
    }
    for (rel, data) in crate::artifact::files(config_dir)? {
        entries.push(Entry::File { path: format!("{name}/config/{rel}"), mode: 0o644, data });
    }
    if let Some(sbom) = sbom {
        crate::sbom::check(sbom).context("the SBOM for the bundle")?;
        entries.push(Entry::File {
            path: format!("{name}/{}", crate::sbom::FILE_NAME),
            mode: 0o644,
            data: sbom.to_vec(),
        });
    }
    Ok((name.clone(), oci::tar(entries, mtime)?))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read {}", path.display()))
}

/// Every blob the images `refs` use: indexes, manifests, configs and layers.
fn reachable(
    layout: &Layout,
    refs: &BTreeMap<String, oci_spec::image::Descriptor>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut todo: Vec<String> = refs.values().map(|d| d.digest().to_string()).collect();
    let mut seen = BTreeSet::new();
    while let Some(digest) = todo.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let path = layout.blob_path(&digest);
        let data = read(&path)?;
        // Indexes and manifests are JSON naming more blobs; layers are not.
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&data) else { continue };
        let named =
            doc["manifests"].as_array().into_iter().flatten().chain(doc["layers"].as_array().into_iter().flatten());
        todo.extend(named.chain([&doc["config"]]).filter_map(|d| d["digest"].as_str().map(str::to_owned)));
    }
    Ok(seen)
}

fn load_script(refs: &[String]) -> String {
    format!(
        r#"#!/bin/sh
# Loads the images of images.tar (every OpenIM service, linux/amd64 and linux/arm64) with skopeo.
#   ./load.sh                         into Docker, as localhost/openim/<image> (what .env names)
#   ./load.sh podman                  into podman's storage, the same names
#   ./load.sh docker://HOST/NAMESPACE [skopeo copy options, e.g. --dest-creds USER:PASS]
#                                     into a registry, both arches; then set OPENIM_REGISTRY=HOST/NAMESPACE in .env
set -eu
cd "$(dirname "$0")"
dest="${{1:-docker}}"
[ $# -gt 0 ] && shift
for ref in {refs}; do
  echo "loading $ref" >&2
  case "$dest" in
    docker) skopeo copy "$@" "oci-archive:images.tar:$ref" "docker-daemon:localhost/openim/$ref" ;;
    podman) skopeo copy "$@" "oci-archive:images.tar:$ref" "containers-storage:localhost/openim/$ref" ;;
    *) skopeo copy --all "$@" "oci-archive:images.tar:$ref" "$dest/$ref" ;;
  esac
done
"#,
        refs = refs.join(" ")
    )
}

fn readme(tag: &str) -> String {
    format!(
        "OpenIM {tag}, offline bundle: every service image for linux/amd64 and linux/arm64, the\n\
         compose files and the configuration, for hosts with no registry access.\n\n\
         Needs skopeo and Docker (with its compose plugin) or podman.\n\n\
         1. Load the images:    ./load.sh            (podman: ./load.sh podman)\n\
         2. Trial, one process: docker compose -f standalone.yml up -d --wait\n   \
            or everything:      docker compose up -d --wait\n\
            (the full deployment also pulls mariadb, mongo, redis and apache/kafka: load those\n\
            into the host beforehand when it cannot reach Docker Hub)\n\n\
         A private registry instead: ./load.sh docker://registry.example.com/openim, then set\n\
         OPENIM_REGISTRY=registry.example.com/openim in .env. Change the passwords in .env\n\
         before the first start. REST: port 10002, WebSocket: port 10001.\n"
    )
}

#[cfg(test)]
mod tests;
