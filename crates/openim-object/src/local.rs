//! The embedded store: objects as files under a directory, uploaded and downloaded through
//! presigned URLs that the API serves ([`router`]).
//!
//! ```text
//! <root>/data/<key>        the content
//! <root>/etag/<key>        its etag
//! <root>/uploads/<id>/key  a multipart upload's target key; its parts beside it as 1, 2, …
//! <root>/tmp/              files being written (renamed into place when complete)
//! ```
//!
//! URLs are `<base>object-store/{put,part,get}?key=…&…&expires=<unix s>&signature=<hex>`, the
//! signature an HMAC over the method and every parameter. An upload is streamed to disk with
//! its md5 computed on the way and refused as soon as it is longer than the size signed into
//! its URL; nothing is in place until it is whole.
//!
//! Form uploads (`POST <base>object-store/form`, `multipart/form-data`) carry the same
//! parameters as form fields, which must come before the `file` field, as S3's do.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use futures::StreamExt as _;
use md5::Digest as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::{
    AccessOptions, BlobError, BlobResult, Blobs, FORM_SUCCESS, FormUpload, ObjectInfo, PartLimit, SignedRequest,
    TEMP_PREFIX, UrlSigner, check_key,
};

/// The embedded store.
#[derive(Debug)]
pub struct LocalBlobs {
    root: PathBuf,
    signer: UrlSigner,
    limit: PartLimit,
}

impl LocalBlobs {
    /// A store in `root` (created if missing), its URLs signed with `signer`.
    pub fn open(root: &Path, signer: UrlSigner) -> std::io::Result<Self> {
        for dir in ["data", "etag", "uploads", "tmp"] {
            std::fs::create_dir_all(root.join(dir))?;
        }
        Ok(Self { root: root.to_owned(), signer, limit: PartLimit::S3 })
    }

    fn data(&self, key: &str) -> BlobResult<PathBuf> {
        check_key(key)?;
        Ok(self.root.join("data").join(key))
    }

    fn etag_path(&self, key: &str) -> PathBuf {
        self.root.join("etag").join(key)
    }

    fn upload_dir(&self, upload_id: &str) -> BlobResult<PathBuf> {
        if upload_id.len() != 32 || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BlobError::Invalid(format!("upload ID {upload_id:?} is not one of this store's")));
        }
        Ok(self.root.join("uploads").join(upload_id))
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Moves a finished file to `key`, with its etag.
    async fn install(&self, tmp: &Path, key: &str, etag: &str) -> BlobResult<()> {
        let dst = self.data(key)?;
        let etag_path = self.etag_path(key);
        for p in [&dst, &etag_path] {
            if let Some(parent) = p.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
        }
        // The etag first: a reader that finds the content finds its etag too.
        tokio::fs::write(&etag_path, etag).await?;
        tokio::fs::rename(tmp, &dst).await?;
        Ok(())
    }

    fn url(&self, base: &str, action: &str, params: &[(&str, &str)]) -> String {
        let mut fields = vec![action];
        fields.extend(params.iter().map(|(_, v)| *v));
        let signature = self.signer.sign(&fields);
        let mut url = format!("{base}object-store/{action}?");
        for (name, value) in params {
            url.push_str(name);
            url.push('=');
            url.extend(utf8_percent_encode(value, NON_ALPHANUMERIC));
            url.push('&');
        }
        url.push_str("signature=");
        url.push_str(&signature);
        url
    }
}

fn expires_at(expire: Duration) -> String {
    (SystemTime::now() + expire).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string()
}

/// The fields of a form upload, in the order they are signed.
const FORM_FIELDS: [&str; 4] = ["key", "size", "type", "expires"];

/// md5 of a file's content, as hex.
async fn md5_file(path: &Path) -> BlobResult<String> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await?;
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[async_trait]
impl Blobs for LocalBlobs {
    fn engine(&self) -> &'static str {
        "local"
    }

    fn part_limit(&self) -> PartLimit {
        self.limit
    }

    fn presign_put(&self, base: &str, key: &str, max_size: i64, expire: Duration) -> BlobResult<SignedRequest> {
        check_key(key)?;
        let size = max_size.to_string();
        let url = self.url(base, "put", &[("key", key), ("size", &size), ("expires", &expires_at(expire))]);
        Ok(SignedRequest { url, headers: Vec::new() })
    }

    fn presign_form(
        &self,
        base: &str,
        key: &str,
        size: i64,
        content_type: &str,
        expire: Duration,
    ) -> BlobResult<FormUpload> {
        check_key(key)?;
        let expires = expires_at(expire);
        let values = [key.to_owned(), size.to_string(), content_type.to_owned(), expires.clone()];
        let mut signed = vec!["form"];
        signed.extend(values.iter().map(String::as_str));
        let mut fields: Vec<(String, String)> =
            FORM_FIELDS.iter().map(|f| (*f).to_owned()).zip(values.iter().cloned()).collect();
        fields.push(("signature".into(), self.signer.sign(&signed)));
        Ok(FormUpload {
            url: format!("{base}object-store/form"),
            file: "file".into(),
            headers: Vec::new(),
            fields,
            expires: expires.parse::<i64>().unwrap_or(0) * 1000,
            success_codes: vec![FORM_SUCCESS],
        })
    }

    async fn create_multipart(&self, key: &str) -> BlobResult<String> {
        check_key(key)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir(&id)?;
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("key"), key).await?;
        Ok(id)
    }

    fn presign_part(
        &self,
        base: &str,
        key: &str,
        upload_id: &str,
        part: u32,
        max_size: i64,
        expire: Duration,
    ) -> BlobResult<SignedRequest> {
        check_key(key)?;
        self.upload_dir(upload_id)?;
        let (part, size) = (part.to_string(), max_size.to_string());
        let url = self.url(
            base,
            "part",
            &[("key", key), ("upload", upload_id), ("part", &part), ("size", &size), ("expires", &expires_at(expire))],
        );
        Ok(SignedRequest { url, headers: Vec::new() })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> BlobResult<ObjectInfo> {
        let dir = self.upload_dir(upload_id)?;
        let target = tokio::fs::read_to_string(dir.join("key"))
            .await
            .map_err(|_| BlobError::NotFound(format!("upload {upload_id} (finished, aborted or never started)")))?;
        if target != key {
            return Err(BlobError::Invalid(format!("upload {upload_id} is for another key")));
        }
        if etags.is_empty() {
            return Err(BlobError::Invalid("a multipart upload needs at least one part".into()));
        }
        // Every part present and as the client says, before anything is written.
        let mut joined_md5 = md5::Md5::new();
        for (i, etag) in etags.iter().enumerate() {
            let n = i + 1;
            let path = dir.join(n.to_string());
            if !tokio::fs::try_exists(&path).await? {
                return Err(BlobError::Invalid(format!("part {n} of {} was not uploaded", etags.len())));
            }
            let actual = md5_file(&path).await?;
            if !actual.eq_ignore_ascii_case(etag.trim_matches('"')) {
                return Err(BlobError::Invalid(format!("part {n}: the upload's md5 is {actual}, not {etag}")));
            }
            joined_md5.update(hex::decode(&actual).map_err(|e| BlobError::Backend(e.to_string()))?);
        }
        let tmp = self.tmp();
        let mut out = tokio::fs::File::create(&tmp).await?;
        let mut size = 0i64;
        for n in 1..=etags.len() {
            let mut part = tokio::fs::File::open(dir.join(n.to_string())).await?;
            size += i64::try_from(tokio::io::copy(&mut part, &mut out).await?).unwrap_or(i64::MAX);
        }
        out.sync_all().await?;
        drop(out);
        let etag = format!("{}-{}", hex::encode(joined_md5.finalize()), etags.len());
        self.install(&tmp, key, &etag).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(ObjectInfo { key: key.to_owned(), size, etag })
    }

    async fn stat(&self, key: &str) -> BlobResult<Option<ObjectInfo>> {
        let path = self.data(key)?;
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let etag = match tokio::fs::read_to_string(self.etag_path(key)).await {
            Ok(e) => e,
            Err(_) => md5_file(&path).await?,
        };
        Ok(Some(ObjectInfo { key: key.to_owned(), size: i64::try_from(meta.len()).unwrap_or(i64::MAX), etag }))
    }

    async fn copy(&self, src: &str, dst: &str) -> BlobResult<ObjectInfo> {
        let info = self.stat(src).await?.ok_or_else(|| BlobError::NotFound(src.to_owned()))?;
        let tmp = self.tmp();
        tokio::fs::copy(self.data(src)?, &tmp).await?;
        self.install(&tmp, dst, &info.etag).await?;
        Ok(ObjectInfo { key: dst.to_owned(), ..info })
    }

    async fn delete(&self, key: &str) -> BlobResult<()> {
        for path in [self.data(key)?, self.etag_path(key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn presign_get(&self, base: &str, key: &str, expire: Duration, opts: &AccessOptions) -> BlobResult<String> {
        check_key(key)?;
        Ok(self.url(
            base,
            "get",
            &[
                ("key", key),
                ("type", &opts.content_type),
                ("filename", &opts.filename),
                ("expires", &expires_at(expire)),
            ],
        ))
    }

    async fn put(&self, key: &str, data: Bytes, _content_type: &str) -> BlobResult<ObjectInfo> {
        let tmp = self.tmp();
        tokio::fs::write(&tmp, &data).await?;
        let etag = crate::md5_hex(&data);
        self.install(&tmp, key, &etag).await?;
        Ok(ObjectInfo { key: key.to_owned(), size: i64::try_from(data.len()).unwrap_or(i64::MAX), etag })
    }

    async fn sweep(&self, age: Duration) -> BlobResult<u64> {
        let cutoff = SystemTime::now() - age;
        let temp = TEMP_PREFIX.trim_end_matches('/');
        let mut removed = remove_older(&self.root.join("data").join(temp), cutoff, true).await?;
        remove_older(&self.root.join("etag").join(temp), cutoff, true).await?;
        // Unfinished multipart uploads (a directory of parts each) and interrupted writes.
        removed += remove_older(&self.root.join("uploads"), cutoff, true).await?;
        removed += remove_older(&self.root.join("tmp"), cutoff, true).await?;
        Ok(removed)
    }

    async fn get(&self, key: &str, max: u64) -> BlobResult<Bytes> {
        let path = self.data(key)?;
        let len = tokio::fs::metadata(&path).await?.len();
        if len > max {
            return Err(BlobError::Invalid(format!("{key} is {len} bytes, more than {max}")));
        }
        Ok(tokio::fs::read(&path).await?.into())
    }
}

/// Removes, under `dir`, the files and directories last changed before `cutoff` (a directory
/// when everything in it is that old); `top` itself stays. How many files were removed.
async fn remove_older(dir: &Path, cutoff: SystemTime, top: bool) -> std::io::Result<u64> {
    let mut removed = 0;
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut kept = false;
    while let Some(entry) = entries.next_entry().await? {
        let meta = entry.metadata().await?;
        let path = entry.path();
        if meta.is_dir() {
            removed += Box::pin(remove_older(&path, cutoff, false)).await?;
            kept |= tokio::fs::try_exists(&path).await?;
        } else if meta.modified()? < cutoff {
            tokio::fs::remove_file(&path).await?;
            removed += 1;
        } else {
            kept = true;
        }
    }
    if !top && !kept && tokio::fs::metadata(dir).await?.modified()? < cutoff {
        tokio::fs::remove_dir(dir).await?;
    }
    Ok(removed)
}

/// The routes that serve the store's presigned URLs, mounted on the API's listener.
pub fn router<S: Clone + Send + Sync + 'static>(store: Arc<LocalBlobs>) -> Router<S> {
    Router::new()
        .route("/object-store/put", put(put_object))
        .route("/object-store/part", put(put_part))
        .route("/object-store/get", get(get_object))
        // The signed size bounds the upload, not the API's body limit.
        .route("/object-store/form", post(post_form).layer(DefaultBodyLimit::disable()))
        .with_state(store)
}

#[derive(Deserialize)]
struct PutParams {
    key: String,
    size: String,
    expires: String,
    signature: String,
}

#[derive(Deserialize)]
struct PartParams {
    key: String,
    upload: String,
    part: String,
    size: String,
    expires: String,
    signature: String,
}

#[derive(Deserialize)]
struct GetParams {
    key: String,
    #[serde(rename = "type", default)]
    content_type: String,
    #[serde(default)]
    filename: String,
    expires: String,
    signature: String,
}

/// A refusal with a plain-text reason.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, why.into()).into_response()
}

/// Checks a URL's signature and expiry.
fn check_url(store: &LocalBlobs, fields: &[&str], expires: &str, signature: &str) -> Result<(), Response> {
    if !store.signer.verify(fields, signature) {
        return Err(refuse(StatusCode::FORBIDDEN, "the URL's signature does not match"));
    }
    let expires: u64 = expires.parse().map_err(|_| refuse(StatusCode::BAD_REQUEST, "expires is not a number"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now > expires {
        return Err(refuse(StatusCode::FORBIDDEN, "the URL has expired"));
    }
    Ok(())
}

async fn put_object(State(store): State<Arc<LocalBlobs>>, Query(p): Query<PutParams>, req: Request) -> Response {
    if let Err(r) = check_url(&store, &["put", &p.key, &p.size, &p.expires], &p.expires, &p.signature) {
        return r;
    }
    let Ok(max) = p.size.parse::<u64>() else {
        return refuse(StatusCode::BAD_REQUEST, "size is not a number");
    };
    match receive(&store, req.into_body().into_data_stream(), max).await {
        Ok((tmp, md5)) => match store.install(&tmp, &p.key, &md5).await {
            Ok(()) => stored(&md5),
            Err(e) => failed(e),
        },
        Err(r) => r,
    }
}

async fn put_part(State(store): State<Arc<LocalBlobs>>, Query(p): Query<PartParams>, req: Request) -> Response {
    let fields = ["part", p.key.as_str(), &p.upload, &p.part, &p.size, &p.expires];
    if let Err(r) = check_url(&store, &fields, &p.expires, &p.signature) {
        return r;
    }
    let (Ok(max), Ok(part)) = (p.size.parse::<u64>(), p.part.parse::<u32>()) else {
        return refuse(StatusCode::BAD_REQUEST, "size and part must be numbers");
    };
    let dir = match store.upload_dir(&p.upload) {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    if tokio::fs::read_to_string(dir.join("key")).await.ok().as_deref() != Some(p.key.as_str()) {
        return refuse(StatusCode::NOT_FOUND, format!("upload {} is finished, aborted or unknown", p.upload));
    }
    match receive(&store, req.into_body().into_data_stream(), max).await {
        Ok((tmp, md5)) => match tokio::fs::rename(&tmp, dir.join(part.to_string())).await {
            Ok(()) => stored(&md5),
            Err(e) => failed(e.into()),
        },
        Err(r) => r,
    }
}

/// Longest value of a form field other than the file.
const MAX_FORM_FIELD: usize = 4096;
/// Most form fields before the file.
const MAX_FORM_FIELDS: usize = 32;

/// A form upload: the signed fields, then the file, streamed to disk as a PUT is.
async fn post_form(State(store): State<Arc<LocalBlobs>>, mut form: Multipart) -> Response {
    let mut values = std::collections::HashMap::new();
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        refuse(StatusCode::BAD_REQUEST, format!("reading the form: {}", e.body_text()))
    };
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return refuse(StatusCode::BAD_REQUEST, "the form has no `file` field"),
            Err(e) => return bad_form(e),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            if values.len() >= MAX_FORM_FIELDS {
                return refuse(StatusCode::BAD_REQUEST, format!("more than {MAX_FORM_FIELDS} form fields"));
            }
            let mut value = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) if value.len() + chunk.len() <= MAX_FORM_FIELD => value.extend_from_slice(&chunk),
                    Ok(Some(_)) => {
                        return refuse(StatusCode::BAD_REQUEST, format!("form field {name:?} is too long"));
                    }
                    Ok(None) => break,
                    Err(e) => return bad_form(e),
                }
            }
            values.insert(name, String::from_utf8_lossy(&value).into_owned());
            continue;
        }
        let value = |f: &str| values.get(f).map(String::as_str).unwrap_or_default();
        let mut signed = vec!["form"];
        signed.extend(FORM_FIELDS.iter().map(|f| value(f)));
        if let Err(r) = check_url(&store, &signed, value("expires"), value("signature")) {
            return r;
        }
        let Ok(max) = value("size").parse::<u64>() else {
            return refuse(StatusCode::BAD_REQUEST, "size is not a number");
        };
        let key = value("key").to_owned();
        let stream = futures::stream::unfold(field, |mut f| async move {
            match f.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), f)),
                Ok(None) => None,
                Err(e) => Some((Err(e.body_text()), f)),
            }
        });
        return match receive(&store, std::pin::pin!(stream), max).await {
            Ok((tmp, md5)) => match store.install(&tmp, &key, &md5).await {
                Ok(()) => stored(&md5),
                Err(e) => failed(e),
            },
            Err(r) => r,
        };
    }
}

async fn get_object(State(store): State<Arc<LocalBlobs>>, Query(p): Query<GetParams>, req: Request) -> Response {
    let fields = ["get", p.key.as_str(), &p.content_type, &p.filename, &p.expires];
    if let Err(r) = check_url(&store, &fields, &p.expires, &p.signature) {
        return r;
    }
    let path = match store.data(&p.key) {
        Ok(path) => path,
        Err(e) => return failed(e),
    };
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return refuse(StatusCode::NOT_FOUND, "no such object");
    }
    let etag = tokio::fs::read_to_string(store.etag_path(&p.key)).await.unwrap_or_default();
    // ServeFile answers ranges (video seeking), HEAD and conditional requests.
    let Ok(served) = tower::ServiceExt::oneshot(tower_http::services::ServeFile::new(&path), req).await;
    let mut resp = served.map(Body::new);
    let headers = resp.headers_mut();
    let content_type = if p.content_type.is_empty() { "application/octet-stream" } else { &p.content_type };
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // Uploaded content is served from the API's origin: only pictures, sound and video inline,
    // and nothing may run scripts there.
    let disposition = if crate::is_media(content_type) { "inline" } else { "attachment" };
    let encoded: String = utf8_percent_encode(&p.filename, NON_ALPHANUMERIC).collect();
    let value = if p.filename.is_empty() {
        disposition.to_owned()
    } else {
        format!("{disposition}; filename*=UTF-8''{encoded}")
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    if !etag.is_empty()
        && let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\""))
    {
        headers.insert(header::ETAG, v);
    }
    // Content is stored under its hash and never changes; the URL itself expires.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// Streams a request body into a temporary file: the file and the content's md5, or the
/// refusal (413 past `max` bytes). Nothing is left behind on failure.
async fn receive<S, E>(store: &LocalBlobs, mut stream: S, max: u64) -> Result<(PathBuf, String), Response>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let tmp = store.tmp();
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| failed(e.into()))?;
        let mut h = md5::Md5::new();
        let mut len = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
            len += chunk.len() as u64;
            if len > max {
                return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("more than the {max} bytes this URL takes")));
            }
            h.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| failed(e.into()))?;
        }
        file.sync_all().await.map_err(|e| failed(e.into()))?;
        Ok(hex::encode(h.finalize()))
    }
    .await;
    match result {
        Ok(md5) => Ok((tmp, md5)),
        Err(r) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(r)
        }
    }
}

fn stored(md5: &str) -> Response {
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{md5}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    // Browsers (the SDK's web build) may read the etag of a cross-origin upload only if told.
    resp.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag"));
    resp
}

fn failed(e: BlobError) -> Response {
    match e {
        BlobError::NotFound(what) => refuse(StatusCode::NOT_FOUND, format!("not found: {what}")),
        BlobError::Invalid(why) => refuse(StatusCode::BAD_REQUEST, why),
        BlobError::Backend(why) => {
            tracing::error!(error = %why, "The embedded object store failed.");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "the object store failed")
        }
    }
}

#[cfg(test)]
mod tests;
