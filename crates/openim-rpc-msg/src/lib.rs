//! `openim-rpc-msg`: accepts messages (checks, IDs, time) and hands them to the bus; answers seq
//! and history queries from the stores.

use std::collections::HashMap;

use dashmap::DashSet;
use openim_common::config::Share;
use openim_common::error::store_status;
use openim_common::ids::{self, ConversationTarget};
use openim_common::notify::Notifier;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::constants::{msg_from, session};
use openim_proto::pb::msg::{self, msg_server::Msg};
use openim_proto::pb::sdkws::{self, MsgData, PullMsgs};
use openim_storage::{BusMessage, Stores, topic};
use prost::Message as _;
use tonic::{Request, Response, Status};

pub use openim_proto::pb::msg::msg_server::MsgServer;

mod marks;
mod pull;
mod read;
mod search;
mod verify;
mod view;
mod webhooks;

use pull::{MAX_PULL, MAX_PULL_BYTES, keep_newest_within, pull_msgs};

/// Longest clientMsgID accepted (SDKs send 32 hex digits).
const MAX_CLIENT_MSG_ID: usize = 64;

pub struct MsgService {
    share: Share,
    stores: Stores,
    /// Users known to exist (users are never deleted, so a positive answer can be kept).
    known_users: DashSet<String>,
    notifier: Notifier,
    hooks: openim_common::webhook::Webhooks,
}

impl MsgService {
    pub fn new(share: Share, stores: Stores) -> Self {
        let notifier = Notifier::new(stores.bus.clone());
        Self { share, stores, known_users: DashSet::new(), notifier, hooks: openim_common::webhook::Webhooks::none() }
    }

    /// Calls the message callbacks of `webhooks.yml`.
    pub fn with_webhooks(mut self, hooks: openim_common::webhook::Webhooks) -> Self {
        self.hooks = hooks;
        self
    }

    async fn user_exists(&self, user_id: &str) -> Result<bool, Status> {
        if self.known_users.contains(user_id) {
            return Ok(true);
        }
        let found = self.stores.users.get_users(&[user_id.to_owned()]).await.map_err(store_status)?;
        if found.is_empty() {
            return Ok(false);
        }
        self.known_users.insert(user_id.to_owned());
        Ok(true)
    }

    /// The caller must be `user_id` itself or an administrator.
    fn check_self<T>(&self, req: &Request<T>, user_id: &str) -> Result<(), Status> {
        rpc::check_self_or_admin(req, &self.share, user_id).map_err(Status::from)
    }

    /// Whether `user_id` may read `conversation_id`.
    async fn can_read(&self, user_id: &str, conversation_id: &str) -> Result<bool, Status> {
        match ids::parse_conversation_id(conversation_id, user_id) {
            Some(ConversationTarget::Single(..)) => Ok(true),
            Some(ConversationTarget::Group(g)) => {
                let m = self.stores.groups.get_members(g, &[user_id.to_owned()]).await.map_err(store_status)?;
                Ok(!m.is_empty())
            }
            None => Ok(self.share.is_admin(user_id)),
        }
    }

    /// Up to the last `limit` seqs of `begin..=end`, as `viewer` sees them (see [`view::present`]).
    async fn read_range(
        &self,
        viewer: &str,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: i64,
    ) -> Result<Vec<MsgData>, Status> {
        let from = begin.max(end - limit + 1).max(1);
        if from > end {
            return Ok(Vec::new());
        }
        let messages = &self.stores.messages;
        let found = messages.messages_in_range(conversation_id, from, end, limit as u32).await.map_err(store_status)?;
        if found.is_empty() {
            return Ok(found);
        }
        let marks = messages.marks(conversation_id, from, end).await.map_err(store_status)?;
        Ok(view::present(found, &marks, viewer, from..=end))
    }

    /// The messages at `seqs`, as `viewer` sees them.
    async fn read_seqs(&self, viewer: &str, conversation_id: &str, seqs: &[i64]) -> Result<Vec<MsgData>, Status> {
        let mut wanted: Vec<i64> = seqs.iter().copied().filter(|s| *s > 0).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else { return Ok(Vec::new()) };
        let messages = &self.stores.messages;
        let found = messages.messages_by_seqs(conversation_id, &wanted).await.map_err(store_status)?;
        if found.is_empty() {
            return Ok(found);
        }
        let marks = messages.marks(conversation_id, first, last).await.map_err(store_status)?;
        Ok(view::present(found, &marks, viewer, wanted))
    }

    /// The newest message of each conversation, as `viewer` sees it.
    async fn read_latest(&self, viewer: &str, conversation_ids: &[String]) -> Result<HashMap<String, MsgData>, Status> {
        let messages = &self.stores.messages;
        let mut latest = messages.latest_messages(conversation_ids).await.map_err(store_status)?;
        // A message below where the viewer cleared the chat is not theirs to see any more.
        let min_seqs = self.min_seqs(viewer, conversation_ids).await?;
        latest.retain(|conv, m| m.seq >= min_seqs.get(conv).copied().unwrap_or(0));
        for (conv, m) in latest.iter_mut() {
            let marks = messages.marks(conv, m.seq, m.seq).await.map_err(store_status)?;
            if let Some(marks) = marks.get(&m.seq) {
                *m = view::apply(std::mem::take(m), marks, viewer);
            }
        }
        Ok(latest)
    }

    /// Where a clear left the user's history of each conversation starting (absent: 0).
    async fn min_seqs(&self, user_id: &str, conversation_ids: &[String]) -> Result<HashMap<String, i64>, Status> {
        let convs =
            self.stores.conversations.conversations(user_id, Some(conversation_ids)).await.map_err(store_status)?;
        Ok(convs.into_iter().map(|c| (c.conversation_id, c.min_seq)).collect())
    }

    /// The user's conversation IDs, or `requested` when given.
    async fn conversation_ids(&self, user_id: &str, requested: Vec<String>) -> Result<Vec<String>, Status> {
        if !requested.is_empty() {
            return Ok(requested);
        }
        let convs = self.stores.conversations.conversations(user_id, None).await.map_err(store_status)?;
        Ok(convs.into_iter().map(|c| c.conversation_id).collect())
    }

    /// Whether `owner` has `user` on its blacklist.
    async fn blocked(&self, owner: &str, user: &str) -> Result<bool, Status> {
        let found = self.stores.blacks.blacks(owner, Some(&[user.to_owned()])).await.map_err(store_status)?;
        Ok(!found.is_empty())
    }

    async fn validate(&self, m: &mut MsgData, op: &str) -> Result<String, Status> {
        if m.client_msg_id.is_empty() {
            return Err(ImError::args("clientMsgID is empty").into());
        }
        if m.client_msg_id.len() > MAX_CLIENT_MSG_ID {
            // Stores index it in a column of this width; a longer one could not be found again.
            return Err(ImError::args(format!("clientMsgID is longer than {MAX_CLIENT_MSG_ID} bytes")).into());
        }
        if m.send_id.is_empty() {
            return Err(ImError::args("sendID is empty").into());
        }
        let conversation_id = match m.session_type {
            session::SINGLE_CHAT => {
                if m.recv_id.is_empty() {
                    return Err(ImError::args("recvID is empty").into());
                }
                if !self.user_exists(&m.recv_id).await? {
                    return Err(ImError::new(
                        ErrCode::USER_ID_NOT_FOUND,
                        format!("receiver {} is not registered", m.recv_id),
                    )
                    .into());
                }
                if !self.share.is_admin(op) && self.blocked(&m.recv_id, &m.send_id).await? {
                    // Says no more than OpenIM does: the sender learns it cannot send, not who
                    // set what.
                    return Err(
                        ImError::new(ErrCode::BLOCKED_BY_PEER, "the receiver does not accept your messages").into()
                    );
                }
                ids::single_conversation_id(&m.send_id, &m.recv_id)
            }
            session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT => {
                if m.group_id.is_empty() {
                    return Err(ImError::args("groupID is empty").into());
                }
                self.check_may_send_to_group(op, &m.send_id, &m.group_id).await?;
                m.session_type = session::READ_GROUP_CHAT;
                ids::group_conversation_id(&m.group_id)
            }
            other => {
                return Err(ImError::args(format!("sessionType {other} is not supported")).into());
            }
        };
        Ok(conversation_id)
    }
}

#[tonic::async_trait]
impl Msg for MsgService {
    async fn send_msg(&self, req: Request<msg::SendMsgReq>) -> Result<Response<msg::SendMsgResp>, Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let mut m = req.into_inner().msg_data.ok_or_else(|| ImError::args("msgData is missing"))?;
        let admin = self.share.is_admin(&op);
        if m.send_id != op && !admin {
            return Err(ImError::no_permission(format!("sendID {} is not the token's user {op}", m.send_id)).into());
        }
        // What only the server sends: notification content types (1000 and up, 2101 revoke
        // notices among them) and system messages. The SDKs' own messages are all below 1000
        // and from msgFrom 100.
        if !admin && (m.content_type >= FIRST_NOTIFICATION_TYPE || !matches!(m.msg_from, 0 | msg_from::USER)) {
            return Err(ImError::no_permission(format!(
                "contentType {} with msgFrom {} is sent by the server only",
                m.content_type, m.msg_from
            ))
            .into());
        }
        let mut conversation_id = self.validate(&mut m, &op).await?;
        // A notification (`isNotNotification: false`, as the business notifications
        // administrators send) goes to the chat's notification conversation, where clients
        // look for notifications. Users cannot send one: it would pass for the server's.
        if m.options.get("isNotNotification") == Some(&false) {
            if !self.share.is_admin(&op) {
                return Err(ImError::no_permission("only administrators send notifications").into());
            }
            conversation_id = ids::notification_conversation_id(&conversation_id).unwrap_or(conversation_id);
        }
        let now = now_millis();
        m.server_msg_id = ids::new_id();
        if m.send_time == 0 {
            m.send_time = now;
        }
        if m.create_time == 0 {
            m.create_time = now;
        }
        if m.msg_from == 0 {
            m.msg_from = msg_from::USER;
        }
        m.seq = 0;
        webhooks::before_send(&self.hooks, &mut m, admin, &operation_id).await?;
        let resp = msg::SendMsgResp {
            server_msg_id: m.server_msg_id.clone(),
            client_msg_id: m.client_msg_id.clone(),
            send_time: m.send_time,
            modify: None,
        };
        let record = BusMessage { key: conversation_id, payload: m.encode_to_vec().into() };
        self.stores.bus.publish(topic::TO_TRANSFER, vec![record]).await.map_err(|e| {
            tracing::error!(error = %e, "Bus refused a message.");
            Status::from(ImError::internal(format!("message bus: {e}")))
        })?;
        webhooks::after_send(&self.hooks, &m, &operation_id);
        metrics::counter!("openim_msg_accepted_total").increment(1);
        Ok(Response::new(resp))
    }

    async fn get_max_seq(&self, req: Request<sdkws::GetMaxSeqReq>) -> Result<Response<sdkws::GetMaxSeqResp>, Status> {
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let owned = self.stores.conversations.conversations(&user_id, None).await.map_err(store_status)?;
        let mut min_seqs: HashMap<String, i64> = owned.iter().map(|c| (c.conversation_id.clone(), c.min_seq)).collect();
        let mut convs: Vec<String> = owned.into_iter().map(|c| c.conversation_id).collect();
        // With each chat, the notification conversation that goes with it, and the user's own.
        let notifications: Vec<String> = convs.iter().filter_map(|c| ids::notification_conversation_id(c)).collect();
        convs.extend(notifications);
        convs.push(ids::self_notification_conversation_id(&user_id));
        let max_seqs = self.stores.seqs.max_seqs(&convs).await.map_err(store_status)?;
        for c in &convs {
            min_seqs.entry(c.clone()).or_insert(0);
        }
        Ok(Response::new(sdkws::GetMaxSeqResp { max_seqs, min_seqs }))
    }

    async fn pull_message_by_seqs(
        &self,
        req: Request<sdkws::PullMessageBySeqsReq>,
    ) -> Result<Response<sdkws::PullMessageBySeqsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let req = req.into_inner();
        let conv_ids: Vec<String> = req.seq_ranges.iter().map(|r| r.conversation_id.clone()).collect();
        let max_seqs = self.stores.seqs.max_seqs(&conv_ids).await.map_err(store_status)?;
        let min_seqs = self.min_seqs(&user_id, &conv_ids).await?;
        let mut msgs = HashMap::new();
        let mut notification_msgs = HashMap::new();
        let mut budget = MAX_PULL_BYTES;
        for r in req.seq_ranges {
            if r.begin > r.end || r.begin < 0 {
                return Err(ImError::args(format!(
                    "seq range {}..{} of {} is invalid",
                    r.begin, r.end, r.conversation_id
                ))
                .into());
            }
            if !self.can_read(&user_id, &r.conversation_id).await? {
                continue;
            }
            let max = max_seqs.get(&r.conversation_id).copied().unwrap_or(0);
            let limit = if r.num > 0 { r.num.min(MAX_PULL) } else { MAX_PULL };
            let end = r.end.min(max.max(r.begin));
            let begin = r.begin.max(min_seqs.get(&r.conversation_id).copied().unwrap_or(0)).max(1);
            let into = if ids::is_notification(&r.conversation_id) { &mut notification_msgs } else { &mut msgs };
            if budget == 0 {
                // The answer is full: the client asks again for what it still lacks.
                into.insert(r.conversation_id, PullMsgs { msgs: Vec::new(), is_end: false, end_seq: end });
                continue;
            }
            let mut found = self.read_range(&user_id, &r.conversation_id, begin, end, limit).await?;
            let cut = keep_newest_within(&mut found, &mut budget);
            let mut page = pull_msgs(found, end, max);
            page.is_end &= !cut;
            into.insert(r.conversation_id, page);
        }
        Ok(Response::new(sdkws::PullMessageBySeqsResp { msgs, notification_msgs }))
    }

    async fn get_seq_message(
        &self,
        req: Request<msg::GetSeqMessageReq>,
    ) -> Result<Response<msg::GetSeqMessageResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let req = req.into_inner();
        let conv_ids: Vec<String> = req.conversations.iter().map(|c| c.conversation_id.clone()).collect();
        let min_seqs = self.min_seqs(&user_id, &conv_ids).await?;
        let mut msgs = HashMap::new();
        let mut notification_msgs = HashMap::new();
        let mut budget = MAX_PULL_BYTES;
        for c in req.conversations {
            if !self.can_read(&user_id, &c.conversation_id).await? {
                continue;
            }
            let min = min_seqs.get(&c.conversation_id).copied().unwrap_or(0);
            let seqs: Vec<i64> = c.seqs.into_iter().filter(|s| *s >= min).take(MAX_PULL as usize).collect();
            let mut found =
                if budget == 0 { Vec::new() } else { self.read_seqs(&user_id, &c.conversation_id, &seqs).await? };
            let cut =
                keep_newest_within(&mut found, &mut budget) || (found.is_empty() && !seqs.is_empty() && budget == 0);
            let end = found.last().map(|m| m.seq).unwrap_or(0);
            let into = if ids::is_notification(&c.conversation_id) { &mut notification_msgs } else { &mut msgs };
            into.insert(c.conversation_id, PullMsgs { msgs: found, is_end: !cut, end_seq: end });
        }
        Ok(Response::new(msg::GetSeqMessageResp { msgs, notification_msgs }))
    }

    async fn mark_conversation_as_read(
        &self,
        req: Request<msg::MarkConversationAsReadReq>,
    ) -> Result<Response<msg::MarkConversationAsReadResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        self.mark_conversation_read(req).await?;
        Ok(Response::new(msg::MarkConversationAsReadResp {}))
    }

    async fn get_server_time(
        &self,
        _req: Request<msg::GetServerTimeReq>,
    ) -> Result<Response<msg::GetServerTimeResp>, Status> {
        Ok(Response::new(msg::GetServerTimeResp { server_time: now_millis() }))
    }

    async fn mark_msgs_as_read(
        &self,
        req: Request<msg::MarkMsgsAsReadReq>,
    ) -> Result<Response<msg::MarkMsgsAsReadResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        self.mark_msgs_read(req).await?;
        Ok(Response::new(msg::MarkMsgsAsReadResp {}))
    }

    async fn set_conversation_has_read_seq(
        &self,
        req: Request<msg::SetConversationHasReadSeqReq>,
    ) -> Result<Response<msg::SetConversationHasReadSeqResp>, Status> {
        self.set_has_read_seq(req).await?;
        Ok(Response::new(msg::SetConversationHasReadSeqResp {}))
    }

    async fn get_conversations_has_read_and_max_seq(
        &self,
        req: Request<msg::GetConversationsHasReadAndMaxSeqReq>,
    ) -> Result<Response<msg::GetConversationsHasReadAndMaxSeqResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let req = req.into_inner();
        let mut convs = Vec::new();
        for c in self.conversation_ids(&user_id, req.conversation_i_ds).await? {
            if self.can_read(&user_id, &c).await? {
                convs.push(c);
            }
        }
        let max = self.stores.seqs.max_seqs(&convs).await.map_err(store_status)?;
        let read = self.stores.seqs.read_seqs(&user_id, &convs).await.map_err(store_status)?;
        let latest = self.stores.messages.latest_messages(&convs).await.map_err(store_status)?;
        let seqs = convs
            .into_iter()
            .map(|c| {
                let s = msg::Seqs {
                    max_seq: max.get(&c).copied().unwrap_or(0),
                    has_read_seq: read.get(&c).copied().unwrap_or(0),
                    max_seq_time: latest.get(&c).map(|m| m.send_time).unwrap_or(0),
                };
                (c, s)
            })
            .collect();
        Ok(Response::new(msg::GetConversationsHasReadAndMaxSeqResp { seqs, pinned_conversation_i_ds: Vec::new() }))
    }

    async fn get_last_message(
        &self,
        req: Request<msg::GetLastMessageReq>,
    ) -> Result<Response<msg::GetLastMessageResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let req = req.into_inner();
        let mut readable = Vec::new();
        for c in req.conversation_i_ds {
            if self.can_read(&user_id, &c).await? {
                readable.push(c);
            }
        }
        let msgs = self.read_latest(&user_id, &readable).await?;
        Ok(Response::new(msg::GetLastMessageResp { msgs }))
    }

    async fn revoke_msg(&self, req: Request<msg::RevokeMsgReq>) -> Result<Response<msg::RevokeMsgResp>, Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        let body = serde_json::json!({"conversationID": r.conversation_id, "seq": r.seq, "userID": r.user_id});
        self.revoke(&op, r).await?;
        // Sic: OpenIM's command for afterRevokeMsg.
        let command = "callbackBeforeAfterMsgCommand";
        self.hooks.tell("afterRevokeMsg", &self.hooks.config().after_revoke_msg, command, body, &operation_id);
        Ok(Response::new(msg::RevokeMsgResp {}))
    }

    async fn delete_msgs(&self, req: Request<msg::DeleteMsgsReq>) -> Result<Response<msg::DeleteMsgsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        self.delete(req.into_inner()).await?;
        Ok(Response::new(msg::DeleteMsgsResp {}))
    }

    async fn clear_conversations_msg(
        &self,
        req: Request<msg::ClearConversationsMsgReq>,
    ) -> Result<Response<msg::ClearConversationsMsgResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        let req = req.into_inner();
        self.clear(&user_id, Some(&req.conversation_i_ds), req.delete_sync_opt.unwrap_or_else(sync_self)).await?;
        Ok(Response::new(msg::ClearConversationsMsgResp {}))
    }

    async fn user_clear_all_msg(
        &self,
        req: Request<msg::UserClearAllMsgReq>,
    ) -> Result<Response<msg::UserClearAllMsgResp>, Status> {
        let user_id = req.get_ref().user_id.clone();
        self.check_self(&req, &user_id)?;
        self.clear(&user_id, None, req.into_inner().delete_sync_opt.unwrap_or_else(sync_self)).await?;
        Ok(Response::new(msg::UserClearAllMsgResp {}))
    }

    async fn delete_msg_physical_by_seq(
        &self,
        req: Request<msg::DeleteMsgPhysicalBySeqReq>,
    ) -> Result<Response<msg::DeleteMsgPhysicalBySeqResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        // OpenIM lets any token holder do this to any conversation; only administrators here.
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only administrators may delete messages for everyone by seq").into());
        }
        let req = req.into_inner();
        if req.conversation_id.is_empty() {
            return Err(ImError::args("conversationID is empty").into());
        }
        self.stores.messages.delete_physically(&req.conversation_id, &req.seqs).await.map_err(store_status)?;
        Ok(Response::new(msg::DeleteMsgPhysicalBySeqResp {}))
    }

    /// Deletes every message sent more than `timestamp` seconds ago. (OpenIM v3.8 compares that
    /// cut-off in seconds with send times in milliseconds, so there it deletes nothing; this is
    /// what it means to do, and what its clean-up job does.)
    async fn delete_msg_physical(
        &self,
        req: Request<msg::DeleteMsgPhysicalReq>,
    ) -> Result<Response<msg::DeleteMsgPhysicalResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only administrators may delete messages by age").into());
        }
        let age = req.into_inner().timestamp;
        if !(0..=100 * 365 * 86_400).contains(&age) {
            return Err(ImError::args(format!("timestamp {age} is not an age in seconds")).into());
        }
        let cutoff = now_millis() - age * 1000;
        let deleted = self.stores.messages.delete_messages_before(cutoff).await.map_err(store_status)?;
        tracing::info!(deleted, age_secs = age, %op, "Deleted messages by age.");
        Ok(Response::new(msg::DeleteMsgPhysicalResp {}))
    }

    async fn search_message(
        &self,
        req: Request<msg::SearchMessageReq>,
    ) -> Result<Response<msg::SearchMessageResp>, Status> {
        Ok(Response::new(self.search(req).await?))
    }

    async fn set_send_msg_status(
        &self,
        req: Request<msg::SetSendMsgStatusReq>,
    ) -> Result<Response<msg::SetSendMsgStatusResp>, Status> {
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only the API records send outcomes").into());
        }
        let operation_id = rpc::operation_id(&req);
        let status = req.into_inner().status;
        if operation_id.is_empty() || !(1..=3).contains(&status) {
            return Err(ImError::args(format!("status {status} for operationID {operation_id:?}")).into());
        }
        let key = send_status_key(&operation_id, status);
        self.stores.dedup.first_time(&[key], SEND_STATUS_TTL).await.map_err(store_status)?;
        Ok(Response::new(msg::SetSendMsgStatusResp {}))
    }

    /// The outcome of the REST send made with this request's operationID: 2 sent, 3 failed,
    /// 0 unknown (OpenIM's `MsgSendSuccessed`, `MsgSendFailed`, `MsgStatusNotExist`).
    async fn get_send_msg_status(
        &self,
        req: Request<msg::GetSendMsgStatusReq>,
    ) -> Result<Response<msg::GetSendMsgStatusResp>, Status> {
        let operation_id = rpc::operation_id(&req);
        let mut status = 0;
        if !operation_id.is_empty() {
            for candidate in [2, 3] {
                let marked =
                    self.stores.dedup.marked(&send_status_key(&operation_id, candidate)).await.map_err(store_status)?;
                if marked {
                    status = candidate;
                    break;
                }
            }
        }
        Ok(Response::new(msg::GetSendMsgStatusResp { status }))
    }
}

/// OpenIM's `NotificationBegin`: content types from here on are the server's.
const FIRST_NOTIFICATION_TYPE: i32 = 1000;

/// How long the outcome of a REST send is kept (OpenIM: 24 h).
const SEND_STATUS_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

fn send_status_key(operation_id: &str, status: i32) -> String {
    format!("send_status:{operation_id}:{status}")
}

/// A clear without a `deleteSyncOpt` (what the official SDK sends) is synced to the user's own
/// other devices, so the chat stays cleared there. OpenIM then tells no device; the SDK core
/// clears the local copy when told (1703).
fn sync_self() -> msg::DeleteSyncOpt {
    msg::DeleteSyncOpt { is_sync_self: true, is_sync_other: false }
}
