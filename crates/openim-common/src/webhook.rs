//! OpenIM's webhooks (`webhooks.yml`): the operator's HTTP server is told of, and may refuse or
//! change, what users do. A call is `POST <url>/<callbackCommand>` with a JSON body carrying
//! `callbackCommand` and an `operationID` header, as OpenIM v3.8 sends it (see
//! `docs/webhooks-openim.md` for every body).
//!
//! - **Before-callbacks** run inline. The answer refuses when `actionCode` is 0 and `nextCode` is
//!   1: the client gets the webhook's `errCode` (500 if none) and `errMsg`. Any other answer lets
//!   the action go on, with the changes it carries. A webhook that cannot be reached, times out or
//!   answers no JSON fails the action (90004, 90007) unless its `failedContinue` is true, when it
//!   goes on unchanged. (OpenIM v3.8 parses `failedContinue` but never reads it.)
//! - **After-callbacks** are queued and sent by a background task, retried with backoff on a
//!   transport error or a 5xx; a full queue drops the call. Nothing waits for them.
//!
//! Every call counts in `openim_webhook_calls_total{callback, outcome}` and its time in
//! `openim_webhook_seconds{callback}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{ErrCode, ImError};

/// OpenIM's code for a webhook that could not be reached (`NetworkError`).
pub const NETWORK_ERROR: ErrCode = ErrCode(90004);
/// OpenIM's code for a webhook answer that is not the expected JSON (`DataError`).
pub const DATA_ERROR: ErrCode = ErrCode(90007);
/// OpenIM's cap on a webhook call, whatever `timeout` says.
const MAX_TIMEOUT: Duration = Duration::from_secs(15);
/// After-callbacks waiting to be sent.
const QUEUE: usize = 1024;

/// A callback that can refuse or change an action.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeforeConfig {
    pub enable: bool,
    /// Seconds (at most 15; 0: 15).
    pub timeout: u64,
    /// On a failure to reach the webhook or read its answer, go on as if it had accepted.
    #[serde(alias = "failedContinue")]
    pub failed_continue: bool,
    /// Content types (`"101"`, or a range `"100-199"`) the callback is for; empty: all.
    #[serde(alias = "allowedTypes")]
    pub allowed_types: Vec<String>,
    /// Content types it is not for.
    #[serde(alias = "deniedTypes")]
    pub denied_types: Vec<String>,
}

/// A callback told of an action after it happened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfterConfig {
    pub enable: bool,
    /// Seconds per try (at most 15; 0: 15).
    pub timeout: u64,
    /// Users (sender or receiver) whose messages the callback is for; empty: everyone's.
    #[serde(alias = "attentionIds")]
    pub attention_ids: Vec<String>,
    #[serde(alias = "allowedTypes")]
    pub allowed_types: Vec<String>,
    #[serde(alias = "deniedTypes")]
    pub denied_types: Vec<String>,
}

macro_rules! webhooks_config {
    ($($(#[$doc:meta])* $field:ident, $alias:literal: $kind:ty;)*) => {
        /// `webhooks.yml`. Keys are ours (`before_send_single_msg`) or OpenIM's
        /// (`beforeSendSingleMsg`), so an OpenIM file can be used as it is.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct WebhooksConfig {
            /// The webhook server: calls go to `<url>/<callbackCommand>`. Empty: none is called.
            pub url: String,
            /// Tries of an after-callback (transport errors and 5xx answers are retried).
            pub after_tries: u32,
            $($(#[$doc])* #[serde(alias = $alias)] pub $field: $kind,)*
        }

        impl Default for WebhooksConfig {
            fn default() -> Self {
                Self { url: String::new(), after_tries: 3, $($field: Default::default(),)* }
            }
        }
    };
}

webhooks_config! {
    before_send_single_msg, "beforeSendSingleMsg": BeforeConfig;
    before_send_group_msg, "beforeSendGroupMsg": BeforeConfig;
    /// Text messages only; the answer may change the content and a few other fields.
    before_msg_modify, "beforeMsgModify": BeforeConfig;
    after_send_single_msg, "afterSendSingleMsg": AfterConfig;
    after_send_group_msg, "afterSendGroupMsg": AfterConfig;
    /// Refuse a friend application.
    before_add_friend, "beforeAddFriend": BeforeConfig;
    after_add_friend, "afterAddFriend": AfterConfig;
    /// Refuse the acceptance of a friend application.
    before_add_friend_agree, "beforeAddFriendAgree": BeforeConfig;
    after_add_friend_agree, "afterAddFriendAgree": AfterConfig;
    /// A message revoked (OpenIM's command for it is `callbackBeforeAfterMsgCommand`).
    after_revoke_msg, "afterRevokeMsg": AfterConfig;
    /// Refuse a group's creation, or change its name, announcement, introduction, face, ex and
    /// settings.
    before_create_group, "beforeCreateGroup": BeforeConfig;
    after_create_group, "afterCreateGroup": AfterConfig;
    /// Refuse users joining a group (created with them, or joining one that needs no approval).
    before_member_join_group, "beforeMemberJoinGroup": BeforeConfig;
    after_join_group, "afterJoinGroup": AfterConfig;
    after_quit_group, "afterQuitGroup": AfterConfig;
    after_kick_group_member, "afterKickGroupMember": AfterConfig;
    after_dismiss_group, "afterDismissGroup": AfterConfig;
    after_transfer_group_owner, "afterTransferGroupOwner": AfterConfig;
    /// Refuse a change of a group's info (`/group/set_group_info`, `set_group_info_ex`).
    before_set_group_info, "beforeSetGroupInfo": BeforeConfig;
    after_set_group_info, "afterSetGroupInfo": AfterConfig;
    /// A profile changed through `/user/update_user_info`.
    after_update_user_info, "afterUpdateUserInfo": AfterConfig;
    /// A profile changed through `/user/update_user_info_ex`.
    after_update_user_info_ex, "afterUpdateUserInfoEx": AfterConfig;
    /// A user connected on a platform.
    after_user_online, "afterUserOnline": AfterConfig;
    /// A user's last connection on a platform closed.
    after_user_offline, "afterUserOffline": AfterConfig;
    /// A connection was closed by a login elsewhere or a forced logout (OpenIM declares this
    /// callback and never sends it).
    after_user_kick_off, "afterUserKickOff": AfterConfig;
    /// Before an offline push: refuse it, or change who gets it and what it says.
    before_offline_push, "beforeOfflinePush": BeforeConfig;
}

/// The fields every answer has.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct CommonResp {
    #[serde(rename = "actionCode", alias = "ActionCode")]
    action_code: i32,
    #[serde(rename = "errCode", alias = "ErrCode")]
    err_code: i32,
    #[serde(rename = "errMsg", alias = "ErrMsg")]
    err_msg: String,
    #[serde(rename = "errDlt", alias = "ErrDlt")]
    err_dlt: String,
    #[serde(rename = "nextCode", alias = "NextCode")]
    next_code: i32,
}

/// Sends the configured callbacks.
#[derive(Clone)]
pub struct Webhooks {
    cfg: Arc<WebhooksConfig>,
    http: reqwest::Client,
    after: Option<mpsc::Sender<AfterCall>>,
}

struct AfterCall {
    callback: &'static str,
    url: String,
    body: Vec<u8>,
    operation_id: String,
    timeout: Duration,
}

fn timeout_of(secs: u64) -> Duration {
    if secs == 0 { MAX_TIMEOUT } else { Duration::from_secs(secs).min(MAX_TIMEOUT) }
}

fn count(callback: &'static str, outcome: &'static str, started: Instant) {
    metrics::counter!("openim_webhook_calls_total", "callback" => callback, "outcome" => outcome).increment(1);
    metrics::histogram!("openim_webhook_seconds", "callback" => callback).record(started.elapsed().as_secs_f64());
}

/// Whether `content_type` is one the type lists let through.
fn type_matches(list: &[String], content_type: i32) -> bool {
    list.iter().any(|entry| {
        let parse = |s: &str| s.parse::<i32>().ok().filter(|n| *n >= 0);
        match entry.split_once('-') {
            Some((lo, hi)) => match (parse(lo), parse(hi)) {
                (Some(lo), Some(hi)) => (lo..=hi).contains(&content_type),
                _ => false,
            },
            None => parse(entry) == Some(content_type),
        }
    })
}

/// OpenIM's message filter: the content type must be allowed (when a list is given) and not
/// denied.
pub fn types_pass(allowed: &[String], denied: &[String], content_type: i32) -> bool {
    (allowed.is_empty() || type_matches(allowed, content_type)) && !type_matches(denied, content_type)
}

impl Webhooks {
    /// The callbacks of `cfg`; after-callbacks are sent by a task on the current runtime.
    pub fn new(cfg: WebhooksConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(MAX_TIMEOUT)
            .build()
            .expect("an HTTP client with rustls builds");
        let cfg = Arc::new(cfg);
        let after = if cfg.url.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(send_after(http.clone(), rx, cfg.after_tries.max(1)));
            Some(tx)
        };
        Self { cfg, http, after }
    }

    /// No callback at all.
    pub fn none() -> Self {
        Self { cfg: Arc::new(WebhooksConfig::default()), http: reqwest::Client::new(), after: None }
    }

    pub fn config(&self) -> &WebhooksConfig {
        &self.cfg
    }

    /// Whether a callback switched on by `enable` will be called (there is a webhook server).
    pub fn on(&self, enable: bool) -> bool {
        enable && !self.cfg.url.is_empty()
    }

    fn url(&self, command: &str) -> String {
        format!("{}/{command}", self.cfg.url)
    }

    /// Calls a before-callback: `Ok(None)` when it is off (or failed and may be passed),
    /// `Ok(Some(answer))` when it let the action go on, `Err` when it refused or failed.
    pub async fn before<Req, Resp>(
        &self,
        callback: &'static str,
        hook: &BeforeConfig,
        command: &str,
        req: &Req,
        operation_id: &str,
    ) -> Result<Option<Resp>, ImError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        if !hook.enable || self.cfg.url.is_empty() {
            return Ok(None);
        }
        let started = Instant::now();
        let url = self.url(command);
        let failed = |code: ErrCode, msg: &str, detail: String| {
            if hook.failed_continue {
                tracing::warn!(callback, %detail, "Webhook failed; going on (failedContinue).");
                count(callback, "failed_continued", started);
                Ok(None)
            } else {
                tracing::warn!(callback, %detail, "Webhook failed; refusing the action.");
                count(callback, "failed", started);
                Err(ImError { code, msg: msg.to_owned(), detail })
            }
        };
        let sent = self
            .http
            .post(&url)
            .timeout(timeout_of(hook.timeout))
            .header("content-type", "application/json; charset=utf-8")
            .header("operationID", operation_id)
            .json(req)
            .send()
            .await;
        let body = match sent {
            Ok(resp) => match resp.bytes().await {
                Ok(b) => b,
                Err(e) => return failed(NETWORK_ERROR, "NetworkError", format!("post url {url}: {e}")),
            },
            Err(e) => return failed(NETWORK_ERROR, "NetworkError", format!("post url {url}: {e}")),
        };
        let parsed = serde_json::from_slice::<CommonResp>(&body)
            .and_then(|common| serde_json::from_slice::<Resp>(&body).map(|full| (common, full)));
        let (common, full) = match parsed {
            Ok(p) => p,
            Err(e) => return failed(DATA_ERROR, "DataError", format!("{e} response format error")),
        };
        if common.action_code == 0 && common.next_code == 1 {
            count(callback, "refused", started);
            let code = if common.err_code > 0 { ErrCode(common.err_code) } else { ErrCode::SERVER_INTERNAL };
            let detail = if common.err_dlt.is_empty() { common.err_msg.clone() } else { common.err_dlt };
            return Err(ImError { code, msg: common.err_msg, detail });
        }
        count(callback, "ok", started);
        Ok(Some(full))
    }

    /// [`Webhooks::before`] for a callback whose answer changes nothing: `body` (a JSON object)
    /// gets `callbackCommand`.
    pub async fn check(
        &self,
        callback: &'static str,
        hook: &BeforeConfig,
        command: &str,
        mut body: serde_json::Value,
        operation_id: &str,
    ) -> Result<(), ImError> {
        if !self.on(hook.enable) {
            return Ok(());
        }
        body["callbackCommand"] = command.into();
        self.before::<_, serde::de::IgnoredAny>(callback, hook, command, &body, operation_id).await.map(drop)
    }

    /// [`Webhooks::after`] with a JSON object `body`, which gets `callbackCommand`.
    pub fn tell(
        &self,
        callback: &'static str,
        hook: &AfterConfig,
        command: &str,
        mut body: serde_json::Value,
        operation_id: &str,
    ) {
        if !self.on(hook.enable) {
            return;
        }
        body["callbackCommand"] = command.into();
        self.after(callback, hook, command, &body, operation_id);
    }

    /// Queues an after-callback (dropped, and counted, when the queue is full).
    pub fn after<Req: Serialize>(
        &self,
        callback: &'static str,
        hook: &AfterConfig,
        command: &str,
        req: &Req,
        operation_id: &str,
    ) {
        let Some(queue) = &self.after else { return };
        if !hook.enable {
            return;
        }
        let Ok(body) = serde_json::to_vec(req) else { return };
        let call = AfterCall {
            callback,
            url: self.url(command),
            body,
            operation_id: operation_id.to_owned(),
            timeout: timeout_of(hook.timeout),
        };
        if queue.try_send(call).is_err() {
            count(callback, "dropped", Instant::now());
        }
    }
}

async fn send_after(http: reqwest::Client, mut rx: mpsc::Receiver<AfterCall>, tries: u32) {
    while let Some(call) = rx.recv().await {
        let started = Instant::now();
        let mut outcome = "failed";
        for attempt in 0..tries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << (attempt - 1).min(5))).await;
            }
            let sent = http
                .post(&call.url)
                .timeout(call.timeout)
                .header("content-type", "application/json; charset=utf-8")
                .header("operationID", &call.operation_id)
                .body(call.body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) if !resp.status().is_server_error() => {
                    outcome = "ok";
                    break;
                }
                Ok(resp) => {
                    tracing::debug!(callback = call.callback, status = %resp.status(), "Webhook answered an error.")
                }
                Err(e) => tracing::debug!(callback = call.callback, error = %e, "Webhook unreachable."),
            }
        }
        if outcome != "ok" {
            tracing::warn!(callback = call.callback, url = %call.url, tries, "An after-callback was not delivered.");
        }
        count(call.callback, outcome, started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_lists_match_numbers_and_ranges() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(types_pass(&[], &[], 101));
        assert!(types_pass(&l(&["101", "200-300"]), &[], 250));
        assert!(!types_pass(&l(&["101"]), &[], 102));
        assert!(!types_pass(&[], &l(&["1000-5000"]), 1501));
        assert!(!types_pass(&l(&["-5", "x", "500-200"]), &[], 300), "bad entries match nothing");
    }

    #[test]
    fn openim_key_names_are_read() {
        let cfg: WebhooksConfig = serde_json::from_value(serde_json::json!({
            "url": "http://hook",
            "beforeSendSingleMsg": {"enable": true, "timeout": 5, "failedContinue": true, "allowedTypes": ["101"]},
            "after_send_group_msg": {"enable": true, "attentionIds": ["u1"]}
        }))
        .unwrap();
        assert!(cfg.before_send_single_msg.enable && cfg.before_send_single_msg.failed_continue);
        assert_eq!(cfg.before_send_single_msg.allowed_types, vec!["101"]);
        assert_eq!(cfg.after_send_group_msg.attention_ids, vec!["u1"]);
    }
}
