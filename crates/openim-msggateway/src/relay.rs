//! Relay mode, the benchmark's yardstick (`openim standalone --bench-relay`): each message a
//! client sends is forwarded straight to its receivers' connections on this gateway, with no
//! pipeline behind it (no send RPC, bus, seq, store or push service). The connections, frames,
//! envelope, acknowledgement and push framing are the gateway's own, so a load generator run
//! against it measures what the machine can do with the messaging work taken out: the ceiling
//! the full server's figures are compared with.
//!
//! Nothing is checked (friendship, blocks, mutes, webhooks) and nothing is kept: never serve
//! real traffic this way. The server refuses relay mode on a listener other than loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;
use openim_common::{ImError, ids, rpc};
use openim_proto::constants::session;
use openim_proto::pb::group::GetGroupMemberUserIDsReq;
use openim_proto::pb::msggateway::{BatchPushMsgsReq, OnlineBatchPushOneMsgReq};
use openim_proto::pb::sdkws::{MsgData, UserSendMsgResp};
use prost::Message as _;

use crate::Gateway;

/// What relay mode keeps: a counter standing in for seqs, and each group's members, asked of
/// rpc-group once (the group's membership does not change during a benchmark).
#[derive(Default)]
pub(crate) struct Relay {
    next_seq: AtomicI64,
    members: DashMap<String, Arc<Vec<String>>>,
}

impl Relay {
    /// Stamps a message as the pipeline would (server ID, send time, a seq) and queues it on the
    /// connections of its receivers and of its sender's other devices, as one push each;
    /// answers the sender's acknowledgement.
    pub(crate) async fn forward(&self, gw: &Gateway, mut m: MsgData, operation_id: &str) -> Result<Vec<u8>, ImError> {
        let is_group = m.session_type == session::READ_GROUP_CHAT || m.session_type == session::WRITE_GROUP_CHAT;
        let receivers = if is_group {
            self.group_members(gw, &m.send_id, &m.group_id, operation_id).await?
        } else {
            Arc::new(if m.recv_id == m.send_id {
                vec![m.send_id.clone()]
            } else {
                vec![m.recv_id.clone(), m.send_id.clone()]
            })
        };
        let conversation_id = ids::conversation_id(m.session_type, &m.send_id, &m.recv_id, &m.group_id)
            .ok_or_else(|| ImError::args("the message names no conversation"))?;
        let now = openim_common::token::now_millis();
        m.seq = self.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
        m.server_msg_id = format!("relay-{}", m.seq);
        m.send_time = now;
        m.create_time = if m.create_time == 0 { now } else { m.create_time };
        let ack = UserSendMsgResp {
            server_msg_id: m.server_msg_id.clone(),
            client_msg_id: m.client_msg_id.clone(),
            send_time: m.send_time,
        }
        .encode_to_vec();
        let push =
            OnlineBatchPushOneMsgReq { msg_data: Some(m), push_to_user_i_ds: (*receivers).clone(), conversation_id };
        crate::push::push_many(gw, BatchPushMsgsReq { pushes: vec![push], ..Default::default() });
        Ok(ack)
    }

    async fn group_members(
        &self,
        gw: &Gateway,
        user_id: &str,
        group_id: &str,
        operation_id: &str,
    ) -> Result<Arc<Vec<String>>, ImError> {
        if let Some(m) = self.members.get(group_id) {
            return Ok(m.clone());
        }
        let req = GetGroupMemberUserIDsReq { group_id: group_id.to_owned() };
        let ids = gw
            .clients
            .group
            .clone()
            .get_group_member_user_i_ds(rpc::request(req, user_id, operation_id))
            .await
            .map_err(ImError::from)?
            .into_inner()
            .user_i_ds;
        let ids = Arc::new(ids);
        self.members.insert(group_id.to_owned(), ids.clone());
        Ok(ids)
    }
}
