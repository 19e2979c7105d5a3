//! `openim-push`: consumes stored messages and delivers each to the gateways where its receivers
//! are online — only those gateways, found in the online registry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use openim_common::rpc::{self, Clients};
use openim_proto::constants::session;
use openim_proto::pb::msg::PushMsgDataToMq;
use openim_proto::pb::msggateway::{BatchPushMsgsReq, OnlineBatchPushOneMsgReq};
use openim_proto::pb::sdkws::MsgData;
use openim_storage::{StoreResult, Stores, topic};
use parking_lot::Mutex;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

/// How long one push call to a gateway may take.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a group's member list is reused before it is read again.
const MEMBER_CACHE_TTL: Duration = Duration::from_secs(2);

/// A group's member IDs and when they were read.
type CachedMembers = (Instant, std::sync::Arc<Vec<String>>);

pub struct Pusher {
    stores: Stores,
    clients: Clients,
    batch_size: usize,
    members: Mutex<HashMap<String, CachedMembers>>,
}

impl Pusher {
    pub fn new(stores: Stores, clients: Clients, batch_size: usize) -> Self {
        Self { stores, clients, batch_size, members: Mutex::new(HashMap::new()) }
    }

    /// Consumes until `shutdown`, then drains what is queued and returns.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut sub = self.stores.bus.subscribe(topic::TO_PUSH, "push").await?;
        loop {
            let batch = tokio::select! {
                b = sub.next_batch(self.batch_size) => b?,
                () = shutdown.cancelled() => break,
            };
            let Some(batch) = batch else { return Ok(()) };
            self.push_batch(&batch).await;
            sub.commit().await?;
        }
        while let Ok(Ok(Some(batch))) =
            tokio::time::timeout(Duration::from_millis(200), sub.next_batch(self.batch_size)).await
        {
            self.push_batch(&batch).await;
            sub.commit().await?;
        }
        Ok(())
    }

    async fn push_batch(&self, batch: &[openim_storage::BusMessage]) {
        let msgs: Vec<MsgData> = batch
            .iter()
            .filter_map(|record| match PushMsgDataToMq::decode(record.payload.as_ref()).map(|p| p.msg_data) {
                Ok(Some(m)) => Some(m),
                Ok(None) | Err(_) => {
                    tracing::error!(key = %record.key, "Dropping an undecodable push record.");
                    None
                }
            })
            .collect();
        if let Err(e) = self.push(msgs).await {
            // Receivers who missed the push get the messages when they sync by seq.
            tracing::warn!(error = %e, "Push failed; receivers will sync by seq.");
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
        if let Some((at, ids)) = self.members.lock().get(&msg.group_id)
            && at.elapsed() < MEMBER_CACHE_TTL
        {
            return Ok(ids.clone());
        }
        let ids = std::sync::Arc::new(self.stores.groups.member_ids(&msg.group_id).await?);
        self.members.lock().insert(msg.group_id.clone(), (Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// Sends messages to the gateways holding their receivers: one online-registry lookup for the
    /// batch, then one call per gateway carrying every message that gateway needs.
    pub async fn push(&self, msgs: Vec<MsgData>) -> anyhow::Result<()> {
        let mut receivers = Vec::with_capacity(msgs.len());
        let mut everyone = std::collections::HashSet::new();
        for m in &msgs {
            let r = self.receivers(m).await?;
            everyone.extend(r.iter().cloned());
            receivers.push(r);
        }
        let everyone: Vec<String> = everyone.into_iter().collect();
        let online = self.stores.online.online(&everyone).await?;
        let mut by_gateway: HashMap<&str, Vec<OnlineBatchPushOneMsgReq>> = HashMap::new();
        for (msg, users) in msgs.into_iter().zip(receivers) {
            let mut per_gateway: HashMap<&str, Vec<String>> = HashMap::new();
            for user in users.iter() {
                for (_, gw) in online.get(user).map(Vec::as_slice).unwrap_or_default() {
                    let list = per_gateway.entry(gw.as_str()).or_default();
                    if list.last() != Some(user) {
                        list.push(user.clone());
                    }
                }
            }
            for (gw, users) in per_gateway {
                by_gateway
                    .entry(gw)
                    .or_default()
                    .push(OnlineBatchPushOneMsgReq { msg_data: Some(msg.clone()), push_to_user_i_ds: users });
            }
        }
        for (gw, pushes) in by_gateway {
            let Some(mut client) = self.clients.gateway(gw) else {
                tracing::warn!(gateway = %gw, "Receivers are online at a gateway this push service does not know.");
                continue;
            };
            metrics::counter!("openim_push_gateway_calls_total", "gateway" => gw.to_owned()).increment(1);
            metrics::counter!("openim_push_messages_total").increment(pushes.len() as u64);
            // One gateway failing or hanging must not hold back the others.
            let call = client.batch_push_msgs(rpc::request(BatchPushMsgsReq { pushes }, "", ""));
            match tokio::time::timeout(GATEWAY_TIMEOUT, call).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(gateway = %gw, error = %e, "Push to a gateway failed; its users will sync by seq.")
                }
                Err(_) => tracing::warn!(gateway = %gw, "Push to a gateway timed out; its users will sync by seq."),
            }
        }
        Ok(())
    }
}
