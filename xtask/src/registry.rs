//! A client for the OCI distribution API, just what publishing needs: token (Bearer) and Basic
//! auth, blob existence checks, cross-repository mounts, monolithic uploads, manifests by digest
//! and by tag, the referrers API, and retries.
//!
//! Retries, with exponential backoff and full jitter: transport errors (connection refused or
//! reset, timeouts), `429` and `5xx` (waiting what `Retry-After` says, in seconds or as an
//! HTTP date, when the registry says it), and GHCR's `403 … secondary rate limit`. When the tries
//! run out the error names the request, the tries, the time spent and the last answer.
//!
//! Written here rather than taken from `oci-client` (0.18), which pushes blobs without asking
//! whether the registry has them, treats a registry's "202: upload it instead" answer to a mount
//! as an error, does not retry 429/5xx, and pulls in aws-lc-rs; those are exactly the parts that
//! make a repeated push upload nothing. See ARCHITECTURE.md.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};

/// Media types a manifest request accepts.
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
    pub manifests_present: u64,
    pub tags_written: u64,
    pub tags_unchanged: u64,
    pub retries: u64,
    /// Time spent waiting before retries.
    pub wait_ms: u64,
}

/// How hard to try (`[registry.retry]` in release.toml).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Tries per request, the first included.
    pub tries: u32,
    /// The backoff before the second try, doubled for each next one (milliseconds).
    pub base_ms: u64,
    /// The longest backoff, and the longest `Retry-After` this run waits (seconds); a registry
    /// asking for more is an error.
    pub max_wait_s: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Self { tries: 6, base_ms: 500, max_wait_s: 120 }
    }
}

/// A registry's refusal of what was sent (a `4xx` after the retries): not worth trying again.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub body: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl std::error::Error for Refused {}

/// A registry's answer, read whole (manifests and errors are small; blobs are never fetched).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().chars().take(500).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
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
    pub retry: Retry,
    pub stats: Stats,
}

/// `docker.io` is served from `registry-1.docker.io`.
fn api_host(host: &str) -> &str {
    if host == "docker.io" { "registry-1.docker.io" } else { host }
}

const SECONDARY: &str = "secondary rate limit (GHCR)";

/// Why an answer is worth another try, if it is.
/// GitHub's secondary rate limit is a `403` whose message says so (a `HEAD` answer has no body:
/// then a `Retry-After` or `x-ratelimit-remaining: 0` header says it).
fn retryable(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<&'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if status == StatusCode::TOO_MANY_REQUESTS {
        Some("rate limited")
    } else if status.is_server_error() {
        Some("server error")
    } else if status == StatusCode::FORBIDDEN
        && (String::from_utf8_lossy(body).to_ascii_lowercase().contains("secondary rate limit")
            || header(RETRY_AFTER.as_str()).is_some()
            || header("x-ratelimit-remaining") == Some("0"))
    {
        Some(SECONDARY)
    } else {
        None
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP date.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
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
            retry: Retry::default(),
            stats: Stats::default(),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends a request built by `make` (called again for each try), with auth for `scopes`
    /// (`repository:NAME:pull,push`), retrying as the module's documentation says.
    fn send(&mut self, scopes: &[String], make: &dyn Fn(&Client) -> RequestBuilder) -> anyhow::Result<Answer> {
        let key = scopes.join(" ");
        let started = Instant::now();
        let mut authed = false;
        let mut tries = 0;
        let mut backoff = Duration::from_millis(self.retry.base_ms);
        let max_wait = Duration::from_secs(self.retry.max_wait_s);
        loop {
            tries += 1;
            let mut req = make(&self.http).build().context("build a request")?;
            let what = format!("{} {}", req.method(), req.url());
            if let Some(h) = self.auth.get(&key) {
                req.headers_mut().insert(AUTHORIZATION, h.parse()?);
            }
            self.stats.requests += 1;
            let result = self.http.execute(req).and_then(|resp| {
                let (status, headers) = (resp.status(), resp.headers().clone());
                Ok(Answer { status, headers, body: resp.bytes()?.to_vec() })
            });
            let (why, asked) = match result {
                Ok(a) if a.status == StatusCode::UNAUTHORIZED && !authed => {
                    authed = true;
                    tries -= 1; // a challenge is not a failure
                    let challenge = a.header(WWW_AUTHENTICATE.as_str()).unwrap_or("").to_owned();
                    let header = self.authorize(&challenge, scopes)?;
                    self.auth.insert(key.clone(), header);
                    continue;
                }
                Ok(a) => match retryable(a.status, &a.headers, &a.body) {
                    None => return Ok(a),
                    Some(why) => {
                        let asked = a.header(RETRY_AFTER.as_str()).and_then(|v| retry_after(v, SystemTime::now()));
                        (format!("{why}: {} {}", a.status, a.text()), asked)
                    }
                },
                Err(e) => (format!("transport error: {}", error_chain(&e)), None),
            };
            if let Some(wait) = asked
                && wait > max_wait
            {
                bail!(
                    "{}: {what}: {why}; the registry asks to retry after {} s, longer than the {} s this run \
                     waits (release.toml: [registry.retry] max_wait_s)",
                    self.host,
                    wait.as_secs(),
                    max_wait.as_secs()
                );
            }
            if tries >= self.retry.tries {
                bail!(
                    "{}: {what}: gave up after {tries} tries in {:.1} s; last: {why}",
                    self.host,
                    started.elapsed().as_secs_f64()
                );
            }
            // Full jitter: anywhere up to the backoff, so that parallel clients spread out. GitHub
            // asks for at least a minute after a secondary rate limit that names no time.
            let floor = if why.starts_with(SECONDARY) { max_wait.min(Duration::from_secs(60)) } else { Duration::ZERO };
            let wait = asked.unwrap_or_else(|| backoff.mul_f64(fastrand::f64()).clamp(floor, max_wait));
            eprintln!("    {}: {what}: {why}; try {} of {} in {wait:.1?}", self.host, tries + 1, self.retry.tries);
            self.stats.retries += 1;
            self.stats.wait_ms += wait.as_millis() as u64;
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(max_wait);
        }
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
                let body = self.token(req, realm)?;
                let token = body["token"]
                    .as_str()
                    .or(body["access_token"].as_str())
                    .context("token response without a token")?;
                Ok(format!("Bearer {token}"))
            }
            _ => bail!("{}: unsupported auth challenge `{challenge}`", self.host),
        }
    }

    /// A token request, retried like the others (transport errors, 429, 5xx).
    fn token(&self, req: RequestBuilder, realm: &str) -> anyhow::Result<serde_json::Value> {
        let mut backoff = Duration::from_millis(self.retry.base_ms);
        let max_wait = Duration::from_secs(self.retry.max_wait_s);
        let mut tries = 0;
        loop {
            tries += 1;
            let attempt = req.try_clone().context("a token request")?;
            let why = match attempt.send() {
                Ok(resp) if resp.status().is_success() => return Ok(resp.json()?),
                Ok(resp) if retryable(resp.status(), resp.headers(), b"").is_none() => {
                    bail!("{}: token request to {realm} answered {} (check the credentials)", self.host, resp.status())
                }
                Ok(resp) => format!("answered {}", resp.status()),
                Err(e) => format!("transport error: {}", error_chain(&e)),
            };
            if tries >= self.retry.tries {
                bail!("{}: token request to {realm}: gave up after {tries} tries; last: {why}", self.host);
            }
            let wait = backoff.mul_f64(fastrand::f64()).min(max_wait);
            eprintln!("    {}: token request to {realm}: {why}; try {} in {wait:.1?}", self.host, tries + 1);
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(max_wait);
        }
    }

    fn url(&self, repo: &str, rest: &str) -> String {
        format!("{}/v2/{repo}/{rest}", self.base)
    }

    /// Whether `repo` has the blob.
    pub fn has_blob(&mut self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let a = self.send(&[scope(repo)], &|c| c.head(&url))?;
        match a.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("{}: HEAD {url}: {s}{}", self.host, hint(s)),
        }
    }

    /// Makes `repo` hold the blob: nothing if it has it, a mount from `mount_from` (a repository
    /// of this registry that has it) when given and accepted, else an upload. An upload session
    /// the registry forgot (a `404` to the upload, after a lost connection) is started again.
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
        let bytes = data()?;
        if crate::oci::sha256(&bytes) != digest {
            bail!("the local blob {digest} does not have that digest (a corrupt OCI layout?)");
        }
        let mut mount = mount_from;
        for session in 1..=2 {
            let mut scopes = vec![scope(repo)];
            let start = match mount {
                Some(from) => {
                    scopes.push(format!("repository:{from}:pull"));
                    self.url(repo, &format!("blobs/uploads/?mount={digest}&from={from}"))
                }
                None => self.url(repo, "blobs/uploads/"),
            };
            let a = self
                .send(&scopes, &|c| c.post(&start).header(CONTENT_TYPE, "application/octet-stream").body(Vec::new()))?;
            let location = match a.status {
                StatusCode::CREATED if mount.is_some() => {
                    self.stats.blobs_mounted += 1;
                    return Ok(());
                }
                StatusCode::ACCEPTED => a
                    .header(LOCATION.as_str())
                    .with_context(|| format!("{}: upload session without Location", self.host))?
                    .to_owned(),
                s => bail!("{}: POST {start}: {s}: {}", self.host, a.text()),
            };
            let location = if location.starts_with('/') { format!("{}{location}", self.base) } else { location };
            let sep = if location.contains('?') { '&' } else { '?' };
            let put = format!("{location}{sep}digest={digest}");
            let a = self.send(&[scope(repo)], &|c| {
                c.put(&put).header(CONTENT_TYPE, "application/octet-stream").body(bytes.clone())
            })?;
            match a.status {
                StatusCode::CREATED => {
                    self.stats.blobs_uploaded += 1;
                    self.stats.bytes_uploaded += bytes.len() as u64;
                    return Ok(());
                }
                StatusCode::NOT_FOUND if session == 1 => {
                    // A retried upload whose first try completed finds its session used up.
                    if self.has_blob(repo, digest)? {
                        self.stats.blobs_uploaded += 1;
                        self.stats.bytes_uploaded += bytes.len() as u64;
                        return Ok(());
                    }
                    eprintln!("    {}: upload session of {digest} lost ({}); starting another", self.host, a.text());
                    mount = None;
                }
                s => bail!("{}: upload of {digest} to {repo}: {s}: {}", self.host, a.text()),
            }
        }
        unreachable!("the second session returns")
    }

    /// The digest `reference` (a tag or digest) names in `repo`, if it exists (a `HEAD`).
    pub fn manifest_digest(&mut self, repo: &str, reference: &str) -> anyhow::Result<Option<String>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let a = self.send(&[scope(repo)], &|c| c.head(&url).header(ACCEPT, MANIFEST_TYPES))?;
        match a.status {
            s if s.is_success() => match a.header("Docker-Content-Digest") {
                Some(d) => Ok(Some(d.to_owned())),
                // The header is not required: the digest of what a `GET` sends, then.
                None => Ok(self.get_manifest(repo, reference)?.map(|body| crate::oci::sha256(&body))),
            },
            StatusCode::NOT_FOUND => Ok(None),
            s => bail!("{}: HEAD {url}: {s}{}", self.host, hint(s)),
        }
    }

    /// The manifest (or index) `reference` names in `repo`, as stored; `None` if there is none.
    /// (A `GET` counts as a pull against Docker Hub's rate limit: `publish` uses it only for
    /// referrers tags, which registries with the referrers API, Docker Hub among them, never
    /// need, and for digests a registry does not send.)
    pub fn get_manifest(&mut self, repo: &str, reference: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let a = self.send(&[pull_scope(repo)], &|c| c.get(&url).header(ACCEPT, MANIFEST_TYPES))?;
        match a.status {
            s if s.is_success() => Ok(Some(a.body)),
            StatusCode::NOT_FOUND => Ok(None),
            s => bail!("{}: GET {url}: {s}: {}{}", self.host, a.text(), hint(s)),
        }
    }

    /// A (small) blob of `repo`, checked against its digest.
    pub fn get_blob(&mut self, repo: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let a = self.send(&[pull_scope(repo)], &|c| c.get(&url))?;
        if !a.status.is_success() {
            bail!("{}: GET {url}: {}: {}", self.host, a.status, a.text());
        }
        if crate::oci::sha256(&a.body) != digest {
            bail!("{}: the blob {digest} of {repo} does not have that digest", self.host);
        }
        Ok(a.body)
    }

    /// Whether the registry serves the OCI 1.1 referrers API for `repo` (a registry that does
    /// answers `200` with an index even for a digest nothing refers to).
    pub fn has_referrers_api(&mut self, repo: &str, digest: &str) -> anyhow::Result<bool> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let a =
            self.send(&[pull_scope(repo)], &|c| c.get(&url).header(ACCEPT, "application/vnd.oci.image.index.v1+json"))?;
        Ok(is_referrers_index(&a))
    }

    /// The referrers of `digest` in `repo` (descriptors): from the referrers API, else from
    /// the referrers tag `sha256-<hex>`.
    pub fn referrers(&mut self, repo: &str, digest: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let a =
            self.send(&[pull_scope(repo)], &|c| c.get(&url).header(ACCEPT, "application/vnd.oci.image.index.v1+json"))?;
        let index =
            if is_referrers_index(&a) { Some(a.body) } else { self.get_manifest(repo, &digest.replacen(':', "-", 1))? };
        let Some(index) = index else { return Ok(Vec::new()) };
        let v: serde_json::Value = serde_json::from_slice(&index).context("a referrers index is not JSON")?;
        Ok(v["manifests"].as_array().cloned().unwrap_or_default())
    }

    /// Stores a manifest (or index) under `reference` (its digest or a tag); returns the
    /// registry's headers (`OCI-Subject` says it indexed a referrer).
    pub fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> anyhow::Result<HeaderMap> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let a = self.send(&[scope(repo)], &|c| c.put(&url).header(CONTENT_TYPE, media_type).body(body.to_vec()))?;
        if a.status != StatusCode::CREATED {
            if a.status.is_client_error() {
                return Err(Refused { status: a.status, body: a.text() }).with_context(|| format!("PUT {url}"));
            }
            bail!("PUT {url}: {} {}", a.status, a.text());
        }
        Ok(a.headers)
    }
}

/// Whether an answer to `GET …/referrers/<digest>` comes from a referrers API: a `2xx` with an
/// image index (a registry without the API answers `404`, or something else).
fn is_referrers_index(a: &Answer) -> bool {
    a.status.is_success()
        && a.header(CONTENT_TYPE.as_str()).is_some_and(|t| t.starts_with("application/vnd.oci.image.index.v1+json"))
}

/// What an answer to a `HEAD` usually means.
fn hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => {
            " (the credentials were not accepted: check the registry's username and password variables)"
        }
        StatusCode::FORBIDDEN => " (the credentials may not use this repository)",
        _ => "",
    }
}

/// An error and its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
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
