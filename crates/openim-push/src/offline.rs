//! Offline pushes: the consumer of the offline-push topic, which asks OpenIM's
//! `beforeOfflinePush` webhook and hands each push to `push.offline_webhook`, and the records
//! the live push leaves there.

use std::time::Duration;

use futures::StreamExt as _;
use openim_proto::constants::content;
use openim_proto::pb::sdkws::{MsgData, OfflinePushInfo};
use openim_storage::topic;
use tokio_util::sync::CancellationToken;

use crate::Pusher;

/// Offline-push webhook calls in flight at once.
const WEBHOOK_CONCURRENCY: usize = 32;
/// The longest one batch of offline-push webhook calls may take.
const WEBHOOK_BATCH_DEADLINE: Duration = Duration::from_secs(60);

/// What OpenIM's `beforeOfflinePush` may answer besides the common fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct OfflinePushAnswer {
    /// Replaces who is pushed, when not empty.
    #[serde(rename = "userIDList")]
    user_id_list: Vec<String>,
    /// Replaces the whole push text, when given.
    #[serde(rename = "offlinePushInfo")]
    offline_push_info: Option<OfflinePushInfo>,
}

/// `beforeOfflinePush`'s command.
const BEFORE_OFFLINE_PUSH: &str = "callbackBeforeOfflinePushCommand";
/// The fields of `offlinePushInfo`, which the hook's request carries at its top level.
const PUSH_INFO_FIELDS: [&str; 6] = ["title", "desc", "ex", "iOSPushSound", "iOSBadgeCount", "signalInfo"];
impl Pusher {
    /// Consumes the offline-push topic: each record is one webhook call, retried a few times.
    pub(crate) async fn run_offline(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let bus = self.stores.bus.clone();
        let batch_size = self.cfg.batch_size;
        openim_common::bus::consume(
            &*bus,
            topic::TO_OFFLINE_PUSH,
            "offline_push",
            batch_size,
            shutdown,
            |batch| async move {
                // Side by side, and within a deadline: a slow or dead webhook must not hold the
                // consumer past its poll interval (it would leave its group and the batch would
                // come back again and again).
                let calls: Vec<_> = batch.iter().map(|record| self.offline(record)).collect();
                let calls = futures::stream::iter(calls).buffer_unordered(WEBHOOK_CONCURRENCY).collect::<Vec<()>>();
                if tokio::time::timeout(WEBHOOK_BATCH_DEADLINE, calls).await.is_err() {
                    metrics::counter!("openim_push_offline_webhook_total", "result" => "deadline").increment(1);
                    tracing::error!(
                        records = batch.len(),
                        "Offline-push webhook calls of a batch ran past {WEBHOOK_BATCH_DEADLINE:?}; \
                         the rest are dropped (the messages are stored)."
                    );
                }
                true
            },
        )
        .await;
        Ok(())
    }

    /// One offline push: `beforeOfflinePush` first, then the bridge.
    async fn offline(&self, record: &openim_storage::BusMessage) {
        let Ok(mut push) = serde_json::from_slice::<serde_json::Value>(&record.payload) else {
            tracing::warn!(key = %record.key, "An offline-push record is not JSON; dropped.");
            return;
        };
        if !self.before_offline_push(&mut push).await {
            return;
        }
        if !self.cfg.offline_webhook.is_empty() {
            self.call_webhook(&record.key, push.to_string()).await;
        }
    }

    /// Calls `beforeOfflinePush` (when on and the content type is one it is for) and applies
    /// its answer to `push`; false when the push is not to happen (refused, or the webhook failed
    /// and `failed_continue` is off).
    async fn before_offline_push(&self, push: &mut serde_json::Value) -> bool {
        let hook = &self.hooks.config().before_offline_push;
        let content_type = push["contentType"].as_i64().and_then(|t| i32::try_from(t).ok()).unwrap_or(0);
        if !self.hooks.on(hook.enable)
            || !openim_common::webhook::types_pass(&hook.allowed_types, &hook.denied_types, content_type)
        {
            return true;
        }
        let platform_id = push["senderPlatformID"].as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        let operation_id = format!("push_{}", push["clientMsgID"].as_str().unwrap_or_default());
        let mut req = serde_json::json!({
            "callbackCommand": BEFORE_OFFLINE_PUSH,
            "operationID": operation_id,
            "platformID": platform_id,
            "platform": openim_proto::constants::platform::name(platform_id).unwrap_or_default(),
            "userIDList": push["userIDList"],
            "clientMsgID": push["clientMsgID"],
            "sendID": push["sendID"],
            "groupID": push["groupID"],
            "contentType": content_type,
            "sessionType": push["sessionType"],
            "atUserIDList": push["atUserIDList"],
            "content": push_content(content_type, push["content"].as_str().unwrap_or_default()),
        });
        if let Some(info) = push.get("offlinePushInfo").filter(|i| i.is_object()) {
            for field in PUSH_INFO_FIELDS {
                req[field] = info[field].clone();
            }
        }
        let answer = self
            .hooks
            .before::<_, OfflinePushAnswer>("beforeOfflinePush", hook, BEFORE_OFFLINE_PUSH, &req, &operation_id)
            .await;
        match answer {
            Err(e) => {
                metrics::counter!("openim_push_offline_refused_total").increment(1);
                tracing::debug!(error = %e, %operation_id, "beforeOfflinePush stopped an offline push.");
                false
            }
            Ok(None) => true,
            Ok(Some(answer)) => {
                if !answer.user_id_list.is_empty() {
                    push["userIDList"] = answer.user_id_list.into();
                }
                if let Some(info) = answer.offline_push_info {
                    push["offlinePushInfo"] = serde_json::to_value(info).unwrap_or_default();
                }
                true
            }
        }
    }

    async fn call_webhook(&self, key: &str, body: String) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=4 {
            let sent = self
                .http
                .post(&self.cfg.offline_webhook)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status);
            match sent {
                Ok(_) => {
                    metrics::counter!("openim_push_offline_webhook_total", "result" => "ok").increment(1);
                    return;
                }
                Err(e) if attempt < 4 => {
                    tracing::warn!(error = %e, attempt, "Offline-push webhook failed; retrying in {delay:?}.");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err(e) => {
                    metrics::counter!("openim_push_offline_webhook_total", "result" => "failed").increment(1);
                    tracing::error!(error = %e, %key, webhook = %self.cfg.offline_webhook,
                        "Offline-push webhook failed 4 times; giving up on this notification (the message is stored).");
                }
            }
        }
    }
}

/// The text a push hook is given: a notification's `detail`, else the content as it is.
fn push_content(content_type: i32, content: &str) -> String {
    if (content::NOTIFICATION_BEGIN..=content::NOTIFICATION_END).contains(&content_type) {
        return serde_json::from_str::<serde_json::Value>(content)
            .ok()
            .and_then(|c| c.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .unwrap_or_default();
    }
    content.to_owned()
}

/// The offline-push record, and the bridge's body: OpenIM's `callbackOfflinePushCommand`
/// fields, the sender's platform and the message's `offlinePushInfo` (which
/// `beforeOfflinePush` may have replaced).
pub(crate) fn offline_record(msg: &MsgData, user_ids: Vec<String>) -> openim_storage::BusMessage {
    let mut body = serde_json::json!({
        "callbackCommand": "callbackOfflinePushCommand",
        "userIDList": user_ids,
        "sendID": msg.send_id,
        "groupID": msg.group_id,
        "clientMsgID": msg.client_msg_id,
        "serverMsgID": msg.server_msg_id,
        "seq": msg.seq,
        "sessionType": msg.session_type,
        "contentType": msg.content_type,
        "senderNickname": msg.sender_nickname,
        "content": String::from_utf8_lossy(&msg.content),
        "atUserIDList": msg.at_user_id_list,
        "senderPlatformID": msg.sender_platform_id,
    });
    if let Some(info) = &msg.offline_push_info {
        body["offlinePushInfo"] = serde_json::to_value(info).unwrap_or_default();
    }
    let key = if msg.group_id.is_empty() { &msg.recv_id } else { &msg.group_id };
    openim_storage::BusMessage { key: key.clone(), payload: body.to_string().into_bytes().into() }
}
