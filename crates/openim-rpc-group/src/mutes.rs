//! Mutes: a member may not send until a time, or a whole group may send only through its owner
//! and admins (OpenIM's rules: an admin mutes ordinary members, the owner mutes admins too, an
//! administrator of the app anyone). Sending checks them (`openim-rpc-msg`); a member's mute
//! ends by itself at its time.

use openim_common::error::store_status;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::group;
use openim_proto::pb::sdkws::GroupMemberFullInfo;
use openim_storage::{GroupMember, GroupPatch, MemberPatch, StoreError, group_status, role};
use tonic::{Request, Status};

use crate::notes::Change;
use crate::{GroupService, member_info};

/// The longest mute OpenIM's apps offer is a year; longer ones are refused rather than stored.
const MAX_MUTE_SECONDS: u32 = 366 * 24 * 3600;

impl GroupService {
    /// A member of the group, or 1004 (OpenIM's "record not found").
    pub(crate) async fn member(&self, group_id: &str, user_id: &str) -> Result<GroupMember, Status> {
        let mut found = self.stores.groups.get_members(group_id, &[user_id.to_owned()]).await.map_err(store_status)?;
        found.pop().ok_or_else(|| {
            ImError::new(ErrCode::RECORD_NOT_FOUND, format!("{user_id} is not a member of group {group_id}")).into()
        })
    }

    /// Who acted, as group tips show them: their membership, or an app administrator's stand-in.
    pub(crate) async fn op_user(&self, group_id: &str, op: &str) -> Result<GroupMemberFullInfo, Status> {
        let found = self.stores.groups.get_members(group_id, &[op.to_owned()]).await.map_err(store_status)?;
        Ok(match found.into_iter().next() {
            Some(m) => member_info(m),
            None => GroupMemberFullInfo {
                group_id: group_id.to_owned(),
                user_id: op.to_owned(),
                role_level: role::ADMIN,
                app_manger_level: if self.share.is_admin(op) { 2 } else { 0 },
                ..Default::default()
            },
        })
    }

    /// The caller must be the group's owner or one of its admins, or an app administrator.
    pub(crate) async fn check_group_admin(&self, op: &str, group_id: &str) -> Result<(), Status> {
        if self.share.is_admin(op) {
            return Ok(());
        }
        let me = self.member(group_id, op).await?;
        if me.role_level < role::ADMIN {
            return Err(ImError::no_permission(format!("{op} is neither the owner nor an admin of {group_id}")).into());
        }
        Ok(())
    }

    /// The caller may mute `target`: the owner anyone but itself, an admin ordinary members.
    async fn check_may_mute(&self, op: &str, target: &GroupMember) -> Result<(), Status> {
        if self.share.is_admin(op) {
            return Ok(());
        }
        let me = self.member(&target.group_id, op).await?;
        let allowed = match target.role_level {
            role::OWNER => false,
            role::ADMIN => me.role_level == role::OWNER,
            _ => me.role_level >= role::ADMIN,
        };
        if !allowed || me.user_id == target.user_id {
            return Err(ImError::no_permission(format!(
                "{op} may not mute or unmute {} in group {}",
                target.user_id, target.group_id
            ))
            .into());
        }
        Ok(())
    }

    /// The change's context for its notification: the group after it and who made it.
    pub(crate) async fn change<'a>(
        &self,
        op: &'a str,
        group_id: &str,
        head: openim_storage::VersionHead,
    ) -> Result<Change<'a>, Status> {
        let g = self.group(group_id).await?;
        let group = self.infos(vec![g]).await?.pop().unwrap_or_default();
        Ok(Change { op, op_user: self.op_user(group_id, op).await?, group, head })
    }

    /// Writes `target`'s mute end (0: none) and tells the members (1512 with `seconds`, 1513
    /// without).
    pub(crate) async fn write_mute(
        &self,
        op: &str,
        target: GroupMember,
        until: i64,
        seconds: Option<u32>,
    ) -> Result<(), Status> {
        let patch = MemberPatch { mute_end_time: Some(until), ..Default::default() };
        let head = self
            .stores
            .groups
            .update_members(&target.group_id, &[(target.user_id.clone(), patch)])
            .await
            .map_err(store_status)?;
        let change = self.change(op, &target.group_id, head).await?;
        let info = member_info(GroupMember { mute_end_time: until, ..target });
        match seconds {
            Some(seconds) => self.notes.member_muted(change, info, seconds).await,
            None => self.notes.member_unmuted(change, info).await,
        }
        Ok(())
    }

    /// Mutes (`seconds`) or unmutes a member, as the caller may.
    async fn mute_as(&self, op: &str, group_id: &str, user_id: &str, seconds: Option<u32>) -> Result<(), Status> {
        self.live_group(group_id).await?;
        let target = self.member(group_id, user_id).await?;
        self.check_may_mute(op, &target).await?;
        let until = seconds.map_or(0, |s| now_millis() + i64::from(s) * 1000);
        self.write_mute(op, target, until, seconds).await
    }

    pub(crate) async fn mute_member(&self, req: Request<group::MuteGroupMemberReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let req = req.into_inner();
        if req.muted_seconds == 0 || req.muted_seconds > MAX_MUTE_SECONDS {
            return Err(ImError::args(format!("mutedSeconds must be 1 to {MAX_MUTE_SECONDS}")).into());
        }
        self.mute_as(&op, &req.group_id, &req.user_id, Some(req.muted_seconds)).await
    }

    pub(crate) async fn unmute_member(&self, req: Request<group::CancelMuteGroupMemberReq>) -> Result<(), Status> {
        let op = rpc::op_user_id(&req);
        let req = req.into_inner();
        self.mute_as(&op, &req.group_id, &req.user_id, None).await
    }

    /// Applies a patch to the group's info; a missing group is OpenIM's 1004.
    pub(crate) async fn patch_group(
        &self,
        group_id: &str,
        patch: &GroupPatch,
    ) -> Result<openim_storage::VersionHead, Status> {
        self.stores.groups.update_group(group_id, patch).await.map_err(|e| match e {
            StoreError::NotFound(what) => ImError::new(ErrCode::RECORD_NOT_FOUND, what).into(),
            other => store_status(other),
        })
    }

    /// Mutes (`muted`) or unmutes the whole group.
    pub(crate) async fn set_group_muted(&self, op: &str, group_id: &str, muted: bool) -> Result<(), Status> {
        self.live_group(group_id).await?;
        self.check_group_admin(op, group_id).await?;
        let status = if muted { group_status::MUTED } else { group_status::OK };
        let patch = GroupPatch { status: Some(status), ..Default::default() };
        let head = self.patch_group(group_id, &patch).await?;
        let change = self.change(op, group_id, head).await?;
        self.notes.group_muted(change, muted).await;
        Ok(())
    }
}
