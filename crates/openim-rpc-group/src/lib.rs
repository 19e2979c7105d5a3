//! `openim-rpc-group`: groups and their members. Creating a group or inviting members also
//! creates the members' group conversation, so their first sync already lists it.

use std::collections::HashMap;

use openim_common::config::Share;
use openim_common::error::store_status;
use openim_common::ids;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::constants::session;
use openim_proto::pb::group::{self, group_server::Group as GroupRpc};
use openim_proto::pb::sdkws::{GroupInfo, GroupMemberFullInfo};
use openim_storage::{Conversation, Group, GroupMember, Stores, group_status, version};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::group::group_server::GroupServer;

mod apply;
mod create;
mod leave;
mod manage;
mod members;
mod mutes;
mod notes;
mod sync;

pub use members::members_hash;

/// `groupType` of every group v3 creates (a "working group").
const WORKING_GROUP: i32 = 2;
/// Join sources as OpenIM numbers them.
const JOIN_BY_ADMIN: i32 = 1;
const JOIN_BY_INVITATION: i32 = 2;

pub struct GroupService {
    share: Share,
    stores: Stores,
    notes: notes::GroupNotes,
    /// The most members a group may have.
    max_members: u32,
    /// Members hashes by group, with the member-log version they were computed at, and the count.
    hashes: dashmap::DashMap<String, (openim_storage::VersionHead, u32, u64)>,
    hooks: openim_common::webhook::Webhooks,
}

impl GroupService {
    pub fn new(share: Share, stores: Stores, max_members: u32) -> Self {
        let notes = notes::GroupNotes::new(openim_common::notify::Notifier::new(stores.bus.clone()));
        let hooks = openim_common::webhook::Webhooks::none();
        Self { share, stores, notes, max_members, hashes: dashmap::DashMap::new(), hooks }
    }

    /// Calls the group callbacks of `webhooks.yml`.
    pub fn with_webhooks(mut self, hooks: openim_common::webhook::Webhooks) -> Self {
        self.hooks = hooks;
        self
    }

    async fn group(&self, group_id: &str) -> Result<Group, Status> {
        let mut found = self.stores.groups.get_groups(&[group_id.to_owned()]).await.map_err(store_status)?;
        found
            .pop()
            .ok_or_else(|| ImError::new(ErrCode::GROUP_ID_NOT_FOUND, format!("group {group_id} does not exist")).into())
    }

    async fn check_users_exist(&self, ids: &[String]) -> Result<(), Status> {
        let found = self.stores.users.get_users(ids).await.map_err(store_status)?;
        if let Some(missing) = openim_common::ids::first_missing(ids, found.iter().map(|u| u.user_id.as_str())) {
            return Err(ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {missing} is not registered")).into());
        }
        Ok(())
    }

    /// The caller's role in the group, `None` if not a member.
    async fn role_of(&self, group_id: &str, user_id: &str) -> Result<Option<i32>, Status> {
        let m = self.stores.groups.get_members(group_id, &[user_id.to_owned()]).await.map_err(store_status)?;
        Ok(m.first().map(|m| m.role_level))
    }

    /// The caller must be a member of `group_id` or an administrator (OpenIM's
    /// `checkAdminOrInGroup`).
    async fn check_admin_or_in_group<T>(&self, req: &Request<T>, group_id: &str) -> Result<(), Status> {
        let op = rpc::op_user_id(req);
        if self.share.is_admin(&op) || self.role_of(group_id, &op).await?.is_some() {
            return Ok(());
        }
        Err(ImError::no_permission(format!("{op} is not a member of group {group_id}")).into())
    }

    async fn ensure_conversations(&self, group_id: &str, members: &[String]) -> Result<(), Status> {
        let now = now_millis();
        let convs: Vec<Conversation> = members
            .iter()
            .map(|m| Conversation {
                owner_user_id: m.clone(),
                conversation_id: ids::group_conversation_id(group_id),
                conversation_type: session::READ_GROUP_CHAT,
                group_id: group_id.to_owned(),
                create_time: now,
                ..Default::default()
            })
            .collect();
        self.stores.conversations.ensure_conversations(&convs).await.map_err(store_status)
    }

    /// The groups as the SDK sees them, with their member counts (one query for all).
    async fn infos(&self, groups: Vec<Group>) -> Result<Vec<GroupInfo>, Status> {
        let ids: Vec<String> = groups.iter().map(|g| g.group_id.clone()).collect();
        let counts = self.stores.groups.member_counts(&ids).await.map_err(store_status)?;
        Ok(groups
            .into_iter()
            .map(|g| {
                let count = counts.get(&g.group_id).copied().unwrap_or(0) as u32;
                group_info(g, count)
            })
            .collect())
    }
}

impl GroupService {
    /// The group, refused with 1204 once it was dismissed.
    async fn live_group(&self, group_id: &str) -> Result<Group, Status> {
        let g = self.group(group_id).await?;
        if g.status == group_status::DISMISSED {
            return Err(ImError::new(ErrCode::DISMISSED_ALREADY, format!("group {group_id} was dismissed")).into());
        }
        Ok(g)
    }

    /// A group's member changes since the client's version; in full, only the version (the
    /// client then lists the members itself, in pages).
    async fn member_sync(
        &self,
        g: Group,
        version_id: &str,
        version: u64,
    ) -> Result<group::GetIncrementalGroupMemberResp, Status> {
        let d = self.delta(version::GROUP_MEMBERS, &g.group_id, version_id, version).await?;
        let members = |ids: Vec<String>| {
            let group_id = g.group_id.clone();
            async move {
                let found = self.stores.groups.get_members(&group_id, &ids).await.map_err(store_status)?;
                Ok::<_, Status>(found.into_iter().map(member_info).collect::<Vec<_>>())
            }
        };
        let insert = members(d.insert).await?;
        let update = members(d.update).await?;
        let group = if d.full || d.group_changed { self.infos(vec![g]).await?.pop() } else { None };
        Ok(group::GetIncrementalGroupMemberResp {
            version: d.head.version,
            version_id: d.head.version_id,
            full: d.full,
            delete: d.delete,
            insert,
            update,
            group,
            sort_version: d.sort_version,
        })
    }
}

pub fn group_info(g: Group, member_count: u32) -> GroupInfo {
    GroupInfo {
        group_id: g.group_id,
        group_name: g.group_name,
        notification: g.notification,
        introduction: g.introduction,
        face_url: g.face_url,
        owner_user_id: g.owner_user_id,
        create_time: g.create_time,
        member_count,
        ex: g.ex,
        status: g.status,
        creator_user_id: g.creator_user_id,
        group_type: g.group_type,
        need_verification: g.need_verification,
        look_member_info: g.look_member_info,
        apply_member_friend: g.apply_member_friend,
        notification_update_time: g.notification_update_time,
        notification_user_id: g.notification_user_id,
    }
}

pub fn member_info(m: GroupMember) -> GroupMemberFullInfo {
    GroupMemberFullInfo {
        group_id: m.group_id,
        user_id: m.user_id,
        role_level: m.role_level,
        join_time: m.join_time,
        nickname: m.nickname,
        face_url: m.face_url,
        join_source: m.join_source,
        operator_user_id: m.operator_user_id,
        ex: m.ex,
        mute_end_time: m.mute_end_time,
        inviter_user_id: m.inviter_user_id,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl GroupRpc for GroupService {
    async fn create_group(
        &self,
        req: Request<group::CreateGroupReq>,
    ) -> Result<Response<group::CreateGroupResp>, Status> {
        self.create_as(req).await
    }

    async fn get_groups_info(
        &self,
        req: Request<group::GetGroupsInfoReq>,
    ) -> Result<Response<group::GetGroupsInfoResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let ids = req.into_inner().group_i_ds;
        if ids.is_empty() {
            return Err(ImError::args("groupIDs is empty").into());
        }
        let groups = self.stores.groups.get_groups(&ids).await.map_err(store_status)?;
        Ok(Response::new(group::GetGroupsInfoResp { group_infos: self.infos(groups).await? }))
    }

    async fn get_group_member_list(
        &self,
        req: Request<group::GetGroupMemberListReq>,
    ) -> Result<Response<group::GetGroupMemberListResp>, Status> {
        self.check_admin_or_in_group(&req, &req.get_ref().group_id).await?;
        let req = req.into_inner();
        self.group(&req.group_id).await?;
        let (offset, limit) = rpc::page(req.pagination.as_ref());
        let (members, total) = self.stores.groups.members(&req.group_id, offset, limit).await.map_err(store_status)?;
        let members: Vec<_> = members
            .into_iter()
            .filter(|m| req.keyword.is_empty() || m.user_id == req.keyword || m.nickname == req.keyword)
            .map(member_info)
            .collect();
        Ok(Response::new(group::GetGroupMemberListResp { total: total as u32, members }))
    }

    async fn get_group_members_info(
        &self,
        req: Request<group::GetGroupMembersInfoReq>,
    ) -> Result<Response<group::GetGroupMembersInfoResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let group_id = &req.get_ref().group_id;
        if let Err(refused) = self.check_admin_or_in_group(&req, group_id).await {
            // Former members keep the group's chat, and their apps look up the senders of its
            // messages (the tip of their own leaving among them): they may read members' cards.
            let op = rpc::op_user_id(&req);
            let chat = [ids::group_conversation_id(group_id)];
            let kept = self.stores.conversations.conversations(&op, Some(&chat)).await.map_err(store_status)?;
            if kept.is_empty() {
                return Err(refused);
            }
        }
        let req = req.into_inner();
        let members = self.stores.groups.get_members(&req.group_id, &req.user_i_ds).await.map_err(store_status)?;
        Ok(Response::new(group::GetGroupMembersInfoResp { members: members.into_iter().map(member_info).collect() }))
    }

    async fn get_joined_group_list(
        &self,
        req: Request<group::GetJoinedGroupListReq>,
    ) -> Result<Response<group::GetJoinedGroupListResp>, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().from_user_id.clone())?;
        let req = req.into_inner();
        let ids = self.stores.groups.joined_group_ids(&req.from_user_id).await.map_err(store_status)?;
        let (offset, limit) = rpc::page(req.pagination.as_ref());
        let page: Vec<String> = ids.iter().skip(offset as usize).take(limit as usize).cloned().collect();
        let groups = self.stores.groups.get_groups(&page).await.map_err(store_status)?;
        Ok(Response::new(group::GetJoinedGroupListResp { total: ids.len() as u32, groups: self.infos(groups).await? }))
    }

    async fn invite_user_to_group(
        &self,
        req: Request<group::InviteUserToGroupReq>,
    ) -> Result<Response<group::InviteUserToGroupResp>, Status> {
        self.invite_as(req).await
    }

    async fn get_group_member_user_i_ds(
        &self,
        req: Request<group::GetGroupMemberUserIDsReq>,
    ) -> Result<Response<group::GetGroupMemberUserIDsResp>, Status> {
        self.check_admin_or_in_group(&req, &req.get_ref().group_id).await?;
        let ids = self.stores.groups.member_ids(&req.into_inner().group_id).await.map_err(store_status)?;
        Ok(Response::new(group::GetGroupMemberUserIDsResp { user_i_ds: ids }))
    }

    async fn get_incremental_group_member(
        &self,
        req: Request<group::GetIncrementalGroupMemberReq>,
    ) -> Result<Response<group::GetIncrementalGroupMemberResp>, Status> {
        self.check_admin_or_in_group(&req, &req.get_ref().group_id).await?;
        let req = req.into_inner();
        let g = self.live_group(&req.group_id).await?;
        Ok(Response::new(self.member_sync(g, &req.version_id, req.version).await?))
    }

    async fn batch_get_incremental_group_member(
        &self,
        req: Request<group::BatchGetIncrementalGroupMemberReq>,
    ) -> Result<Response<group::BatchGetIncrementalGroupMemberResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id.clone())?;
        let mut resp_list = HashMap::new();
        let mut told = 0;
        let mut seen = std::collections::HashSet::new();
        for r in &req.get_ref().req_list {
            if !seen.insert(r.group_id.as_str()) {
                continue;
            }
            // A group the caller is not in (left since its last sync), or that was dismissed,
            // answers "nothing changed", not an error: the joined-group sync tells the client it
            // is gone. (Leaving it out would not do: the SDK asks again for every group missing
            // from the answer, forever, holding its group lock.)
            let gone = self.check_admin_or_in_group(&req, &r.group_id).await.is_err();
            let g = if gone { None } else { self.live_group(&r.group_id).await.ok() };
            let Some(g) = g else {
                let unchanged = group::GetIncrementalGroupMemberResp {
                    version: r.version,
                    version_id: r.version_id.clone(),
                    ..Default::default()
                };
                resp_list.insert(r.group_id.clone(), unchanged);
                continue;
            };
            let resp = self.member_sync(g, &r.version_id, r.version).await?;
            told += resp.insert.len() + resp.update.len() + resp.delete.len();
            resp_list.insert(r.group_id.clone(), resp);
            // OpenIM's cap per answer: the client asks again for the groups left out.
            if told >= sync::BATCH_LIMIT {
                break;
            }
        }
        Ok(Response::new(group::BatchGetIncrementalGroupMemberResp { resp_list }))
    }

    async fn get_incremental_join_group(
        &self,
        req: Request<group::GetIncrementalJoinGroupReq>,
    ) -> Result<Response<group::GetIncrementalJoinGroupResp>, Status> {
        let user_id = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user_id)?;
        let req = req.into_inner();
        let d = self.delta(version::JOINED_GROUPS, &user_id, &req.version_id, req.version).await?;
        let insert_ids = if d.full {
            self.stores.groups.joined_group_ids(&user_id).await.map_err(store_status)?
        } else {
            d.insert.clone()
        };
        let insert = self.stores.groups.get_groups(&insert_ids).await.map_err(store_status)?;
        let update = self.stores.groups.get_groups(&d.update).await.map_err(store_status)?;
        Ok(Response::new(group::GetIncrementalJoinGroupResp {
            version: d.head.version,
            version_id: d.head.version_id,
            full: d.full,
            delete: d.delete,
            insert: self.infos(insert).await?,
            update: self.infos(update).await?,
            sort_version: 0,
        }))
    }

    async fn get_full_group_member_user_i_ds(
        &self,
        req: Request<group::GetFullGroupMemberUserIDsReq>,
    ) -> Result<Response<group::GetFullGroupMemberUserIDsResp>, Status> {
        self.check_admin_or_in_group(&req, &req.get_ref().group_id).await?;
        let req = req.into_inner();
        // The head first: a change between the two reads shows as a newer version next time.
        let head =
            self.stores.groups.version_head(version::GROUP_MEMBERS, &req.group_id).await.map_err(store_status)?;
        let ids = self.stores.groups.member_ids(&req.group_id).await.map_err(store_status)?;
        let equal = ids::id_hash(&ids) == req.id_hash;
        Ok(Response::new(group::GetFullGroupMemberUserIDsResp {
            version: head.version,
            version_id: head.version_id,
            equal,
            user_i_ds: if equal { Vec::new() } else { ids },
        }))
    }

    async fn get_full_join_group_i_ds(
        &self,
        req: Request<group::GetFullJoinGroupIDsReq>,
    ) -> Result<Response<group::GetFullJoinGroupIDsResp>, Status> {
        let user_id = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user_id)?;
        let req = req.into_inner();
        let head = self.stores.groups.version_head(version::JOINED_GROUPS, &user_id).await.map_err(store_status)?;
        let ids = self.stores.groups.joined_group_ids(&user_id).await.map_err(store_status)?;
        let equal = ids::id_hash(&ids) == req.id_hash;
        Ok(Response::new(group::GetFullJoinGroupIDsResp {
            version: head.version,
            version_id: head.version_id,
            equal,
            group_i_ds: if equal { Vec::new() } else { ids },
        }))
    }

    async fn mute_group_member(
        &self,
        req: Request<group::MuteGroupMemberReq>,
    ) -> Result<Response<group::MuteGroupMemberResp>, Status> {
        self.mute_member(req).await?;
        Ok(Response::new(group::MuteGroupMemberResp {}))
    }

    async fn cancel_mute_group_member(
        &self,
        req: Request<group::CancelMuteGroupMemberReq>,
    ) -> Result<Response<group::CancelMuteGroupMemberResp>, Status> {
        self.unmute_member(req).await?;
        Ok(Response::new(group::CancelMuteGroupMemberResp {}))
    }

    async fn mute_group(&self, req: Request<group::MuteGroupReq>) -> Result<Response<group::MuteGroupResp>, Status> {
        let op = rpc::op_user_id(&req);
        self.set_group_muted(&op, &req.get_ref().group_id, true).await?;
        Ok(Response::new(group::MuteGroupResp {}))
    }

    async fn cancel_mute_group(
        &self,
        req: Request<group::CancelMuteGroupReq>,
    ) -> Result<Response<group::CancelMuteGroupResp>, Status> {
        let op = rpc::op_user_id(&req);
        self.set_group_muted(&op, &req.get_ref().group_id, false).await?;
        Ok(Response::new(group::CancelMuteGroupResp {}))
    }

    async fn set_group_info(
        &self,
        req: Request<group::SetGroupInfoReq>,
    ) -> Result<Response<group::SetGroupInfoResp>, Status> {
        self.set_group_info_as(req).await?;
        Ok(Response::new(group::SetGroupInfoResp {}))
    }

    async fn set_group_info_ex(
        &self,
        req: Request<group::SetGroupInfoExReq>,
    ) -> Result<Response<group::SetGroupInfoExResp>, Status> {
        self.set_group_info_ex_as(req).await?;
        Ok(Response::new(group::SetGroupInfoExResp {}))
    }

    async fn transfer_group_owner(
        &self,
        req: Request<group::TransferGroupOwnerReq>,
    ) -> Result<Response<group::TransferGroupOwnerResp>, Status> {
        self.transfer(req).await?;
        Ok(Response::new(group::TransferGroupOwnerResp {}))
    }

    async fn join_group(&self, req: Request<group::JoinGroupReq>) -> Result<Response<group::JoinGroupResp>, Status> {
        self.join(req).await?;
        Ok(Response::new(group::JoinGroupResp {}))
    }

    async fn group_application_response(
        &self,
        req: Request<group::GroupApplicationResponseReq>,
    ) -> Result<Response<group::GroupApplicationResponseResp>, Status> {
        self.answer(req).await?;
        Ok(Response::new(group::GroupApplicationResponseResp {}))
    }

    async fn get_group_application_list(
        &self,
        req: Request<group::GetGroupApplicationListReq>,
    ) -> Result<Response<group::GetGroupApplicationListResp>, Status> {
        Ok(Response::new(self.received_requests(req).await?))
    }

    async fn get_group_application_unhandled_count(
        &self,
        req: Request<group::GetGroupApplicationUnhandledCountReq>,
    ) -> Result<Response<group::GetGroupApplicationUnhandledCountResp>, Status> {
        let count = self.unhandled_count(req).await?;
        Ok(Response::new(group::GetGroupApplicationUnhandledCountResp { count }))
    }

    async fn get_user_req_application_list(
        &self,
        req: Request<group::GetUserReqApplicationListReq>,
    ) -> Result<Response<group::GetUserReqApplicationListResp>, Status> {
        Ok(Response::new(self.sent_requests(req).await?))
    }

    async fn get_specified_user_group_request_info(
        &self,
        req: Request<group::GetSpecifiedUserGroupRequestInfoReq>,
    ) -> Result<Response<group::GetSpecifiedUserGroupRequestInfoResp>, Status> {
        Ok(Response::new(self.user_request(req).await?))
    }

    async fn get_group_users_req_application_list(
        &self,
        req: Request<group::GetGroupUsersReqApplicationListReq>,
    ) -> Result<Response<group::GetGroupUsersReqApplicationListResp>, Status> {
        Ok(Response::new(self.users_requests(req).await?))
    }

    async fn quit_group(&self, req: Request<group::QuitGroupReq>) -> Result<Response<group::QuitGroupResp>, Status> {
        self.quit(req).await?;
        Ok(Response::new(group::QuitGroupResp {}))
    }

    async fn kick_group_member(
        &self,
        req: Request<group::KickGroupMemberReq>,
    ) -> Result<Response<group::KickGroupMemberResp>, Status> {
        self.kick(req).await?;
        Ok(Response::new(group::KickGroupMemberResp {}))
    }

    async fn dismiss_group(
        &self,
        req: Request<group::DismissGroupReq>,
    ) -> Result<Response<group::DismissGroupResp>, Status> {
        self.dismiss(req).await?;
        Ok(Response::new(group::DismissGroupResp {}))
    }

    async fn set_group_member_info(
        &self,
        req: Request<group::SetGroupMemberInfoReq>,
    ) -> Result<Response<group::SetGroupMemberInfoResp>, Status> {
        self.set_member_info(req).await?;
        Ok(Response::new(group::SetGroupMemberInfoResp {}))
    }

    async fn get_group_abstract_info(
        &self,
        req: Request<group::GetGroupAbstractInfoReq>,
    ) -> Result<Response<group::GetGroupAbstractInfoResp>, Status> {
        let group_abstract_infos = self.abstract_info(req).await?;
        Ok(Response::new(group::GetGroupAbstractInfoResp { group_abstract_infos }))
    }

    async fn get_groups(&self, req: Request<group::GetGroupsReq>) -> Result<Response<group::GetGroupsResp>, Status> {
        Ok(Response::new(self.search(req).await?))
    }
}
