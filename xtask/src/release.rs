//! `cargo xtask release`: what a CI run publishes, decided from the git context alone.
//!
//! | trigger | what happens |
//! | --- | --- |
//! | pull request | build and test only: binaries and images are made, nothing is pushed |
//! | push to `main` | the images under the edge tags (`main`, `sha-…`) |
//! | `v*` tag (SemVer) | the images under the version tags, and the Helm chart and compose bundle of that version |
//! | push to `release-vX.Y` | the images under the branch tags plus `X.Y.P-dev.N`, and the chart and bundle of that version |
//! | schedule | the images under `nightly` (and the branch and `sha-` tags) |
//! | any other branch or tag | build only |
//!
//! `X.Y.P-dev.N` is the next patch after the newest `vX.Y.*` release and the number of commits
//! since it: it grows along the branch, so Helm orders the builds, and is a SemVer 2
//! pre-release, so it sorts below the release it leads to.
//!
//! `--dry-run` builds and assembles everything (digests are real) and prints the plan as a
//! table, writes it as JSON and, under GitHub Actions, adds it to the job summary; it pushes
//! nothing. This file also reads the release configuration (`release.toml`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::artifact::{self, Artifact};
use crate::image::{ImageArch, Meta};
use crate::oci::Layout;
use crate::push::Takes;
use crate::tags::{Event, GitContext, TagSet};

/// `release.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    pub source: String,
    pub licenses: String,
    pub image_prefix: String,
    #[serde(rename = "registry")]
    pub registries: Vec<Registry>,
}

/// One registry the images go to.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub name: String,
    /// `host/namespace`; images are `<repository>/<image_prefix><service>`.
    pub repository: String,
    pub username_env: String,
    pub password_env: String,
    /// Plain HTTP (a local test registry only).
    #[serde(default)]
    pub insecure: bool,
    /// What it takes (default: everything). A registry that refuses a kind it was not told to
    /// skip fails the run.
    #[serde(default = "all_kinds")]
    pub takes: Vec<Takes>,
    /// Why it does not take the rest, shown in the plan.
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub retry: crate::registry::Retry,
}

fn all_kinds() -> Vec<Takes> {
    Takes::ALL.to_vec()
}

impl Registry {
    pub fn takes(&self, kind: Takes) -> bool {
        self.takes.contains(&kind)
    }

    /// Why the registry does not take `kind`.
    pub fn skip_reason(&self, kind: Takes) -> String {
        let takes: Vec<&str> = self.takes.iter().map(|t| t.name()).collect();
        let mut why = format!("`{}` takes {} only, not {}", self.name, takes.join(", "), kind.name());
        if let Some(note) = &self.note {
            why.push_str(&format!(" ({note})"));
        }
        why
    }
}

impl ReleaseConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let cfg: Self = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        for r in &cfg.registries {
            if !r.repository.contains('/') {
                bail!("{}: registry `{}`: repository `{}` is not host/namespace", path.display(), r.name, r.repository);
            }
        }
        Ok(cfg)
    }
}

/// The commit time in seconds: `SOURCE_DATE_EPOCH` when set, else the commit's own.
pub fn commit_time(sha: &str) -> anyhow::Result<i64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={v} is not a number of seconds"));
    }
    let out =
        std::process::Command::new("git").args(["show", "-s", "--format=%ct", sha]).output().context("run git")?;
    if !out.status.success() {
        bail!("git show {sha}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8(out.stdout)?;
    text.trim().parse().with_context(|| format!("commit time of {sha}: `{}`", text.trim()))
}

/// The labels' values for a build of `ctx`.
pub fn meta(ctx: &GitContext, tags: &TagSet, cfg: &ReleaseConfig) -> anyhow::Result<Meta> {
    Ok(Meta {
        version: tags.version.clone(),
        revision: ctx.sha.clone(),
        created: commit_time(&ctx.sha)?,
        source: cfg.source.clone(),
        licenses: cfg.licenses.clone(),
        image_prefix: cfg.image_prefix.clone(),
    })
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Build and test only.
    Test,
    /// `main`: the edge tags.
    Edge,
    /// A scheduled run: `nightly`.
    Nightly,
    /// A `v*` tag or a `release-v*` branch: versioned images, chart and compose bundle.
    Release,
}

/// The decision for one git context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub mode: Mode,
    pub why: String,
    /// The tags the images get (empty in `Test`).
    pub image_tags: Vec<String>,
    /// The version of the chart and compose bundle (`Release` only).
    pub version: Option<String>,
    /// The image tag the chart and compose bundle refer to.
    pub image_tag: String,
}

/// Decides what the run for `ctx` publishes. `commits_since(tag)` counts the commits from
/// `tag` (or from the root, for `None`) to the build's commit.
pub fn decide(
    ctx: &GitContext,
    tags: &TagSet,
    commits_since: &dyn Fn(Option<&str>) -> anyhow::Result<u64>,
) -> anyhow::Result<Decision> {
    let publish = |mode, why: String, version: Option<String>, extra: Option<String>| {
        let mut image_tags = tags.tags.clone();
        if let Some(t) = extra
            && !image_tags.contains(&t)
        {
            image_tags.push(t);
        }
        let image_tag = version.clone().unwrap_or_else(|| tags.tags[0].clone());
        Decision { mode, why, image_tags, version, image_tag }
    };
    let test = |why: String| Decision {
        mode: Mode::Test,
        why,
        image_tags: Vec::new(),
        version: None,
        image_tag: tags.tags[0].clone(),
    };
    if ctx.event == Event::PullRequest {
        return Ok(test(format!("pull request ({}): build and test only", ctx.git_ref)));
    }
    if ctx.event == Event::Schedule {
        return Ok(publish(Mode::Nightly, "scheduled run".into(), None, None));
    }
    if let Some(tag) = ctx.git_ref.strip_prefix("refs/tags/") {
        return Ok(match crate::tags::parse_semver(tag) {
            Some(_) if tag.starts_with('v') => {
                publish(Mode::Release, format!("release tag {tag}"), Some(tags.version.clone()), None)
            }
            _ => test(format!("tag {tag} is not a release tag (v<SemVer>): build only")),
        });
    }
    let branch = ctx.git_ref.strip_prefix("refs/heads/").unwrap_or(&ctx.git_ref);
    if branch == "main" {
        return Ok(publish(Mode::Edge, "push to main".into(), None, None));
    }
    if let Some(line) = branch.strip_prefix("release-v") {
        let Some((major, minor)) =
            line.split_once('.').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        else {
            return Ok(test(format!("branch {branch} is not release-v<MAJOR>.<MINOR>: build only")));
        };
        // The newest `vX.Y.*` tag, pre-releases included: after `v1.2.4-rc.1` the branch builds
        // `1.2.4-rc.1.dev.N`, which sorts above that rc and below `1.2.4`.
        let last = ctx
            .repo_tags
            .iter()
            .filter(|t| t.starts_with('v'))
            .filter_map(|t| Some((crate::tags::parse_semver(t)?, t)))
            .filter(|(v, _)| v.major == major && v.minor == minor)
            .max_by(|a, b| a.0.cmp(&b.0));
        let version = match last {
            Some((v, t)) if v.pre.is_empty() => {
                format!("{major}.{minor}.{}-dev.{}", v.patch + 1, commits_since(Some(t))?)
            }
            Some((v, t)) => format!("{major}.{minor}.{}-{}.dev.{}", v.patch, v.pre, commits_since(Some(t))?),
            None => format!("{major}.{minor}.0-dev.{}", commits_since(None)?),
        };
        return Ok(publish(
            Mode::Release,
            format!("push to release branch {branch}"),
            Some(version.clone()),
            Some(version),
        ));
    }
    Ok(test(format!("branch {branch} is not published (only main, release-v* and v* tags are)")))
}

/// `git rev-list --count [TAG..]HEAD`.
fn git_commits_since(tag: Option<&str>) -> anyhow::Result<u64> {
    let range = tag.map(|t| format!("{t}..HEAD")).unwrap_or_else(|| "HEAD".into());
    let out = std::process::Command::new("git").args(["rev-list", "--count", &range]).output().context("run git")?;
    if !out.status.success() {
        bail!("git rev-list --count {range}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8(out.stdout)?;
    text.trim().parse().with_context(|| format!("git rev-list --count {range}: `{}`", text.trim()))
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub image: String,
    /// `amd64`, `arm64`, `index` (the multi-arch index), `chart` or `compose`.
    pub arch: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub registries: Vec<String>,
    /// The registries it does not go to, and why.
    pub skipped: Vec<String>,
    pub action: String,
}

/// The whole plan, as `--dry-run` prints it and writes it as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub context: GitContext,
    pub decision: Decision,
    pub dry_run: bool,
    pub rows: Vec<Row>,
}

/// The plan's rows for assembled images and packaged artifacts.
pub fn rows(
    decision: &Decision,
    cfg: &ReleaseConfig,
    only: &[String],
    assembled: &crate::image::Assembled,
    artifacts: &[Artifact],
    signed: bool,
) -> Vec<Row> {
    let selected: Vec<&Registry> = if decision.mode == Mode::Test {
        Vec::new()
    } else {
        cfg.registries.iter().filter(|r| only.is_empty() || only.contains(&r.name)).collect()
    };
    let to = |kind: Takes| -> (Vec<String>, Vec<String>) {
        let (take, skip): (Vec<&&Registry>, Vec<&&Registry>) = selected.iter().partition(|r| r.takes(kind));
        (
            take.iter().map(|r| r.repository.clone()).collect(),
            skip.iter().map(|r| format!("{}: {}", r.repository, r.skip_reason(kind))).collect(),
        )
    };
    let action = |what: &str| if decision.mode == Mode::Test { "build only".to_owned() } else { what.to_owned() };
    let mut out = Vec::new();
    let (registries, skipped) = to(Takes::Images);
    for (svc, index) in &assembled.indexes {
        let image = format!("{}{svc}", cfg.image_prefix);
        for (arch, digest) in assembled.manifests.get(svc).into_iter().flatten() {
            out.push(Row {
                image: image.clone(),
                arch: arch.clone(),
                digest: digest.clone(),
                tags: Vec::new(),
                registries: registries.clone(),
                skipped: skipped.clone(),
                action: action("push manifest"),
            });
        }
        out.push(Row {
            image: image.clone(),
            arch: "index".into(),
            digest: index.clone(),
            tags: decision.image_tags.clone(),
            registries: registries.clone(),
            skipped: skipped.clone(),
            action: action("push index, tag"),
        });
        if signed {
            let digests =
                std::iter::once(index).chain(assembled.manifests.get(svc).into_iter().flat_map(|m| m.values()));
            out.push(Row {
                image,
                arch: "signatures".into(),
                digest: index.clone(),
                tags: digests.filter_map(|d| crate::sign::signature_tag(d).ok()).collect(),
                registries: registries.clone(),
                skipped: skipped.clone(),
                action: action("sign index and arches, push"),
            });
        }
    }
    for a in artifacts {
        let (registries, skipped) = to(a.kind.needs());
        out.push(Row {
            image: a.repository.clone(),
            arch: match a.kind {
                artifact::Kind::Chart => "chart".into(),
                artifact::Kind::Compose => "compose".into(),
            },
            digest: a.digest.clone(),
            tags: vec![a.tag.clone()],
            action: action(if registries.is_empty() { "skip" } else { "push artifact" }),
            registries,
            skipped,
        });
    }
    out
}

impl Plan {
    /// The plan as a Markdown table (also readable in a terminal).
    pub fn table(&self) -> String {
        let d = &self.decision;
        let mut s = format!(
            "{} at {} ({}): {:?}: {}\n\n",
            self.context.git_ref,
            &self.context.sha[..self.context.sha.len().min(12)],
            if self.dry_run { "dry run" } else { "run" },
            d.mode,
            d.why
        );
        if let Some(v) = &d.version {
            s.push_str(&format!(
                "Release version {v}; the chart and compose bundle use images tagged {}.\n\n",
                d.image_tag
            ));
        }
        s.push_str(
            "| image | arch | digest | tags | registries | action | skipped |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in &self.rows {
            let short = r.digest.strip_prefix("sha256:").map(|h| &h[..12]).unwrap_or(&r.digest);
            s.push_str(&format!(
                "| {} | {} | {short} | {} | {} | {} | {} |\n",
                r.image,
                r.arch,
                if r.tags.is_empty() { "-".into() } else { r.tags.join(" ") },
                if r.registries.is_empty() { "-".into() } else { r.registries.join(" ") },
                r.action,
                if r.skipped.is_empty() { "-".into() } else { r.skipped.join("; ") },
            ));
        }
        s
    }
}

/// `cargo xtask release`.
#[derive(clap::Args)]
pub struct Release {
    /// Build and assemble, print and write the plan, push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Use the binaries `cargo xtask build` already made instead of building.
    #[arg(long)]
    skip_build: bool,
    /// Cargo profile of the binaries.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Only these registries (names from release.toml).
    #[arg(long = "registry")]
    registries: Vec<String>,
    /// Move a release tag that points at another digest.
    #[arg(long)]
    force: bool,
    /// Publish a release without signatures (no OPENIM_SIGNING_KEY).
    #[arg(long)]
    unsigned: bool,
    /// The release configuration.
    #[arg(long, default_value = "release.toml")]
    config: PathBuf,
    /// After publishing, write what was pushed here, a line `<sha256 hex>  <name>` per image index,
    /// chart and bundle (the build provenance attestation's subjects).
    #[arg(long)]
    subjects: Option<PathBuf>,
    /// Where to write the plan as JSON (default: <target dir>/publish/plan.json).
    #[arg(long)]
    plan: Option<PathBuf>,
}

impl Release {
    pub fn run(self) -> anyhow::Result<()> {
        let ctx = crate::tags::context_from_env()?;
        let tags = crate::tags::compute(&ctx)?;
        let decision = decide(&ctx, &tags, &git_commits_since)?;
        eprintln!("==> {}: {:?} ({})", ctx.git_ref, decision.mode, decision.why);
        let cfg = ReleaseConfig::load(&self.config)?;
        // Before building: a release without its key fails at once, not after the build.
        let signer = crate::sign::Signer::from_env()?;
        if signer.is_none() && !self.dry_run && decision.mode != Mode::Test {
            if decision.mode == Mode::Release && !self.unsigned {
                bail!(
                    "{} is not set: a release is signed (pass --unsigned to publish without signatures)",
                    crate::sign::KEY_ENV
                );
            }
            eprintln!("==> warning: {} is not set; the images go out unsigned", crate::sign::KEY_ENV);
        }
        if !self.skip_build {
            crate::build::Build {
                arch: ImageArch::ALL.to_vec(),
                builder: crate::build::Builder::Zigbuild,
                profile: self.profile.clone(),
                timings: false,
            }
            .run()?;
        } else {
            // Built elsewhere (the publish workflow's build job): the same checks as a build's.
            for arch in ImageArch::ALL {
                crate::build::check_built(&crate::build::binary_path(arch, &self.profile), arch)?;
            }
        }
        let mut meta = meta(&ctx, &tags, &cfg)?;
        // The release version, else the commit: a nightly and a push to main of one commit then
        // make the same images, and their common `sha-` tag names one digest.
        meta.version = decision.version.clone().unwrap_or_else(|| format!("sha-{}", &ctx.sha[..7]));
        let out_dir = crate::image::target_dir().join("publish");
        std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
        let layout = Layout::create(&out_dir.join("oci"))?;
        let binaries = ImageArch::ALL.iter().map(|a| (*a, crate::build::binary_path(*a, &self.profile))).collect();
        let assembled = crate::image::assemble(&layout, &binaries, Path::new("config"), &meta, &decision.image_tag)?;
        eprintln!("==> SBOM (cargo cyclonedx, both arches, and the C libraries)");
        let sbom = crate::sbom::generate(Path::new("."), meta.created)?;
        let sbom_file = out_dir.join(crate::sbom::FILE_NAME);
        std::fs::write(&sbom_file, &sbom).with_context(|| format!("write {}", sbom_file.display()))?;
        eprintln!(
            "    {} ({} components, {})",
            sbom_file.display(),
            crate::sbom::check(&sbom)?,
            crate::oci::sha256(&sbom)
        );
        let artifacts = match &decision.version {
            Some(version) => {
                let images = assembled.indexes.clone();
                // A re-run of a release keeps the infrastructure digests its bundle was published
                // with (the tags may have moved since): the same bundle, no tag moves.
                let published = artifact::published_infra_pins(&cfg, version);
                let resolved = match published {
                    Some(pins) => Ok(pins),
                    None => artifact::resolve_infra(&artifact::infra_images(Path::new("compose"))?, false),
                };
                let infra = match resolved {
                    Ok(infra) => infra,
                    Err(e) if self.dry_run => {
                        eprintln!("==> warning: the compose bundle's infrastructure images stay unpinned: {e:#}");
                        Default::default()
                    }
                    Err(e) => return Err(e.context("pin the compose infrastructure images by digest")),
                };
                let pins = artifact::Pins { images, infra };
                release_artifacts(Path::new("."), &cfg, &meta, version, &decision.image_tag, &pins, &out_dir)?
            }
            None => Vec::new(),
        };
        let plan = Plan {
            rows: rows(&decision, &cfg, &self.registries, &assembled, &artifacts, signer.is_some()),
            context: ctx,
            decision,
            dry_run: self.dry_run,
        };
        self.report(&plan, &out_dir)?;
        if self.dry_run || plan.decision.mode == Mode::Test {
            return Ok(());
        }
        let signer = signer.map(|s| s.annotate(crate::verify::SBOM_ANNOTATION, &crate::oci::sha256(&sbom)));
        if let Some(s) = &signer {
            // The key to verify with, next to the release's other assets.
            std::fs::write(out_dir.join("cosign.pub"), s.public_pem()?)?;
        }
        let created = crate::image::rfc3339(meta.created);
        let items = items(&layout, &cfg, &plan.decision, &sbom, &created, &artifacts)?;
        let pushed = crate::push::publish(
            &cfg,
            &self.registries,
            &items,
            self.force,
            signer.as_ref(),
            &crate::push::credentials_from_env,
        )?;
        for p in &pushed {
            eprintln!("    {}: {:.1} MB uploaded", p.registry, p.stats.bytes_uploaded as f64 / 1e6);
        }
        if let Some(path) = &self.subjects {
            let digests: std::collections::BTreeMap<&String, &String> =
                pushed.iter().flat_map(|p| &p.digests).collect();
            let lines: String = digests
                .iter()
                .map(|(name, digest)| format!("{}  {name}\n", digest.trim_start_matches("sha256:")))
                .collect();
            std::fs::write(path, lines).with_context(|| format!("write {}", path.display()))?;
        }
        Ok(())
    }

    fn report(&self, plan: &Plan, out_dir: &Path) -> anyhow::Result<()> {
        let table = plan.table();
        println!("{table}");
        let json = self.plan.clone().unwrap_or_else(|| out_dir.join("plan.json"));
        std::fs::write(&json, serde_json::to_vec_pretty(plan)?).with_context(|| format!("write {}", json.display()))?;
        eprintln!("==> plan written to {}", json.display());
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&summary)?;
            writeln!(f, "## Release plan\n\n{table}")?;
        }
        Ok(())
    }
}

/// The chart and the compose bundle of `version` from the checkout at `root`, pinned to `pins`,
/// also written to `out_dir` as files.
pub fn release_artifacts(
    root: &Path,
    cfg: &ReleaseConfig,
    meta: &Meta,
    version: &str,
    image_tag: &str,
    pins: &artifact::Pins,
    out_dir: &Path,
) -> anyhow::Result<Vec<Artifact>> {
    let mtime = u64::try_from(meta.created).context("commit time before 1970")?;
    // The bundle names the first registry of release.toml that takes images, whichever this run
    // pushes to: one version, one bundle.
    let registry = cfg
        .registries
        .iter()
        .find(|r| r.takes(Takes::Images))
        .map(|r| r.repository.as_str())
        .context("no registry of release.toml takes images")?;
    let chart = artifact::package_chart(&root.join("charts/openim"), version, image_tag, mtime, pins)?;
    let compose = artifact::compose_bundle(
        &root.join("compose"),
        &root.join("config"),
        version,
        registry,
        image_tag,
        mtime,
        pins,
    )?;
    for a in [&chart, &compose] {
        let file = out_dir.join(&a.file_name);
        std::fs::write(&file, &a.package).with_context(|| format!("write {}", file.display()))?;
        eprintln!("    {} ({} bytes, {})", file.display(), a.package.len(), a.digest);
    }
    Ok(vec![chart, compose])
}

/// Everything a publishing run pushes: the images under the decision's tags, the SBOM attached
/// to each image's index, then the artifacts.
pub fn items(
    layout: &Layout,
    cfg: &ReleaseConfig,
    decision: &Decision,
    sbom: &[u8],
    created: &str,
    artifacts: &[Artifact],
) -> anyhow::Result<Vec<crate::push::Item>> {
    let names = crate::push::image_names(cfg);
    let mut items = crate::push::image_items(layout, &names, &decision.image_tag, &decision.image_tags)?;
    let referrers: Vec<crate::push::Item> = items
        .iter()
        .map(|i| crate::sbom::referrer(&i.repository, &i.top().bytes, sbom, created))
        .collect::<anyhow::Result<_>>()?;
    items.extend(referrers);
    items.extend(artifacts.iter().map(Artifact::item));
    Ok(items)
}

#[cfg(test)]
mod tests;
