//! `/msg/send_msg`: its body is an API-level struct whose `content` is a JSON object, not an RPC
//! message.

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use openim_common::ImError;
use openim_common::ids::new_id;
use openim_common::rpc;
use openim_proto::constants::{content, msg_from, session};
use openim_proto::pb::msg::SendMsgReq;
use openim_proto::pb::sdkws::{MsgData, OfflinePushInfo};
use serde::Deserialize;

use crate::Api;
use crate::envelope::{Access, Envelope, parse_json};

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
        let resp = api.clients.msg.clone().send_msg(req).await.map_err(ImError::from)?.into_inner();
        Ok::<_, ImError>(serde_json::json!({
            "serverMsgID": resp.server_msg_id,
            "clientMsgID": resp.client_msg_id,
            "sendTime": resp.send_time,
        }))
    }
    .await;
    match result {
        Ok(data) => Envelope::ok(Some(data)),
        Err(e) => Envelope::err(&e),
    }
}
