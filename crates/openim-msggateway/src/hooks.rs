//! OpenIM's gateway callbacks: `afterUserOnline` when a user connects on a platform,
//! `afterUserOffline` when their last connection on it closes, and `afterUserKickOff` when a
//! connection is closed by a login elsewhere or a forced logout (a callback OpenIM declares but
//! never sends). Bodies as v3.8's; `seq` is the time in Unix ms, `connID` is empty, as there.

use openim_common::webhook::{AfterConfig, Webhooks};
use openim_proto::constants::platform;
use serde_json::json;

/// What happened to a user's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    Online { background: bool },
    Offline,
    KickedOff,
}

/// Queues the callback of `event` (after-callbacks never hold the connection up).
pub(crate) fn tell(hooks: &Webhooks, user_id: &str, platform_id: i32, event: Presence) {
    let cfg = hooks.config();
    let (name, hook, command): (&'static str, &AfterConfig, &str) = match event {
        Presence::Online { .. } => ("afterUserOnline", &cfg.after_user_online, "callbackAfterUserOnlineCommand"),
        Presence::Offline => ("afterUserOffline", &cfg.after_user_offline, "callbackAfterUserOfflineCommand"),
        Presence::KickedOff => ("afterUserKickOff", &cfg.after_user_kick_off, "callbackAfterUserKickOffCommand"),
    };
    if !hooks.on(hook.enable) || !(hook.attention_ids.is_empty() || hook.attention_ids.iter().any(|a| a == user_id)) {
        return;
    }
    let operation_id = openim_common::secrets::random_hex(8);
    let mut body = json!({
        "operationID": operation_id,
        "platformID": platform_id,
        "platform": platform::name(platform_id).unwrap_or_default(),
        "userID": user_id,
        "seq": openim_common::token::now_millis(),
    });
    match event {
        Presence::Online { background } => {
            body["isAppBackground"] = background.into();
            body["connID"] = "".into();
        }
        Presence::Offline => body["connID"] = "".into(),
        Presence::KickedOff => {}
    }
    hooks.tell(name, hook, command, body, &operation_id);
}
