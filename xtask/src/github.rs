//! What the workflows ask of GitHub's REST API, with the workflow's `GITHUB_TOKEN` (never
//! printed):
//! - `cargo xtask report-failure`: when a release run fails, one open issue (label
//!   `release-failure`) says so: created the first time, commented on while it stays open, so a
//!   string of failed nightlies is one issue, not thirty;
//! - `cargo xtask changelog-pr`: after a release, a pull request that brings the regenerated
//!   CHANGELOG.md to `main`.

use anyhow::{Context as _, bail};
use serde_json::json;

pub const LABEL: &str = "release-failure";

#[derive(clap::Args)]
pub struct ReportFailure {
    /// What failed, e.g. `publish on main`.
    #[arg(long)]
    what: String,
    /// The failed run's web address.
    #[arg(long)]
    run_url: String,
}

/// What was done.
#[derive(Debug, PartialEq, Eq)]
pub enum Reported {
    Created(u64),
    Commented(u64),
}

impl ReportFailure {
    pub fn run(self) -> anyhow::Result<()> {
        let reported = report(&GitHub::from_env()?, &self.what, &self.run_url)?;
        match reported {
            Reported::Created(n) => eprintln!("==> opened issue #{n}"),
            Reported::Commented(n) => eprintln!("==> commented on the open issue #{n}"),
        }
        Ok(())
    }
}

/// GitHub's REST API for one repository.
pub struct GitHub {
    client: reqwest::blocking::Client,
    api: String,
    repo: String,
    token: String,
}

impl GitHub {
    pub fn new(api: &str, repo: &str, token: &str) -> anyhow::Result<Self> {
        let client = reqwest::blocking::Client::builder()
            .user_agent("openim-rs-xtask")
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self { client, api: api.trim_end_matches('/').to_owned(), repo: repo.to_owned(), token: token.to_owned() })
    }

    /// From the Actions environment: `GITHUB_API_URL`, `GITHUB_REPOSITORY`, `GITHUB_TOKEN`.
    pub fn from_env() -> anyhow::Result<Self> {
        let var =
            |name: &str| std::env::var(name).with_context(|| format!("{name} is not set (GitHub Actions sets it)"));
        let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        Self::new(&api, &var("GITHUB_REPOSITORY")?, &var("GITHUB_TOKEN")?)
    }

    /// A call under `/repos/<repo>/`: the answer, or `None` for 404.
    fn call_opt(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let url = format!("{}/repos/{}/{path}", self.api, self.repo);
        let mut req = self
            .client
            .request(method.clone(), &url)
            .bearer_auth(&self.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        if status == reqwest::StatusCode::NOT_FOUND && method == reqwest::Method::GET {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("{method} {url}: {status}: {text}");
        }
        serde_json::from_str(&text).map(Some).with_context(|| format!("{method} {url}: not JSON"))
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let what = format!("{method} {path}");
        self.call_opt(method, path, body)?.with_context(|| format!("{what}: 404 Not Found"))
    }
}

/// Opens an issue labelled [`LABEL`] about `what` failing in `run_url`, or comments on the one
/// that is open.
pub fn report(gh: &GitHub, what: &str, run_url: &str) -> anyhow::Result<Reported> {
    let open = gh.call(reqwest::Method::GET, &format!("issues?state=open&labels={LABEL}&per_page=1"), None)?;
    let line = format!("{what} failed: {run_url}");
    if let Some(number) = open.as_array().and_then(|a| a.first()).and_then(|i| i["number"].as_u64()) {
        gh.call(reqwest::Method::POST, &format!("issues/{number}/comments"), Some(json!({ "body": line })))?;
        return Ok(Reported::Commented(number));
    }
    let body = format!(
        "{line}\n\nThis issue collects release failures while it is open: later failures are added as comments. \
         Close it once the release runs pass again."
    );
    let created = gh.call(
        reqwest::Method::POST,
        "issues",
        Some(json!({ "title": format!("Release failure: {what}"), "body": body, "labels": [LABEL] })),
    )?;
    created["number"].as_u64().map(Reported::Created).context("the created issue has no number")
}

#[derive(clap::Args)]
pub struct ChangelogPr {
    /// The release tag the changelog was regenerated for (`v1.2.3`).
    #[arg(long)]
    tag: String,
    /// The regenerated file.
    #[arg(long, default_value = "CHANGELOG.md")]
    file: std::path::PathBuf,
    /// The branch the pull request goes to.
    #[arg(long, default_value = "main")]
    base: String,
}

impl ChangelogPr {
    pub fn run(self) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.file).with_context(|| format!("read {}", self.file.display()))?;
        match changelog_pr(&GitHub::from_env()?, &self.tag, &self.base, &text)? {
            Some(n) => eprintln!("==> pull request #{n} brings CHANGELOG.md for {} to {}", self.tag, self.base),
            None => eprintln!("==> CHANGELOG.md on {} is already up to date", self.base),
        }
        Ok(())
    }
}

/// A pull request to `base` with `CHANGELOG.md` set to `text`, on a branch of its own
/// (`docs/changelog-<tag>`), made through the API (no push credentials in the job). `None` when
/// `base` already has that text.
pub fn changelog_pr(gh: &GitHub, tag: &str, base: &str, text: &str) -> anyhow::Result<Option<u64>> {
    use base64::Engine as _;
    use reqwest::Method;
    let current = gh.call_opt(Method::GET, &format!("contents/CHANGELOG.md?ref={base}"), None)?;
    let decoded = current.as_ref().and_then(|c| c["content"].as_str()).map(|b64| {
        let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(clean).unwrap_or_default()
    });
    if decoded.as_deref() == Some(text.as_bytes()) {
        return Ok(None);
    }
    let base_sha = gh.call(Method::GET, &format!("git/ref/heads/{base}"), None)?["object"]["sha"]
        .as_str()
        .with_context(|| format!("no commit for branch {base}"))?
        .to_owned();
    let branch = format!("docs/changelog-{tag}");
    gh.call(Method::POST, "git/refs", Some(json!({ "ref": format!("refs/heads/{branch}"), "sha": base_sha })))?;
    let message = format!("docs(changelog): {tag}");
    let mut put = json!({
        "message": message,
        "content": base64::engine::general_purpose::STANDARD.encode(text),
        "branch": branch,
    });
    if let Some(sha) = current.as_ref().and_then(|c| c["sha"].as_str()) {
        put["sha"] = sha.into();
    }
    gh.call(Method::PUT, "contents/CHANGELOG.md", Some(put))?;
    let pr = gh.call(
        Method::POST,
        "pulls",
        Some(json!({
            "title": message,
            "head": branch,
            "base": base,
            "body": format!("CHANGELOG.md regenerated by `cargo xtask changelog` for the release {tag}."),
        })),
    )?;
    pr["number"].as_u64().map(Some).context("the pull request has no number")
}

#[cfg(test)]
mod tests;
