//! The message callbacks of `webhooks.yml`: before a message is accepted (refuse), before it is
//! stored (change a text's content and a few fields) and after it is accepted (told), with OpenIM
//! v3.8's bodies (`CommonCallbackReq` plus `recvID` or `groupID`).

use std::collections::HashMap;

use openim_common::ImError;
use openim_common::webhook::{self, Webhooks};
use openim_proto::constants::session;
use openim_proto::pb::sdkws::{MsgData, OfflinePushInfo};
use serde::{Deserialize, Serialize};

/// `Typing` messages never reach a callback (OpenIM's rule).
const TYPING: i32 = 113;
const TEXT: i32 = 101;
/// Notification content types, which beforeSendSingleMsg skips.
const NOTIFICATIONS: std::ops::RangeInclusive<i32> = 1000..=5000;

#[derive(Serialize)]
struct CommonReq<'a> {
    #[serde(rename = "sendID")]
    send_id: &'a str,
    #[serde(rename = "callbackCommand")]
    callback_command: &'a str,
    #[serde(rename = "serverMsgID")]
    server_msg_id: &'a str,
    #[serde(rename = "clientMsgID")]
    client_msg_id: &'a str,
    #[serde(rename = "operationID")]
    operation_id: &'a str,
    #[serde(rename = "senderPlatformID")]
    sender_platform_id: i32,
    #[serde(rename = "senderNickname")]
    sender_nickname: &'a str,
    #[serde(rename = "sessionType")]
    session_type: i32,
    #[serde(rename = "msgFrom")]
    msg_from: i32,
    #[serde(rename = "contentType")]
    content_type: i32,
    status: i32,
    #[serde(rename = "sendTime")]
    send_time: i64,
    #[serde(rename = "createTime")]
    create_time: i64,
    content: String,
    seq: u32,
    #[serde(rename = "atUserList")]
    at_user_list: Option<&'a [String]>,
    #[serde(rename = "faceURL")]
    face_url: &'a str,
    ex: &'a str,
}

#[derive(Serialize)]
struct SingleReq<'a> {
    #[serde(flatten)]
    common: CommonReq<'a>,
    #[serde(rename = "recvID")]
    recv_id: &'a str,
}

#[derive(Serialize)]
struct GroupReq<'a> {
    #[serde(flatten)]
    common: CommonReq<'a>,
    #[serde(rename = "groupID")]
    group_id: &'a str,
}

/// An answer that changes nothing (beyond the common fields, which `Webhooks` reads).
#[derive(Deserialize, Default)]
struct NoChange {}

/// What `beforeMsgModify` may change. Routing fields (receiver, group, session type, IDs) are
/// not taken: the message was checked against them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ModifyResp {
    content: Option<String>,
    #[serde(rename = "contentType")]
    content_type: Option<i32>,
    #[serde(rename = "senderNickname")]
    sender_nickname: Option<String>,
    #[serde(rename = "senderFaceURL")]
    sender_face_url: Option<String>,
    status: Option<i32>,
    options: Option<HashMap<String, bool>>,
    #[serde(rename = "offlinePushInfo")]
    offline_push_info: Option<PushInfo>,
    #[serde(rename = "atUserIDList")]
    at_user_id_list: Option<Vec<String>>,
    #[serde(rename = "attachedInfo")]
    attached_info: Option<String>,
    ex: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PushInfo {
    title: String,
    desc: String,
    ex: String,
    #[serde(rename = "iOSPushSound")]
    ios_push_sound: String,
    #[serde(rename = "iOSBadgeCount")]
    ios_badge_count: bool,
}

fn common<'a>(m: &'a MsgData, command: &'a str, operation_id: &'a str) -> CommonReq<'a> {
    // Notification content is JSON in v3.8, which OpenIM's hooks show as "".
    let content = if NOTIFICATIONS.contains(&m.content_type) {
        String::new()
    } else {
        String::from_utf8_lossy(&m.content).into_owned()
    };
    CommonReq {
        send_id: &m.send_id,
        callback_command: command,
        server_msg_id: &m.server_msg_id,
        client_msg_id: &m.client_msg_id,
        operation_id,
        sender_platform_id: m.sender_platform_id,
        sender_nickname: &m.sender_nickname,
        session_type: m.session_type,
        msg_from: m.msg_from,
        content_type: m.content_type,
        status: m.status,
        send_time: m.send_time,
        create_time: m.create_time,
        content,
        seq: 0,
        at_user_list: (!m.at_user_id_list.is_empty()).then_some(m.at_user_id_list.as_slice()),
        face_url: &m.sender_face_url,
        ex: &m.ex,
    }
}

/// The before-callbacks of a message about to be accepted: refusal by beforeSendSingleMsg or
/// beforeSendGroupMsg, then the changes of beforeMsgModify.
pub async fn before_send(hooks: &Webhooks, m: &mut MsgData, admin: bool, operation_id: &str) -> Result<(), ImError> {
    let cfg = hooks.config();
    if m.content_type == TYPING {
        return Ok(());
    }
    match m.session_type {
        session::SINGLE_CHAT => {
            let hook = &cfg.before_send_single_msg;
            if hooks.on(hook.enable)
                && !admin
                && !NOTIFICATIONS.contains(&m.content_type)
                && webhook::types_pass(&hook.allowed_types, &hook.denied_types, m.content_type)
            {
                let command = "callbackBeforeSendSingleMsgCommand";
                let req = SingleReq { common: common(m, command, operation_id), recv_id: &m.recv_id };
                hooks.before::<_, NoChange>("beforeSendSingleMsg", hook, command, &req, operation_id).await?;
            }
        }
        session::READ_GROUP_CHAT => {
            let hook = &cfg.before_send_group_msg;
            if hooks.on(hook.enable) && webhook::types_pass(&hook.allowed_types, &hook.denied_types, m.content_type) {
                let command = "callbackBeforeSendGroupMsgCommand";
                let req = GroupReq { common: common(m, command, operation_id), group_id: &m.group_id };
                hooks.before::<_, NoChange>("beforeSendGroupMsg", hook, command, &req, operation_id).await?;
            }
        }
        _ => return Ok(()),
    }
    let hook = &cfg.before_msg_modify;
    if hooks.on(hook.enable)
        && m.content_type == TEXT
        && webhook::types_pass(&hook.allowed_types, &hook.denied_types, m.content_type)
    {
        let command = "callbackBeforeMsgModifyCommand";
        let req = common(m, command, operation_id);
        if let Some(change) =
            hooks.before::<_, ModifyResp>("beforeMsgModify", hook, command, &req, operation_id).await?
        {
            apply(m, change);
        }
    }
    Ok(())
}

fn apply(m: &mut MsgData, c: ModifyResp) {
    if let Some(v) = c.content {
        m.content = v.into_bytes();
    }
    if let Some(v) = c.content_type {
        m.content_type = v;
    }
    if let Some(v) = c.sender_nickname {
        m.sender_nickname = v;
    }
    if let Some(v) = c.sender_face_url {
        m.sender_face_url = v;
    }
    if let Some(v) = c.status {
        m.status = v;
    }
    if let Some(v) = c.options {
        m.options = v;
    }
    if let Some(p) = c.offline_push_info {
        m.offline_push_info = Some(OfflinePushInfo {
            title: p.title,
            desc: p.desc,
            ex: p.ex,
            i_os_push_sound: p.ios_push_sound,
            i_os_badge_count: p.ios_badge_count,
            ..Default::default()
        });
    }
    if let Some(v) = c.at_user_id_list {
        m.at_user_id_list = v;
    }
    if let Some(v) = c.attached_info {
        m.attached_info = v;
    }
    if let Some(v) = c.ex {
        m.ex = v;
    }
}

/// The after-callbacks of an accepted message.
pub fn after_send(hooks: &Webhooks, m: &MsgData, operation_id: &str) {
    if m.content_type == TYPING {
        return;
    }
    let cfg = hooks.config();
    let passes = |hook: &webhook::AfterConfig| {
        hooks.on(hook.enable)
            && (hook.attention_ids.is_empty() || hook.attention_ids.iter().any(|u| *u == m.send_id || *u == m.recv_id))
            && webhook::types_pass(&hook.allowed_types, &hook.denied_types, m.content_type)
    };
    match m.session_type {
        session::SINGLE_CHAT if passes(&cfg.after_send_single_msg) => {
            let command = "callbackAfterSendSingleMsgCommand";
            let req = SingleReq { common: common(m, command, operation_id), recv_id: &m.recv_id };
            hooks.after("afterSendSingleMsg", &cfg.after_send_single_msg, command, &req, operation_id);
        }
        session::READ_GROUP_CHAT if passes(&cfg.after_send_group_msg) => {
            let command = "callbackAfterSendGroupMsgCommand";
            let req = GroupReq { common: common(m, command, operation_id), group_id: &m.group_id };
            hooks.after("afterSendGroupMsg", &cfg.after_send_group_msg, command, &req, operation_id);
        }
        _ => {}
    }
}
