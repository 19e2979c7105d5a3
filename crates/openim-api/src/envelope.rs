//! The response envelope, authentication and the generic forwarding handler.

use std::future::Future;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use openim_common::rpc;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::auth::ParseTokenReq;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Api;

/// `{errCode, errMsg, errDlt, data}`; `data` is left out when there is none, as OpenIM does.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Envelope {
    #[serde(rename = "errCode")]
    pub err_code: i32,
    #[serde(rename = "errMsg")]
    pub err_msg: String,
    #[serde(rename = "errDlt")]
    pub err_dlt: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub data: Option<serde_json::Value>,
}

impl Envelope {
    pub fn ok(data: Option<serde_json::Value>) -> Response {
        Json(Envelope { err_code: 0, err_msg: String::new(), err_dlt: String::new(), data }).into_response()
    }

    pub fn err(e: &ImError) -> Response {
        Json(Envelope { err_code: e.code.0, err_msg: e.msg.clone(), err_dlt: e.detail.clone(), data: None })
            .into_response()
    }

    /// The answer to a handler's result: its data, or its error.
    pub fn from_result(result: Result<serde_json::Value, ImError>) -> Response {
        match result {
            Ok(data) => Self::ok(Some(data)),
            Err(e) => Self::err(&e),
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (the token endpoints themselves).
    Public,
    /// Any valid token.
    User,
    /// A valid administrator token.
    Admin,
}

/// The caller, from the headers.
pub struct Caller {
    pub user_id: String,
    pub operation_id: String,
}

impl Api {
    pub async fn authenticate(&self, headers: &HeaderMap, access: Access) -> Result<Caller, ImError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let operation_id = header("operationID");
        if operation_id.is_empty() {
            return Err(ImError::args("header operationID is required"));
        }
        if access == Access::Public {
            return Ok(Caller { user_id: String::new(), operation_id });
        }
        let token = header("token");
        if token.is_empty() {
            return Err(ImError::new(ErrCode::TOKEN_NOT_EXIST, "header token is required"));
        }
        let parsed = self
            .clients
            .auth
            .clone()
            .parse_token(rpc::request(ParseTokenReq { token }, "", &operation_id))
            .await
            .map_err(ImError::from)?
            .into_inner();
        if access == Access::Admin && !self.share.is_admin(&parsed.user_id) {
            return Err(ImError::no_permission(format!("{} is not an administrator", parsed.user_id)));
        }
        Ok(Caller { user_id: parsed.user_id, operation_id })
    }
}

/// Parses a JSON body into a request message; an empty or malformed body is an `ArgsError`
/// naming what is wrong.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ImError> {
    if body.is_empty() {
        return Err(ImError::args("request body is empty (expected JSON)"));
    }
    serde_json::from_slice(body).map_err(|e| ImError::args(format!("request body: {e}")))
}

/// Authenticates, decodes the body, calls `f` with the clients and a request carrying the
/// caller, and wraps the answer in the envelope.
pub async fn forward<Req, Resp, F, Fut>(api: &Api, headers: &HeaderMap, body: &Bytes, access: Access, f: F) -> Response
where
    Req: DeserializeOwned,
    Resp: Serialize + Default,
    F: FnOnce(openim_common::rpc::Clients, tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let caller = match api.authenticate(headers, access).await {
        Ok(c) => c,
        Err(e) => return Envelope::err(&e),
    };
    let req: Req = match parse_json(body) {
        Ok(r) => r,
        Err(e) => return Envelope::err(&e),
    };
    match f(api.clients.clone(), rpc::request(req, &caller.user_id, &caller.operation_id)).await {
        Ok(resp) => {
            let resp = resp.into_inner();
            // A message with no fields answers without `data`, as OpenIM does.
            let data =
                if is_fieldless::<Resp>() { None } else { Some(serde_json::to_value(&resp).unwrap_or_default()) };
            Envelope::ok(data)
        }
        Err(status) => {
            let e = ImError::from(status);
            tracing::debug!(operation_id = %caller.operation_id, error = %e, "Request failed.");
            Envelope::err(&e)
        }
    }
}

/// Whether a message type has no fields at all (its JSON is `{}`).
fn is_fieldless<T: Serialize + Default>() -> bool {
    serde_json::to_value(T::default()).ok().and_then(|v| v.as_object().map(|o| o.is_empty())).unwrap_or(false)
}
