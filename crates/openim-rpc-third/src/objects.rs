//! Uploads and downloads, as OpenIM's S3 controller does them.
//!
//! An upload of `size` bytes is cut in parts of the store's part size (the SDK computes the same
//! and checks). Its `hash` is md5 of the parts' md5s (hex) joined by `,`, and content is kept at
//! `openim/data/hash/<hash>`, once: when that exists, initiation answers with the URL at once.
//! - One part: a presigned PUT to a temporary key, then on completion the server checks size
//!   and md5 and copies it to the hash key.
//! - More: a multipart upload at the hash key, the parts signed in batches (`auth_sign`), then
//!   joined on completion; the store checks each part's md5.
//!
//! The upload ID is ours: what the upload is (type, store upload ID, key, size, hash, owner,
//! expiry) as base64 JSON with an HMAC, so a client can neither forge one nor use another's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::Digest as _;
use openim_common::{ErrCode, ImError};
use openim_object::{AccessOptions, BlobError, SignedRequest, thumbnail};
use openim_proto::pb::third;
use openim_storage::ObjectRecord;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::ThirdService;

/// Where content is kept, by hash.
const HASH_PATH: &str = "openim/data/hash";
/// Where single-part uploads land before they are checked.
const TEMP_PATH: &str = "openim/temp";
/// Where thumbnails are kept, by the key of their picture.
const THUMBNAIL_PATH: &str = "openim/thumbnail";
/// Longest object name (the `objects` table's key).
const MAX_NAME: usize = 768;
/// Most parts signed in one answer.
const MAX_SIGN_PARTS: usize = 1000;
/// Most query options of an access URL.
const MAX_QUERY: usize = 8;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct UploadId {
    /// 1 multipart, 2 presigned single PUT (OpenIM's numbers).
    #[serde(rename = "t")]
    kind: u8,
    /// The store's multipart upload ID.
    #[serde(rename = "i", default)]
    store_id: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "s")]
    size: i64,
    #[serde(rename = "p")]
    part_size: i64,
    #[serde(rename = "h")]
    hash: String,
    #[serde(rename = "u")]
    user: String,
    /// Unix seconds.
    #[serde(rename = "x")]
    expires: u64,
}

impl crate::ids::Sealed for UploadId {
    const LABEL: &'static str = "";
    const FIELD: &'static str = "uploadID";
    const GRACE: u64 = 0;
    fn user(&self) -> &str {
        &self.user
    }
    fn expires(&self) -> u64 {
        self.expires
    }
}

const MULTIPART: u8 = 1;
const PRESIGNED: u8 = 2;

impl UploadId {
    fn parts(&self) -> i64 {
        let part = self.part_size.max(1);
        (self.size + part - 1) / part
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

pub(crate) fn blob_err(e: BlobError) -> Status {
    match e {
        BlobError::NotFound(what) => ImError::new(ErrCode::RECORD_NOT_FOUND, what).into(),
        BlobError::Invalid(why) => ImError::args(why).into(),
        BlobError::Backend(why) => {
            tracing::error!(error = %why, "The object store failed.");
            ImError::internal("the object store failed").into()
        }
    }
}

pub(crate) fn store_err(e: openim_storage::StoreError) -> Status {
    openim_common::error::store_status(e)
}

pub(crate) fn key_values(headers: Vec<(String, Vec<String>)>) -> Vec<third::KeyValues> {
    headers.into_iter().map(|(key, values)| third::KeyValues { key, values }).collect()
}

fn sign_part(number: u32, req: SignedRequest) -> third::SignPart {
    third::SignPart {
        part_number: i32::try_from(number).unwrap_or(i32::MAX),
        url: req.url,
        query: Vec::new(),
        header: key_values(req.headers),
    }
}

/// `width`, `height` (0: the picture's own, at most the largest side decoded) and `format` of an
/// image access.
fn image_options(query: &std::collections::HashMap<String, String>) -> Result<(u32, u32, thumbnail::Format), Status> {
    let side = |name: &str| -> Result<u32, Status> {
        let Some(v) = query.get(name).filter(|v| !v.is_empty()) else { return Ok(0) };
        match v.parse::<u32>() {
            Ok(n) if n <= thumbnail::MAX_SIDE => Ok(n),
            _ => Err(ImError::args(format!("{name} must be 0 to {}", thumbnail::MAX_SIDE)).into()),
        }
    };
    let format = thumbnail::Format::parse(query.get("format").map(String::as_str).unwrap_or_default());
    Ok((side("width")?, side("height")?, format))
}

/// The record of a name, before its content is known.
pub(crate) fn named(op: &str, name: &str, content_type: &str, group: &str) -> ObjectRecord {
    ObjectRecord {
        name: name.to_owned(),
        user_id: op.to_owned(),
        content_type: content_type.to_owned(),
        object_group: group.to_owned(),
        create_time: now_millis(),
        ..ObjectRecord::default()
    }
}

/// The md5 (hex) of the part md5s joined by `,`: the hash an upload of those parts has.
fn parts_hash(parts: &[String]) -> String {
    hex::encode(md5::Md5::digest(parts.join(",").as_bytes()))
}

impl ThirdService {
    fn expire(&self) -> Duration {
        Duration::from_secs(self.cfg.url_expire_secs)
    }

    pub(crate) fn check_size(&self, size: i64) -> Result<i64, Status> {
        if size <= 0 {
            return Err(ImError::args("size must be greater than 0").into());
        }
        if size > self.cfg.max_size {
            return Err(
                ImError::args(format!("size {size} is larger than the {} bytes allowed", self.cfg.max_size)).into()
            );
        }
        Ok(size)
    }

    /// OpenIM's rules for a name (non-empty, no leading `/`, valid length), plus ours: no empty,
    /// `.` or `..` segment and no control character; and a user's names start with `<userID>/`.
    pub(crate) fn check_name(&self, op: &str, name: &str) -> Result<(), Status> {
        check_name_form(name)?;
        if !self.share.is_admin(op) && !name.starts_with(&format!("{op}/")) {
            return Err(ImError::no_permission(format!("name must start with `{op}/`")).into());
        }
        Ok(())
    }
}

/// OpenIM's rules for a name (non-empty, no leading `/`, valid length), plus ours: no empty, `.`
/// or `..` segment and no control character.
fn check_name_form(name: &str) -> Result<(), Status> {
    if name.trim().is_empty() {
        return Err(ImError::args("name is empty").into());
    }
    if name.starts_with('/') {
        return Err(ImError::args("name cannot start with `/`").into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(ImError::args(format!("name is longer than {MAX_NAME} characters")).into());
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(ImError::args("name must not hold control characters or backslashes").into());
    }
    if name.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(ImError::args("name must not hold empty, `.` or `..` segments").into());
    }
    Ok(())
}

impl ThirdService {
    /// The content type (from the allowed ones) and the cause (OpenIM's group).
    fn check_kind(&self, content_type: &str, cause: &str) -> Result<(), Status> {
        if cause.chars().count() > 64 {
            return Err(ImError::args("cause is longer than 64 characters").into());
        }
        self.check_content_type(content_type)
    }

    pub(crate) fn check_content_type(&self, content_type: &str) -> Result<(), Status> {
        if content_type.len() > 255 {
            return Err(ImError::args("contentType is longer than 255 characters").into());
        }
        let allowed = &self.cfg.content_types;
        if allowed.is_empty() {
            return Ok(());
        }
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let ok = allowed.iter().any(|a| match a.strip_suffix("/*") {
            Some(kind) => essence.split('/').next() == Some(kind),
            None => essence == a.to_ascii_lowercase(),
        });
        if ok { Ok(()) } else { Err(ImError::args(format!("contentType {content_type:?} is not accepted")).into()) }
    }

    fn sign_range(&self, base: &str, upload: &UploadId, numbers: &[u32]) -> Result<Vec<third::SignPart>, Status> {
        let parts = upload.parts();
        numbers
            .iter()
            .map(|&n| {
                if n == 0 || i64::from(n) > parts {
                    return Err(ImError::args(format!("part {n} is not one of the upload's 1..={parts}")).into());
                }
                let size =
                    if i64::from(n) == parts { upload.size - upload.part_size * (parts - 1) } else { upload.part_size };
                let req = self
                    .blobs
                    .presign_part(base, &upload.key, &upload.store_id, n, size, self.expire())
                    .map_err(blob_err)?;
                Ok(sign_part(n, req))
            })
            .collect()
    }

    async fn record(&self, object: ObjectRecord) -> Result<(), Status> {
        self.stores.objects.put_object(&object).await.map_err(store_err)
    }

    pub(crate) async fn initiate(
        &self,
        op: &str,
        base: &str,
        req: third::InitiateMultipartUploadReq,
    ) -> Result<third::InitiateMultipartUploadResp, Status> {
        self.check_name(op, &req.name)?;
        self.check_kind(&req.content_type, &req.cause)?;
        if req.hash.len() != 32 || !req.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ImError::args("hash must be an md5 in hex").into());
        }
        let hash = req.hash.to_ascii_lowercase();
        let size = self.check_size(req.size)?;
        let part_size = self.blobs.part_limit().part_size(size).map_err(blob_err)?;
        let hash_key = format!("{HASH_PATH}/{hash}");
        if let Some(info) = self.blobs.stat(&hash_key).await.map_err(blob_err)? {
            // Already stored: only the name is new.
            let named = named(op, &req.name, &req.content_type, &req.cause);
            self.record(ObjectRecord { hash, object_key: hash_key, size: info.size, ..named }).await?;
            return Ok(third::InitiateMultipartUploadResp {
                url: format!("{}{}", req.url_prefix, req.name),
                upload: None,
            });
        }
        let expires = now_secs() + self.cfg.url_expire_secs;
        let mut upload = UploadId {
            kind: MULTIPART,
            store_id: String::new(),
            key: hash_key,
            size,
            part_size,
            hash,
            user: op.to_owned(),
            expires,
        };
        let parts = if size <= part_size {
            upload.kind = PRESIGNED;
            upload.key = format!("{TEMP_PATH}/{}/{}_{size}.presigned", uuid::Uuid::new_v4().simple(), upload.hash);
            let put = self.blobs.presign_put(base, &upload.key, size, self.expire()).map_err(blob_err)?;
            vec![sign_part(1, put)]
        } else {
            upload.store_id = self.blobs.create_multipart(&upload.key).await.map_err(blob_err)?;
            let count = upload.parts();
            let wanted = if req.max_parts < 0 { count } else { i64::from(req.max_parts).min(count) };
            let numbers: Vec<u32> = (1..=wanted.min(MAX_SIGN_PARTS as i64)).map(|n| n as u32).collect();
            self.sign_range(base, &upload, &numbers)?
        };
        Ok(third::InitiateMultipartUploadResp {
            url: String::new(),
            upload: Some(third::UploadInfo {
                upload_id: self.seal(&upload),
                part_size,
                sign: Some(third::AuthSignParts { url: String::new(), query: Vec::new(), header: Vec::new(), parts }),
                expire_time: i64::try_from(expires).unwrap_or(i64::MAX) * 1000,
            }),
        })
    }

    pub(crate) fn sign_parts(
        &self,
        op: &str,
        base: &str,
        req: &third::AuthSignReq,
    ) -> Result<third::AuthSignResp, Status> {
        let upload = self.unseal::<UploadId>(op, &req.upload_id)?;
        if upload.kind != MULTIPART {
            return Err(ImError::args("a single-part upload has no more parts to sign").into());
        }
        if req.part_numbers.is_empty() || req.part_numbers.len() > MAX_SIGN_PARTS {
            return Err(ImError::args(format!("partNumbers must hold 1 to {MAX_SIGN_PARTS} numbers")).into());
        }
        let numbers: Vec<u32> = req.part_numbers.iter().map(|&n| u32::try_from(n).unwrap_or(0)).collect();
        let parts = self.sign_range(base, &upload, &numbers)?;
        Ok(third::AuthSignResp { url: String::new(), query: Vec::new(), header: Vec::new(), parts })
    }

    pub(crate) async fn complete(
        &self,
        op: &str,
        req: third::CompleteMultipartUploadReq,
    ) -> Result<third::CompleteMultipartUploadResp, Status> {
        self.check_name(op, &req.name)?;
        self.check_kind(&req.content_type, &req.cause)?;
        let upload = self.unseal::<UploadId>(op, &req.upload_id)?;
        let expected = upload.parts();
        if i64::try_from(req.parts.len()).unwrap_or(i64::MAX) != expected {
            return Err(
                ImError::args(format!("the upload has {expected} parts; {} were given", req.parts.len())).into()
            );
        }
        if parts_hash(&req.parts) != upload.hash {
            return Err(ImError::args("the parts' md5s do not make the upload's hash").into());
        }
        let hash_key = format!("{HASH_PATH}/{}", upload.hash);
        let stored = self.blobs.stat(&hash_key).await.map_err(blob_err)?;
        let size = match (stored, upload.kind) {
            // The same content completed meanwhile (another name, or a retry).
            (Some(info), _) => {
                if upload.kind == PRESIGNED {
                    let _ = self.blobs.delete(&upload.key).await;
                }
                info.size
            }
            (None, MULTIPART) => {
                let info =
                    self.blobs.complete_multipart(&hash_key, &upload.store_id, &req.parts).await.map_err(blob_err)?;
                if info.size != upload.size {
                    let _ = self.blobs.delete(&hash_key).await;
                    return Err(ImError::args(format!("{} bytes were uploaded, not {}", info.size, upload.size)).into());
                }
                info.size
            }
            (None, _) => {
                let info = self
                    .blobs
                    .stat(&upload.key)
                    .await
                    .map_err(blob_err)?
                    .ok_or_else(|| Status::from(ImError::args("the part was not uploaded")))?;
                let checked = if info.size != upload.size {
                    Err(ImError::args(format!("{} bytes were uploaded, not {}", info.size, upload.size)))
                } else if parts_hash(std::slice::from_ref(&info.etag)) != upload.hash {
                    Err(ImError::args("the uploaded content's md5 is not the one given"))
                } else {
                    Ok(())
                };
                if let Err(e) = checked {
                    let _ = self.blobs.delete(&upload.key).await;
                    return Err(e.into());
                }
                self.blobs.copy(&upload.key, &hash_key).await.map_err(blob_err)?;
                let _ = self.blobs.delete(&upload.key).await;
                info.size
            }
        };
        let named = named(op, &req.name, &req.content_type, &req.cause);
        self.record(ObjectRecord { hash: upload.hash, object_key: hash_key, size, ..named }).await?;
        Ok(third::CompleteMultipartUploadResp { url: format!("{}{}", req.url_prefix, req.name) })
    }

    /// The key of the thumbnail of `object` (made and stored on first request), or `None` when
    /// the object itself is what to serve (not a picture, or no smaller than the box).
    async fn thumbnail(
        &self,
        object: &ObjectRecord,
        width: u32,
        height: u32,
        format: thumbnail::Format,
    ) -> Result<Option<String>, Status> {
        // Content is immutable under its key: name thumbnails after the key's hash.
        let id = hex::encode(md5::Md5::digest(object.object_key.as_bytes()));
        let key = format!("{THUMBNAIL_PATH}/{id}/w{width}_h{height}.{}", format.extension());
        if self.blobs.stat(&key).await.map_err(blob_err)?.is_some() {
            return Ok(Some(key));
        }
        if u64::try_from(object.size).unwrap_or(u64::MAX) > thumbnail::MAX_SOURCE_BYTES {
            return Ok(None);
        }
        let data = self.blobs.get(&object.object_key, thumbnail::MAX_SOURCE_BYTES).await.map_err(blob_err)?;
        let made = tokio::task::spawn_blocking(move || thumbnail::make(&data, width, height, format))
            .await
            .map_err(|e| Status::from(ImError::internal(format!("thumbnail: {e}"))))?;
        match made {
            thumbnail::Thumbnail::Scaled(bytes) => {
                self.blobs.put(&key, bytes.into(), format.content_type()).await.map_err(blob_err)?;
                Ok(Some(key))
            }
            thumbnail::Thumbnail::Original | thumbnail::Thumbnail::NotAnImage => Ok(None),
        }
    }

    pub(crate) async fn access(
        &self,
        op: &str,
        base: &str,
        req: &third::AccessUrlReq,
    ) -> Result<third::AccessUrlResp, Status> {
        check_name_form(&req.name)?;
        if req.query.len() > MAX_QUERY {
            return Err(ImError::args(format!("at most {MAX_QUERY} query options")).into());
        }
        let image = match req.query.get("type").map(String::as_str) {
            None | Some("") => None,
            Some("image") => Some(image_options(&req.query)?),
            Some(_) => return Err(ImError::args("invalid query type").into()),
        };
        let object =
            self.stores.objects.object(&req.name).await.map_err(store_err)?.ok_or_else(|| {
                Status::from(ImError::new(ErrCode::RECORD_NOT_FOUND, format!("no object {}", req.name)))
            })?;
        if self.cfg.private_groups.contains(&object.object_group) && op != object.user_id && !self.share.is_admin(op) {
            return Err(ImError::no_permission("only its owner may read this object").into());
        }
        let filename = req.name.rsplit('/').next().unwrap_or_default().to_owned();
        let mut opts = AccessOptions { content_type: object.content_type.clone(), filename };
        let mut key = object.object_key.clone();
        if let Some((width, height, format)) = image
            && let Some(thumb) = self.thumbnail(&object, width, height, format).await?
        {
            key = thumb;
            opts.content_type = format.content_type().to_owned();
            opts.filename = String::new();
        }
        let url = self.blobs.presign_get(base, &key, self.expire(), &opts).map_err(blob_err)?;
        let expire_time = now_millis() + i64::try_from(self.cfg.url_expire_secs).unwrap_or(0) * 1000;
        Ok(third::AccessUrlResp { url, expire_time })
    }
}
