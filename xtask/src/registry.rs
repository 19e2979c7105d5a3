//! A client for the OCI distribution API, just what pushing needs: token (Bearer) and Basic
//! auth, blob existence checks, cross-repository mounts, monolithic uploads, manifests by digest
//! and by tag, and retries with backoff on 429 and 5xx.
//!
//! Written here rather than taken from `oci-client` (0.18), which pushes blobs without asking
//! whether the registry has them, treats a registry's "202: upload it instead" answer to a mount
//! as an error, does not retry 429/5xx, and pulls in aws-lc-rs; those are exactly the parts that
//! make a repeated push upload nothing. See ARCHITECTURE.md.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};

/// Media types a manifest GET accepts.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// What a client did, for reports and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub requests: u64,
    pub blobs_uploaded: u64,
    pub bytes_uploaded: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub manifests_put: u64,
    pub retries: u64,
}

/// One registry host, with its credentials.
pub struct Registry {
    /// `http://host:port` or `https://host`.
    base: String,
    host: String,
    credentials: Option<(String, String)>,
    http: Client,
    /// Authorization header per scope key, once obtained.
    auth: HashMap<String, String>,
    pub stats: Stats,
}

/// `docker.io` is served from `registry-1.docker.io`.
fn api_host(host: &str) -> &str {
    if host == "docker.io" { "registry-1.docker.io" } else { host }
}

impl Registry {
    /// A client for `host`; plain HTTP when `insecure` (a local test registry).
    pub fn new(host: &str, credentials: Option<(String, String)>, insecure: bool) -> anyhow::Result<Self> {
        let scheme = if insecure { "http" } else { "https" };
        let http = Client::builder()
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("openim-xtask/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            base: format!("{scheme}://{}", api_host(host)),
            host: host.to_owned(),
            credentials,
            http,
            auth: HashMap::new(),
            stats: Stats::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends a request built by `make` (called again for each try), with auth for `scopes`
    /// (`repository:NAME:pull,push`), retrying 429 and 5xx with backoff.
    fn send(&mut self, scopes: &[String], make: &dyn Fn(&Client) -> RequestBuilder) -> anyhow::Result<Response> {
        let key = scopes.join(" ");
        let mut delay = Duration::from_millis(500);
        let mut authed_once = false;
        for attempt in 1..=6 {
            let mut req = make(&self.http);
            if let Some(h) = self.auth.get(&key) {
                req = req.header(AUTHORIZATION, h);
            }
            self.stats.requests += 1;
            let resp = req.send().with_context(|| format!("{}: request failed", self.host))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let challenge =
                    resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let header = self.authorize(&challenge, scopes)?;
                self.auth.insert(key.clone(), header);
                continue;
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && attempt < 6 {
                let wait = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(delay)
                    .min(Duration::from_secs(60));
                eprintln!("    {}: {status}, retrying in {wait:?}", self.host);
                self.stats.retries += 1;
                std::thread::sleep(wait);
                delay *= 2;
                continue;
            }
            return Ok(resp);
        }
        bail!("{}: gave up after 6 tries", self.host)
    }

    /// The Authorization header answering `challenge`.
    fn authorize(&self, challenge: &str, scopes: &[String]) -> anyhow::Result<String> {
        use base64::Engine as _;
        let basic = self
            .credentials
            .as_ref()
            .map(|(u, p)| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))));
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.with_context(|| format!("{}: asks for a password and none is configured", self.host)),
            "bearer" => {
                let params = parse_challenge(params);
                let realm =
                    params.get("realm").with_context(|| format!("{}: bearer challenge without realm", self.host))?;
                let mut query: Vec<(&str, &str)> = Vec::new();
                if let Some(service) = params.get("service") {
                    query.push(("service", service));
                }
                for s in scopes {
                    query.push(("scope", s));
                }
                let mut req = self.http.get(realm).query(&query);
                if let Some(b) = &basic {
                    req = req.header(AUTHORIZATION, b);
                }
                let resp = req.send().with_context(|| format!("{}: token request to {realm}", self.host))?;
                if !resp.status().is_success() {
                    bail!("{}: token request to {realm} answered {} (check the credentials)", self.host, resp.status());
                }
                let body: serde_json::Value = resp.json()?;
                let token = body["token"]
                    .as_str()
                    .or(body["access_token"].as_str())
                    .context("token response without a token")?;
                Ok(format!("Bearer {token}"))
            }
            _ => bail!("{}: unsupported auth challenge `{challenge}`", self.host),
        }
    }

    fn url(&self, repo: &str, rest: &str) -> String {
        format!("{}/v2/{repo}/{rest}", self.base)
    }

    /// Whether `repo` has the blob.
    pub fn has_blob(&mut self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let resp = self.send(&[scope(repo)], &|c| c.head(&url))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("{}: HEAD {url}: {s}", self.host),
        }
    }

    /// Makes `repo` hold the blob: nothing if it has it, a mount from `mount_from` (a repository
    /// of this registry that has it) when given and accepted, else an upload.
    pub fn ensure_blob(
        &mut self,
        repo: &str,
        digest: &str,
        data: &dyn Fn() -> anyhow::Result<Vec<u8>>,
        mount_from: Option<&str>,
    ) -> anyhow::Result<()> {
        if self.has_blob(repo, digest)? {
            self.stats.blobs_present += 1;
            return Ok(());
        }
        let mut scopes = vec![scope(repo)];
        let start = match mount_from {
            Some(from) => {
                scopes.push(format!("repository:{from}:pull"));
                self.url(repo, &format!("blobs/uploads/?mount={digest}&from={from}"))
            }
            None => self.url(repo, "blobs/uploads/"),
        };
        let resp =
            self.send(&scopes, &|c| c.post(&start).header(CONTENT_TYPE, "application/octet-stream").body(Vec::new()))?;
        let location = match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => {
                self.stats.blobs_mounted += 1;
                return Ok(());
            }
            StatusCode::ACCEPTED => resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .with_context(|| format!("{}: upload session without Location", self.host))?
                .to_owned(),
            s => bail!("{}: POST {start}: {s}: {}", self.host, resp.text().unwrap_or_default()),
        };
        let location = if location.starts_with('/') { format!("{}{location}", self.base) } else { location };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let bytes = data()?;
        let len = bytes.len() as u64;
        let resp = self.send(&[scope(repo)], &|c| {
            c.put(&put).header(CONTENT_TYPE, "application/octet-stream").body(bytes.clone())
        })?;
        if resp.status() != StatusCode::CREATED {
            bail!(
                "{}: upload of {digest} to {repo}: {}: {}",
                self.host,
                resp.status(),
                resp.text().unwrap_or_default()
            );
        }
        self.stats.blobs_uploaded += 1;
        self.stats.bytes_uploaded += len;
        Ok(())
    }

    /// The digest `reference` (a tag) points at in `repo`, if it exists.
    pub fn manifest_digest(&mut self, repo: &str, reference: &str) -> anyhow::Result<Option<String>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let resp = self.send(&[scope(repo)], &|c| c.head(&url).header(ACCEPT, MANIFEST_TYPES))?;
        match resp.status() {
            s if s.is_success() => {
                Ok(resp.headers().get("Docker-Content-Digest").and_then(|v| v.to_str().ok()).map(str::to_owned))
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => bail!("{}: HEAD {url}: {s}", self.host),
        }
    }

    /// The manifest (or index) `reference` names in `repo`, as stored.
    pub fn get_manifest(&mut self, repo: &str, reference: &str) -> anyhow::Result<Vec<u8>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let resp = self.send(&[scope(repo)], &|c| c.get(&url).header(ACCEPT, MANIFEST_TYPES))?;
        if !resp.status().is_success() {
            bail!("{}: GET {url}: {}", self.host, resp.status());
        }
        Ok(resp.bytes()?.to_vec())
    }

    /// Stores a manifest (or index) under `reference` (its digest or a tag).
    pub fn put_manifest(&mut self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> anyhow::Result<()> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let resp = self.send(&[scope(repo)], &|c| c.put(&url).header(CONTENT_TYPE, media_type).body(body.to_vec()))?;
        if resp.status() != StatusCode::CREATED {
            bail!("{}: PUT {url}: {}: {}", self.host, resp.status(), resp.text().unwrap_or_default());
        }
        self.stats.manifests_put += 1;
        Ok(())
    }
}

fn scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// `key="value", key2="value2"` → map.
fn parse_challenge(params: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = params.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key, value.to_owned());
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn challenges_parse() {
        let p = super::parse_challenge(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(super::api_host("docker.io"), "registry-1.docker.io");
    }
}
