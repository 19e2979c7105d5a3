//! Leaving a group: quitting, being kicked, and the group's end. The owner cannot quit (it hands
//! the group on first); an admin kicks ordinary members, the owner anyone but itself.

use openim_common::error::store_status;
use openim_common::rpc;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::group;
use openim_storage::{GroupPatch, group_status, role};
use serde_json::json;
use tonic::{Request, Status};

use crate::{GroupService, member_info};

impl GroupService {
    pub(crate) async fn quit(&self, req: Request<group::QuitGroupReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let user_id = if req.get_ref().user_id.is_empty() { op.clone() } else { req.get_ref().user_id.clone() };
        rpc::check_self_or_admin(&req, &self.share, &user_id)?;
        let r = req.into_inner();
        if r.group_id.is_empty() {
            return Err(ImError::args("groupID is empty").into());
        }
        let me = self.member(&r.group_id, &user_id).await?;
        if me.role_level == role::OWNER {
            return Err(ImError::no_permission(format!(
                "{user_id} owns group {}: hand it on (transfer_group) or dismiss it",
                r.group_id
            ))
            .into());
        }
        let (removed, head) = self
            .stores
            .groups
            .remove_members(&r.group_id, std::slice::from_ref(&user_id))
            .await
            .map_err(store_status)?;
        if removed.is_empty() {
            return Ok(());
        }
        let change = self.change(&op, &r.group_id, head).await?;
        self.notes.member_quit(&change, member_info(me)).await;
        let hooks = self.hooks.config();
        let body = json!({"groupID": r.group_id, "userID": user_id});
        self.hooks.tell(
            "afterQuitGroup",
            &hooks.after_quit_group,
            "callbackAfterQuitGroupCommand",
            body,
            &operation_id,
        );
        Ok(())
    }

    pub(crate) async fn kick(&self, req: Request<group::KickGroupMemberReq>) -> Result<(), Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        self.group(&r.group_id).await?;
        if r.kicked_user_i_ds.is_empty() {
            return Err(ImError::args("kickedUserIDs is empty").into());
        }
        let mut ids = r.kicked_user_i_ds.clone();
        crate::apply::dedup(&mut ids);
        if ids.len() != r.kicked_user_i_ds.len() {
            return Err(ImError::args("kickedUserIDs has repeated IDs").into());
        }
        if ids.contains(&op) {
            return Err(ImError::args(format!("{op} cannot kick itself; quit_group leaves a group")).into());
        }
        let kicked = self.stores.groups.get_members(&r.group_id, &ids).await.map_err(store_status)?;
        if let Some(missing) = openim_common::ids::first_missing(&ids, kicked.iter().map(|m| m.user_id.as_str())) {
            return Err(ImError::new(
                ErrCode::USER_ID_NOT_FOUND,
                format!("{missing} is not a member of group {}", r.group_id),
            )
            .into());
        }
        if kicked.iter().any(|m| m.role_level == role::OWNER) {
            return Err(ImError::args(format!("the owner of {} cannot be kicked", r.group_id)).into());
        }
        if !self.share.is_admin(&op) {
            let me = self.role_of(&r.group_id, &op).await?;
            let allowed = match me {
                Some(role::OWNER) => true,
                Some(role::ADMIN) => kicked.iter().all(|m| m.role_level == role::ORDINARY),
                _ => false,
            };
            if !allowed {
                return Err(
                    ImError::no_permission(format!("{op} may not kick these members of group {}", r.group_id)).into()
                );
            }
        }
        let (removed, head) = self.stores.groups.remove_members(&r.group_id, &ids).await.map_err(store_status)?;
        if removed.is_empty() {
            return Ok(());
        }
        let change = self.change(&op, &r.group_id, head).await?;
        let kicked = kicked.into_iter().filter(|m| removed.contains(&m.user_id)).map(member_info).collect();
        self.notes.member_kicked(&change, kicked, r.send_message.unwrap_or(true)).await;
        let hooks = self.hooks.config();
        let body = json!({"groupID": r.group_id, "kickedUserIDs": removed, "reason": r.reason});
        let command = "callbackAfterKickGroupCommand";
        self.hooks.tell("afterKickGroupMember", &hooks.after_kick_group_member, command, body, &operation_id);
        Ok(())
    }

    /// Marks the group dismissed and tells its members (1511); push then removes them. With
    /// `deleteMember` (administrators' clean-up), removes the members at once, silently.
    pub(crate) async fn dismiss(&self, req: Request<group::DismissGroupReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        let g = self.group(&r.group_id).await?;
        if g.owner_user_id != op && !self.share.is_admin(&op) {
            return Err(ImError::no_permission(format!("only the owner of {} may dismiss it", r.group_id)).into());
        }
        if r.delete_member {
            let ids = self.stores.groups.member_ids(&r.group_id).await.map_err(store_status)?;
            if g.status != group_status::DISMISSED {
                let patch = GroupPatch { status: Some(group_status::DISMISSED), ..Default::default() };
                self.patch_group(&r.group_id, &patch).await?;
            }
            if !ids.is_empty() {
                self.stores.groups.remove_members(&r.group_id, &ids).await.map_err(store_status)?;
            }
            return Ok(());
        }
        if g.status == group_status::DISMISSED {
            return Err(ImError::new(ErrCode::DISMISSED_ALREADY, format!("group {} was dismissed", r.group_id)).into());
        }
        // The tips show the group dismissed (OpenIM sends it as read before the change, which
        // apps then show as still running until they sync).
        let patch = GroupPatch { status: Some(group_status::DISMISSED), ..Default::default() };
        let head = self.patch_group(&r.group_id, &patch).await?;
        let change = self.change(&op, &r.group_id, head).await?;
        self.notes.dismissed(&change, r.send_message.unwrap_or(true)).await;
        let hooks = self.hooks.config();
        if self.hooks.on(hooks.after_dismiss_group.enable) {
            let members = self.stores.groups.member_ids(&r.group_id).await.map_err(store_status)?;
            // OpenIM sends the group type as a one-character string (Go's `string(int32)`).
            let group_type = char::from_u32(u32::try_from(g.group_type).unwrap_or(0)).unwrap_or('\0').to_string();
            let body = json!({"groupID": r.group_id, "ownerID": g.owner_user_id, "groupType": group_type, "membersID": members});
            let command = "callbackAfterDisMissGroupCommand";
            self.hooks.tell("afterDismissGroup", &hooks.after_dismiss_group, command, body, &operation_id);
        }
        Ok(())
    }
}
