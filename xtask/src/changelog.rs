//! `cargo xtask changelog`: CHANGELOG.md from the Conventional Commits between the `vX.Y.Z`
//! tags, in the Keep a Changelog layout: newest release first, `Unreleased` on top; in each
//! release the breaking changes first, then the commits grouped by type; every entry links its
//! commit, every release heading its comparison. Messages are parsed by `git-conventional`;
//! commits that are not Conventional Commits (merges, git's reverts) are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::tags::git;

/// Headings, in order, of the commit types that appear in the changelog.
const GROUPS: &[(&str, &str)] = &[
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("revert", "Reverts"),
    ("docs", "Documentation"),
    ("test", "Tests"),
    ("build", "Build"),
    ("ci", "Continuous integration"),
    ("style", "Style"),
    ("chore", "Chores"),
];

#[derive(clap::Args)]
pub struct Changelog {
    /// Where to write it.
    #[arg(long, default_value = "CHANGELOG.md")]
    output: PathBuf,
    /// The repository's web address, for commit and comparison links.
    #[arg(long, default_value = "https://github.com/openimsdk/openim-rs")]
    repo_url: String,
    /// Print only this release's section (`v1.2.3`), e.g. as the notes of its GitHub release.
    #[arg(long)]
    notes: Option<String>,
}

impl Changelog {
    pub fn run(self) -> anyhow::Result<()> {
        let releases = history(Path::new("."))?;
        if let Some(tag) = &self.notes {
            let release = releases
                .iter()
                .find(|r| r.tag.as_deref() == Some(tag.as_str()))
                .with_context(|| format!("no release tagged {tag}"))?;
            print!("{}", section(release, &self.repo_url, false));
            return Ok(());
        }
        let text = render(&releases, &self.repo_url);
        std::fs::write(&self.output, text).with_context(|| format!("write {}", self.output.display()))?;
        eprintln!("==> {} ({} releases)", self.output.display(), releases.iter().filter(|r| r.tag.is_some()).count());
        Ok(())
    }
}

/// One commit's entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub sha: String,
    pub ty: String,
    pub scope: Option<String>,
    pub description: String,
    /// What breaks, when it does (`!` or a `BREAKING CHANGE` footer).
    pub breaking: Option<String>,
}

/// A release (`tag`, its date and the tag before it) or, without a tag, what is unreleased.
#[derive(Debug, Clone)]
pub struct Release {
    pub tag: Option<String>,
    pub date: String,
    pub previous: Option<String>,
    pub entries: Vec<Entry>,
}

/// The releases of the repository at `dir`, newest first, `Unreleased` (if any commit is) on top.
pub fn history(dir: &Path) -> anyhow::Result<Vec<Release>> {
    let mut tags: Vec<(semver::Version, String)> = git(dir, &["tag", "--list", "v*"])?
        .lines()
        .filter_map(|t| Some((semver::Version::parse(t.strip_prefix('v')?).ok()?, t.to_owned())))
        .collect();
    tags.sort();
    let mut releases = Vec::new();
    let mut previous: Option<String> = None;
    for (_, tag) in &tags {
        let range = previous.as_ref().map_or(tag.clone(), |p| format!("{p}..{tag}"));
        let date = git(dir, &["log", "-1", "--format=%cs", tag])?.trim().to_owned();
        releases.push(Release {
            tag: Some(tag.clone()),
            date,
            previous: previous.clone(),
            entries: entries(dir, &range)?,
        });
        previous = Some(tag.clone());
    }
    let head_range = previous.as_ref().map_or("HEAD".to_owned(), |p| format!("{p}..HEAD"));
    let unreleased = entries(dir, &head_range)?;
    if !unreleased.is_empty() {
        releases.push(Release { tag: None, date: String::new(), previous, entries: unreleased });
    }
    releases.reverse();
    Ok(releases)
}

/// The Conventional Commits of `range`, newest first.
fn entries(dir: &Path, range: &str) -> anyhow::Result<Vec<Entry>> {
    let log = git(dir, &["log", "--no-merges", "--format=%H%x00%B%x1e", range])?;
    let mut out = Vec::new();
    for record in log.split('\x1e') {
        let Some((sha, message)) = record.trim_start().split_once('\0') else { continue };
        let Ok(commit) = git_conventional::Commit::parse(message.trim()) else { continue };
        out.push(Entry {
            sha: sha.to_owned(),
            ty: commit.type_().as_str().to_lowercase(),
            scope: commit.scope().map(|s| s.as_str().to_owned()),
            description: commit.description().to_owned(),
            breaking: commit
                .breaking()
                .then(|| commit.breaking_description().unwrap_or(commit.description()).to_owned()),
        });
    }
    Ok(out)
}

/// The whole file.
pub fn render(releases: &[Release], repo_url: &str) -> String {
    let mut s = String::from(
        "# Changelog\n\nAll notable changes to this project are documented here, generated by `cargo xtask changelog` \
         from the\n[Conventional Commits](https://www.conventionalcommits.org/) between release tags. The format \
         follows\n[Keep a Changelog](https://keepachangelog.com/en/1.1.0/); the project uses \
         [Semantic Versioning](https://semver.org/).\n",
    );
    s.push('\n');
    for r in releases {
        s.push_str(&section(r, repo_url, true));
    }
    let links: Vec<String> = releases
        .iter()
        .map(|r| {
            let (name, to) = match &r.tag {
                Some(t) => (t.trim_start_matches('v').to_owned(), t.clone()),
                None => ("Unreleased".to_owned(), "HEAD".to_owned()),
            };
            match &r.previous {
                Some(p) => format!("[{name}]: {repo_url}/compare/{p}...{to}"),
                None => format!("[{name}]: {repo_url}/commits/{to}"),
            }
        })
        .collect();
    if !links.is_empty() {
        s.push_str(&links.join("\n"));
        s.push('\n');
    }
    s
}

/// One release's section (`## [1.2.3] - 2026-11-29` and its groups); without the heading for
/// release notes.
pub fn section(r: &Release, repo_url: &str, heading: bool) -> String {
    let mut s = String::new();
    if heading {
        match &r.tag {
            Some(t) => writeln!(s, "## [{}] - {}\n", t.trim_start_matches('v'), r.date),
            None => writeln!(s, "## [Unreleased]\n"),
        }
        .expect("writing to a String");
    }
    let line = |e: &Entry, text: &str| {
        let scope = e.scope.as_ref().map(|sc| format!("**{sc}:** ")).unwrap_or_default();
        format!("- {scope}{text} ([{}]({repo_url}/commit/{}))\n", &e.sha[..7], e.sha)
    };
    let breaking: Vec<&Entry> = r.entries.iter().filter(|e| e.breaking.is_some()).collect();
    if !breaking.is_empty() {
        s.push_str("### ⚠ Breaking changes\n\n");
        for e in breaking {
            s.push_str(&line(e, e.breaking.as_deref().unwrap_or_default()));
        }
        s.push('\n');
    }
    for (ty, title) in GROUPS {
        let group: Vec<&Entry> = r.entries.iter().filter(|e| e.ty == *ty).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(s, "### {title}\n").expect("writing to a String");
        for e in group {
            s.push_str(&line(e, &e.description));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests;
