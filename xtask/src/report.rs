//! `cargo xtask report-failure`: when a release run fails, one open issue (label
//! `release-failure`) says so: created the first time, commented on while it stays open, so a
//! string of failed nightlies is one issue, not thirty. Uses GitHub's REST API with the
//! workflow's `GITHUB_TOKEN` (never printed).

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
        let var =
            |name: &str| std::env::var(name).with_context(|| format!("{name} is not set (GitHub Actions sets it)"));
        let api = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| "https://api.github.com".into());
        let reported = report(&api, &var("GITHUB_REPOSITORY")?, &var("GITHUB_TOKEN")?, &self.what, &self.run_url)?;
        match reported {
            Reported::Created(n) => eprintln!("==> opened issue #{n}"),
            Reported::Commented(n) => eprintln!("==> commented on the open issue #{n}"),
        }
        Ok(())
    }
}

/// Opens an issue labelled [`LABEL`] about `what` failing in `run_url`, or comments on the one
/// that is open.
pub fn report(api: &str, repo: &str, token: &str, what: &str, run_url: &str) -> anyhow::Result<Reported> {
    let client = reqwest::blocking::Client::builder()
        .user_agent("openim-rs-xtask")
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let call =
        |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| -> anyhow::Result<serde_json::Value> {
            let url = format!("{}/repos/{repo}/{path}", api.trim_end_matches('/'));
            let mut req = client
                .request(method.clone(), &url)
                .bearer_auth(token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().with_context(|| format!("{method} {url}"))?;
            let status = resp.status();
            let text = resp.text().unwrap_or_default();
            if !status.is_success() {
                bail!("{method} {url}: {status}: {text}");
            }
            serde_json::from_str(&text).with_context(|| format!("{method} {url}: not JSON"))
        };
    let open = call(reqwest::Method::GET, &format!("issues?state=open&labels={LABEL}&per_page=1"), None)?;
    let line = format!("{what} failed: {run_url}");
    if let Some(number) = open.as_array().and_then(|a| a.first()).and_then(|i| i["number"].as_u64()) {
        call(reqwest::Method::POST, &format!("issues/{number}/comments"), Some(json!({ "body": line })))?;
        return Ok(Reported::Commented(number));
    }
    let body = format!(
        "{line}\n\nThis issue collects release failures while it is open: later failures are added as comments. \
         Close it once the release runs pass again."
    );
    let created = call(
        reqwest::Method::POST,
        "issues",
        Some(json!({ "title": format!("Release failure: {what}"), "body": body, "labels": [LABEL] })),
    )?;
    created["number"].as_u64().map(Reported::Created).context("the created issue has no number")
}

#[cfg(test)]
mod tests;
