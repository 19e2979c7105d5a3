//! Object storage for pictures, voice, video, files and client logs: the [`Blobs`] trait that
//! `openim-rpc-third` drives, and its backends. Clients never send content through the RPC
//! services: they get presigned URLs and upload to, and download from, the store itself.
//!
//! - [`local::LocalBlobs`]: the embedded store, a directory on this machine. The API serves its
//!   presigned URLs ([`local::router`]), signed with a key of ours, so the upload flow of the
//!   official SDKs works with nothing else installed.
//!
//! - [`s3::S3Blobs`]: any S3-compatible store, through SigV4-presigned URLs on its external
//!   address.
//!
//! Keys are the store's names (`openim/data/hash/<md5>`, `openim/temp/…`); the names clients
//! see (`<userID>/…`) are mapped to keys by `openim-rpc-third`.

pub mod local;
pub mod s3;
mod signing;
pub mod thumbnail;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use signing::UrlSigner;

/// The part sizes a store takes, as OpenIM's `/object/part_limit` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimit {
    pub min_part_size: i64,
    pub max_part_size: i64,
    pub max_num_size: i64,
}

impl PartLimit {
    /// S3's limits (and MinIO's, which OpenIM reports): parts of 5 MiB to 5 GiB, 10,000 of them.
    pub const S3: Self = Self { min_part_size: 5 << 20, max_part_size: 5 << 30, max_num_size: 10_000 };

    /// The part size for an object of `size` bytes, as OpenIM (and the SDK, which checks the
    /// answer against its own) computes it: the minimum while it gives few enough parts, else
    /// the size split into the maximum number of parts.
    pub fn part_size(&self, size: i64) -> Result<i64, BlobError> {
        if size <= 0 {
            return Err(BlobError::Invalid("size must be greater than 0".into()));
        }
        if size > self.max_part_size.saturating_mul(self.max_num_size) {
            return Err(BlobError::Invalid(format!(
                "size {size} is larger than the store takes ({} bytes)",
                self.max_part_size.saturating_mul(self.max_num_size)
            )));
        }
        if size <= self.min_part_size * self.max_num_size {
            return Ok(self.min_part_size);
        }
        Ok((size + self.max_num_size - 1) / self.max_num_size)
    }
}

/// A request a client makes straight to the store: the URL (query included) and headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedRequest {
    pub url: String,
    pub headers: Vec<(String, Vec<String>)>,
}

/// A browser form upload (an HTML `POST` of `multipart/form-data`), as OpenIM's
/// `/object/initiate_form_data` describes it: post `fields` and then the content as field `file`
/// to `url`; a status in `success_codes` means it is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormUpload {
    pub url: String,
    /// The name of the form field that carries the content (it must come last).
    pub file: String,
    pub headers: Vec<(String, Vec<String>)>,
    pub fields: Vec<(String, String)>,
    /// Unix milliseconds.
    pub expires: i64,
    pub success_codes: Vec<i32>,
}

/// The status a store answers a form upload with (S3's `success_action_status`).
pub const FORM_SUCCESS: i32 = 200;

/// What the store says of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: i64,
    /// md5 of the content (hex) for an object written in one piece; S3's `<md5 of the part
    /// md5s>-<parts>` for one completed from parts.
    pub etag: String,
}

/// How a download is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessOptions {
    /// `Content-Type` of the answer.
    pub content_type: String,
    /// Offered as the file's name (`Content-Disposition`), when set.
    pub filename: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("not found: {0}")]
    NotFound(String),
    /// The request cannot be served as asked (a missing part, a wrong size, a bad key).
    #[error("{0}")]
    Invalid(String),
    #[error("object store: {0}")]
    Backend(String),
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            BlobError::NotFound(e.to_string())
        } else {
            BlobError::Backend(e.to_string())
        }
    }
}

pub type BlobResult<T> = Result<T, BlobError>;

/// An object store. `base` is the address clients reach the API at (`http://host:port/`), for
/// stores whose URLs the API itself serves; others ignore it.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// `local`, `s3`, …: recorded with each object.
    fn engine(&self) -> &'static str;
    fn part_limit(&self) -> PartLimit;
    /// A PUT of `size` bytes to `key` (a store that can sign the length takes exactly that; the
    /// embedded one takes at most that).
    fn presign_put(&self, base: &str, key: &str, size: i64, expire: Duration) -> BlobResult<SignedRequest>;
    /// A form upload of at most `size` bytes of `content_type` to `key`.
    fn presign_form(
        &self,
        base: &str,
        key: &str,
        size: i64,
        content_type: &str,
        expire: Duration,
    ) -> BlobResult<FormUpload>;
    /// Starts a multipart upload to `key`; its upload ID.
    async fn create_multipart(&self, key: &str) -> BlobResult<String>;
    /// A PUT of part `part` (from 1) of `size` bytes (as for [`Blobs::presign_put`]).
    fn presign_part(
        &self,
        base: &str,
        key: &str,
        upload_id: &str,
        part: u32,
        size: i64,
        expire: Duration,
    ) -> BlobResult<SignedRequest>;
    /// Joins the parts, whose md5s (hex) are `etags` in part order, into `key`.
    async fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> BlobResult<ObjectInfo>;
    /// The object, or `None` if there is none.
    async fn stat(&self, key: &str) -> BlobResult<Option<ObjectInfo>>;
    async fn copy(&self, src: &str, dst: &str) -> BlobResult<ObjectInfo>;
    /// Deleting what is not there is not an error.
    async fn delete(&self, key: &str) -> BlobResult<()>;
    /// A GET URL valid for `expire`.
    fn presign_get(&self, base: &str, key: &str, expire: Duration, opts: &AccessOptions) -> BlobResult<String>;
    /// Writes a small object (a thumbnail) from the server.
    async fn put(&self, key: &str, data: Bytes, content_type: &str) -> BlobResult<ObjectInfo>;
    /// Reads an object of at most `max` bytes into memory (to make a thumbnail).
    async fn get(&self, key: &str, max: u64) -> BlobResult<Bytes>;
    /// Removes what uploads abandoned more than `age` ago left behind: single-part uploads never
    /// completed (under [`TEMP_PREFIX`]) and, where the store keeps them itself, unfinished
    /// parts. How many were removed.
    async fn sweep(&self, age: Duration) -> BlobResult<u64>;
}

/// Where single-part uploads wait to be checked and completed.
pub const TEMP_PREFIX: &str = "openim/temp/";

/// Checks a store key: relative, `/`-separated, no empty, `.` or `..` segment, no backslash or
/// control character, at most 1024 bytes.
pub fn check_key(key: &str) -> BlobResult<()> {
    let bad = |why: &str| Err(BlobError::Invalid(format!("object key {key:?}: {why}")));
    if key.is_empty() || key.len() > 1024 {
        return bad("must be 1 to 1024 bytes long");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("must not hold control characters or backslashes");
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return bad("must be a relative path without empty, `.` or `..` segments");
    }
    Ok(())
}

/// Whether a content type is a picture, sound or video, which browsers may show inline; any
/// other download is served as an attachment.
pub fn is_media(content_type: &str) -> bool {
    let t = content_type.trim_start().to_ascii_lowercase();
    t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/")
}

/// md5 of `data` as lower-case hex.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_are_the_sdks() {
        let l = PartLimit::S3;
        assert_eq!(l.part_size(1).unwrap(), 5 << 20);
        assert_eq!(l.part_size(12 << 20).unwrap(), 5 << 20, "a 12 MiB file goes up in three 5 MiB parts");
        assert_eq!(l.part_size((5 << 20) * 10_000).unwrap(), 5 << 20);
        assert_eq!(l.part_size((5 << 20) * 10_000 + 1).unwrap(), (5 << 20) + 1, "rounded up");
        assert!(l.part_size(0).is_err());
        assert!(l.part_size((5 << 30) * 10_000 + 1).is_err());
    }

    #[test]
    fn keys_stay_inside_the_store() {
        for good in ["openim/data/hash/0cc175b9c0f1b6a831c399e269772661", "a/b.c", "a..b/c"] {
            check_key(good).unwrap();
        }
        for bad in ["", "/abs", "a//b", "a/../b", "..", "./a", "a/.", "a\\b", "a\0b", "a/"] {
            assert!(check_key(bad).is_err(), "{bad:?} is refused");
        }
    }
}
