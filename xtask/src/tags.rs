//! `cargo xtask tags`: the image tags of a build, from its git context, with the semantics of
//! docker/metadata-action v5 for this rule set:
//!
//! ```text
//! type=ref,event=tag          type=schedule (nightly)      type=ref,event=branch
//! type=ref,event=pr (pr-N)    type=semver,pattern={{version}}
//! type=semver,pattern=v{{version}}   type=semver,pattern={{major}}.{{minor}}
//! type=semver,pattern={{major}}      type=sha (sha-<7>)    flavor latest=auto
//! ```
//!
//! How metadata-action evaluates it (its `src/meta.ts`): rules run by priority (schedule,
//! then semver, then ref, then sha; ties keep their order); each yields at most one tag, with
//! every run of characters outside `[A-Za-z0-9._-]` replaced by `-`; the first tag is the main
//! one and duplicates are dropped; `latest` comes last. For a semver tag with a pre-release every
//! semver pattern gives `{{version}}` (so `v{{version}}` loses its `v`, as upstream), and build
//! metadata is dropped.
//!
//! Two choices of this project differ from metadata-action's defaults, as the release policy
//! asks: `{{major}}` is not emitted for 0.x versions (upstream documents an `enable=` expression
//! for that), and `latest` goes only to the highest non-pre-release semver tag of the repository
//! (upstream gives it to whatever tag is pushed, semver or not, even an older patch).

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use serde::Serialize;

/// What triggered the build, as GitHub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Push,
    PullRequest,
    Schedule,
    WorkflowDispatch,
}

impl Event {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "push" | "release" | "create" => Self::Push,
            "pull_request" | "pull_request_target" => Self::PullRequest,
            "schedule" => Self::Schedule,
            "workflow_dispatch" => Self::WorkflowDispatch,
            other => bail!("GITHUB_EVENT_NAME={other} is not an event this pipeline builds for"),
        })
    }
}

/// The git facts the tags depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitContext {
    pub event: Event,
    /// `refs/heads/<branch>`, `refs/tags/<tag>` or `refs/pull/<n>/merge`.
    pub git_ref: String,
    /// The full commit SHA.
    pub sha: String,
    /// Every tag of the repository (to find the highest release for `latest`).
    pub repo_tags: Vec<String>,
}

/// The tags of one build, and whether they may be pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagSet {
    /// In metadata-action's order: the main tag first, `latest` last.
    pub tags: Vec<String>,
    /// The release version the build stamps (the semver without `v`), or the main tag.
    pub version: String,
    /// Pull-request builds are never pushed.
    pub push: bool,
}

/// metadata-action's `sanitizeTag`: each run of characters outside `[A-Za-z0-9._-]` becomes `-`.
pub fn sanitize(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    let mut in_run = false;
    for c in tag.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// A git tag as a semver version, as metadata-action's strict check accepts it: an optional
/// leading `v`, then `MAJOR.MINOR.PATCH[-pre][+build]`.
pub fn parse_semver(tag: &str) -> Option<semver::Version> {
    let t = tag.trim();
    semver::Version::parse(t.strip_prefix('v').unwrap_or(t)).ok()
}

/// The tags for `ctx`.
pub fn compute(ctx: &GitContext) -> anyhow::Result<TagSet> {
    if ctx.sha.len() < 7 || !ctx.sha.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("commit SHA `{}` is not a hex SHA of at least 7 digits", ctx.sha);
    }
    let tag = ctx.git_ref.strip_prefix("refs/tags/");
    let branch = ctx.git_ref.strip_prefix("refs/heads/");
    let pr = ctx.git_ref.strip_prefix("refs/pull/").and_then(|r| r.split('/').next());
    if tag.is_none() && branch.is_none() && pr.is_none() {
        bail!("git ref `{}` is neither refs/heads/…, refs/tags/… nor refs/pull/…", ctx.git_ref);
    }
    let version = tag.and_then(parse_semver);

    // Rules in priority order (metadata-action's stable sort of this rule set).
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String| {
        let t = sanitize(&t);
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    };
    if ctx.event == Event::Schedule {
        push("nightly".into());
    }
    if let Some(v) = &version {
        let bare = bare_version(v);
        push(bare.clone());
        if v.pre.is_empty() {
            push(format!("v{bare}"));
            push(format!("{}.{}", v.major, v.minor));
            if v.major > 0 {
                push(v.major.to_string());
            }
        }
    }
    if let Some(t) = tag {
        push(t.to_owned());
    }
    if let Some(b) = branch {
        push(b.to_owned());
    }
    if let Some(n) = pr {
        push(format!("pr-{n}"));
    }
    push(format!("sha-{}", &ctx.sha[..7]));

    if let Some(v) = &version
        && v.pre.is_empty()
        && is_highest_release(v, &ctx.repo_tags)
    {
        push("latest".into());
    }
    let version = version.as_ref().map(bare_version).unwrap_or_else(|| out[0].clone());
    Ok(TagSet { tags: out, version, push: ctx.event != Event::PullRequest })
}

/// `M.m.p[-pre]`, build metadata dropped (metadata-action's `{{version}}`).
fn bare_version(v: &semver::Version) -> String {
    let mut s = format!("{}.{}.{}", v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        let _ = write!(s, "-{}", v.pre);
    }
    s
}

/// Whether no release tag of the repository is higher than `v` (pre-releases and non-semver
/// tags do not count).
fn is_highest_release(v: &semver::Version, repo_tags: &[String]) -> bool {
    let key = |x: &semver::Version| (x.major, x.minor, x.patch);
    repo_tags.iter().filter_map(|t| parse_semver(t)).filter(|o| o.pre.is_empty()).all(|o| key(&o) <= key(v))
}

/// The context from GitHub Actions' variables when they are set, else from the local checkout.
pub fn context_from_env() -> anyhow::Result<GitContext> {
    let repo_tags = git(std::path::Path::new("."), &["tag", "--list"])?.lines().map(str::to_owned).collect();
    if let (Ok(event), Ok(git_ref), Ok(sha)) =
        (std::env::var("GITHUB_EVENT_NAME"), std::env::var("GITHUB_REF"), std::env::var("GITHUB_SHA"))
    {
        return Ok(GitContext { event: Event::parse(&event)?, git_ref, sha, repo_tags });
    }
    let sha = git(std::path::Path::new("."), &["rev-parse", "HEAD"])?.trim().to_owned();
    // A checkout of a tag builds that tag; otherwise the current branch.
    let git_ref = match git(std::path::Path::new("."), &["describe", "--tags", "--exact-match", "HEAD"]) {
        Ok(t) if !t.trim().is_empty() => format!("refs/tags/{}", t.trim()),
        _ => {
            let b = git(std::path::Path::new("."), &["symbolic-ref", "-q", "HEAD"])
                .context("HEAD is detached and not on a tag; set GITHUB_REF to say what to build")?;
            b.trim().to_owned()
        }
    };
    Ok(GitContext { event: Event::Push, git_ref, sha, repo_tags })
}

/// `git <args>` in `dir`: its standard output, or an error with git's own message.
pub fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git").current_dir(dir).args(args).output().context("run git")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo xtask tags`: prints the tags of the current context, one per line (or as JSON).
#[derive(clap::Args)]
pub struct Tags {
    /// Print the whole tag set (tags, version, push) as JSON.
    #[arg(long)]
    json: bool,
}

impl Tags {
    pub fn run(self) -> anyhow::Result<()> {
        let ctx = context_from_env()?;
        let set = compute(&ctx)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "context": ctx, "tags": set }))?);
        } else {
            for t in &set.tags {
                println!("{t}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
