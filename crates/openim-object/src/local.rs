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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use md5::Digest as _;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

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

mod http;

pub use http::router;

#[cfg(test)]
mod tests;
