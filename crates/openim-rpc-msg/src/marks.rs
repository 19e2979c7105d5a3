//! Revoke and delete, as OpenIM v3.8 does them (`docs/revoke-and-delete.md`): the message stays
//! stored unchanged and gets a mark that reads apply per user; the other devices and parties
//! learn of it from a notification in the chat's `n_…` conversation.

use openim_common::error::store_status;
use openim_common::ids::{self, ConversationTarget};
use openim_common::notify;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::constants::{content, session};
use openim_proto::pb::msg;
use openim_proto::pb::sdkws::{ClearConversationTips, ConversationUpdateTips, DeleteMsgsTips, MsgData, RevokeMsgTips};
use openim_storage::{RevokeMark, role};
use tonic::Status;

use crate::MsgService;

/// What kind of notification to send.
struct Note {
    content_type: i32,
    session_type: i32,
    /// Pushed to whoever is online, never stored (no seq).
    online_only: bool,
}

impl Note {
    fn stored(content_type: i32, session_type: i32) -> Self {
        Self { content_type, session_type, online_only: false }
    }

    fn online(content_type: i32, session_type: i32) -> Self {
        Self { content_type, session_type, online_only: true }
    }
}

impl MsgService {
    /// `POST /msg/revoke_msg`: checks in OpenIM's order, then marks the message and notifies.
    pub(crate) async fn revoke(&self, op: &str, req: msg::RevokeMsgReq) -> Result<(), Status> {
        if req.user_id.is_empty() {
            return Err(ImError::args("userID is empty").into());
        }
        if req.conversation_id.is_empty() {
            return Err(ImError::args("conversationID is empty").into());
        }
        if req.seq < 0 {
            return Err(ImError::args(format!("seq {} is negative", req.seq)).into());
        }
        if req.user_id != op && !self.share.is_admin(op) {
            return Err(ImError::no_permission(format!("userID {} is not the token's user {op}", req.user_id)).into());
        }
        let users = self.stores.users.get_users(std::slice::from_ref(&req.user_id)).await.map_err(store_status)?;
        let Some(user) = users.into_iter().next() else {
            return Err(
                ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {} is not registered", req.user_id)).into()
            );
        };
        let not_found = || ImError::not_found(format!("message {} of {} not found", req.seq, req.conversation_id));
        if !self.can_read(&req.user_id, &req.conversation_id).await? {
            return Err(not_found().into());
        }
        let Some(m) = self
            .read_seqs(&req.user_id, &req.conversation_id, &[req.seq])
            .await?
            .into_iter()
            .find(|m| m.seq == req.seq && !m.client_msg_id.is_empty())
        else {
            return Err(not_found().into());
        };
        let already = || ImError::new(ErrCode::MSG_ALREADY_REVOKE, format!("message {} was revoked already", req.seq));
        if m.content_type == content::REVOKE {
            return Err(already().into());
        }
        let role = if self.share.is_admin(op) { 0 } else { self.revoker_role(&req.user_id, &user, &m).await? };
        let now = now_millis();
        let mark = RevokeMark { role, user_id: req.user_id.clone(), nickname: user.nickname.clone(), time: now };
        if !self.stores.messages.revoke(&req.conversation_id, req.seq, &mark).await.map_err(store_status)? {
            return Err(already().into());
        }
        metrics::counter!("openim_msg_revoked_total").increment(1);

        let tips = RevokeMsgTips {
            revoker_user_id: op.to_owned(),
            client_msg_id: m.client_msg_id.clone(),
            revoke_time: now,
            sesstion_type: m.session_type,
            seq: req.seq,
            conversation_id: req.conversation_id.clone(),
            is_admin_revoke: self.share.is_admin(op),
        };
        let group = m.session_type == session::READ_GROUP_CHAT;
        let recv_id = if group { m.group_id.clone() } else { m.recv_id.clone() };
        let group_id = if group { m.group_id.clone() } else { String::new() };
        let note = Note::stored(content::REVOKE, m.session_type);
        self.notify(&req.user_id, &recv_id, &group_id, note, &tips).await;
        Ok(())
    }

    /// The role a non-administrator revokes `m` with, or why they may not: in a single chat only
    /// the sender may, with their app manager level; in a group the sender may, and so may the
    /// owner (anyone's message) and admins (ordinary members' messages and those of members who
    /// left), with their role level.
    async fn revoker_role(&self, user_id: &str, user: &openim_storage::User, m: &MsgData) -> Result<i32, Status> {
        match m.session_type {
            session::SINGLE_CHAT => {
                if m.send_id != user_id {
                    return Err(ImError::no_permission("only the sender may revoke a single-chat message").into());
                }
                Ok(user.app_manger_level)
            }
            session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT => {
                let wanted = [user_id.to_owned(), m.send_id.clone()];
                let members = self.stores.groups.get_members(&m.group_id, &wanted).await.map_err(store_status)?;
                let find = |id: &str| members.iter().find(|g| g.user_id == id);
                let Some(revoker) = find(user_id) else {
                    return Err(ImError::no_permission(format!("{user_id} is not a member of {}", m.group_id)).into());
                };
                let sender_role = find(&m.send_id).map(|s| s.role_level);
                let allowed = user_id == m.send_id
                    || revoker.role_level == role::OWNER
                    || (revoker.role_level == role::ADMIN && sender_role.is_none_or(|r| r == role::ORDINARY));
                if !allowed {
                    return Err(ImError::no_permission(format!(
                        "{user_id} (role {}) may not revoke a message of {} (role {})",
                        revoker.role_level,
                        m.send_id,
                        sender_role.unwrap_or_default()
                    ))
                    .into());
                }
                Ok(revoker.role_level)
            }
            other => {
                Err(ImError::internal(format!("revoking a message of sessionType {other} is not supported")).into())
            }
        }
    }

    /// `POST /msg/delete_msgs`, for a caller already checked to be `req.userID` or an admin:
    /// deletes for the user alone (what the SDKs ask for), or for everyone with `IsSyncOther`.
    pub(crate) async fn delete(&self, req: msg::DeleteMsgsReq) -> Result<(), Status> {
        if req.conversation_id.is_empty() {
            return Err(ImError::args("conversationID is empty").into());
        }
        // OpenIM checks nothing more; deleting in a conversation one is not part of is refused here.
        if !self.can_read(&req.user_id, &req.conversation_id).await? {
            return Err(ImError::no_permission(format!(
                "{} is not in conversation {}",
                req.user_id, req.conversation_id
            ))
            .into());
        }
        let opt = req.delete_sync_opt.unwrap_or_default();
        let tips = DeleteMsgsTips {
            user_id: req.user_id.clone(),
            conversation_id: req.conversation_id.clone(),
            seqs: req.seqs,
        };
        if opt.is_sync_other {
            self.check_delete_for_everyone(&req.user_id, &req.conversation_id, &tips.seqs).await?;
            let messages = &self.stores.messages;
            messages.delete_physically(&req.conversation_id, &tips.seqs).await.map_err(store_status)?;
            // To the other party (or the group), in the chat's notification conversation.
            match ids::parse_conversation_id(&req.conversation_id, &req.user_id) {
                Some(ConversationTarget::Group(g)) => {
                    let note = Note::stored(content::DELETE_MSGS, session::READ_GROUP_CHAT);
                    self.notify(&req.user_id, g, g, note, &tips).await;
                }
                Some(ConversationTarget::Single(a, b)) => {
                    let peer = if a == req.user_id { b } else { a };
                    let note = Note::stored(content::DELETE_MSGS, session::SINGLE_CHAT);
                    self.notify(&req.user_id, peer, "", note, &tips).await;
                }
                None => {}
            }
        } else {
            let messages = &self.stores.messages;
            messages.delete_for_user(&req.conversation_id, &tips.seqs, &req.user_id).await.map_err(store_status)?;
            if opt.is_sync_self {
                let me = &req.user_id;
                self.notify(me, me, "", Note::stored(content::DELETE_MSGS, session::SINGLE_CHAT), &tips).await;
            }
        }
        metrics::counter!("openim_msg_deleted_total").increment(tips.seqs.len() as u64);
        Ok(())
    }

    /// Deleting for everyone is for one's own messages, or, in a group, for its owner and
    /// admins (and for the system's administrators anywhere). OpenIM checks nothing: any member
    /// could erase anyone's messages.
    async fn check_delete_for_everyone(
        &self,
        user_id: &str,
        conversation_id: &str,
        seqs: &[i64],
    ) -> Result<(), Status> {
        if self.share.is_admin(user_id) {
            return Ok(());
        }
        if let Some(ConversationTarget::Group(g)) = ids::parse_conversation_id(conversation_id, user_id) {
            let me = self.stores.groups.get_members(g, &[user_id.to_owned()]).await.map_err(store_status)?;
            if me.first().is_some_and(|m| m.role_level == role::OWNER || m.role_level == role::ADMIN) {
                return Ok(());
            }
        }
        let found = self.stores.messages.messages_by_seqs(conversation_id, seqs).await.map_err(store_status)?;
        if let Some(m) = found.iter().find(|m| m.send_id != user_id) {
            return Err(ImError::no_permission(format!(
                "{user_id} may delete for everyone only their own messages; seq {} is {}'s",
                m.seq, m.send_id
            ))
            .into());
        }
        Ok(())
    }

    /// Clearing for everyone erases other people's messages: only a group's owner and admins may
    /// (and the system's administrators anywhere); in a single chat nobody else may.
    async fn check_clear_for_everyone(&self, user_id: &str, conversation_ids: &[String]) -> Result<(), Status> {
        if self.share.is_admin(user_id) {
            return Ok(());
        }
        for conv in conversation_ids {
            let allowed = match ids::parse_conversation_id(conv, user_id) {
                Some(ConversationTarget::Group(g)) => {
                    let me = self.stores.groups.get_members(g, &[user_id.to_owned()]).await.map_err(store_status)?;
                    me.first().is_some_and(|m| m.role_level == role::OWNER || m.role_level == role::ADMIN)
                }
                _ => false,
            };
            if !allowed {
                return Err(ImError::no_permission(format!(
                    "{user_id} may not clear {conv} for everyone (only a group's owner and admins may)"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// `POST /msg/clear_conversation_msg` and `/msg/user_clear_all_msg` (`requested` = `None`),
    /// for a caller already checked to be `user_id` or an admin. Nothing is deleted: the user's
    /// min seq of each conversation moves past its max seq (everyone's with `IsSyncOther`), so
    /// that pulls start after it, and the user's read seq moves to the max seq. Conversations the
    /// user does not have are skipped.
    pub(crate) async fn clear(
        &self,
        user_id: &str,
        requested: Option<&[String]>,
        opt: msg::DeleteSyncOpt,
    ) -> Result<(), Status> {
        let convs = self.stores.conversations.conversations(user_id, requested).await.map_err(store_status)?;
        if convs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = convs.iter().map(|c| c.conversation_id.clone()).collect();
        let max = self.stores.seqs.max_seqs(&ids).await.map_err(store_status)?;
        let max_of = |c: &str| max.get(c).copied().unwrap_or(0);
        if opt.is_sync_other {
            self.check_clear_for_everyone(user_id, &ids).await?;
            for conv in &ids {
                let min = max_of(conv) + 1;
                let set = match ids::parse_conversation_id(conv, user_id) {
                    // Everyone who has it: both sides of a single chat, every member of a group
                    // (and former members, who cannot read it anyway), in one statement.
                    Some(_) => self.stores.conversations.set_everyones_min_seq(conv, min).await,
                    None => self.stores.conversations.set_min_seqs(user_id, &[(conv.clone(), min)]).await,
                };
                set.map_err(store_status)?;
                let tips = ClearConversationTips { user_id: user_id.to_owned(), conversation_i_ds: vec![conv.clone()] };
                let (recv, group, session_type) = match ids::parse_conversation_id(conv, user_id) {
                    Some(ConversationTarget::Group(g)) => (g, g, session::READ_GROUP_CHAT),
                    Some(ConversationTarget::Single(a, b)) => {
                        (if a == user_id { b } else { a }, "", session::SINGLE_CHAT)
                    }
                    None => continue,
                };
                let note = Note::online(content::CLEAR_CONVERSATION, session_type);
                self.notify(user_id, recv, group, note, &tips).await;
            }
        } else {
            let mins: Vec<(String, i64)> = ids.iter().map(|c| (c.clone(), max_of(c) + 1)).collect();
            self.stores.conversations.set_min_seqs(user_id, &mins).await.map_err(store_status)?;
        }
        for conv in &ids {
            self.stores.seqs.set_read_seq(user_id, conv, max_of(conv)).await.map_err(store_status)?;
        }
        let changed = ConversationUpdateTips { user_id: user_id.to_owned(), conversation_id_list: ids.clone() };
        let note = Note::online(content::CONVERSATION_CHANGE, session::SINGLE_CHAT);
        self.notify(user_id, user_id, "", note, &changed).await;
        if opt.is_sync_self && !opt.is_sync_other {
            let tips = ClearConversationTips { user_id: user_id.to_owned(), conversation_i_ds: ids };
            let note = Note::online(content::CLEAR_CONVERSATION, session::SINGLE_CHAT);
            self.notify(user_id, user_id, "", note, &tips).await;
        }
        Ok(())
    }

    /// Sends a notification from `send_id` through the normal pipeline: in the `n_…`
    /// conversation, stored with a seq unless it is online-only, and pushed.
    async fn notify<T: serde::Serialize>(&self, send_id: &str, recv_id: &str, group_id: &str, note: Note, tips: &T) {
        let Note { content_type, session_type, online_only } = note;
        let note = notify::Note {
            content_type,
            session_type,
            send_id: send_id.to_owned(),
            recv_id: recv_id.to_owned(),
            group_id: group_id.to_owned(),
            online_only,
            show: false,
        };
        self.notifier.send(note, tips).await;
    }
}
