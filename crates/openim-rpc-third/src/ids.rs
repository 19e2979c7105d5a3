//! Our upload IDs: what an upload is (kind, key, size, owner, expiry, …) as base64 JSON with an
//! HMAC, so that a client can neither forge one, change what it names, nor use another user's.
//! OpenIM's are the plain base64 JSON.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openim_common::ImError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Status;

use crate::ThirdService;
use crate::objects::now_secs;

/// An ID's content.
pub(crate) trait Sealed: Serialize + DeserializeOwned {
    /// Signed before the body, so that one kind of ID is never taken for another (empty for
    /// multipart upload IDs, signed so before form IDs existed).
    const LABEL: &'static str;
    /// The request field the ID travels in, for errors.
    const FIELD: &'static str;
    /// Seconds past `expires` it is still taken.
    const GRACE: u64;
    fn user(&self) -> &str;
    /// Unix seconds.
    fn expires(&self) -> u64;
}

impl ThirdService {
    fn id_fields<'a>(label: &'a str, body: &'a str) -> Vec<&'a str> {
        if label.is_empty() { vec![body] } else { vec![label, body] }
    }

    pub(crate) fn seal<T: Sealed>(&self, value: &T) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default());
        let sig = self.ids.sign(&Self::id_fields(T::LABEL, &body));
        format!("{body}.{sig}")
    }

    /// What an ID names, if it is ours, unexpired and the caller's.
    pub(crate) fn unseal<T: Sealed>(&self, op: &str, id: &str) -> Result<T, Status> {
        let bad = || Status::from(ImError::args(format!("{} is not a valid upload ID", T::FIELD)));
        let (body, sig) = id.split_once('.').ok_or_else(bad)?;
        if !self.ids.verify(&Self::id_fields(T::LABEL, body), sig) {
            return Err(bad());
        }
        let value: T =
            URL_SAFE_NO_PAD.decode(body).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or_else(bad)?;
        if value.user() != op {
            return Err(ImError::no_permission("the upload is another user's").into());
        }
        if value.expires().saturating_add(T::GRACE) < now_secs() {
            return Err(ImError::args("the upload has expired; start it again").into());
        }
        Ok(value)
    }
}
