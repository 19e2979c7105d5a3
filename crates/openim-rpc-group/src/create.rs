//! Creating a group (1501, and 1519 when it starts with an announcement) and inviting users
//! into one (1509); an ordinary member's invitation into a group where all need approval
//! becomes a request instead (see `apply`).

use std::collections::HashMap;

use openim_common::error::store_status;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, ids, rpc};
use openim_proto::pb::group;
use openim_storage::{Group, GroupMember, role};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::{GroupService, JOIN_BY_ADMIN, JOIN_BY_INVITATION, WORKING_GROUP, apply, group_info, member_info, notes};

impl GroupService {
    pub(crate) async fn create_as(
        &self,
        req: Request<group::CreateGroupReq>,
    ) -> Result<Response<group::CreateGroupResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let req = req.into_inner();
        let mut info = req.group_info.unwrap_or_default();
        let owner = if req.owner_user_id.is_empty() { op.clone() } else { req.owner_user_id.clone() };
        if owner != op && !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only the owner or an administrator may create the group").into());
        }
        let mut roles: HashMap<String, i32> = HashMap::new();
        for u in &req.member_user_i_ds {
            roles.insert(u.clone(), role::ORDINARY);
        }
        for u in &req.admin_user_i_ds {
            roles.insert(u.clone(), role::ADMIN);
        }
        roles.insert(owner.clone(), role::OWNER);
        let ids_all: Vec<String> = roles.keys().cloned().collect();
        if ids_all.len() > self.max_members as usize {
            return Err(ImError::args(format!(
                "a group of {} members passes the limit of {}",
                ids_all.len(),
                self.max_members
            ))
            .into());
        }
        self.check_users_exist(&ids_all).await?;
        // OpenIM's order: the owner (100), the administrators (60), the members (20).
        let init_members: Vec<serde_json::Value> = std::iter::once((&owner, role::OWNER))
            .chain(req.admin_user_i_ds.iter().map(|u| (u, role::ADMIN)))
            .chain(req.member_user_i_ds.iter().map(|u| (u, role::ORDINARY)))
            .map(|(u, r)| json!({"userID": u, "roleLevel": r}))
            .collect();
        let hooks = self.hooks.config();
        if self.hooks.on(hooks.before_create_group.enable) {
            let mut body = group_body(&info);
            body["operationID"] = operation_id.clone().into();
            body["initMemberList"] = init_members.clone().into();
            let command = "callbackBeforeCreateGroupCommand";
            if let Some(change) = self
                .hooks
                .before::<_, CreateGroupChange>(
                    "beforeCreateGroup",
                    &hooks.before_create_group,
                    command,
                    &with_command(body, command),
                    &operation_id,
                )
                .await?
            {
                change.apply(&mut info);
            }
        }

        let now = now_millis();
        let group_id = if info.group_id.is_empty() {
            ids::new_id()[..10].to_owned()
        } else {
            ids::check_id("groupID", &info.group_id).map_err(ImError::args)?;
            info.group_id.clone()
        };
        if self.hooks.on(hooks.before_member_join_group.enable) {
            let members: Vec<serde_json::Value> = ids_all.iter().map(|u| json!({"userID": u, "ex": ""})).collect();
            let body = json!({"groupID": group_id, "memberList": members, "groupEx": info.ex});
            let command = "callbackBeforeMembersJoinGroupCommand";
            self.hooks
                .check("beforeMemberJoinGroup", &hooks.before_member_join_group, command, body, &operation_id)
                .await?;
        }
        let announced = !info.notification.is_empty();
        let group = Group {
            group_id: group_id.clone(),
            group_name: info.group_name,
            notification: info.notification,
            introduction: info.introduction,
            face_url: info.face_url,
            owner_user_id: owner.clone(),
            creator_user_id: op.clone(),
            create_time: now,
            ex: info.ex,
            status: 0,
            group_type: WORKING_GROUP,
            need_verification: info.need_verification,
            look_member_info: info.look_member_info,
            apply_member_friend: info.apply_member_friend,
            notification_update_time: if announced { now } else { 0 },
            notification_user_id: if announced { op.clone() } else { String::new() },
        };
        // Owner first, then the others in the order given, so join times sort as listed.
        let mut order = vec![owner.clone()];
        order.extend(req.admin_user_i_ds.iter().chain(&req.member_user_i_ds).filter(|u| **u != owner).cloned());
        order.dedup();
        let mut seen = std::collections::HashSet::new();
        let members: Vec<GroupMember> = order
            .into_iter()
            .filter(|u| seen.insert(u.clone()))
            .map(|u| GroupMember {
                group_id: group_id.clone(),
                role_level: roles[&u],
                join_time: now,
                join_source: JOIN_BY_ADMIN,
                inviter_user_id: op.clone(),
                operator_user_id: op.clone(),
                user_id: u,
                ..Default::default()
            })
            .collect();
        let head = self.stores.groups.create_group(&group, &members).await.map_err(|e| match e {
            openim_storage::StoreError::Duplicate(_) => {
                Status::from(ImError::new(ErrCode::GROUP_ID_EXISTED, format!("group {group_id} exists")))
            }
            other => store_status(other),
        })?;
        self.ensure_conversations(&group_id, &ids_all).await?;
        let info = group_info(group, members.len() as u32);
        let change = notes::Change { op: &op, op_user: self.op_user(&group_id, &op).await?, group: info.clone(), head };
        // As OpenIM lists them: the members up to and including whoever created the group.
        let until_op = members.iter().position(|m| m.user_id == op).map_or(members.len(), |i| i + 1);
        let listed = members[..until_op].iter().cloned().map(member_info).collect();
        let owner = member_info(members[0].clone());
        self.notes.created(&change, owner, listed, req.send_message.unwrap_or(true)).await;
        if announced {
            self.notes.announcement_set(&change).await;
        }
        if self.hooks.on(hooks.after_create_group.enable) {
            let mut body = group_body(&info);
            body["initMemberList"] = init_members.into();
            let command = "callbackAfterCreateGroupCommand";
            self.hooks.tell("afterCreateGroup", &hooks.after_create_group, command, body, &operation_id);
        }
        Ok(Response::new(group::CreateGroupResp { group_info: Some(info) }))
    }

    pub(crate) async fn invite_as(
        &self,
        req: Request<group::InviteUserToGroupReq>,
    ) -> Result<Response<group::InviteUserToGroupResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        let req = req.into_inner();
        if req.invited_user_i_ds.is_empty() {
            return Err(ImError::args("invitedUserIDs is empty").into());
        }
        let mut invited = req.invited_user_i_ds.clone();
        apply::dedup(&mut invited);
        if invited.len() != req.invited_user_i_ds.len() {
            return Err(ImError::args("invitedUserIDs has repeated IDs").into());
        }
        let g = self.live_group(&req.group_id).await?;
        let op_role = self.role_of(&req.group_id, &op).await?;
        let is_admin = self.share.is_admin(&op);
        if op_role.is_none() && !is_admin {
            return Err(ImError::new(
                ErrCode::NOT_IN_GROUP_YET,
                format!("{op} is not a member of group {}", req.group_id),
            )
            .into());
        }
        self.check_users_exist(&invited).await?;
        let privileged = is_admin || op_role.is_some_and(|r| r >= role::ADMIN);
        if g.need_verification == apply::verification::ALL_NEED_APPROVAL && !privileged {
            let info = self.infos(vec![g]).await?.pop().unwrap_or_default();
            self.invite_as_requests(&op, info, &invited).await?;
            return Ok(Response::new(group::InviteUserToGroupResp {}));
        }
        self.check_room(&req.group_id, invited.len()).await?;
        let now = now_millis();
        let members: Vec<GroupMember> = invited
            .iter()
            .map(|u| GroupMember {
                group_id: req.group_id.clone(),
                user_id: u.clone(),
                role_level: role::ORDINARY,
                join_time: now,
                join_source: JOIN_BY_INVITATION,
                inviter_user_id: op.clone(),
                operator_user_id: op.clone(),
                ..Default::default()
            })
            .collect();
        let (added, head) = self.stores.groups.add_members(&members).await.map_err(store_status)?;
        if added.is_empty() {
            return Ok(Response::new(group::InviteUserToGroupResp {}));
        }
        self.ensure_conversations(&req.group_id, &added).await?;
        let change = self.change(&op, &req.group_id, head).await?;
        let added: std::collections::HashSet<&String> = added.iter().collect();
        let invited = members.into_iter().filter(|m| added.contains(&m.user_id)).map(member_info).collect();
        let inviter = change.op_user.clone();
        self.notes.member_invited(&change, invited, inviter, req.send_message.unwrap_or(true)).await;
        Ok(Response::new(group::InviteUserToGroupResp {}))
    }
}

/// A group's info as OpenIM's group callbacks flatten it into their body.
pub(crate) fn group_body(g: &openim_proto::pb::sdkws::GroupInfo) -> serde_json::Value {
    json!({
        "groupID": g.group_id, "groupName": g.group_name, "notification": g.notification,
        "introduction": g.introduction, "faceURL": g.face_url, "ownerUserID": g.owner_user_id,
        "createTime": g.create_time, "memberCount": g.member_count, "ex": g.ex, "status": g.status,
        "creatorUserID": g.creator_user_id, "groupType": g.group_type, "needVerification": g.need_verification,
        "lookMemberInfo": g.look_member_info, "applyMemberFriend": g.apply_member_friend,
        "notificationUpdateTime": g.notification_update_time, "notificationUserID": g.notification_user_id,
    })
}

fn with_command(mut body: serde_json::Value, command: &str) -> serde_json::Value {
    body["callbackCommand"] = command.into();
    body
}

/// What `beforeCreateGroup` may change (its group ID, owner and type stay as checked).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct CreateGroupChange {
    #[serde(rename = "groupName")]
    group_name: Option<String>,
    notification: Option<String>,
    introduction: Option<String>,
    #[serde(rename = "faceURL")]
    face_url: Option<String>,
    ex: Option<String>,
    #[serde(rename = "needVerification")]
    need_verification: Option<i32>,
    #[serde(rename = "lookMemberInfo")]
    look_member_info: Option<i32>,
}

impl CreateGroupChange {
    fn apply(self, g: &mut openim_proto::pb::sdkws::GroupInfo) {
        let set = |to: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *to = v;
            }
        };
        set(&mut g.group_name, self.group_name);
        set(&mut g.notification, self.notification);
        set(&mut g.introduction, self.introduction);
        set(&mut g.face_url, self.face_url);
        set(&mut g.ex, self.ex);
        if let Some(v) = self.need_verification {
            g.need_verification = v;
        }
        if let Some(v) = self.look_member_info {
            g.look_member_info = v;
        }
    }
}
