//! Managing a group: its info (name, announcement, the rest) and its owner. The owner and
//! admins (and app administrators) set the info; only the owner hands the group on.

use openim_common::error::store_status;
use openim_common::notify::{self, Note};
use openim_common::token::now_millis;
use openim_common::{ImError, ids, rpc};
use openim_proto::constants::session;
use openim_proto::pb::group;
use openim_proto::pb::sdkws::ConversationUpdateTips;
use openim_storage::{Conversation, ConversationPatch, GroupMember, GroupPatch, role};
use serde_json::json;
use tonic::{Request, Status};

use crate::{GroupService, member_info};

/// `groupAtType` of a chat with an unread announcement (OpenIM's `GroupNotification`).
const GROUP_AT_ANNOUNCEMENT: i32 = 4;
/// `ConversationChangeNotification`.
const CONVERSATION_CHANGED: i32 = 1300;

impl GroupService {
    /// Applies `patch` to the group as `op` and tells the members: 1520 for a new name, 1519 for
    /// the announcement, 1502 for anything else.
    pub(crate) async fn set_info(
        &self,
        op: &str,
        operation_id: &str,
        group_id: &str,
        mut patch: GroupPatch,
    ) -> Result<(), Status> {
        self.live_group(group_id).await?;
        self.check_group_admin(op, group_id).await?;
        if patch.is_empty() {
            return Ok(());
        }
        // OpenIM's body: every field, "" or null when not being set.
        let body = json!({"operationID": operation_id, "groupID": group_id,
            "groupName": patch.group_name.clone().unwrap_or_default(),
            "notification": patch.notification.clone().unwrap_or_default(),
            "introduction": patch.introduction.clone().unwrap_or_default(),
            "faceURL": patch.face_url.clone().unwrap_or_default(), "ex": patch.ex,
            "needVerification": patch.need_verification, "lookMemberInfo": patch.look_member_info,
            "applyMemberFriend": patch.apply_member_friend});
        let hooks = self.hooks.config();
        let command = "callbackBeforeSetGroupInfoCommand";
        self.hooks
            .check("beforeSetGroupInfo", &hooks.before_set_group_info, command, body.clone(), operation_id)
            .await?;
        if let Some(name) = &patch.group_name
            && name.trim().is_empty()
        {
            return Err(ImError::args("groupName must not be empty").into());
        }
        let renamed = patch.group_name.is_some();
        let announced = patch.notification.is_some();
        if let Some(text) = patch.notification.as_mut() {
            *text = text.trim().to_owned();
            patch.notification_user_id = op.to_owned();
            patch.notification_update_time = now_millis();
        }
        let rest = GroupPatch { group_name: None, notification: None, ..patch.clone() };
        let head = self.patch_group(group_id, &patch).await?;
        let change = self.change(op, group_id, head).await?;
        if announced {
            if change.group.notification.is_empty() {
                self.notes.announcement_set(&change).await;
            } else {
                // OpenIM's order: the members' chats are marked, then the news goes out.
                self.mark_announced(group_id).await;
                self.notes.announcement_set(&change).await;
            }
        }
        if renamed {
            self.notes.name_set(&change).await;
        }
        if !rest.is_empty() {
            self.notes.info_set(&change).await;
        }
        let command = "callbackAfterSetGroupInfoCommand";
        self.hooks.tell("afterSetGroupInfo", &hooks.after_set_group_info, command, body, operation_id);
        Ok(())
    }

    /// Marks every member's chat with the group as holding a new announcement (`groupAtType`
    /// 4, which apps show as "[Announcement]" until the chat is opened) and tells their devices
    /// (1300), as OpenIM's `SetConversations` does. The announcement itself is stored already,
    /// so a failure here is logged, not returned.
    async fn mark_announced(&self, group_id: &str) {
        let members = match self.stores.groups.member_ids(group_id).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, group_id, "Could not read the members to mark the announcement.");
                return;
            }
        };
        let base = Conversation {
            conversation_id: ids::group_conversation_id(group_id),
            conversation_type: session::READ_GROUP_CHAT,
            group_id: group_id.to_owned(),
            create_time: now_millis(),
            ..Default::default()
        };
        let patch = ConversationPatch { group_at_type: Some(GROUP_AT_ANNOUNCEMENT), ..Default::default() };
        if let Err(e) = self.stores.conversations.set_conversations(&members, &base, &patch).await {
            tracing::warn!(error = %e, group_id, "Could not mark the members' chats with the announcement.");
            return;
        }
        let notes = members
            .into_iter()
            .map(|m| {
                let tips = ConversationUpdateTips {
                    user_id: m.clone(),
                    conversation_id_list: vec![base.conversation_id.clone()],
                };
                (Note::single(CONVERSATION_CHANGED, &m, &m), notify::content(&tips))
            })
            .collect();
        self.notes.notifier().send_all(notes).await;
    }

    pub(crate) async fn set_group_info_ex_as(&self, req: Request<group::SetGroupInfoExReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        let patch = GroupPatch {
            group_name: r.group_name.map(|v| v.value),
            notification: r.notification.map(|v| v.value),
            introduction: r.introduction.map(|v| v.value),
            face_url: r.face_url.map(|v| v.value),
            ex: r.ex.map(|v| v.value),
            need_verification: r.need_verification.map(|v| v.value),
            look_member_info: r.look_member_info.map(|v| v.value),
            apply_member_friend: r.apply_member_friend.map(|v| v.value),
            ..Default::default()
        };
        self.set_info(&op, &operation_id, &r.group_id, patch).await
    }

    pub(crate) async fn set_group_info_as(&self, req: Request<group::SetGroupInfoReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let Some(info) = req.into_inner().group_info_for_set else {
            return Err(ImError::args("groupInfoForSet is missing").into());
        };
        let set = |s: String| if s.is_empty() { None } else { Some(s) };
        let patch = GroupPatch {
            group_name: set(info.group_name),
            notification: set(info.notification),
            introduction: set(info.introduction),
            face_url: set(info.face_url),
            ex: info.ex.map(|v| v.value),
            need_verification: info.need_verification.map(|v| v.value),
            look_member_info: info.look_member_info.map(|v| v.value),
            apply_member_friend: info.apply_member_friend.map(|v| v.value),
            ..Default::default()
        };
        self.set_info(&op, &operation_id, &info.group_id, patch).await
    }

    /// Hands the group from its owner to a member (1507); the old owner takes the new one's
    /// role. A new owner under a mute is unmuted first.
    pub(crate) async fn transfer(&self, req: Request<group::TransferGroupOwnerReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        self.live_group(&r.group_id).await?;
        if r.old_owner_user_id == r.new_owner_user_id {
            return Err(ImError::args("the new owner is the old one").into());
        }
        let members = self
            .stores
            .groups
            .get_members(&r.group_id, &[r.old_owner_user_id.clone(), r.new_owner_user_id.clone()])
            .await
            .map_err(store_status)?;
        let find = |id: &str| members.iter().find(|m| m.user_id == id).cloned();
        let (Some(old), Some(new)) = (find(&r.old_owner_user_id), find(&r.new_owner_user_id)) else {
            return Err(ImError::args(format!(
                "{} and {} must both be members of group {}",
                r.old_owner_user_id, r.new_owner_user_id, r.group_id
            ))
            .into());
        };
        if old.role_level != role::OWNER || (op != old.user_id && !self.share.is_admin(&op)) {
            return Err(ImError::no_permission(format!("only the owner of {} may hand it on", r.group_id)).into());
        }
        if new.mute_end_time > now_millis() {
            self.write_mute(&op, new.clone(), 0, None).await?;
        }
        let head =
            self.stores.groups.transfer_owner(&r.group_id, &old.user_id, &new.user_id).await.map_err(store_status)?;
        let old_role = new.role_level;
        let new_owner = member_info(GroupMember { role_level: role::OWNER, mute_end_time: 0, ..new });
        let old_owner = member_info(GroupMember { role_level: old_role, ..old });
        let change = self.change(&op, &r.group_id, head).await?;
        self.notes.owner_transferred(&change, new_owner, old_owner).await;
        let hooks = self.hooks.config();
        let body = json!({"groupID": r.group_id, "oldOwnerUserID": r.old_owner_user_id, "newOwnerUserID": r.new_owner_user_id});
        let command = "callbackAfterTransferGroupOwnerCommand";
        self.hooks.tell("afterTransferGroupOwner", &hooks.after_transfer_group_owner, command, body, &operation_id);
        Ok(())
    }
}
