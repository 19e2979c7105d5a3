//! Any S3-compatible store (AWS S3, MinIO, Aliyun OSS, Tencent COS, …): requests are signed with
//! SigV4 by `rusty-s3` (a sans-IO signer) and sent with `reqwest`.
//!
//! Clients get presigned URLs on the store's external address (`external_endpoint`), so that an
//! internal address (`http://minio:9000`) never reaches them — OpenIM's common complaint. The
//! server's own calls go to `endpoint`. Uploads sign `content-length`, so a client cannot put
//! more than the size it declared.
//!
//! Form uploads are signed with an S3 POST policy (the key, the size range, the content type),
//! its signature from `aws-sigv4`, the AWS SDK's signer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use rusty_s3::actions::{CreateMultipartUpload, S3Action as _};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use crate::{
    AccessOptions, BlobError, BlobResult, Blobs, FORM_SUCCESS, FormUpload, ObjectInfo, PartLimit, SignedRequest,
    check_key,
};

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// What the server calls (`http://minio:9000`, `https://s3.eu-west-1.amazonaws.com`).
    pub endpoint: String,
    /// What clients are sent to; empty: `endpoint`.
    pub external_endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `https://host/bucket/key` (MinIO, most self-hosted stores) rather than
    /// `https://bucket.host/key` (AWS, OSS, COS).
    pub path_style: bool,
}

/// How long the server's own signed requests are valid.
const CALL_EXPIRY: Duration = Duration::from_secs(300);

pub struct S3Blobs {
    internal: Bucket,
    external: Bucket,
    credentials: Credentials,
    http: reqwest::Client,
}

/// An S3 POST policy's fields, signed with SigV4 for `expire` from `now`: the form fields a
/// browser posts before the file.
fn post_policy(
    bucket: &Bucket,
    credentials: &Credentials,
    key: &str,
    size: i64,
    content_type: &str,
    now: SystemTime,
    expire: Duration,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let at = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let until = jiff::Timestamp::try_from(now + expire).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let scope = format!("{}/{}/s3/aws4_request", at.strftime("%Y%m%d"), bucket.region());
    let mut fields: Vec<(String, String)> = vec![("key".into(), key.into())];
    if !content_type.is_empty() {
        fields.push(("Content-Type".into(), content_type.into()));
    }
    fields.push(("success_action_status".into(), FORM_SUCCESS.to_string()));
    fields.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    fields.push(("x-amz-credential".into(), format!("{}/{scope}", credentials.key())));
    fields.push(("x-amz-date".into(), at.strftime("%Y%m%dT%H%M%SZ").to_string()));
    if let Some(token) = credentials.token() {
        fields.push(("x-amz-security-token".into(), token.into()));
    }
    let mut conditions = vec![serde_json::json!({ "bucket": bucket.name() })];
    conditions.push(serde_json::json!(["content-length-range", 0, size.max(0)]));
    conditions.extend(fields.iter().map(|(k, v)| serde_json::json!({ k: v })));
    let policy = serde_json::json!({
        "expiration": until.strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string(),
        "conditions": conditions,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(credentials.secret(), now, bucket.region(), "s3");
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, encoded.as_bytes());
    fields.push(("policy".into(), encoded));
    fields.push(("x-amz-signature".into(), signature));
    fields
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("bucket", &self.internal.name())
            .field("endpoint", self.internal.base_url())
            .finish()
    }
}

fn bucket(endpoint: &str, what: &str, s: &S3Settings) -> Result<Bucket, String> {
    let url = endpoint.parse().map_err(|e| format!("{what} {endpoint:?} is not a URL: {e}"))?;
    let style = if s.path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
    Bucket::new(url, style, s.bucket.clone(), s.region.clone())
        .map_err(|e| format!("{what} {endpoint:?} is not an http(s) URL with a host: {e:?}"))
}

impl S3Blobs {
    /// The store of `settings`; the error names the setting at fault. Nothing is contacted.
    pub fn new(settings: &S3Settings) -> Result<Self, String> {
        if settings.bucket.is_empty() {
            return Err("bucket is empty".into());
        }
        if settings.access_key_id.is_empty() || settings.secret_access_key.is_empty() {
            return Err("access_key_id and secret_access_key must be set".into());
        }
        let internal = bucket(&settings.endpoint, "endpoint", settings)?;
        let external_endpoint =
            if settings.external_endpoint.is_empty() { &settings.endpoint } else { &settings.external_endpoint };
        let external = bucket(external_endpoint, "external_endpoint", settings)?;
        let credentials = if settings.session_token.is_empty() {
            Credentials::new(&settings.access_key_id, &settings.secret_access_key)
        } else {
            Credentials::new_with_token(&settings.access_key_id, &settings.secret_access_key, &settings.session_token)
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { internal, external, credentials, http })
    }

    /// Sends a signed request; the response if its status is a success, else the store's answer
    /// as an error (404 as `NotFound`, other 4xx as `Invalid`).
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> BlobResult<reqwest::Response> {
        let resp = req.send().await.map_err(|e| BlobError::Backend(format!("{what}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let code = xml_field(&body, "Code").unwrap_or_default();
        let message = xml_field(&body, "Message").unwrap_or_default();
        let said = format!("{what}: HTTP {status} {code} {message}");
        Err(match status.as_u16() {
            404 => BlobError::NotFound(said),
            400..=499 => BlobError::Invalid(said),
            _ => BlobError::Backend(said),
        })
    }
}

/// The text of the first `<name>…</name>` in an S3 XML answer.
fn xml_field(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].to_owned())
}

/// Undoes XML's escapes of the five special characters.
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn etag_of(resp: &reqwest::Response) -> String {
    resp.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().trim_matches('"').to_owned()
}

impl S3Blobs {
    /// The parts of an upload: (number, etag if the store tells it).
    async fn list_parts(&self, key: &str, upload_id: &str) -> BlobResult<Vec<(u32, Option<String>)>> {
        let mut parts = Vec::new();
        let mut marker: Option<u16> = None;
        loop {
            let mut action = self.internal.list_parts(Some(&self.credentials), key, upload_id);
            if let Some(m) = marker {
                action.set_part_number_marker(m);
            }
            let url = action.sign(CALL_EXPIRY);
            let body = self
                .send(self.http.get(url), "ListParts")
                .await?
                .text()
                .await
                .map_err(|e| BlobError::Backend(e.to_string()))?;
            for block in body.split("<Part>").skip(1) {
                let block = block.split("</Part>").next().unwrap_or_default();
                let Some(number) = xml_field(block, "PartNumber").and_then(|n| n.parse().ok()) else { continue };
                let etag = xml_field(block, "ETag").map(|e| e.replace("&quot;", "").trim_matches('"').to_owned());
                parts.push((number, etag.filter(|e| !e.is_empty())));
            }
            let truncated = xml_field(&body, "IsTruncated").is_some_and(|t| t == "true");
            match xml_field(&body, "NextPartNumberMarker").and_then(|m| m.parse().ok()) {
                Some(next) if truncated && Some(next) != marker => marker = Some(next),
                _ => return Ok(parts),
            }
        }
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    fn engine(&self) -> &'static str {
        "s3"
    }

    fn part_limit(&self) -> PartLimit {
        PartLimit::S3
    }

    fn presign_put(&self, _base: &str, key: &str, max_size: i64, expire: Duration) -> BlobResult<SignedRequest> {
        check_key(key)?;
        let mut action = self.external.put_object(Some(&self.credentials), key);
        let size = max_size.to_string();
        action.headers_mut().insert("content-length", size);
        Ok(SignedRequest { url: action.sign(expire).to_string(), headers: Vec::new() })
    }

    fn presign_form(
        &self,
        _base: &str,
        key: &str,
        size: i64,
        content_type: &str,
        expire: Duration,
    ) -> BlobResult<FormUpload> {
        check_key(key)?;
        let now = SystemTime::now();
        let fields = post_policy(&self.external, &self.credentials, key, size, content_type, now, expire);
        let expires = (now + expire).duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Ok(FormUpload {
            url: self.external.base_url().to_string(),
            file: "file".into(),
            headers: Vec::new(),
            fields,
            expires: i64::try_from(expires).unwrap_or(i64::MAX),
            success_codes: vec![FORM_SUCCESS],
        })
    }

    async fn create_multipart(&self, key: &str) -> BlobResult<String> {
        check_key(key)?;
        let url = self.internal.create_multipart_upload(Some(&self.credentials), key).sign(CALL_EXPIRY);
        let resp = self.send(self.http.post(url), "CreateMultipartUpload").await?;
        let body = resp.text().await.map_err(|e| BlobError::Backend(e.to_string()))?;
        let parsed = CreateMultipartUpload::parse_response(&body)
            .map_err(|e| BlobError::Backend(format!("CreateMultipartUpload answer: {e}")))?;
        Ok(parsed.upload_id().to_owned())
    }

    fn presign_part(
        &self,
        _base: &str,
        key: &str,
        upload_id: &str,
        part: u32,
        max_size: i64,
        expire: Duration,
    ) -> BlobResult<SignedRequest> {
        check_key(key)?;
        let number = u16::try_from(part).map_err(|_| BlobError::Invalid(format!("part {part} is past 10000")))?;
        let mut action = self.external.upload_part(Some(&self.credentials), key, number, upload_id);
        action.headers_mut().insert("content-length", max_size.to_string());
        Ok(SignedRequest { url: action.sign(expire).to_string(), headers: Vec::new() })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> BlobResult<ObjectInfo> {
        // Every part there and as the client says, before anything is joined: the same clear error
        // on every store, and a completion that fails leaves the upload to retry.
        let uploaded = self.list_parts(key, upload_id).await?;
        for (i, etag) in etags.iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            match uploaded.iter().find(|p| p.0 == n) {
                None => return Err(BlobError::Invalid(format!("part {n} of {} was not uploaded", etags.len()))),
                Some((_, Some(stored))) if !stored.eq_ignore_ascii_case(etag.trim_matches('"')) => {
                    return Err(BlobError::Invalid(format!("part {n}: the upload's md5 is {stored}, not {etag}")));
                }
                Some(_) => {}
            }
        }
        let quoted: Vec<String> = etags.iter().map(|e| format!("\"{}\"", e.trim_matches('"'))).collect();
        let action = self.internal.complete_multipart_upload(
            Some(&self.credentials),
            key,
            upload_id,
            quoted.iter().map(String::as_str),
        );
        let url = action.sign(CALL_EXPIRY);
        let body = action.body();
        let resp = self.send(self.http.post(url).body(body), "CompleteMultipartUpload").await?;
        // S3 may answer 200 with an error in the body.
        let text = resp.text().await.map_err(|e| BlobError::Backend(e.to_string()))?;
        if let Some(code) = xml_field(&text, "Code") {
            let message = xml_field(&text, "Message").unwrap_or_default();
            return Err(BlobError::Invalid(format!("CompleteMultipartUpload: {code} {message}")));
        }
        self.stat(key).await?.ok_or_else(|| BlobError::Backend(format!("{key} is missing after its completion")))
    }

    async fn stat(&self, key: &str) -> BlobResult<Option<ObjectInfo>> {
        check_key(key)?;
        let url = self.internal.head_object(Some(&self.credentials), key).sign(CALL_EXPIRY);
        match self.send(self.http.head(url), "HeadObject").await {
            Ok(resp) => {
                // A HEAD has no body: the size is the header's, not the (empty) body's.
                let size = resp
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Ok(Some(ObjectInfo { key: key.to_owned(), size, etag: etag_of(&resp) }))
            }
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn copy(&self, src: &str, dst: &str) -> BlobResult<ObjectInfo> {
        check_key(src)?;
        check_key(dst)?;
        let source = format!("/{}/{}", self.internal.name(), src);
        let mut action = self.internal.put_object(Some(&self.credentials), dst);
        action.headers_mut().insert("x-amz-copy-source", source.clone());
        let url = action.sign(CALL_EXPIRY);
        let resp = self.send(self.http.put(url).header("x-amz-copy-source", source), "CopyObject").await?;
        let text = resp.text().await.map_err(|e| BlobError::Backend(e.to_string()))?;
        if let Some(code) = xml_field(&text, "Code") {
            return Err(BlobError::Backend(format!("CopyObject: {code}")));
        }
        self.stat(dst).await?.ok_or_else(|| BlobError::Backend(format!("{dst} is missing after its copy")))
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        check_key(key)?;
        let url = self.internal.delete_object(Some(&self.credentials), key).sign(CALL_EXPIRY);
        match self.send(self.http.delete(url), "DeleteObject").await {
            Ok(_) | Err(BlobError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn presign_get(&self, _base: &str, key: &str, expire: Duration, opts: &AccessOptions) -> BlobResult<String> {
        check_key(key)?;
        let mut action = self.external.get_object(Some(&self.credentials), key);
        if !opts.content_type.is_empty() {
            action.query_mut().insert("response-content-type", opts.content_type.clone());
        }
        if !opts.filename.is_empty() {
            let encoded: String =
                percent_encoding::utf8_percent_encode(&opts.filename, percent_encoding::NON_ALPHANUMERIC).collect();
            let disposition = if crate::is_media(&opts.content_type) { "inline" } else { "attachment" };
            action
                .query_mut()
                .insert("response-content-disposition", format!("{disposition}; filename*=UTF-8''{encoded}"));
        }
        Ok(action.sign(expire).to_string())
    }

    async fn put(&self, key: &str, data: Bytes, content_type: &str) -> BlobResult<ObjectInfo> {
        check_key(key)?;
        let url = self.internal.put_object(Some(&self.credentials), key).sign(CALL_EXPIRY);
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        let resp = self.send(self.http.put(url).header("content-type", content_type).body(data), "PutObject").await?;
        Ok(ObjectInfo { key: key.to_owned(), size, etag: etag_of(&resp) })
    }

    /// Single-part uploads never completed. Unfinished multipart uploads are the bucket's to
    /// expire: a lifecycle rule `AbortIncompleteMultipartUpload` (AWS, MinIO, OSS and COS have it).
    async fn sweep(&self, age: Duration) -> BlobResult<u64> {
        let cutoff = jiff::Timestamp::try_from(SystemTime::now() - age).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut removed = 0;
        let mut token: Option<String> = None;
        loop {
            let mut action = rusty_s3::actions::ListObjectsV2::new(&self.internal, Some(&self.credentials));
            action.with_prefix(crate::TEMP_PREFIX);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(CALL_EXPIRY);
            let body = self
                .send(self.http.get(url), "ListObjectsV2")
                .await?
                .text()
                .await
                .map_err(|e| BlobError::Backend(e.to_string()))?;
            // Read by hand, as ListParts: stores differ in what they leave out (s3s omits ETag,
            // which rusty-s3's parser requires).
            for block in body.split("<Contents>").skip(1) {
                let block = block.split("</Contents>").next().unwrap_or_default();
                let Some(key) = xml_field(block, "Key").map(|k| xml_unescape(&k)) else { continue };
                // A date the store writes oddly is never old: nothing is removed by mistake.
                let modified = xml_field(block, "LastModified").unwrap_or_default();
                if key.starts_with(crate::TEMP_PREFIX) && modified.parse::<jiff::Timestamp>().is_ok_and(|t| t < cutoff)
                {
                    self.delete(&key).await?;
                    removed += 1;
                }
            }
            let truncated = xml_field(&body, "IsTruncated").is_some_and(|t| t == "true");
            match xml_field(&body, "NextContinuationToken").map(|t| xml_unescape(&t)) {
                Some(next) if truncated && Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(removed),
            }
        }
    }

    async fn get(&self, key: &str, max: u64) -> BlobResult<Bytes> {
        check_key(key)?;
        let url = self.internal.get_object(Some(&self.credentials), key).sign(CALL_EXPIRY);
        let resp = self.send(self.http.get(url), "GetObject").await?;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(BlobError::Invalid(format!("{key} is larger than {max} bytes")));
        }
        let bytes = resp.bytes().await.map_err(|e| BlobError::Backend(format!("GetObject {key}: {e}")))?;
        if bytes.len() as u64 > max {
            return Err(BlobError::Invalid(format!("{key} is larger than {max} bytes")));
        }
        Ok(bytes)
    }
}
