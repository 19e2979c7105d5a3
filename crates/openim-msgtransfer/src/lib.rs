//! `openim-msgtransfer`: consumes accepted messages from the bus, allocates per-conversation seqs,
//! stores the messages, then hands them to the push topic. The bus offset is committed only after
//! all of that, so a crash replays the batch (at-least-once), and the replay is harmless:
//! - a message already stored (the crash came after the store) is recognised by its
//!   `clientMsgID` and send time, which the replayed record carries unchanged, keeps its seq and
//!   is handed to push again, where the push dedup drops it if it went out before. A client's
//!   resend, which rpc-msg gave a new send time, is recognised the same way: MySQL and MongoDB
//!   by their unique `clientMsgID` index, the embedded store under the send time this transfer
//!   remembers for its last 100,000 messages (beyond that, or after a restart, the resend is
//!   stored again, as OpenIM stores every resend, and the SDK files the copy away);
//! - a message not stored yet gets a new seq; the seqs allocated before the crash stay unused
//!   (a gap in the conversation, never a duplicate).
//!
//! Storing before pushing also means a receiver never gets a push it cannot pull again.

use std::collections::HashMap;

use dashmap::DashSet;
use openim_common::ids::{self, ConversationTarget};
use openim_common::token::now_millis;
use openim_proto::constants::{content, session};
use openim_proto::pb::msg::PushMsgDataToMq;
use openim_proto::pb::sdkws::MsgData;
use openim_storage::{BusMessage, Conversation, StoreResult, StoredMsg, Stores, topic};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

mod recent;
use recent::RecentSendTimes;

/// Tries of a batch (then of each message alone) before it is split to find a bad record.
const STORE_ATTEMPTS: usize = 3;

fn same_message(a: &StoredMsg, b: &StoredMsg) -> bool {
    a.conversation_id == b.conversation_id && a.msg.client_msg_id == b.msg.client_msg_id && a.msg.seq == b.msg.seq
}

/// A batch ready to store and push.
struct Prepared {
    /// New messages with their seqs.
    fresh: Vec<StoredMsg>,
    /// Messages of the batch that were stored before (a replay or a resend).
    stored_before: Vec<StoredMsg>,
    /// Online-only messages (`history: false`): pushed without a seq, never stored.
    online_only: Vec<StoredMsg>,
}

/// A group notification's copy in the group's chat (content types 1501–1520).
fn is_group_tip(m: &MsgData) -> bool {
    m.session_type == session::READ_GROUP_CHAT && content::GROUP_NOTIFICATIONS.contains(&m.content_type)
}

/// Whether a message is pushed to whoever is online and never stored, as OpenIM does with
/// `history: false` (the REST `isOnlineOnly`, and some notifications).
fn is_online_only(m: &MsgData) -> bool {
    m.options.get("history") == Some(&false)
}

pub struct Transfer {
    stores: Stores,
    batch_size: usize,
    /// Parts a batch is split into by conversation, handled at the same time.
    shards: usize,
    /// How long a batch smaller than `batch_size` waits for more.
    linger: std::time::Duration,
    /// (owner, conversation) pairs known to exist, to skip the upsert on the hot path.
    known_conversations: DashSet<(String, String)>,
    /// The send times of the messages this transfer stored last (see [`RecentSendTimes`]).
    recent: std::sync::Mutex<RecentSendTimes>,
}

impl Transfer {
    pub fn new(stores: Stores, batch_size: usize) -> Self {
        Self {
            stores,
            batch_size,
            shards: 1,
            linger: std::time::Duration::ZERO,
            known_conversations: DashSet::new(),
            recent: std::sync::Mutex::new(RecentSendTimes::default()),
        }
    }

    /// Splits each batch into `shards` parts by conversation (at least 1), handled at the same
    /// time: a conversation's messages stay in one part, in order, so its seqs are still
    /// allocated by one consumer. A chat and its notification conversation share a part (their
    /// [`BusMessage::order_key`]): a group notification must reach apps before its chat copy.
    /// Each step of a batch mostly waits (on the store's round trips), so the parts' waits
    /// overlap instead of adding up.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Lets a batch smaller than the batch size wait up to `linger` for more records, so that
    /// under load the store takes fewer, larger batches (each costs a commit and a few
    /// statements, whatever its size).
    pub fn with_linger(mut self, linger: std::time::Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Consumes until `shutdown`, then drains what the bus already holds and returns.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let bus = self.stores.bus.clone();
        let stop = shutdown.clone();
        let linger = self.linger;
        openim_common::bus::consume_lingering(
            &*bus,
            topic::TO_TRANSFER,
            "msgtransfer",
            self.batch_size,
            |_| linger,
            shutdown,
            |batch| {
                let stop = stop.clone();
                async move { self.handle_sharded(batch, &stop).await }
            },
        )
        .await;
        Ok(())
    }

    /// [`Transfer::handle`] on each shard of `batch` at once; `false` if any gave up (the batch
    /// then comes again, and what the others stored is found by `clientMsgID`).
    pub async fn handle_sharded(&self, batch: Vec<BusMessage>, stop: &CancellationToken) -> bool {
        if self.shards == 1 {
            return self.handle(batch, stop).await;
        }
        let mut parts: Vec<Vec<BusMessage>> = (0..self.shards).map(|_| Vec::new()).collect();
        for record in batch {
            parts[shard_of(record.order_key(), self.shards)].push(record);
        }
        let handled = parts.into_iter().filter(|p| !p.is_empty()).map(|p| self.handle(p, stop));
        futures::future::join_all(handled).await.into_iter().all(|done| done)
    }

    /// Handles one batch in three steps, each retried with backoff until it succeeds, so an
    /// accepted message is never dropped and a retry never allocates a seq twice:
    /// 1. find messages already stored, create conversations, allocate seqs for the others;
    /// 2. store the new messages (idempotent by conversation and seq);
    /// 3. hand new and already-stored messages to the push topic.
    ///
    /// If step 2 stores fewer messages than it was given, some seqs were already taken — by
    /// another message (seqs handed out twice, e.g. after a Redis failover to a lagging replica)
    /// or by the same message from a concurrent consumer. The conversations' cached seq state is
    /// dropped and the batch prepared again: what landed is found by `clientMsgID`, the rest
    /// gets seqs after everything ever reserved. Nothing is pushed under a seq it does not hold.
    ///
    /// Returns `false` if `stop` came while a step was waiting to be retried: the batch is then
    /// unfinished and must not be committed (it is handled again after the restart).
    pub async fn handle(&self, batch: Vec<BusMessage>, stop: &CancellationToken) -> bool {
        let started = std::time::Instant::now();
        let mut attempt = 0;
        let mut online_only;
        let mut dead: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
        let (fresh, stored_before) = loop {
            attempt += 1;
            let Some(prepared) = retry(stop, "prepare a batch", || self.prepare(&batch)).await else {
                return false;
            };
            let Prepared { mut fresh, stored_before, online_only: live } = prepared;
            // What went to the dead-letter topic on an earlier round stays there.
            fresh.retain(|m| !dead.contains(&(m.conversation_id.clone(), m.msg.client_msg_id.clone())));
            online_only = live;
            metrics::histogram!("openim_transfer_step_seconds", "step" => "prepare")
                .record(started.elapsed().as_secs_f64());
            if fresh.is_empty() {
                break (fresh, stored_before);
            }
            let t = std::time::Instant::now();
            let given: Vec<(String, String)> =
                fresh.iter().map(|m| (m.conversation_id.clone(), m.msg.client_msg_id.clone())).collect();
            let Some((fresh, inserted)) = self.store(fresh, stop).await else {
                return false;
            };
            if fresh.len() < given.len() {
                let kept: std::collections::HashSet<(&str, &str)> =
                    fresh.iter().map(|m| (m.conversation_id.as_str(), m.msg.client_msg_id.as_str())).collect();
                dead.extend(given.into_iter().filter(|(c, id)| !kept.contains(&(c.as_str(), id.as_str()))));
            }
            metrics::histogram!("openim_transfer_step_seconds", "step" => "store").record(t.elapsed().as_secs_f64());
            if inserted == fresh.len() as u64 || attempt == 5 {
                if inserted < fresh.len() as u64 {
                    let Some(landed) = retry(stop, "check stored seqs", || self.landed(&fresh)).await else {
                        return false;
                    };
                    let unlanded: Vec<StoredMsg> =
                        fresh.iter().filter(|m| !landed.iter().any(|l| same_message(l, m))).cloned().collect();
                    tracing::error!(
                        count = unlanded.len(),
                        "Seqs still collide after 4 resyncs; those messages go to the dead-letter topic."
                    );
                    if !self.dead_letter(&unlanded, "seqs collide", stop).await {
                        return false;
                    }
                    break (landed, stored_before);
                }
                break (fresh, stored_before);
            }
            metrics::counter!("openim_transfer_seq_collisions_total").increment(fresh.len() as u64 - inserted);
            let convs: std::collections::BTreeSet<&str> = fresh.iter().map(|m| m.conversation_id.as_str()).collect();
            tracing::warn!(
                stored = inserted,
                given = fresh.len(),
                "Some seqs were taken already; resyncing {} conversations and preparing again.",
                convs.len()
            );
            for conv in convs {
                if retry(stop, "resync seqs", || self.stores.seqs.resync(conv)).await.is_none() {
                    return false;
                }
            }
        };
        if !stored_before.is_empty() {
            metrics::counter!("openim_transfer_redelivered_total").increment(stored_before.len() as u64);
        }
        let records: Vec<BusMessage> = stored_before
            .iter()
            .chain(&fresh)
            .chain(&online_only)
            .map(|s| BusMessage {
                key: s.conversation_id.clone(),
                payload: PushMsgDataToMq { msg_data: Some(s.msg.clone()), conversation_id: s.conversation_id.clone() }
                    .encode_to_vec()
                    .into(),
            })
            .collect();
        if !records.is_empty() {
            let t = std::time::Instant::now();
            if retry(stop, "hand a batch to push", || self.stores.bus.publish(topic::TO_PUSH, records.clone()))
                .await
                .is_none()
            {
                return false;
            }
            metrics::histogram!("openim_transfer_step_seconds", "step" => "publish").record(t.elapsed().as_secs_f64());
        }
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).remember(&fresh);
        metrics::counter!("openim_transfer_stored_total").increment(fresh.len() as u64);
        metrics::histogram!("openim_transfer_batch_seconds").record(started.elapsed().as_secs_f64());
        true
    }

    /// Stores `fresh`, retrying. A batch that keeps failing is tried a message at a time: when
    /// some messages store and others keep failing, the failing ones are bad records and go to
    /// the dead-letter topic (the consumer moves on); when every one fails, the backend is down
    /// and the batch is retried until it is back. Answers the messages to go on with and how many
    /// of them the store took (fewer when seqs collided), or `None` on `stop`.
    async fn store(&self, fresh: Vec<StoredMsg>, stop: &CancellationToken) -> Option<(Vec<StoredMsg>, u64)> {
        let messages = &self.stores.messages;
        let mut delay = std::time::Duration::from_millis(50);
        loop {
            let mut last = None;
            for _ in 0..STORE_ATTEMPTS {
                match messages.insert_messages(&fresh).await {
                    Ok(n) => return Some((fresh, n)),
                    Err(e) => {
                        tracing::error!(error = %e, count = fresh.len(), "Could not store a batch; retrying in {delay:?}.");
                        last = Some(e);
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return None,
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            // One at a time, each a few times: who fails alone while others store?
            let (mut good, mut bad, mut inserted) = (Vec::new(), Vec::new(), 0);
            for m in fresh.iter() {
                let mut stored = None;
                for _ in 0..STORE_ATTEMPTS {
                    if let Ok(n) = messages.insert_messages(std::slice::from_ref(m)).await {
                        stored = Some(n);
                        break;
                    }
                }
                match stored {
                    Some(n) => {
                        inserted += n;
                        good.push(m.clone());
                    }
                    None => bad.push(m.clone()),
                }
            }
            if good.is_empty() {
                tracing::error!(error = ?last, "No message of the batch can be stored: waiting for the store.");
                continue;
            }
            if !bad.is_empty() {
                let why = last.map(|e| e.to_string()).unwrap_or_default();
                if !self.dead_letter(&bad, &why, stop).await {
                    return None;
                }
            }
            return Some((good, inserted));
        }
    }

    /// Publishes messages that cannot be stored to the dead-letter topic, as they came (keyed by
    /// conversation, payload the `MsgData` without its seq), with a metric and a log line each.
    /// Retried until the bus takes them: nothing accepted is dropped. `false` on `stop`.
    async fn dead_letter(&self, msgs: &[StoredMsg], why: &str, stop: &CancellationToken) -> bool {
        if msgs.is_empty() {
            return true;
        }
        for m in msgs {
            tracing::error!(
                conversation = %m.conversation_id,
                client_msg_id = %m.msg.client_msg_id,
                send_id = %m.msg.send_id,
                why,
                "A message cannot be stored; it goes to the dead-letter topic."
            );
        }
        let records: Vec<BusMessage> = msgs
            .iter()
            .map(|m| BusMessage {
                key: m.conversation_id.clone(),
                payload: MsgData { seq: 0, ..m.msg.clone() }.encode_to_vec().into(),
            })
            .collect();
        let published = retry(stop, "publish to the dead-letter topic", || {
            self.stores.bus.publish(topic::DEAD_LETTER, records.clone())
        })
        .await;
        if published.is_some() {
            metrics::counter!("openim_transfer_dead_lettered_total").increment(msgs.len() as u64);
        }
        published.is_some()
    }

    /// The messages of `msgs` stored under their own seq (the same clientMsgID holds it).
    async fn landed(&self, msgs: &[StoredMsg]) -> StoreResult<Vec<StoredMsg>> {
        let mut by_conv: HashMap<&str, Vec<i64>> = HashMap::new();
        for m in msgs {
            by_conv.entry(m.conversation_id.as_str()).or_default().push(m.msg.seq);
        }
        let mut holders: std::collections::HashSet<(String, i64, String)> = std::collections::HashSet::new();
        for (conv, seqs) in by_conv {
            for m in self.stores.messages.messages_by_seqs(conv, &seqs).await? {
                holders.insert((conv.to_owned(), m.seq, m.client_msg_id));
            }
        }
        Ok(msgs
            .iter()
            .filter(|m| holders.contains(&(m.conversation_id.clone(), m.msg.seq, m.msg.client_msg_id.clone())))
            .cloned()
            .collect())
    }

    /// Decodes, sets aside `clientMsgID`s already stored (with their stored seq), creates
    /// missing conversations and assigns seqs to the rest.
    async fn prepare(&self, batch: &[BusMessage]) -> StoreResult<Prepared> {
        // Group by conversation, keeping the order of each.
        let mut by_conv: Vec<(String, Vec<MsgData>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut online_only = Vec::new();
        for record in batch {
            let msg = match MsgData::decode(record.payload.as_ref()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, key = %record.key, "Dropping an undecodable bus record.");
                    continue;
                }
            };
            if is_online_only(&msg) {
                online_only.push(StoredMsg { conversation_id: record.key.clone(), msg: MsgData { seq: 0, ..msg } });
                continue;
            }
            let i = *index.entry(record.key.as_str()).or_insert_with(|| {
                by_conv.push((record.key.clone(), Vec::new()));
                by_conv.len() - 1
            });
            by_conv[i].1.push(msg);
        }

        // One round trip for the whole batch at each step. A message stored lately is looked up
        // under the send time it was stored with: a resend comes with a new one.
        let mut keys: Vec<(String, String, i64)> = Vec::with_capacity(batch.len());
        {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            for (conv, msgs) in &by_conv {
                for m in msgs {
                    let send_time = recent.get(conv, &m.client_msg_id).unwrap_or(m.send_time);
                    keys.push((conv.clone(), m.client_msg_id.clone(), send_time));
                }
            }
        }
        let t = std::time::Instant::now();
        let stored_keys = self.stores.messages.existing_client_msg_ids_many(&keys).await?;
        metrics::histogram!("openim_transfer_step_seconds", "step" => "dedupe").record(t.elapsed().as_secs_f64());
        let mut stored_before = Vec::new();
        if !stored_keys.is_empty() {
            // Rare (a replay or a resend): fetch them to push again under their stored seqs.
            let mut ids_by_conv: HashMap<&str, Vec<(String, i64)>> = HashMap::new();
            for (conv, id, send_time) in &keys {
                if stored_keys.contains(&(conv.clone(), id.clone())) {
                    ids_by_conv.entry(conv.as_str()).or_default().push((id.clone(), *send_time));
                }
            }
            for (conv, ids) in ids_by_conv {
                let found = self.stores.messages.existing_client_msg_ids(conv, &ids).await?;
                stored_before
                    .extend(found.into_values().map(|msg| StoredMsg { conversation_id: conv.to_owned(), msg }));
            }
            stored_before.sort_by(|a, b| (&a.conversation_id, a.msg.seq).cmp(&(&b.conversation_id, b.msg.seq)));
        }
        let mut seen = stored_keys;
        let mut fresh_by_conv: Vec<(String, Vec<MsgData>)> = Vec::with_capacity(by_conv.len());
        for (conv, msgs) in by_conv {
            let fresh: Vec<MsgData> =
                msgs.into_iter().filter(|m| seen.insert((conv.clone(), m.client_msg_id.clone()))).collect();
            if !fresh.is_empty() {
                fresh_by_conv.push((conv, fresh));
            }
        }
        if fresh_by_conv.is_empty() {
            return Ok(Prepared { fresh: Vec::new(), stored_before, online_only });
        }
        self.ensure_conversations(&fresh_by_conv).await?;
        let requests: Vec<(String, i64)> = fresh_by_conv.iter().map(|(c, m)| (c.clone(), m.len() as i64)).collect();
        let t = std::time::Instant::now();
        let firsts = self.stores.seqs.allocate_seqs_many(&requests).await?;
        metrics::histogram!("openim_transfer_step_seconds", "step" => "seqs").record(t.elapsed().as_secs_f64());
        let mut fresh = Vec::with_capacity(batch.len());
        for ((conv, msgs), first) in fresh_by_conv.into_iter().zip(firsts) {
            for (i, mut m) in msgs.into_iter().enumerate() {
                m.seq = first + i as i64;
                fresh.push(StoredMsg { conversation_id: conv.clone(), msg: m });
            }
        }
        Ok(Prepared { fresh, stored_before, online_only })
    }

    /// Creates, in one call, each conversation for every participant the first time it is seen.
    async fn ensure_conversations(&self, batch: &[(String, Vec<MsgData>)]) -> StoreResult<()> {
        let now = now_millis();
        let mut missing = Vec::new();
        // A group's notifications (`n_<group>`) are found from its chat (`sg_<group>`). Those
        // between two users (`n_<a>_<b>`: friend applications, for instance) may come before any
        // chat, so they get their own entries, as in OpenIM: that is how sync finds their seqs.
        // Clients are not shown them (see rpc-conversation).
        for (conv, msgs) in batch.iter() {
            // A group's tips (its notifications' copies in the chat) follow changes of the
            // members that created the members' conversations already (rpc-group).
            let Some(sample) = msgs.iter().find(|m| !is_group_tip(m)) else { continue };
            if ids::is_notification(conv) && sample.session_type != session::SINGLE_CHAT {
                continue;
            }
            let owners: Vec<String> = match sample.session_type {
                session::SINGLE_CHAT | session::NOTIFICATION_CHAT if sample.send_id == sample.recv_id => {
                    vec![sample.send_id.clone()]
                }
                session::SINGLE_CHAT | session::NOTIFICATION_CHAT => {
                    vec![sample.send_id.clone(), sample.recv_id.clone()]
                }
                _ if self.known_conversations.contains(&(sample.send_id.clone(), conv.clone())) => continue,
                _ => match ids::parse_conversation_id(conv, &sample.send_id) {
                    Some(ConversationTarget::Group(g)) => self.stores.groups.member_ids(g).await?,
                    _ => vec![sample.send_id.clone()],
                },
            };
            for owner in owners {
                if self.known_conversations.contains(&(owner.clone(), conv.clone())) {
                    continue;
                }
                let (user_id, group_id) = match sample.session_type {
                    session::SINGLE_CHAT | session::NOTIFICATION_CHAT => {
                        let peer =
                            if owner == sample.send_id { sample.recv_id.clone() } else { sample.send_id.clone() };
                        (peer, String::new())
                    }
                    _ => (String::new(), sample.group_id.clone()),
                };
                missing.push(Conversation {
                    owner_user_id: owner,
                    conversation_id: conv.clone(),
                    conversation_type: sample.session_type,
                    user_id,
                    group_id,
                    create_time: now,
                    msg_destruct_time: openim_storage::DEFAULT_MSG_DESTRUCT_SECS,
                    ..Default::default()
                });
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        self.stores.conversations.ensure_conversations(&missing).await?;
        for c in missing {
            self.known_conversations.insert((c.owner_user_id, c.conversation_id));
        }
        Ok(())
    }
}

/// The shard of an order key: the same for its every record, spread evenly over conversations.
fn shard_of(key: &str, shards: usize) -> usize {
    (stable_hash(key) % shards as u64) as usize
}

/// A hash with fixed keys: the same value for the same input in every run of this process.
pub(crate) fn stable_hash(value: impl std::hash::Hash) -> u64 {
    use std::hash::{BuildHasher as _, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(value)
}

/// Runs `op` until it succeeds, backing off from 50 ms to 5 s between attempts; `None` if
/// `stop` comes while waiting to try again.
async fn retry<T, F, Fut>(stop: &CancellationToken, what: &str, mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut delay = std::time::Duration::from_millis(50);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::error!(error = %e, "Could not {what}; retrying in {delay:?}.");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return None,
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}
