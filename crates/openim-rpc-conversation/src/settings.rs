//! Per-user conversation settings (`set_conversations`): pin, do-not-disturb, private chat and
//! burn time, @-mentions, message destruction, `ex`. Every changed user's devices are told with a
//! 1300 notification (their own `n_<u>_<u>`), so a second device follows without a relogin; a
//! private-chat change also tells the peer (1701), as OpenIM does.

use openim_common::error::store_status;
use openim_common::ids::{self, ConversationTarget};
use openim_common::notify::Note;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, rpc};
use openim_proto::constants::session;
use openim_proto::pb::conversation as pb;
use openim_proto::pb::sdkws::{ConversationSetPrivateTips, ConversationUpdateTips};
use openim_storage::{Conversation, ConversationPatch};
use tonic::{Request, Status};

use crate::ConversationService;

/// Most users one request may change.
const MAX_USERS: usize = 1000;
const MAX_EX: usize = 2048;
/// `ConversationChangeNotification`.
const CONVERSATION_CHANGED: i32 = 1300;
/// `ConversationPrivateChatNotification`.
const PRIVATE_CHAT_SET: i32 = 1701;

impl ConversationService {
    pub(crate) async fn set_conversations(&self, req: Request<pb::SetConversationsReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let admin = self.share.is_admin(&op);
        let r = req.into_inner();
        let c = r.conversation.ok_or_else(|| ImError::args("conversation is missing"))?;
        if r.user_i_ds.is_empty() || r.user_i_ds.len() > MAX_USERS {
            return Err(ImError::args(format!(
                "userIDs has {} entries; 1 to {MAX_USERS} are allowed",
                r.user_i_ds.len()
            ))
            .into());
        }
        if let Some(u) = r.user_i_ds.iter().find(|u| **u != op)
            && !admin
        {
            return Err(ImError::no_permission(format!("{op} may not change {u}'s conversations")).into());
        }
        for (field, value) in [("ex", &c.ex), ("attachedInfo", &c.attached_info)] {
            if let Some(v) = value
                && v.value.chars().count() > MAX_EX
            {
                return Err(ImError::args(format!("{field} is longer than {MAX_EX} characters")).into());
            }
        }
        if c.recv_msg_opt.as_ref().is_some_and(|o| !(0..=2).contains(&o.value)) {
            return Err(
                ImError::args("recvMsgOpt must be 0 (receive), 1 (do not receive) or 2 (no notification)").into()
            );
        }
        // Only one's own conversations: a single chat one is part of, a group one is in.
        for user in &r.user_i_ds {
            match ids::parse_conversation_id(&c.conversation_id, user) {
                Some(ConversationTarget::Single(..)) if c.conversation_id.starts_with("si_") => {}
                Some(ConversationTarget::Group(g)) if c.conversation_id.starts_with("sg_") => {
                    let member =
                        self.stores.groups.get_members(g, std::slice::from_ref(user)).await.map_err(store_status)?;
                    if member.is_empty() {
                        return Err(
                            ImError::new(ErrCode::NOT_IN_GROUP_YET, format!("{user} is not in group {g}")).into()
                        );
                    }
                }
                _ => {
                    return Err(ImError::args(format!(
                        "{} is not a conversation of {user} (si_<a>_<b> or sg_<group>)",
                        c.conversation_id
                    ))
                    .into());
                }
            }
        }
        let patch = ConversationPatch {
            recv_msg_opt: c.recv_msg_opt.map(|v| v.value),
            is_pinned: c.is_pinned.map(|v| v.value),
            is_private_chat: c.is_private_chat.map(|v| v.value),
            burn_duration: c.burn_duration.map(|v| v.value),
            group_at_type: c.group_at_type.map(|v| v.value),
            attached_info: c.attached_info.map(|v| v.value),
            ex: c.ex.map(|v| v.value),
            msg_destruct_time: c.msg_destruct_time.map(|v| v.value),
            is_msg_destruct: c.is_msg_destruct.map(|v| v.value),
        };
        let mut existing = Vec::new();
        for user in &r.user_i_ds {
            let found = self.stores.conversations.conversations(user, Some(std::slice::from_ref(&c.conversation_id)));
            existing.extend(found.await.map_err(store_status)?);
        }
        // Users whose settings change: those without the conversation, and those it differs for.
        let existing: std::collections::HashMap<&str, &Conversation> =
            existing.iter().map(|e| (e.owner_user_id.as_str(), e)).collect();
        let changed: Vec<String> =
            r.user_i_ds.iter().filter(|u| existing.get(u.as_str()).is_none_or(|e| patch.changes(e))).cloned().collect();
        if changed.is_empty() {
            return Ok(());
        }
        let group = c.conversation_id.strip_prefix("sg_").unwrap_or_default();
        let base = Conversation {
            conversation_id: c.conversation_id.clone(),
            conversation_type: if group.is_empty() { session::SINGLE_CHAT } else { session::READ_GROUP_CHAT },
            group_id: group.to_owned(),
            create_time: now_millis(),
            ..Default::default()
        };
        // The peer of a single chat is per owner.
        for owner in &changed {
            let mut base = base.clone();
            if let Some(ConversationTarget::Single(a, b)) = ids::parse_conversation_id(&c.conversation_id, owner) {
                base.user_id = if a == owner { b.to_owned() } else { a.to_owned() };
            }
            self.stores
                .conversations
                .set_conversations(std::slice::from_ref(owner), &base, &patch)
                .await
                .map_err(store_status)?;
        }
        let mut notes = Vec::new();
        for owner in &changed {
            let tips = ConversationUpdateTips {
                user_id: owner.clone(),
                conversation_id_list: vec![c.conversation_id.clone()],
            };
            notes.push((Note::single(CONVERSATION_CHANGED, owner, owner), openim_common::notify::content(&tips)));
            if let (Some(private), Some(ConversationTarget::Single(a, b))) =
                (patch.is_private_chat, ids::parse_conversation_id(&c.conversation_id, owner))
            {
                let peer = if a == owner { b } else { a };
                let tips = ConversationSetPrivateTips {
                    recv_id: peer.to_owned(),
                    send_id: owner.clone(),
                    is_private: private,
                    conversation_id: c.conversation_id.clone(),
                };
                let mut note = Note::single(PRIVATE_CHAT_SET, owner, peer);
                note.show = true;
                notes.push((note, openim_common::notify::content(&tips)));
            }
        }
        self.notifier.send_all(notes).await;
        Ok(())
    }

    /// Which of `user_ids` get offline pushes for the conversation. Administrators only: it
    /// tells whose do-not-disturb is on.
    pub(crate) async fn offline_push_user_ids(
        &self,
        req: Request<pb::GetConversationOfflinePushUserIDsReq>,
    ) -> Result<Vec<String>, Status> {
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may ask").into());
        }
        let r = req.into_inner();
        if r.conversation_id.is_empty() {
            return Err(ImError::args("conversationID is empty").into());
        }
        if r.user_i_ds.len() > MAX_USERS {
            return Err(ImError::args(format!("userIDs has more than {MAX_USERS} entries")).into());
        }
        self.stores.conversations.receiving_owners(&r.conversation_id, &r.user_i_ds).await.map_err(store_status)
    }
}
