//! `openim-push`: consumes stored messages and delivers each to the gateways where its receivers
//! are online — only those gateways, found in the online registry. Receivers whose phone did not
//! get a message go to the offline-push topic. Its consumer asks OpenIM's `beforeOfflinePush`
//! webhook (`webhooks.yml`), which may refuse the push or change who gets it and what it says,
//! then hands the push to `push.offline_webhook`, the bridge to a vendor push service.
//!
//! A record delivered twice (the bus redelivers after a crash, or msgtransfer hands a replayed
//! message on again) is pushed once: each (conversation, seq) is marked in the dedup store before
//! it goes out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openim_common::config::PushConfig;
use openim_common::rpc::{self, Clients};
use openim_common::webhook::Webhooks;
use openim_proto::constants::{content, session};
use openim_proto::pb::msg::PushMsgDataToMq;
use openim_proto::pb::msggateway::{Audience, BatchPushMsgsReq, OnlineBatchPushOneMsgReq};
use openim_proto::pb::sdkws::MsgData;
use openim_storage::{StoreResult, Stores, topic};
use parking_lot::Mutex;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

mod offline;

/// How long one push call to a gateway may take.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pushed (conversation, seq) is remembered, to drop redeliveries.
const DEDUP_TTL: Duration = Duration::from_secs(600);
/// How long a group's member list is reused before it is read again.
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(2);

/// A group chat's conversation ID begins with this.
const GROUP_CHAT_PREFIX: &str = "sg_";

/// Group notifications (OpenIM's 1501–1520).
const MEMBER_QUIT: i32 = 1504;
const MEMBER_KICKED: i32 = 1508;
const GROUP_DISMISSED: i32 = 1511;

/// A group notification's copy in the chat (`sg_<groupID>`), as opposed to the notification.
fn is_chat_copy(msg: &MsgData) -> bool {
    msg.options.get("isNotNotification") == Some(&true)
}

/// The users a quit (1504: `quitUser`) or kick (1508: `kickedUserList`) notification names.
fn tips_user_ids(msg: &MsgData) -> Vec<String> {
    let detail = serde_json::from_slice::<serde_json::Value>(&msg.content)
        .ok()
        .and_then(|c| c.get("detail").and_then(|d| d.as_str()).and_then(|d| serde_json::from_str(d).ok()));
    let Some(tips) = detail else {
        tracing::warn!(content_type = msg.content_type, "A group notification's tips do not parse.");
        return Vec::new();
    };
    let user = |v: &serde_json::Value| v.get("userID").and_then(|u| u.as_str()).map(str::to_owned);
    let tips: serde_json::Value = tips;
    match msg.content_type {
        MEMBER_QUIT => tips.get("quitUser").and_then(user).into_iter().collect(),
        _ => tips
            .get("kickedUserList")
            .and_then(|l| l.as_array())
            .map(|l| l.iter().filter_map(user).collect())
            .unwrap_or_default(),
    }
}

/// A group's member IDs and when they were read.
type CachedMembers = (Instant, std::sync::Arc<Vec<String>>);

pub struct Pusher {
    stores: Stores,
    clients: Clients,
    cfg: PushConfig,
    members: Mutex<HashMap<String, CachedMembers>>,
    http: reqwest::Client,
    hooks: Webhooks,
}

/// Typing (113) and signalling (1601) are never offline-pushed.
const TYPING: i32 = 113;
const SIGNALING_NOTIFICATION: i32 = 1601;

impl Pusher {
    pub fn new(stores: Stores, clients: Clients, cfg: PushConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.offline_webhook_timeout_ms))
            .build()
            .expect("an HTTP client with a timeout");
        Self { stores, clients, cfg, members: Mutex::new(HashMap::new()), http, hooks: Webhooks::none() }
    }

    /// Asks `hooks`' `beforeOfflinePush` before each offline push.
    pub fn with_webhooks(mut self, hooks: Webhooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Whether anyone takes offline pushes: the `beforeOfflinePush` webhook or the bridge.
    fn offline_push(&self) -> bool {
        !self.cfg.offline_webhook.is_empty() || self.hooks.on(self.hooks.config().before_offline_push.enable)
    }

    /// Consumes until `shutdown`, then drains what is queued and returns. With offline pushes
    /// taken, also consumes the offline-push topic.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if !self.offline_push() {
            return self.run_online(shutdown).await;
        }
        let (online, offline) = tokio::join!(self.run_online(shutdown.clone()), self.run_offline(shutdown));
        online.and(offline)
    }

    async fn run_online(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let bus = self.stores.bus.clone();
        // A batch holding a group's message (its record is keyed by the conversation) waits a
        // little for more: each round over a large group's connections then carries more.
        let group_linger = Duration::from_millis(self.cfg.group_linger_ms.min(1000));
        let linger = |batch: &[openim_storage::BusMessage]| {
            if batch.iter().any(|r| r.key.starts_with(GROUP_CHAT_PREFIX)) { group_linger } else { Duration::ZERO }
        };
        let handle = |batch: Vec<openim_storage::BusMessage>| async move {
            let started = Instant::now();
            self.push_batch(&batch).await;
            metrics::histogram!("openim_push_batch_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("openim_push_batch_records").record(batch.len() as f64);
            true
        };
        openim_common::bus::consume_lingering(
            &*bus,
            topic::TO_PUSH,
            "push",
            self.cfg.batch_size,
            linger,
            shutdown,
            handle,
        )
        .await;
        Ok(())
    }

    async fn push_batch(&self, batch: &[openim_storage::BusMessage]) {
        let decoded: Vec<(String, MsgData)> = batch
            .iter()
            .filter_map(|record| match PushMsgDataToMq::decode(record.payload.as_ref()) {
                Ok(PushMsgDataToMq { msg_data: Some(m), conversation_id }) => Some((conversation_id, m)),
                Ok(_) | Err(_) => {
                    tracing::error!(key = %record.key, "Dropping an undecodable push record.");
                    None
                }
            })
            .collect();
        // Online-only messages have no seq (0): their clientMsgID tells them apart.
        let keys: Vec<String> = decoded
            .iter()
            .map(|(conv, m)| match m.seq {
                0 => format!("push:{conv}:c:{}", m.client_msg_id),
                seq => format!("push:{conv}:{seq}"),
            })
            .collect();
        let first = match self.stores.dedup.first_time(&keys, DEDUP_TTL).await {
            Ok(first) => first,
            Err(e) => {
                // Better twice than not at all: clients drop a seq they already have.
                tracing::warn!(error = %e, "Push dedup unavailable; pushing the batch as it is.");
                vec![true; keys.len()]
            }
        };
        let before = decoded.len();
        let (msgs, marked): (Vec<(String, MsgData)>, Vec<String>) =
            decoded.into_iter().zip(keys).zip(first).filter(|(_, new)| *new).map(|((m, key), _)| (m, key)).unzip();
        if msgs.len() < before {
            metrics::counter!("openim_push_redelivered_total").increment((before - msgs.len()) as u64);
        }
        // The lookups (members, online registry) can fail while a backend is away: try again a
        // few times before giving up on the live push.
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=3 {
            match self.push(msgs.clone()).await {
                Ok(()) => return,
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, attempt, "Push failed; retrying in {delay:?}.");
                    tokio::time::sleep(delay).await;
                    delay *= 4;
                }
                Err(e) => {
                    // The messages are stored: receivers get them when they sync by seq. Unmark
                    // them so that a redelivery (msgtransfer handing them on again) pushes them.
                    tracing::error!(error = %e, count = msgs.len(), "Push failed 3 times; receivers will sync by seq.");
                    metrics::counter!("openim_push_failed_total").increment(msgs.len() as u64);
                    if let Err(e) = self.stores.dedup.forget(&marked).await {
                        tracing::warn!(error = %e, "Could not unmark the failed pushes.");
                    }
                }
            }
        }
    }

    async fn receivers(&self, msg: &MsgData) -> StoreResult<std::sync::Arc<Vec<String>>> {
        if msg.session_type != session::READ_GROUP_CHAT && msg.session_type != session::WRITE_GROUP_CHAT {
            let mut v = vec![msg.recv_id.clone()];
            if msg.send_id != msg.recv_id {
                v.push(msg.send_id.clone());
            }
            return Ok(std::sync::Arc::new(v));
        }
        // A group notification reports a change of the members: it reads them afresh (and
        // refreshes the cache, so the messages after it reach the new members too). Its copy in
        // the chat comes right after it and takes the members it read: the same people (and,
        // after a dismissal, the members it removed).
        let changed = content::GROUP_NOTIFICATIONS.contains(&msg.content_type) && !is_chat_copy(msg);
        let cached = self.members.lock().get(&msg.group_id).filter(|(at, _)| at.elapsed() < MEMBER_CACHE_TTL).cloned();
        if !changed && let Some((_, ids)) = cached {
            if matches!(msg.content_type, MEMBER_QUIT | MEMBER_KICKED) {
                let mut ids = (*ids).clone();
                ids.extend(tips_user_ids(msg));
                return Ok(std::sync::Arc::new(ids));
            }
            return Ok(ids);
        }
        let mut ids = self.stores.groups.member_ids(&msg.group_id).await?;
        self.members.lock().insert(msg.group_id.clone(), (Instant::now(), std::sync::Arc::new(ids.clone())));
        match msg.content_type {
            // Who left learns of it too.
            MEMBER_QUIT | MEMBER_KICKED => ids.extend(tips_user_ids(msg)),
            // The members learn the group is gone, then leave it (OpenIM's order): their apps,
            // syncing on the news, find the group no longer theirs. The cache keeps them for the
            // copy in the chat that follows (a dismissed group has no other messages).
            GROUP_DISMISSED if !ids.is_empty() && !is_chat_copy(msg) => {
                self.stores.groups.remove_members(&msg.group_id, &ids).await?;
            }
            _ => {}
        }
        Ok(std::sync::Arc::new(ids))
    }

    /// One `BatchPushMsgs` call; `index` holds each push's message index in the batch. Answers
    /// (message index, users whose phone got it).
    async fn call_gateway(&self, gw: &str, index: Vec<usize>, req: BatchPushMsgsReq) -> Vec<(usize, Vec<String>)> {
        let call = self.clients.batch_push_msgs(gw, rpc::request(req, "", ""));
        match tokio::time::timeout(GATEWAY_TIMEOUT, call).await {
            Ok(None) => {
                tracing::warn!(gateway = %gw, "Receivers are online at a gateway this push service does not know.");
                Vec::new()
            }
            Ok(Some(Ok(resp))) => resp
                .reached
                .into_iter()
                .filter_map(|r| Some((*index.get(usize::try_from(r.push).ok()?)?, r.user_i_ds)))
                .collect(),
            Ok(Some(Err(e))) => {
                tracing::warn!(gateway = %gw, error = %e, "Push to a gateway failed; its users will sync by seq.");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!(gateway = %gw, "Push to a gateway timed out; its users will sync by seq.");
                Vec::new()
            }
        }
    }

    /// Sends messages to the gateways holding their receivers: one online-registry lookup for the
    /// batch, then one call per gateway carrying every message that gateway needs. With an
    /// offline-push webhook, receivers whose phone did not get a message (online nowhere, only
    /// on a computer or the web, or an iOS app in the background) are then offline-pushed, as
    /// OpenIM does.
    /// Each message comes with the conversation it was stored in.
    pub async fn push(&self, msgs: Vec<(String, MsgData)>) -> anyhow::Result<()> {
        let mut receivers = Vec::with_capacity(msgs.len());
        for (_, m) in &msgs {
            receivers.push(self.receivers(m).await?);
        }
        // The messages of one group share its member list (one `Arc`): each distinct list is
        // looked up and split by gateway once, and goes to a gateway once per call.
        let mut lists: Vec<&[String]> = Vec::new();
        let mut list_of: Vec<usize> = Vec::with_capacity(msgs.len());
        let mut by_address: HashMap<usize, usize> = HashMap::new();
        for r in &receivers {
            let l = *by_address.entry(std::sync::Arc::as_ptr(r).addr()).or_insert_with(|| {
                lists.push(r.as_slice());
                lists.len() - 1
            });
            list_of.push(l);
        }
        let mut uses = vec![0usize; lists.len()];
        for l in &list_of {
            uses[*l] += 1;
        }
        let everyone: std::collections::HashSet<&String> = lists.iter().flat_map(|l| l.iter()).collect();
        let everyone: Vec<String> = everyone.into_iter().cloned().collect();
        let online = self.stores.online.online(&everyone).await?;
        let offline_push = self.offline_push();
        // Each list's users by the gateway they are online at, in list order.
        let split: Vec<HashMap<&str, Vec<String>>> = lists
            .iter()
            .map(|users| {
                let mut per_gateway: HashMap<&str, Vec<String>> = HashMap::new();
                for user in users.iter() {
                    for (_, gw) in online.get(user).map(Vec::as_slice).unwrap_or_default() {
                        let list = per_gateway.entry(gw.as_str()).or_default();
                        if list.last() != Some(user) {
                            list.push(user.clone());
                        }
                    }
                }
                per_gateway
            })
            .collect();
        // Gateway → (index of the message, its push, the shared list it goes to) in call order.
        let mut by_gateway: HashMap<&str, Vec<GatewayPush>> = HashMap::new();
        for (m, (conv, msg)) in msgs.iter().enumerate() {
            let l = list_of[m];
            for (gw, users) in &split[l] {
                let shared = uses[l] > 1;
                by_gateway.entry(gw).or_default().push((
                    m,
                    OnlineBatchPushOneMsgReq {
                        msg_data: Some(msg.clone()),
                        push_to_user_i_ds: if shared { Vec::new() } else { users.clone() },
                        conversation_id: conv.clone(),
                    },
                    shared.then_some(l),
                ));
            }
        }
        // Gateways are called side by side: one failing or hanging holds back no other. A
        // gateway's pushes go in calls of at most MAX_CALL_BYTES, one after the other (in order).
        let split = &split;
        let calls = by_gateway.into_iter().map(|(gw, pushes)| async move {
            metrics::counter!("openim_push_messages_total").increment(pushes.len() as u64);
            let mut reached = Vec::new();
            for chunk in split_by_bytes(pushes, MAX_CALL_BYTES) {
                metrics::counter!("openim_push_gateway_calls_total", "gateway" => gw.to_owned()).increment(1);
                let (index, req) = gateway_call(chunk, |l| split[l].get(gw).cloned().unwrap_or_default(), offline_push);
                reached.extend(self.call_gateway(gw, index, req).await);
            }
            reached
        });
        let reached = futures::future::join_all(calls).await;
        if !offline_push {
            return Ok(());
        }
        let mut reached_by_msg: HashMap<usize, std::collections::HashSet<String>> = HashMap::new();
        for (m, users) in reached.into_iter().flatten() {
            reached_by_msg.entry(m).or_default().extend(users);
        }
        let mut offline_records = Vec::new();
        for (m, ((conv, msg), users)) in msgs.iter().zip(&receivers).enumerate() {
            // Notifications and messages sent with `offlinePush: false` are pushed live only.
            if msg.options.get("offlinePush") == Some(&false)
                || msg.content_type == TYPING
                || msg.content_type == SIGNALING_NOTIFICATION
            {
                continue;
            }
            let got = reached_by_msg.get(&m);
            let mut offline: Vec<String> =
                users.iter().filter(|u| **u != msg.send_id && !got.is_some_and(|g| g.contains(*u))).cloned().collect();
            // Receivers who set do-not-disturb (recvMsgOpt 1 or 2) on the chat get no offline
            // push.
            if !offline.is_empty() {
                offline = self.stores.conversations.receiving_owners(conv, &offline).await?;
            }
            if !offline.is_empty() {
                offline_records.push(offline::offline_record(msg, offline));
            }
        }
        if !offline_records.is_empty() {
            metrics::counter!("openim_push_offline_total").increment(offline_records.len() as u64);
            self.stores.bus.publish(topic::TO_OFFLINE_PUSH, offline_records).await?;
        }
        Ok(())
    }
}

/// Most bytes of pushes in one call to a gateway: well under the gRPC message limit
/// (`openim_common::rpc::MAX_MESSAGE_BYTES`), however large the messages of a batch are. The
/// shared receiver lists come on top (at most a group's members each).
pub const MAX_CALL_BYTES: usize = 4 << 20;

/// A push to a gateway: the message's index in the batch, the push, and the shared receiver
/// list it goes to (`None`: its own `pushToUserIDs`).
type GatewayPush = (usize, OnlineBatchPushOneMsgReq, Option<usize>);

/// `pushes` in order, in runs of at most `max` encoded bytes.
fn split_by_bytes<T: prost::Message, U>(pushes: Vec<(usize, T, U)>, max: usize) -> Vec<Vec<(usize, T, U)>> {
    openim_common::limits::runs_within(pushes, max, |p| p.1.encoded_len())
}

/// One call's request from its pushes (message index, push, shared list), with each shared list
/// (its users at this gateway from `users_of`) sent once; also answers the message index of
/// each push in the request.
fn gateway_call(
    pushes: Vec<GatewayPush>,
    users_of: impl Fn(usize) -> Vec<String>,
    want_reached: bool,
) -> (Vec<usize>, BatchPushMsgsReq) {
    let mut req = BatchPushMsgsReq { want_reached, ..Default::default() };
    let mut index = Vec::with_capacity(pushes.len());
    let mut audience_of_list: HashMap<usize, i32> = HashMap::new();
    let shared = pushes.iter().any(|p| p.2.is_some());
    for (m, push, list) in pushes {
        index.push(m);
        req.pushes.push(push);
        if !shared {
            continue;
        }
        req.audience_of.push(list.map_or(0, |l| {
            *audience_of_list.entry(l).or_insert_with(|| {
                req.audiences.push(Audience { user_i_ds: users_of(l) });
                req.audiences.len() as i32
            })
        }));
    }
    (index, req)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list several pushes share goes in the call once; a push's own list stays in it.
    #[test]
    fn shared_lists_go_once_per_call() {
        let push = |users: &[&str]| OnlineBatchPushOneMsgReq {
            push_to_user_i_ds: users.iter().map(|u| (*u).to_owned()).collect(),
            ..Default::default()
        };
        let users_of = |l: usize| vec![format!("member-of-{l}")];
        let pushes =
            vec![(4, push(&[]), Some(7)), (5, push(&["x"]), None), (6, push(&[]), Some(7)), (8, push(&[]), Some(2))];
        let (index, req) = gateway_call(pushes, users_of, true);
        assert_eq!(index, [4, 5, 6, 8]);
        assert!(req.want_reached);
        assert_eq!(req.audience_of, [1, 0, 1, 2]);
        let audiences: Vec<&[String]> = req.audiences.iter().map(|a| a.user_i_ds.as_slice()).collect();
        assert_eq!(audiences, [["member-of-7"], ["member-of-2"]]);
        assert_eq!(req.pushes[1].push_to_user_i_ds, ["x"]);
        // Nothing shared: the request is as before audiences existed.
        let (_, req) = gateway_call(vec![(0, push(&["x"]), None)], users_of, false);
        assert!(req.audiences.is_empty() && req.audience_of.is_empty());
    }

    #[test]
    fn pushes_are_split_in_order_by_bytes() {
        let push = |n: usize| OnlineBatchPushOneMsgReq {
            msg_data: Some(MsgData { content: vec![b'x'; n], ..Default::default() }),
            ..Default::default()
        };
        let pushes: Vec<_> = (0..10).map(|i| (i, push(1000), ())).collect();
        let runs = split_by_bytes(pushes, 3500);
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        assert_eq!(runs.concat().iter().map(|p| p.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        // One push bigger than the limit still goes, alone.
        let runs = split_by_bytes(vec![(0, push(10), ()), (1, push(9000), ()), (2, push(10), ())], 3500);
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    }
}
