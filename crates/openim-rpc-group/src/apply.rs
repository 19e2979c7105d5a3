//! Joining by application: `join_group` by the group's verification mode, the owner's and
//! admins' answer, and the lists of requests each side sees. An application is one row per
//! (group, user); applying again replaces it.

use std::collections::{HashMap, HashSet};

use openim_common::error::store_status;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::group;
use openim_proto::pb::sdkws::{self, GroupInfo, PublicUserInfo};
use openim_storage::{GroupMember, GroupRequest, GroupRequestAnswer, RequestFilter, StoreError, handle_result, role};
use serde_json::json;
use tonic::{Request, Status};

use crate::{GroupService, member_info};

/// `needVerification`: how a user gets into a group. 0, the default: applications need
/// approval, members' invitations let users in at once.
pub mod verification {
    /// Everyone needs approval, except when the owner or an admin invites.
    pub const ALL_NEED_APPROVAL: i32 = 1;
    /// Anyone may join.
    pub const DIRECTLY: i32 = 2;
}

/// Join sources as OpenIM numbers them (1 admin … 4 QR code).
const JOIN_SOURCES: std::ops::RangeInclusive<i32> = 1..=4;

impl GroupService {
    /// Users' public profiles, by ID (missing users are left out).
    pub(crate) async fn public_users(&self, ids: &[String]) -> Result<HashMap<String, PublicUserInfo>, Status> {
        let users = self.stores.users.get_users(ids).await.map_err(store_status)?;
        Ok(users
            .into_iter()
            .map(|u| {
                let info =
                    PublicUserInfo { user_id: u.user_id.clone(), nickname: u.nickname, face_url: u.face_url, ex: u.ex };
                (u.user_id, info)
            })
            .collect())
    }

    /// The owner's and admins' user IDs, owner first.
    pub(crate) async fn manager_ids(&self, group_id: &str) -> Result<Vec<String>, Status> {
        let managers = self.stores.groups.managers(group_id).await.map_err(store_status)?;
        Ok(managers.into_iter().map(|m| m.user_id).collect())
    }

    /// Refuses adding `adding` members when the group would outgrow `max_members`.
    pub(crate) async fn check_room(&self, group_id: &str, adding: usize) -> Result<(), Status> {
        let counts = self.stores.groups.member_counts(&[group_id.to_owned()]).await.map_err(store_status)?;
        let now = counts.get(group_id).copied().unwrap_or(0) as usize;
        let max = self.max_members as usize;
        if now + adding > max {
            return Err(ImError::args(format!(
                "group {group_id} has {now} members; adding {adding} would pass its limit of {max}"
            ))
            .into());
        }
        Ok(())
    }

    /// Requests as the SDK lists them: with the applicant's profile and the group's info.
    async fn requests_pb(&self, requests: Vec<GroupRequest>) -> Result<Vec<sdkws::GroupRequest>, Status> {
        let users: Vec<String> =
            requests.iter().map(|r| r.user_id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let group_ids: Vec<String> =
            requests.iter().map(|r| r.group_id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let users = self.public_users(&users).await?;
        let groups = self.stores.groups.get_groups(&group_ids).await.map_err(store_status)?;
        let groups: HashMap<String, GroupInfo> =
            self.infos(groups).await?.into_iter().map(|g| (g.group_id.clone(), g)).collect();
        Ok(requests
            .into_iter()
            .map(|r| {
                let user = users.get(&r.user_id).cloned();
                let group = groups.get(&r.group_id).cloned();
                request_pb(r, user, group)
            })
            .collect())
    }

    pub(crate) async fn join(&self, req: Request<group::JoinGroupReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let r = req.into_inner();
        if r.group_id.is_empty() || !JOIN_SOURCES.contains(&r.join_source) {
            return Err(ImError::args("groupID must be set and joinSource be 1 to 4").into());
        }
        // The SDK names the applicant in `inviterUserID`; one may apply only for oneself.
        let applicant = if r.inviter_user_id.is_empty() { op.clone() } else { r.inviter_user_id.clone() };
        if applicant != op && !self.share.is_admin(&op) {
            return Err(ImError::no_permission(format!("{op} may not apply for {applicant}")).into());
        }
        let profiles = self.public_users(std::slice::from_ref(&applicant)).await?;
        let Some(profile) = profiles.get(&applicant).cloned() else {
            return Err(ImError::new(ErrCode::RECORD_NOT_FOUND, format!("user {applicant} does not exist")).into());
        };
        let g = self.live_group(&r.group_id).await?;
        if self.role_of(&r.group_id, &applicant).await?.is_some() {
            return Err(ImError::args(format!("{applicant} is already a member of {}", r.group_id)).into());
        }
        if g.need_verification == verification::DIRECTLY {
            self.check_room(&r.group_id, 1).await?;
            let hooks = self.hooks.config();
            let body =
                json!({"groupID": r.group_id, "memberList": [{"userID": applicant, "ex": r.ex}], "groupEx": g.ex});
            let command = "callbackBeforeMembersJoinGroupCommand";
            self.hooks
                .check("beforeMemberJoinGroup", &hooks.before_member_join_group, command, body, &operation_id)
                .await?;
            let member = GroupMember {
                group_id: r.group_id.clone(),
                user_id: applicant.clone(),
                role_level: role::ORDINARY,
                join_time: now_millis(),
                join_source: r.join_source,
                operator_user_id: op.clone(),
                ..Default::default()
            };
            let (added, head) =
                self.stores.groups.add_members(std::slice::from_ref(&member)).await.map_err(store_status)?;
            if added.is_empty() {
                return Ok(());
            }
            self.ensure_conversations(&r.group_id, &added).await?;
            let change = self.change(&op, &r.group_id, head).await?;
            self.notes.member_enter(&change, member_info(member)).await;
            let body = json!({"operationID": operation_id, "groupID": r.group_id, "reqMessage": r.req_message,
                "joinSource": r.join_source, "inviterUserID": r.inviter_user_id});
            let command = "callbackAfterJoinGroupCommand";
            self.hooks.tell("afterJoinGroup", &hooks.after_join_group, command, body, &operation_id);
            return Ok(());
        }
        let request = GroupRequest {
            group_id: r.group_id.clone(),
            user_id: applicant.clone(),
            handle_result: handle_result::PENDING,
            req_msg: r.req_message,
            req_time: now_millis(),
            join_source: r.join_source,
            ex: r.ex,
            ..Default::default()
        };
        self.stores.groups.put_group_requests(std::slice::from_ref(&request)).await.map_err(store_status)?;
        let mut to = self.manager_ids(&r.group_id).await?;
        to.extend([applicant, op.clone()]);
        dedup(&mut to);
        let group = self.infos(vec![g]).await?.pop().unwrap_or_default();
        self.notes.join_application(&op, &to, group, profile.clone(), request_pb(request, Some(profile), None)).await;
        Ok(())
    }

    /// Invitations by ordinary members of a group where all need approval become requests
    /// (1503 each); answers go through [`Self::answer`].
    pub(crate) async fn invite_as_requests(&self, op: &str, g: GroupInfo, invited: &[String]) -> Result<(), Status> {
        let now = now_millis();
        let requests: Vec<GroupRequest> = invited
            .iter()
            .map(|u| GroupRequest {
                group_id: g.group_id.clone(),
                user_id: u.clone(),
                handle_result: handle_result::PENDING,
                req_time: now,
                join_source: crate::JOIN_BY_INVITATION,
                inviter_user_id: op.to_owned(),
                ..Default::default()
            })
            .collect();
        self.stores.groups.put_group_requests(&requests).await.map_err(store_status)?;
        let mut to = self.manager_ids(&g.group_id).await?;
        to.push(op.to_owned());
        dedup(&mut to);
        let mut ids = vec![op.to_owned()];
        ids.extend(invited.iter().cloned());
        let profiles = self.public_users(&ids).await?;
        let inviter = profiles
            .get(op)
            .cloned()
            .unwrap_or_else(|| PublicUserInfo { user_id: op.to_owned(), ..Default::default() });
        for request in requests {
            let user = profiles.get(&request.user_id).cloned();
            self.notes.join_application(op, &to, g.clone(), inviter.clone(), request_pb(request, user, None)).await;
        }
        Ok(())
    }

    pub(crate) async fn answer(&self, req: Request<group::GroupApplicationResponseReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        let accepted = match r.handle_result {
            handle_result::ACCEPTED => true,
            handle_result::REFUSED => false,
            other => return Err(ImError::args(format!("handleResult {other} is neither 1 nor -1")).into()),
        };
        self.check_group_admin(&op, &r.group_id).await?;
        self.group(&r.group_id).await?;
        let Some(request) =
            self.stores.groups.group_request(&r.group_id, &r.from_user_id).await.map_err(store_status)?
        else {
            return Err(ImError::new(
                ErrCode::RECORD_NOT_FOUND,
                format!("{} has no request to join {}", r.from_user_id, r.group_id),
            )
            .into());
        };
        let handled = || {
            Status::from(ImError::new(
                ErrCode::GROUP_REQUEST_HANDLED,
                format!("the request of {} to join {} was answered", r.from_user_id, r.group_id),
            ))
        };
        if request.handle_result != handle_result::PENDING {
            return Err(handled());
        }
        let in_group = self.role_of(&r.group_id, &r.from_user_id).await?.is_some();
        let join = (accepted && !in_group).then(|| GroupMember {
            group_id: r.group_id.clone(),
            user_id: r.from_user_id.clone(),
            role_level: role::ORDINARY,
            join_time: now_millis(),
            join_source: request.join_source,
            inviter_user_id: request.inviter_user_id.clone(),
            operator_user_id: op.clone(),
            ..Default::default()
        });
        if join.is_some() {
            self.check_room(&r.group_id, 1).await?;
        }
        let answer = GroupRequestAnswer {
            group_id: r.group_id.clone(),
            user_id: r.from_user_id.clone(),
            handle_result: r.handle_result,
            handle_msg: r.handled_msg.clone(),
            handle_user_id: op.clone(),
            handle_time: now_millis(),
        };
        let head = match self.stores.groups.answer_group_request(&answer, join.as_ref()).await {
            Ok(head) => head,
            Err(StoreError::NotFound(_)) => return Err(handled()),
            Err(e) => return Err(store_status(e)),
        };
        let answered = GroupRequest {
            handle_result: answer.handle_result,
            handle_msg: answer.handle_msg,
            handle_user_id: answer.handle_user_id,
            handle_time: answer.handle_time,
            ..request
        };
        let inviter = answered.inviter_user_id.clone();
        let managers = self.manager_ids(&r.group_id).await?;
        let profile = self.public_users(std::slice::from_ref(&r.from_user_id)).await?.remove(&r.from_user_id);
        let change = self.change(&op, &r.group_id, head.clone().unwrap_or_default()).await?;
        let request = request_pb(answered, profile, None);
        self.notes.application_answered(&change, accepted, &managers, &r.from_user_id, request).await;
        if let (Some(member), Some(_)) = (join, head) {
            self.ensure_conversations(&r.group_id, std::slice::from_ref(&member.user_id)).await?;
            if inviter.is_empty() {
                self.notes.member_enter(&change, member_info(member)).await;
            } else {
                let inviter = self.op_user(&r.group_id, &inviter).await?;
                self.notes.member_invited(&change, vec![member_info(member)], inviter, true).await;
            }
        }
        Ok(())
    }

    /// Requests to the groups `fromUserID` manages (or to the given ones, which the caller must
    /// manage), newest first.
    pub(crate) async fn received_requests(
        &self,
        req: Request<group::GetGroupApplicationListReq>,
    ) -> Result<group::GetGroupApplicationListResp, Status> {
        openim_common::limits::check(req.get_ref())?;
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().from_user_id.clone())?;
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        let mut group_ids = r.group_i_ds;
        if group_ids.is_empty() {
            group_ids = self.stores.groups.managed_group_ids(&r.from_user_id).await.map_err(store_status)?;
        } else {
            dedup(&mut group_ids);
            self.check_groups_exist(&group_ids).await?;
            for g in &group_ids {
                self.check_group_admin(&op, g).await?;
            }
        }
        if group_ids.is_empty() {
            return Ok(group::GetGroupApplicationListResp::default());
        }
        let filter = page_filter(r.pagination.as_ref(), r.handle_results);
        let (found, total) = self.stores.groups.group_requests_to(&group_ids, &filter).await.map_err(store_status)?;
        Ok(group::GetGroupApplicationListResp { total: total as u32, group_requests: self.requests_pb(found).await? })
    }

    /// A user's own requests, newest first.
    pub(crate) async fn sent_requests(
        &self,
        req: Request<group::GetUserReqApplicationListReq>,
    ) -> Result<group::GetUserReqApplicationListResp, Status> {
        openim_common::limits::check(req.get_ref())?;
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id.clone())?;
        let mut r = req.into_inner();
        dedup(&mut r.group_i_ds);
        let filter = page_filter(r.pagination.as_ref(), r.handle_results);
        let (found, total) =
            self.stores.groups.group_requests_from(&r.user_id, &r.group_i_ds, &filter).await.map_err(store_status)?;
        Ok(group::GetUserReqApplicationListResp { total: total as u32, group_requests: self.requests_pb(found).await? })
    }

    /// Given users' requests to one group: for its owner and admins, or a user asking about
    /// itself.
    pub(crate) async fn users_requests(
        &self,
        req: Request<group::GetGroupUsersReqApplicationListReq>,
    ) -> Result<group::GetGroupUsersReqApplicationListResp, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        self.group(&r.group_id).await?;
        if r.user_i_ds.iter().any(|u| *u != op) {
            self.check_group_admin(&op, &r.group_id).await?;
        }
        let found = self.stores.groups.group_requests_of(&r.group_id, &r.user_i_ds).await.map_err(store_status)?;
        let group_requests = self.requests_pb(found).await?;
        Ok(group::GetGroupUsersReqApplicationListResp { total: group_requests.len() as i64, group_requests })
    }

    /// One user's request to one group: for that user, or the group's owner and admins.
    pub(crate) async fn user_request(
        &self,
        req: Request<group::GetSpecifiedUserGroupRequestInfoReq>,
    ) -> Result<group::GetSpecifiedUserGroupRequestInfoResp, Status> {
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        if r.user_id != op {
            self.check_group_admin(&op, &r.group_id).await?;
        }
        let found = self.stores.groups.group_request(&r.group_id, &r.user_id).await.map_err(store_status)?;
        let group_requests = self.requests_pb(found.into_iter().collect()).await?;
        Ok(group::GetSpecifiedUserGroupRequestInfoResp { total: group_requests.len() as u32, group_requests })
    }

    /// How many requests wait for `userID` to answer (made after `time`, when given).
    pub(crate) async fn unhandled_count(
        &self,
        req: Request<group::GetGroupApplicationUnhandledCountReq>,
    ) -> Result<i64, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id.clone())?;
        let r = req.into_inner();
        let managed = self.stores.groups.managed_group_ids(&r.user_id).await.map_err(store_status)?;
        if managed.is_empty() {
            return Ok(0);
        }
        let count = self.stores.groups.pending_group_requests(&managed, r.time).await.map_err(store_status)?;
        Ok(count as i64)
    }

    /// 1201 naming the first of `ids` that is no group.
    pub(crate) async fn check_groups_exist(&self, ids: &[String]) -> Result<(), Status> {
        let found = self.stores.groups.get_groups(ids).await.map_err(store_status)?;
        if let Some(missing) = openim_common::ids::first_missing(ids, found.iter().map(|g| g.group_id.as_str())) {
            return Err(ImError::new(ErrCode::GROUP_ID_NOT_FOUND, format!("group {missing} does not exist")).into());
        }
        Ok(())
    }
}

/// A stored request as the SDK reads it.
pub(crate) fn request_pb(
    r: GroupRequest,
    user: Option<PublicUserInfo>,
    group: Option<GroupInfo>,
) -> sdkws::GroupRequest {
    sdkws::GroupRequest {
        user_info: user,
        group_info: group,
        handle_result: r.handle_result,
        req_msg: r.req_msg,
        handle_msg: r.handle_msg,
        req_time: r.req_time,
        handle_user_id: r.handle_user_id,
        handle_time: r.handle_time,
        ex: r.ex,
        join_source: r.join_source,
        inviter_user_id: r.inviter_user_id,
    }
}

fn page_filter(p: Option<&sdkws::RequestPagination>, handle_results: Vec<i32>) -> RequestFilter {
    let (offset, limit) = rpc::page(p);
    RequestFilter { handle_results, offset, limit }
}

/// Drops repeated IDs, keeping the first of each in place.
pub(crate) fn dedup(ids: &mut Vec<String>) {
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
}
