//! Form uploads (`/object/initiate_form_data`, `/object/complete_form_data`) and the clean-up
//! of old objects (`DeleteOutdatedData`, which the crontask calls), as OpenIM's S3 controller
//! does them.
//!
//! A form upload is one browser `POST` of at most the declared size straight to the store, at
//! `openim/direct/<yyyymmdd>/<userID>/<random><ext>`. Its ID says what it is (name, size, type,
//! group, key, owner, expiry) and is ours, signed as upload IDs are: OpenIM's is plain base64
//! JSON, which would let a client name any key and claim another's upload.

use std::time::Duration;

use openim_common::{ErrCode, ImError};
use openim_proto::pb::third;
use openim_storage::ObjectRecord;
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::ThirdService;
use crate::objects::{blob_err, key_values, named, now_millis, store_err};

/// Where form uploads land.
const DIRECT_PATH: &str = "openim/direct";
/// How long a user's form upload URL lasts (OpenIM's ten minutes).
const USER_EXPIRY: Duration = Duration::from_secs(600);
/// The longest an administrator may ask for.
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
/// Most objects one `DeleteOutdatedData` call removes.
pub(crate) const MAX_DELETE: usize = 1000;
/// Longest `group` of an object.
const MAX_GROUP: usize = 64;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct FormId {
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "s")]
    size: i64,
    #[serde(rename = "c")]
    content_type: String,
    #[serde(rename = "g")]
    group: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "u")]
    user: String,
    /// Unix seconds.
    #[serde(rename = "x")]
    expires: u64,
}

impl crate::ids::Sealed for FormId {
    const LABEL: &'static str = "form";
    const FIELD: &'static str = "id";
    /// The store refuses the post after `expires`; completing is allowed an hour longer.
    const GRACE: u64 = 3600;
    fn user(&self) -> &str {
        &self.user
    }
    fn expires(&self) -> u64 {
        self.expires
    }
}

/// The extension of `name` (`.png`), kept when it is short and plain.
fn extension(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or_default();
    match last.rfind('.') {
        Some(i) if i > 0 && last.len() - i <= 16 && last[i + 1..].bytes().all(|b| b.is_ascii_alphanumeric()) => {
            &last[i..]
        }
        _ => "",
    }
}

impl ThirdService {
    pub(crate) fn initiate_form(
        &self,
        op: &str,
        base: &str,
        req: &third::InitiateFormDataReq,
    ) -> Result<third::InitiateFormDataResp, Status> {
        self.check_name(op, &req.name)?;
        let size = self.check_size(req.size)?;
        self.check_content_type(&req.content_type)?;
        if req.group.chars().count() > MAX_GROUP {
            return Err(ImError::args(format!("group is longer than {MAX_GROUP} characters")).into());
        }
        let admin = self.share.is_admin(op);
        let expire = match u64::try_from(req.millisecond) {
            Ok(ms) if admin && ms > 0 => Duration::from_millis(ms).min(MAX_EXPIRY),
            _ => USER_EXPIRY,
        };
        let key = if admin && req.absolute {
            // Our own names are not an administrator's to overwrite.
            if req.name.starts_with("openim/") {
                return Err(ImError::args("an absolute name must not start with `openim/`").into());
            }
            req.name.clone()
        } else {
            let day = jiff::Timestamp::now().strftime("%Y%m%d").to_string();
            format!("{DIRECT_PATH}/{day}/{op}/{}{}", uuid::Uuid::new_v4().simple(), extension(&req.name))
        };
        let form = self.blobs.presign_form(base, &key, size, &req.content_type, expire).map_err(blob_err)?;
        let id = FormId {
            name: req.name.clone(),
            size,
            content_type: req.content_type.clone(),
            group: req.group.clone(),
            key,
            user: op.to_owned(),
            expires: u64::try_from(form.expires / 1000).unwrap_or(0),
        };
        Ok(third::InitiateFormDataResp {
            id: self.seal(&id),
            url: form.url,
            file: form.file,
            header: key_values(form.headers),
            form_data: form.fields.into_iter().collect(),
            expires: form.expires,
            success_codes: form.success_codes,
        })
    }

    pub(crate) async fn complete_form(
        &self,
        op: &str,
        req: &third::CompleteFormDataReq,
    ) -> Result<third::CompleteFormDataResp, Status> {
        if req.id.is_empty() {
            return Err(ImError::args("id is empty").into());
        }
        let form = self.unseal::<FormId>(op, &req.id)?;
        self.check_name(op, &form.name)?;
        let info = self
            .blobs
            .stat(&form.key)
            .await
            .map_err(blob_err)?
            .ok_or_else(|| Status::from(ImError::args("the file was not uploaded")))?;
        if info.size != form.size {
            return Err(ImError::new(
                ErrCode(90007),
                format!("{} bytes were uploaded, not the {} declared", info.size, form.size),
            )
            .into());
        }
        let named = named(op, &form.name, &form.content_type, &form.group);
        let hash = format!("etag_{}", info.etag);
        self.stores
            .objects
            .put_object(&ObjectRecord { hash, object_key: form.key, size: info.size, ..named })
            .await
            .map_err(store_err)?;
        Ok(third::CompleteFormDataResp { url: format!("{}{}", req.url_prefix, form.name) })
    }

    /// Removes the names of the groups given (all when empty) created before `expire_time`
    /// (Unix ms), oldest first, at most `limit`; content no other name points at goes too.
    pub(crate) async fn delete_outdated(
        &self,
        op: &str,
        req: &third::DeleteOutdatedDataReq,
    ) -> Result<third::DeleteOutdatedDataResp, Status> {
        if !self.share.is_admin(op) {
            return Err(ImError::no_permission("only administrators may delete outdated objects").into());
        }
        let limit = usize::try_from(req.limit).unwrap_or(0);
        if limit == 0 || limit > MAX_DELETE {
            return Err(ImError::args(format!("limit must be 1 to {MAX_DELETE}")).into());
        }
        if req.object_group.len() > 100 {
            return Err(ImError::args("at most 100 objectGroup values").into());
        }
        if req.expire_time > now_millis() {
            return Err(ImError::args("expireTime is in the future").into());
        }
        let old =
            self.stores.objects.objects_before(req.expire_time, &req.object_group, limit).await.map_err(store_err)?;
        for object in &old {
            self.stores.objects.delete_object(&object.name).await.map_err(store_err)?;
            if self.stores.objects.key_refs(&object.object_key).await.map_err(store_err)? == 0 {
                self.blobs.delete(&object.object_key).await.map_err(blob_err)?;
            }
        }
        if !old.is_empty() {
            tracing::info!(count = old.len(), before = req.expire_time, "Deleted outdated objects.");
        }
        Ok(third::DeleteOutdatedDataResp { count: i32::try_from(old.len()).unwrap_or(i32::MAX) })
    }
}

#[cfg(test)]
mod tests {
    use super::extension;

    #[test]
    fn extensions_are_kept_only_when_plain() {
        assert_eq!(extension("u1/photo.png"), ".png");
        assert_eq!(extension("u1/archive.tar.gz"), ".gz");
        assert_eq!(extension("u1/.hidden"), "");
        assert_eq!(extension("u1/noext"), "");
        assert_eq!(extension("u1/a.p%2f"), "");
        assert_eq!(extension("u1/a.thisisfartoolongforanextension"), "");
    }
}
