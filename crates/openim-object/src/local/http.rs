//! The HTTP side of the embedded store: the routes that serve its presigned URLs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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

use super::{FORM_FIELDS, LocalBlobs};
use crate::BlobError;

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
