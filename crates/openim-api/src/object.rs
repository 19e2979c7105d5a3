//! `/object/*`: forwarded to `openim-rpc-third` with the address the client reached us at, from
//! which it builds object URLs (`urlPrefix`) and, for the embedded store, upload and download
//! URLs; and `GET /object/<name>`, which redirects to a download URL.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use openim_common::{ErrCode, ImError, rpc};
use openim_proto::pb::third::{self, AccessUrlReq};

use crate::Api;
use crate::envelope::{Access, forward};

/// The address clients reach the API at, ending in `/`: the configured external URL, else the
/// request's `X-Request-Api` header, else `http://<Host>/` (OpenIM's rule for `urlPrefix`).
pub(crate) fn api_base(api: &Api, headers: &HeaderMap) -> String {
    let with_slash = |s: &str| if s.ends_with('/') { s.to_owned() } else { format!("{s}/") };
    if !api.external_url.is_empty() {
        return with_slash(&api.external_url);
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let requested = header("X-Request-Api");
    if (requested.starts_with("http://") || requested.starts_with("https://")) && requested.len() <= 512 {
        return with_slash(requested);
    }
    let host = header(header::HOST.as_str());
    let valid_host = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    format!("http://{}/", if valid_host { host } else { "localhost" })
}

macro_rules! object_call {
    ($api:expr, $headers:expr, $body:expr, $method:ident) => {{
        let base = api_base($api, $headers);
        forward($api, $headers, $body, Access::User, |c, mut r| async move {
            rpc::set_api_base(&mut r, &base);
            c.third.clone().$method(r).await
        })
        .await
    }};
    ($api:expr, $headers:expr, $body:expr, $method:ident, $req:ty) => {{
        let base = api_base($api, $headers);
        forward($api, $headers, $body, Access::User, |c, mut r: tonic::Request<$req>| async move {
            rpc::set_api_base(&mut r, &base);
            r.get_mut().url_prefix = format!("{base}object/");
            c.third.clone().$method(r).await
        })
        .await
    }};
}

pub(crate) async fn part_limit(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, part_limit)
}

pub(crate) async fn part_size(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, part_size)
}

pub(crate) async fn initiate(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, initiate_multipart_upload, third::InitiateMultipartUploadReq)
}

pub(crate) async fn auth_sign(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, auth_sign)
}

pub(crate) async fn complete(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, complete_multipart_upload, third::CompleteMultipartUploadReq)
}

pub(crate) async fn access_url(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, access_url)
}

pub(crate) async fn initiate_form(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, initiate_form_data)
}

pub(crate) async fn complete_form(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    object_call!(&api, &headers, &body, complete_form_data, third::CompleteFormDataReq)
}

/// Most query parameters passed on to `AccessURL` (width, height, format, type, operationID).
const MAX_QUERY: usize = 8;

/// `GET /object/<name>`: 302 to a download URL. No token is needed, as in OpenIM (the names are
/// in messages, and apps load them as plain image and video sources); one that is sent and valid
/// names the caller, who may then also fetch their own private objects.
pub(crate) async fn redirect(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let name = name.strip_prefix('/').unwrap_or(&name).to_owned();
    if name.is_empty() {
        return (StatusCode::BAD_REQUEST, "name is empty").into_response();
    }
    if query.len() > MAX_QUERY {
        return (StatusCode::BAD_REQUEST, format!("at most {MAX_QUERY} query parameters")).into_response();
    }
    let operation_id = query.remove("operationID").unwrap_or_else(|| openim_common::secrets::random_hex(8));
    let mut op = String::new();
    if headers.contains_key("token") {
        let mut with_id = headers.clone();
        if let Ok(v) = operation_id.parse() {
            with_id.insert("operationID", v);
        }
        match api.authenticate(&with_id, Access::User).await {
            Ok(caller) => op = caller.user_id,
            Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
        }
    }
    let base = api_base(&api, &headers);
    let mut req = rpc::request(AccessUrlReq { name, query }, &op, &operation_id);
    rpc::set_api_base(&mut req, &base);
    match api.clients.third.clone().access_url(req).await {
        Ok(resp) => (StatusCode::FOUND, [(header::LOCATION, resp.into_inner().url)]).into_response(),
        Err(status) => {
            let e = ImError::from(status);
            let code = match e.code {
                ErrCode::ARGS => StatusCode::BAD_REQUEST,
                ErrCode::RECORD_NOT_FOUND => StatusCode::NOT_FOUND,
                ErrCode::NO_PERMISSION => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (code, e.to_string()).into_response()
        }
    }
}

/// Methods other than GET on `/object/<name>`: no such route (the POST paths under `/object/`
/// that are not served answer 404, as every unserved route does).
pub(crate) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}
