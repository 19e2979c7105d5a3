//! `openim-rpc-conversation`: each user's conversations with their settings, seqs and the sorted
//! list (latest message, unread count) that clients show.

mod settings;

use std::collections::HashMap;

use openim_common::config::Share;
use openim_common::error::store_status;
use openim_common::notify::Notifier;
use openim_common::rpc;
use openim_common::{ImError, ids};
use openim_proto::pb::conversation::{self as pb, conversation_server::Conversation as ConversationRpc};
use openim_storage::{Conversation, Stores};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::conversation::conversation_server::ConversationServer;

/// `recvMsgOpt` values that mean "do not notify".
const NOT_NOTIFY: [i32; 2] = [1, 2];

pub struct ConversationService {
    share: Share,
    stores: Stores,
    notifier: Notifier,
}

pub fn to_pb(c: Conversation, max_seq: i64) -> pb::Conversation {
    pb::Conversation {
        owner_user_id: c.owner_user_id,
        conversation_id: c.conversation_id,
        recv_msg_opt: c.recv_msg_opt,
        conversation_type: c.conversation_type,
        user_id: c.user_id,
        group_id: c.group_id,
        is_pinned: c.is_pinned,
        attached_info: c.attached_info,
        is_private_chat: c.is_private_chat,
        group_at_type: c.group_at_type,
        ex: c.ex,
        burn_duration: c.burn_duration,
        min_seq: c.min_seq,
        max_seq,
        msg_destruct_time: c.msg_destruct_time,
        is_msg_destruct: c.is_msg_destruct,
        ..Default::default()
    }
}

impl ConversationService {
    pub fn new(share: Share, stores: Stores) -> Self {
        let notifier = Notifier::new(stores.bus.clone());
        Self { share, stores, notifier }
    }

    /// The owner's conversations as clients list them (all, or the given IDs). The stored
    /// notification conversations (`n_…`, kept so that sync finds their seqs) are not listed,
    /// as OpenIM's SDK keeps them out of the conversation list.
    async fn listed(&self, owner: &str, ids: Option<&[String]>) -> Result<Vec<openim_storage::Conversation>, Status> {
        let mut convs = self.stores.conversations.conversations(owner, ids).await.map_err(store_status)?;
        convs.retain(|c| !ids::is_notification(&c.conversation_id));
        Ok(convs)
    }

    /// The owner's conversations (all, or the given IDs) with their max seqs filled in.
    pub async fn with_seqs(&self, owner: &str, ids: Option<&[String]>) -> Result<Vec<pb::Conversation>, Status> {
        let convs = self.listed(owner, ids).await?;
        let conv_ids: Vec<String> = convs.iter().map(|c| c.conversation_id.clone()).collect();
        let max = self.stores.seqs.max_seqs(&conv_ids).await.map_err(store_status)?;
        Ok(convs
            .into_iter()
            .map(|c| {
                let m = max.get(&c.conversation_id).copied().unwrap_or(0);
                to_pb(c, m)
            })
            .collect())
    }

    async fn sorted(&self, user_id: &str, ids: &[String]) -> Result<Vec<pb::ConversationElem>, Status> {
        let convs = self.with_seqs(user_id, (!ids.is_empty()).then_some(ids)).await?;
        let conv_ids: Vec<String> = convs.iter().map(|c| c.conversation_id.clone()).collect();
        let read = self.stores.seqs.read_seqs(user_id, &conv_ids).await.map_err(store_status)?;
        let latest = self.stores.messages.latest_messages(&conv_ids).await.map_err(store_status)?;
        let sender_ids: Vec<String> = latest.values().map(|m| m.send_id.clone()).collect();
        let senders: HashMap<String, _> = self
            .stores
            .users
            .get_users(&sender_ids)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|u| (u.user_id.clone(), u))
            .collect();
        let group_ids: Vec<String> =
            convs.iter().filter(|c| !c.group_id.is_empty()).map(|c| c.group_id.clone()).collect();
        let groups: HashMap<String, _> = self
            .stores
            .groups
            .get_groups(&group_ids)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|g| (g.group_id.clone(), g))
            .collect();

        let mut elems: Vec<pb::ConversationElem> = convs
            .into_iter()
            .map(|c| {
                let unread = (c.max_seq - read.get(&c.conversation_id).copied().unwrap_or(0)).max(0);
                let msg_info = latest.get(&c.conversation_id).map(|m| {
                    let sender = senders.get(&m.send_id);
                    let group = groups.get(&m.group_id);
                    pb::MsgInfo {
                        server_msg_id: m.server_msg_id.clone(),
                        client_msg_id: m.client_msg_id.clone(),
                        session_type: m.session_type,
                        send_id: m.send_id.clone(),
                        recv_id: m.recv_id.clone(),
                        sender_name: sender.map(|u| u.nickname.clone()).unwrap_or_else(|| m.sender_nickname.clone()),
                        face_url: sender.map(|u| u.face_url.clone()).unwrap_or_default(),
                        group_id: m.group_id.clone(),
                        group_name: group.map(|g| g.group_name.clone()).unwrap_or_default(),
                        group_face_url: group.map(|g| g.face_url.clone()).unwrap_or_default(),
                        group_type: group.map(|g| g.group_type).unwrap_or_default(),
                        group_member_count: 0,
                        latest_msg_recv_time: m.send_time,
                        msg_from: m.msg_from,
                        content_type: m.content_type,
                        content: String::from_utf8_lossy(&m.content).into_owned(),
                        ex: m.ex.clone(),
                    }
                });
                pb::ConversationElem {
                    conversation_id: c.conversation_id,
                    recv_msg_opt: c.recv_msg_opt,
                    unread_count: unread,
                    is_pinned: c.is_pinned,
                    msg_info,
                }
            })
            .collect();
        // Pinned first, then by latest message, newest first.
        elems.sort_by_key(|e| {
            (
                std::cmp::Reverse(e.is_pinned),
                std::cmp::Reverse(e.msg_info.as_ref().map(|m| m.latest_msg_recv_time).unwrap_or(0)),
            )
        });
        Ok(elems)
    }

    fn check<T>(&self, req: &Request<T>, owner: &str) -> Result<(), Status> {
        rpc::check_self_or_admin(req, &self.share, owner).map_err(Status::from)
    }
}

#[tonic::async_trait]
impl ConversationRpc for ConversationService {
    async fn get_conversation(
        &self,
        req: Request<pb::GetConversationReq>,
    ) -> Result<Response<pb::GetConversationResp>, Status> {
        let owner = req.get_ref().owner_user_id.clone();
        self.check(&req, &owner)?;
        let id = req.into_inner().conversation_id;
        let conversation = self.with_seqs(&owner, Some(std::slice::from_ref(&id))).await?.pop();
        if conversation.is_none() {
            return Err(ImError::not_found(format!("conversation {id} of {owner}")).into());
        }
        Ok(Response::new(pb::GetConversationResp { conversation }))
    }

    async fn get_sorted_conversation_list(
        &self,
        req: Request<pb::GetSortedConversationListReq>,
    ) -> Result<Response<pb::GetSortedConversationListResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let req = req.into_inner();
        let elems = self.sorted(&user, &req.conversation_i_ds).await?;
        let unread_total = elems.iter().map(|e| e.unread_count).sum();
        let total = elems.len() as i64;
        let (offset, limit) = rpc::page(req.pagination.as_ref());
        let conversation_elems = elems.into_iter().skip(offset as usize).take(limit as usize).collect();
        Ok(Response::new(pb::GetSortedConversationListResp {
            conversation_total: total,
            unread_total,
            conversation_elems,
        }))
    }

    async fn get_all_conversations(
        &self,
        req: Request<pb::GetAllConversationsReq>,
    ) -> Result<Response<pb::GetAllConversationsResp>, Status> {
        let owner = req.get_ref().owner_user_id.clone();
        self.check(&req, &owner)?;
        Ok(Response::new(pb::GetAllConversationsResp { conversations: self.with_seqs(&owner, None).await? }))
    }

    async fn get_conversations(
        &self,
        req: Request<pb::GetConversationsReq>,
    ) -> Result<Response<pb::GetConversationsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let owner = req.get_ref().owner_user_id.clone();
        self.check(&req, &owner)?;
        let ids = req.into_inner().conversation_i_ds;
        Ok(Response::new(pb::GetConversationsResp { conversations: self.with_seqs(&owner, Some(&ids)).await? }))
    }

    async fn get_conversation_i_ds(
        &self,
        req: Request<pb::GetConversationIDsReq>,
    ) -> Result<Response<pb::GetConversationIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let convs = self.listed(&user, None).await?;
        Ok(Response::new(pb::GetConversationIDsResp {
            conversation_i_ds: convs.into_iter().map(|c| c.conversation_id).collect(),
        }))
    }

    async fn get_full_owner_conversation_i_ds(
        &self,
        req: Request<pb::GetFullOwnerConversationIDsReq>,
    ) -> Result<Response<pb::GetFullOwnerConversationIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let convs = self.listed(&user, None).await?;
        let conv_ids: Vec<String> = convs.into_iter().map(|c| c.conversation_id).collect();
        let hash = ids::id_hash(&conv_ids);
        let equal = hash == req.get_ref().id_hash;
        Ok(Response::new(pb::GetFullOwnerConversationIDsResp {
            // OpenIM answers the hash itself here (the SDK compares hashes, not versions).
            version: hash,
            version_id: format!("conversations-{user}"),
            equal,
            conversation_i_ds: if equal { Vec::new() } else { conv_ids },
        }))
    }

    async fn get_incremental_conversation(
        &self,
        req: Request<pb::GetIncrementalConversationReq>,
    ) -> Result<Response<pb::GetIncrementalConversationResp>, Status> {
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let convs = self.with_seqs(&user, None).await?;
        let conv_ids: Vec<String> = convs.iter().map(|c| c.conversation_id.clone()).collect();
        Ok(Response::new(pb::GetIncrementalConversationResp {
            version: ids::list_version(&conv_ids),
            version_id: format!("conversations-{user}"),
            full: true,
            delete: Vec::new(),
            insert: convs,
            update: Vec::new(),
        }))
    }

    async fn get_not_notify_conversation_i_ds(
        &self,
        req: Request<pb::GetNotNotifyConversationIDsReq>,
    ) -> Result<Response<pb::GetNotNotifyConversationIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let convs = self.listed(&user, None).await?;
        let conversation_i_ds =
            convs.into_iter().filter(|c| NOT_NOTIFY.contains(&c.recv_msg_opt)).map(|c| c.conversation_id).collect();
        Ok(Response::new(pb::GetNotNotifyConversationIDsResp { conversation_i_ds }))
    }

    async fn get_pinned_conversation_i_ds(
        &self,
        req: Request<pb::GetPinnedConversationIDsReq>,
    ) -> Result<Response<pb::GetPinnedConversationIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        self.check(&req, &user)?;
        let convs = self.listed(&user, None).await?;
        let conversation_i_ds = convs.into_iter().filter(|c| c.is_pinned).map(|c| c.conversation_id).collect();
        Ok(Response::new(pb::GetPinnedConversationIDsResp { conversation_i_ds }))
    }

    async fn set_conversations(
        &self,
        req: Request<pb::SetConversationsReq>,
    ) -> Result<Response<pb::SetConversationsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        ConversationService::set_conversations(self, req).await?;
        Ok(Response::new(pb::SetConversationsResp {}))
    }

    async fn get_owner_conversation(
        &self,
        req: Request<pb::GetOwnerConversationReq>,
    ) -> Result<Response<pb::GetOwnerConversationResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        let (offset, limit) = rpc::page(req.get_ref().pagination.as_ref());
        let all = self.with_seqs(&user, None).await?;
        let total = all.len() as i64;
        let conversations = all.into_iter().skip(offset as usize).take(limit as usize).collect();
        Ok(Response::new(pb::GetOwnerConversationResp { total, conversations }))
    }

    async fn get_conversation_offline_push_user_i_ds(
        &self,
        req: Request<pb::GetConversationOfflinePushUserIDsReq>,
    ) -> Result<Response<pb::GetConversationOfflinePushUserIDsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let user_i_ds = self.offline_push_user_ids(req).await?;
        Ok(Response::new(pb::GetConversationOfflinePushUserIDsResp { user_i_ds }))
    }
}
