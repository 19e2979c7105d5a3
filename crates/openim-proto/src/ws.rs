//! The WebSocket envelope of OpenIM's gateway: `GeneralWsReq` from clients and `GeneralWsResp` to
//! them, in gob (Go and Python SDKs) or JSON (JS SDK, `sdkType=js`), optionally gzip-compressed
//! (`compression=gzip`). The protobuf payload inside `data` is left to the caller.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::gob::{self, GobValue};

/// How the envelope itself is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Gob,
    Json,
}

/// Client → server request (`GeneralWsReq`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsRequest {
    pub req_identifier: i32,
    pub token: String,
    pub send_id: String,
    pub operation_id: String,
    pub msg_incr: String,
    pub data: Bytes,
}

/// Server → client response or push (`GeneralWsResp`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsResponse {
    pub req_identifier: i32,
    pub msg_incr: String,
    pub operation_id: String,
    pub err_code: i32,
    pub err_msg: String,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    #[error(transparent)]
    Gob(#[from] gob::GobError),
    #[error("json envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("envelope field {field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("decompressed frame exceeds {0} bytes")]
    TooLarge(usize),
}

/// Compresses with gzip at a fast level (the payloads are small and latency matters).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 32), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Decompresses gzip, refusing output larger than `limit` bytes (a zip bomb is bad input too).
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(data.len() * 3);
    let dec = flate2::read::GzDecoder::new(data);
    dec.take(limit as u64 + 1).read_to_end(&mut out).map_err(WireError::Gzip)?;
    if out.len() > limit {
        return Err(WireError::TooLarge(limit));
    }
    Ok(out)
}

impl WsRequest {
    /// Decodes a request frame (already decompressed).
    pub fn decode(encoding: Encoding, frame: &[u8]) -> Result<Self, WireError> {
        match encoding {
            Encoding::Gob => Self::decode_gob(frame),
            Encoding::Json => Self::decode_json(frame),
        }
    }

    /// Encodes the request (used by our own client, tests and the benchmark).
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Gob => gob::encode_struct(
                "GeneralWsReq",
                &[
                    ("ReqIdentifier", GobValue::Int(i64::from(self.req_identifier))),
                    ("Token", GobValue::String(self.token.clone())),
                    ("SendID", GobValue::String(self.send_id.clone())),
                    ("OperationID", GobValue::String(self.operation_id.clone())),
                    ("MsgIncr", GobValue::String(self.msg_incr.clone())),
                    ("Data", GobValue::Bytes(self.data.to_vec())),
                ],
            ),
            Encoding::Json => serde_json::to_vec(&JsonRequest {
                req_identifier: self.req_identifier,
                token: self.token.clone(),
                send_id: self.send_id.clone(),
                operation_id: self.operation_id.clone(),
                msg_incr: JsonText(self.msg_incr.clone()),
                data: STANDARD.encode(&self.data),
            })
            .unwrap_or_default(),
        }
    }

    fn decode_gob(frame: &[u8]) -> Result<Self, WireError> {
        let (_, mut fields) = gob::decode_struct(frame)?;
        Ok(Self {
            req_identifier: take_i32(&mut fields, "ReqIdentifier")?,
            token: take_string(&mut fields, "Token")?,
            send_id: take_string(&mut fields, "SendID")?,
            operation_id: take_string(&mut fields, "OperationID")?,
            msg_incr: take_string(&mut fields, "MsgIncr")?,
            data: take_bytes(&mut fields, "Data")?,
        })
    }

    fn decode_json(frame: &[u8]) -> Result<Self, WireError> {
        let req: JsonRequest = serde_json::from_slice(frame)?;
        let data = STANDARD
            .decode(req.data.as_bytes())
            .map_err(|e| WireError::Field { field: "data", reason: format!("invalid base64: {e}") })?;
        Ok(Self {
            req_identifier: req.req_identifier,
            token: req.token,
            send_id: req.send_id,
            operation_id: req.operation_id,
            msg_incr: req.msg_incr.0,
            data: data.into(),
        })
    }
}

impl WsResponse {
    /// Encodes a response in OpenIM v3's gob field order, or as the JS SDK's JSON.
    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Gob => gob::encode_struct(
                "Resp",
                &[
                    ("ReqIdentifier", GobValue::Int(i64::from(self.req_identifier))),
                    ("MsgIncr", GobValue::String(self.msg_incr.clone())),
                    ("OperationID", GobValue::String(self.operation_id.clone())),
                    ("ErrCode", GobValue::Int(i64::from(self.err_code))),
                    ("ErrMsg", GobValue::String(self.err_msg.clone())),
                    ("Data", GobValue::Bytes(self.data.to_vec())),
                ],
            ),
            Encoding::Json => serde_json::to_vec(&JsonResponse {
                req_identifier: self.req_identifier,
                msg_incr: self.msg_incr.clone(),
                operation_id: self.operation_id.clone(),
                err_code: self.err_code,
                err_msg: self.err_msg.clone(),
                data: STANDARD.encode(&self.data),
            })
            .unwrap_or_default(),
        }
    }

    /// Decodes a response frame (already decompressed); used by our client.
    pub fn decode(encoding: Encoding, frame: &[u8]) -> Result<Self, WireError> {
        match encoding {
            Encoding::Gob => {
                let (_, mut fields) = gob::decode_struct(frame)?;
                Ok(Self {
                    req_identifier: take_i32(&mut fields, "ReqIdentifier")?,
                    msg_incr: take_string(&mut fields, "MsgIncr")?,
                    operation_id: take_string(&mut fields, "OperationID")?,
                    err_code: take_i32(&mut fields, "ErrCode")?,
                    err_msg: take_string(&mut fields, "ErrMsg")?,
                    data: take_bytes(&mut fields, "Data")?,
                })
            }
            Encoding::Json => {
                let resp: JsonResponse = serde_json::from_slice(frame)?;
                let data = STANDARD
                    .decode(resp.data.as_bytes())
                    .map_err(|e| WireError::Field { field: "data", reason: format!("invalid base64: {e}") })?;
                Ok(Self {
                    req_identifier: resp.req_identifier,
                    msg_incr: resp.msg_incr,
                    operation_id: resp.operation_id,
                    err_code: resp.err_code,
                    err_msg: resp.err_msg,
                    data: data.into(),
                })
            }
        }
    }
}

fn take_string(fields: &mut HashMap<String, GobValue>, name: &'static str) -> Result<String, WireError> {
    match fields.remove(name) {
        None => Ok(String::new()),
        Some(GobValue::String(s)) => Ok(s),
        Some(other) => Err(WireError::Field { field: name, reason: format!("expected string, got {other:?}") }),
    }
}

fn take_bytes(fields: &mut HashMap<String, GobValue>, name: &'static str) -> Result<Bytes, WireError> {
    match fields.remove(name) {
        None => Ok(Bytes::new()),
        Some(GobValue::Bytes(b)) => Ok(b.into()),
        Some(other) => Err(WireError::Field { field: name, reason: format!("expected bytes, got {other:?}") }),
    }
}

fn take_i32(fields: &mut HashMap<String, GobValue>, name: &'static str) -> Result<i32, WireError> {
    let v = match fields.remove(name) {
        None => 0,
        Some(GobValue::Int(i)) => i,
        Some(GobValue::Uint(u)) => i64::try_from(u).unwrap_or(i64::MAX),
        Some(other) => {
            return Err(WireError::Field { field: name, reason: format!("expected integer, got {other:?}") });
        }
    };
    i32::try_from(v).map_err(|_| WireError::Field { field: name, reason: format!("{v} out of range") })
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct JsonRequest {
    #[serde(rename = "reqIdentifier")]
    req_identifier: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    token: String,
    #[serde(rename = "sendID")]
    send_id: String,
    #[serde(rename = "operationID")]
    operation_id: String,
    #[serde(rename = "msgIncr")]
    msg_incr: JsonText,
    #[serde(deserialize_with = "crate::json::null_as_default")]
    data: String,
}

/// A string field that some clients send as a JSON number (the JS SDK's `msgIncr`).
#[derive(Default)]
struct JsonText(String);

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(JsonText(s)),
            serde_json::Value::Number(n) => Ok(JsonText(n.to_string())),
            serde_json::Value::Null => Ok(JsonText(String::new())),
            other => Err(serde::de::Error::custom(format!("msgIncr: expected string, got {other}"))),
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct JsonResponse {
    #[serde(rename = "reqIdentifier")]
    req_identifier: i32,
    #[serde(rename = "msgIncr")]
    msg_incr: String,
    #[serde(rename = "operationID")]
    operation_id: String,
    #[serde(rename = "errCode")]
    err_code: i32,
    #[serde(rename = "errMsg")]
    err_msg: String,
    #[serde(deserialize_with = "crate::json::null_as_default")]
    data: String,
}

#[cfg(test)]
mod tests;
