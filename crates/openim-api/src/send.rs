//! The administrators' sends, whose bodies are API-level structs rather than RPC messages:
//! `/msg/send_msg` (its `content` is a JSON object), `/msg/batch_send_msg` and
//! `/msg/send_business_notification`.

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt as _;
use openim_common::ImError;
use openim_common::ids::new_id;
use openim_common::rpc;
use openim_proto::constants::{content, msg_from, session};
use openim_proto::pb::msg::{SendMsgReq, SetSendMsgStatusReq};
use openim_proto::pb::sdkws::{MsgData, OfflinePushInfo, RequestPagination};
use openim_proto::pb::user::GetAllUserIdReq;
use serde::Deserialize;

use crate::Api;
use crate::envelope::{Access, Caller, Envelope, parse_json};

/// Content types `/msg/send_msg` accepts (text, picture, voice, video, file, @text, custom, OA).
const SENDABLE: [i32; 8] = [101, 102, 103, 104, 105, 106, 110, 1400];

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiSendMsg {
    #[serde(rename = "sendID")]
    send_id: String,
    #[serde(rename = "recvID")]
    recv_id: String,
    #[serde(rename = "groupID")]
    group_id: String,
    #[serde(rename = "senderNickname")]
    sender_nickname: String,
    #[serde(rename = "senderFaceURL")]
    sender_face_url: String,
    #[serde(rename = "senderPlatformID")]
    sender_platform_id: i32,
    content: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "contentType")]
    content_type: i32,
    #[serde(rename = "sessionType")]
    session_type: i32,
    #[serde(rename = "isOnlineOnly")]
    is_online_only: bool,
    #[serde(rename = "notOfflinePush")]
    not_offline_push: bool,
    #[serde(rename = "sendTime")]
    send_time: i64,
    #[serde(rename = "offlinePushInfo")]
    offline_push_info: Option<OfflinePushInfo>,
    ex: String,
}

fn to_msg_data(r: ApiSendMsg) -> Result<MsgData, ImError> {
    if r.send_id.is_empty() {
        return Err(ImError::args("sendID is required"));
    }
    let Some(body) = r.content else { return Err(ImError::args("content is required")) };
    if !SENDABLE.contains(&r.content_type) {
        return Err(ImError::args(format!("contentType {} is not supported by send_msg", r.content_type)));
    }
    if r.content_type == content::TEXT && !body.get("content").is_some_and(|v| v.is_string()) {
        return Err(ImError::args("a text message needs content.content as a string"));
    }
    match r.session_type {
        session::SINGLE_CHAT if r.recv_id.is_empty() => {
            return Err(ImError::args("recvID is required for single chats"));
        }
        session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT if r.group_id.is_empty() => {
            return Err(ImError::args("groupID is required for group chats"));
        }
        // Notification chats (4) need notification accounts, which do not exist yet.
        session::SINGLE_CHAT | session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT => {}
        other => return Err(ImError::args(format!("sessionType {other} is not supported"))),
    }
    // Keys come out sorted, as Go's json.Marshal of a map writes them.
    let content = serde_json::to_vec(&body).unwrap_or_default();
    let mut options = std::collections::HashMap::new();
    if r.is_online_only {
        for k in ["history", "persistent", "senderSync", "conversationUpdate"] {
            options.insert(k.to_owned(), false);
        }
    }
    if r.not_offline_push {
        options.insert("offlinePush".to_owned(), false);
    }
    Ok(MsgData {
        send_id: r.send_id,
        recv_id: r.recv_id,
        group_id: r.group_id,
        client_msg_id: new_id(),
        sender_platform_id: r.sender_platform_id,
        sender_nickname: r.sender_nickname,
        sender_face_url: r.sender_face_url,
        session_type: r.session_type,
        msg_from: msg_from::SYSTEM,
        content_type: r.content_type,
        content,
        send_time: r.send_time,
        options,
        offline_push_info: r.offline_push_info,
        ex: r.ex,
        ..Default::default()
    })
}

pub async fn send_msg(api: &Api, headers: &HeaderMap, body: &Bytes) -> Response {
    let result = async {
        let caller = api.authenticate(headers, Access::Admin).await?;
        let msg = to_msg_data(parse_json(body)?)?;
        let req = rpc::request(SendMsgReq { msg_data: Some(msg) }, &caller.user_id, &caller.operation_id);
        let sent = api.clients.send_msg(req).await.map_err(ImError::from);
        // Kept by operationID for /msg/check_msg_is_send_success.
        record_status(api, &caller, if sent.is_ok() { SENT } else { FAILED }).await;
        let resp = sent?;
        Ok::<_, ImError>(serde_json::json!({
            "serverMsgID": resp.server_msg_id,
            "clientMsgID": resp.client_msg_id,
            "sendTime": resp.send_time,
        }))
    }
    .await;
    Envelope::from_result(result)
}

/// OpenIM's send outcomes (`MsgSendSuccessed`, `MsgSendFailed`).
const SENT: i32 = 2;
const FAILED: i32 = 3;

async fn record_status(api: &Api, caller: &Caller, status: i32) {
    let req = rpc::request(SetSendMsgStatusReq { status }, &caller.user_id, &caller.operation_id);
    if let Err(e) = api.clients.msg.clone().set_send_msg_status(req).await {
        tracing::warn!(error = %e, operation_id = %caller.operation_id, "Could not record a send's outcome.");
    }
}

/// `/msg/send_business_notification`: an online-only notification (2001) from one user to
/// another, which the SDKs hand to the app's custom-business listener as `{"key", "data"}`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct BusinessNotification {
    key: String,
    data: String,
    #[serde(rename = "sendUserID")]
    send_user_id: String,
    #[serde(rename = "recvUserID")]
    recv_user_id: String,
}

/// Bounds on a business notification (OpenIM sets none; the gateway's frame size bounds it there).
const MAX_BUSINESS_KEY: usize = 256;
const MAX_BUSINESS_DATA: usize = 64 * 1024;

pub async fn send_business_notification(api: &Api, headers: &HeaderMap, body: &Bytes) -> Response {
    let result = async {
        let caller = api.authenticate(headers, Access::Admin).await?;
        let r: BusinessNotification = parse_json(body)?;
        if r.send_user_id.is_empty() || r.recv_user_id.is_empty() {
            return Err(ImError::args("sendUserID and recvUserID are required"));
        }
        if r.key.len() > MAX_BUSINESS_KEY || r.data.len() > MAX_BUSINESS_DATA {
            return Err(ImError::args(format!(
                "key and data may be at most {MAX_BUSINESS_KEY} and {MAX_BUSINESS_DATA} bytes"
            )));
        }
        let detail = serde_json::json!({"key": r.key, "data": r.data}).to_string();
        let content = serde_json::to_vec(&serde_json::json!({ "detail": detail })).unwrap_or_default();
        let msg = MsgData {
            send_id: r.send_user_id,
            recv_id: r.recv_user_id,
            client_msg_id: new_id(),
            session_type: session::SINGLE_CHAT,
            msg_from: msg_from::SYSTEM,
            content_type: BUSINESS_NOTIFICATION,
            content,
            // As OpenIM sends it: a notification, pushed live to both users, never stored.
            options: [
                ("isNotNotification", false),
                ("isSendMsg", false),
                ("history", false),
                ("persistent", false),
                ("offlinePush", false),
                ("unreadCount", false),
                ("conversationUpdate", false),
                ("senderSync", true),
                ("notPrivate", false),
                ("senderConversationUpdate", false),
                ("reactionFromCache", false),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            ..Default::default()
        };
        let req = rpc::request(SendMsgReq { msg_data: Some(msg) }, &caller.user_id, &caller.operation_id);
        let resp = api.clients.send_msg(req).await.map_err(ImError::from)?;
        Ok(serde_json::json!({
            "serverMsgID": resp.server_msg_id,
            "clientMsgID": resp.client_msg_id,
            "sendTime": resp.send_time,
            "modify": null,
        }))
    }
    .await;
    Envelope::from_result(result)
}

/// OpenIM's `BusinessNotification` content type.
const BUSINESS_NOTIFICATION: i32 = 2001;

/// `/msg/batch_send_msg`: one message to many users (or to every user), each its own send.
#[derive(Deserialize, Default)]
#[serde(default)]
struct BatchSendMsg {
    #[serde(flatten)]
    msg: ApiSendMsg,
    #[serde(rename = "isSendAll")]
    is_send_all: bool,
    #[serde(rename = "recvIDs")]
    recv_ids: Option<Vec<String>>,
}

/// Most receivers one batch names (with `isSendAll`, every user instead).
const MAX_BATCH_RECEIVERS: usize = 10_000;
/// Sends of one batch in flight at once.
const BATCH_CONCURRENCY: usize = 16;
/// Users read per page with `isSendAll`.
const ALL_USERS_PAGE: i32 = 500;

pub async fn batch_send_msg(api: &Api, headers: &HeaderMap, body: &Bytes) -> Response {
    let result = async {
        let caller = api.authenticate(headers, Access::Admin).await?;
        let r: BatchSendMsg = parse_json(body)?;
        let Some(recv_ids) = r.recv_ids else { return Err(ImError::args("recvIDs is required")) };
        if recv_ids.len() > MAX_BATCH_RECEIVERS {
            return Err(ImError::args(format!(
                "recvIDs has {} entries; at most {MAX_BATCH_RECEIVERS} are allowed",
                recv_ids.len()
            )));
        }
        let receivers = if r.is_send_all { all_users(api, &caller).await? } else { recv_ids };
        // Checked once with a stand-in receiver; each send sets its own. One clientMsgID for
        // the whole batch, as in OpenIM.
        let template = to_msg_data(ApiSendMsg { recv_id: "-".into(), ..r.msg })?;
        let sends = receivers.into_iter().map(|recv_id| {
            let msg = MsgData { recv_id: recv_id.clone(), ..template.clone() };
            let req = rpc::request(SendMsgReq { msg_data: Some(msg) }, &caller.user_id, &caller.operation_id);
            async move { (recv_id, api.clients.send_msg(req).await) }
        });
        let outcomes: Vec<_> = futures::stream::iter(sends).buffered(BATCH_CONCURRENCY).collect().await;
        let mut results = Vec::new();
        let mut failed = Vec::new();
        for (recv_id, outcome) in outcomes {
            match outcome {
                Ok(resp) => {
                    results.push(serde_json::json!({
                        "serverMsgID": resp.server_msg_id,
                        "clientMsgID": resp.client_msg_id,
                        "sendTime": resp.send_time,
                        "recvID": recv_id,
                    }));
                }
                Err(e) => {
                    tracing::debug!(%recv_id, error = %e, "A batch send to one receiver failed.");
                    failed.push(recv_id);
                }
            }
        }
        Ok(serde_json::json!({ "results": results, "failedUserIDs": failed }))
    }
    .await;
    Envelope::from_result(result)
}

/// Every registered user, a page at a time.
async fn all_users(api: &Api, caller: &Caller) -> Result<Vec<String>, ImError> {
    let mut all = Vec::new();
    for page in 1.. {
        let pagination = Some(RequestPagination { page_number: page, show_number: ALL_USERS_PAGE });
        let req = rpc::request(GetAllUserIdReq { pagination }, &caller.user_id, &caller.operation_id);
        let ids = api.clients.user.clone().get_all_user_id(req).await.map_err(ImError::from)?.into_inner().user_i_ds;
        let last = ids.len() < ALL_USERS_PAGE as usize;
        all.extend(ids);
        if last {
            break;
        }
    }
    Ok(all)
}
