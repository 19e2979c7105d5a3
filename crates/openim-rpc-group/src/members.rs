//! Members' settings (group nickname, face, role, ex), the members hash clients compare, and the
//! administrators' group search.

use std::collections::HashMap;
use std::fmt::Write as _;

use openim_common::ImError;
use openim_common::error::store_status;
use openim_common::ids::{go_json_string, md5_prefix};
use openim_common::rpc;
use openim_proto::pb::group;
use openim_proto::pb::sdkws::GroupMemberFullInfo;
use openim_storage::{GroupMember, MemberPatch, role, version};
use tonic::{Request, Status};

use crate::notes::content;

/// Groups whose members hash is kept at most; beyond it the cache starts over.
const MAX_CACHED_HASHES: usize = 100_000;
use crate::{GroupService, member_info};

impl GroupService {
    /// Applies each member's changes, as the caller's role allows (OpenIM's rules): the owner
    /// changes anyone (not its own role), an admin ordinary members (making them admins too)
    /// and itself, an ordinary member itself; nobody raises its own role. Each member's change is one version and one notification:
    /// 1517/1518 for a new role, 1516 for the rest.
    pub(crate) async fn set_member_info(&self, req: Request<group::SetGroupMemberInfoReq>) -> Result<(), Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        if r.members.is_empty() {
            return Err(ImError::args("members is empty").into());
        }
        for m in &r.members {
            match m.role_level.as_ref().map(|v| v.value) {
                Some(role::OWNER) => {
                    return Err(ImError::no_permission("the owner is set by transfer_group, not here").into());
                }
                Some(role::ADMIN | role::ORDINARY) | None => {}
                Some(other) => return Err(ImError::args(format!("roleLevel {other} is neither 60 nor 20")).into()),
            }
        }
        let mut by_group: HashMap<&str, Vec<&group::SetGroupMemberInfo>> = HashMap::new();
        for m in &r.members {
            by_group.entry(m.group_id.as_str()).or_default().push(m);
        }
        // Every group is checked before anything is written.
        let mut checked = Vec::with_capacity(by_group.len());
        for (group_id, wanted) in by_group {
            let current = self.check_may_set(&op, group_id, &wanted).await?;
            checked.push((group_id, wanted, current));
        }
        for (group_id, wanted, current) in checked {
            for m in wanted {
                let before = current[&m.user_id].clone();
                let patch = MemberPatch {
                    nickname: m.nickname.as_ref().map(|v| v.value.clone()),
                    face_url: m.face_url.as_ref().map(|v| v.value.clone()),
                    role_level: m.role_level.as_ref().map(|v| v.value),
                    ex: m.ex.as_ref().map(|v| v.value.clone()),
                    mute_end_time: None,
                };
                if patch == MemberPatch::default() {
                    continue;
                }
                let head = self
                    .stores
                    .groups
                    .update_members(group_id, &[(m.user_id.clone(), patch.clone())])
                    .await
                    .map_err(store_status)?;
                let after = GroupMember {
                    nickname: patch.nickname.clone().unwrap_or(before.nickname.clone()),
                    face_url: patch.face_url.clone().unwrap_or(before.face_url.clone()),
                    role_level: patch.role_level.unwrap_or(before.role_level),
                    ex: patch.ex.clone().unwrap_or(before.ex.clone()),
                    ..before
                };
                let change = self.change(&op, group_id, head).await?;
                let changed = member_info(after);
                match patch.role_level {
                    Some(role::ADMIN) => {
                        self.notes.member_info_set(&change, content::SET_TO_ADMIN, changed.clone(), true).await;
                    }
                    Some(_) => {
                        self.notes.member_info_set(&change, content::SET_TO_ORDINARY, changed.clone(), true).await;
                    }
                    None => {}
                }
                if patch.nickname.is_some() || patch.face_url.is_some() || patch.ex.is_some() {
                    let sorted = patch.role_level.is_some();
                    self.notes.member_info_set(&change, content::MEMBER_INFO_SET, changed, sorted).await;
                }
            }
        }
        Ok(())
    }

    /// The targets' memberships, once the caller may change all of them.
    async fn check_may_set(
        &self,
        op: &str,
        group_id: &str,
        wanted: &[&group::SetGroupMemberInfo],
    ) -> Result<HashMap<String, GroupMember>, Status> {
        let mut ids: Vec<String> = wanted.iter().map(|m| m.user_id.clone()).collect();
        let n = ids.len();
        crate::apply::dedup(&mut ids);
        if ids.len() != n {
            return Err(ImError::args(format!("a member of {group_id} is named twice")).into());
        }
        ids.push(op.to_owned());
        let found: HashMap<String, GroupMember> = self
            .stores
            .groups
            .get_members(group_id, &ids)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(|m| (m.user_id.clone(), m))
            .collect();
        if let Some(missing) = wanted.iter().find(|m| !found.contains_key(&m.user_id)) {
            return Err(ImError::args(format!("{} is not a member of group {group_id}", missing.user_id)).into());
        }
        if self.share.is_admin(op) {
            return Ok(found);
        }
        let Some(me) = found.get(op) else {
            return Err(ImError::no_permission(format!("{op} is not a member of group {group_id}")).into());
        };
        for m in wanted {
            let target = &found[&m.user_id];
            let new_role = m.role_level.as_ref().map(|v| v.value);
            let allowed = if target.user_id == op {
                match new_role {
                    Some(_) if me.role_level == role::OWNER => {
                        return Err(ImError::args("the owner cannot change its own role").into());
                    }
                    Some(r) => r <= me.role_level,
                    None => true,
                }
            } else {
                match me.role_level {
                    role::OWNER => true,
                    role::ADMIN => target.role_level == role::ORDINARY,
                    _ => false,
                }
            };
            if !allowed {
                return Err(ImError::no_permission(format!(
                    "{op} may not change {} in group {group_id} that way",
                    target.user_id
                ))
                .into());
            }
        }
        Ok(found)
    }

    /// Member counts and the members hash (OpenIM's `groupMemberListHash`) of groups the caller
    /// is in.
    pub(crate) async fn abstract_info(
        &self,
        req: Request<group::GetGroupAbstractInfoReq>,
    ) -> Result<Vec<group::GroupAbstractInfo>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let mut ids = req.get_ref().group_i_ds.clone();
        let n = ids.len();
        crate::apply::dedup(&mut ids);
        if ids.is_empty() || ids.len() != n {
            return Err(ImError::args("groupIDs must be given, each once").into());
        }
        for g in &ids {
            self.check_admin_or_in_group(&req, g).await?;
        }
        self.check_groups_exist(&ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for group_id in ids {
            // Cached per member-log version: every change to a member moves the log on. (A
            // profile change a member's empty group nickname shows through does not; OpenIM
            // drops its cached hash then, here it waits for the group's next change.)
            let head =
                self.stores.groups.version_head(version::GROUP_MEMBERS, &group_id).await.map_err(store_status)?;
            let cached = self.hashes.get(&group_id).filter(|c| c.0 == head).map(|c| (c.1, c.2));
            let (count, hash) = match cached {
                Some(hit) => hit,
                None => {
                    let members = self.hash_members(&group_id).await?;
                    let computed = (members.len() as u32, members_hash(&members));
                    if self.hashes.len() >= MAX_CACHED_HASHES {
                        self.hashes.clear();
                    }
                    self.hashes.insert(group_id.clone(), (head, computed.0, computed.1));
                    computed
                }
            };
            out.push(group::GroupAbstractInfo { group_member_number: count, group_member_list_hash: hash, group_id });
        }
        Ok(out)
    }

    /// The members as the hash sees them: by user ID, with empty group nicknames and faces
    /// filled from the users' profiles (OpenIM's `PopulateGroupMember`).
    async fn hash_members(&self, group_id: &str) -> Result<Vec<GroupMemberFullInfo>, Status> {
        let ids = self.stores.groups.member_ids(group_id).await.map_err(store_status)?;
        let mut members = self.stores.groups.get_members(group_id, &ids).await.map_err(store_status)?;
        let bare: Vec<String> = members
            .iter()
            .filter(|m| m.nickname.is_empty() || m.face_url.is_empty())
            .map(|m| m.user_id.clone())
            .collect();
        if !bare.is_empty() {
            let users = self.public_users(&bare).await?;
            for m in &mut members {
                if let Some(u) = users.get(&m.user_id) {
                    if m.nickname.is_empty() {
                        m.nickname = u.nickname.clone();
                    }
                    if m.face_url.is_empty() {
                        m.face_url = u.face_url.clone();
                    }
                }
            }
        }
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(members.into_iter().map(member_info).collect())
    }

    /// Groups by ID, or by name (dismissed ones left out), for administrators.
    pub(crate) async fn search(&self, req: Request<group::GetGroupsReq>) -> Result<group::GetGroupsResp, Status> {
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only administrators list every group").into());
        }
        let r = req.into_inner();
        let (groups, total) = if r.group_id.is_empty() {
            let (offset, limit) = rpc::page(r.pagination.as_ref());
            self.stores.groups.search_groups(&r.group_name, offset, limit).await.map_err(store_status)?
        } else {
            let found = self.stores.groups.get_groups(std::slice::from_ref(&r.group_id)).await.map_err(store_status)?;
            let n = found.len() as u64;
            (found, n)
        };
        let mut out = Vec::with_capacity(groups.len());
        for g in self.infos(groups).await? {
            let owner = self.stores.groups.get_members(&g.group_id, std::slice::from_ref(&g.owner_user_id)).await;
            let owner_name = owner.map_err(store_status)?.pop().map(|m| m.nickname).unwrap_or_default();
            out.push(group::CmsGroup {
                group_owner_user_id: g.owner_user_id.clone(),
                group_owner_user_name: owner_name,
                group_info: Some(g),
            });
        }
        Ok(group::GetGroupsResp { total: total as u32, groups: out })
    }
}

/// OpenIM's members hash: the first 8 bytes of the MD5 of the members' JSON as Go writes it
/// (ordered by user ID, every key present, `appMangerLevel` 0).
pub fn members_hash(members: &[GroupMemberFullInfo]) -> u64 {
    let mut json = String::from("[");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let s = |out: &mut String, key: &str, v: &str| {
            let _ = write!(out, "\"{key}\":");
            go_json_string(out, v);
        };
        json.push('{');
        s(&mut json, "groupID", &m.group_id);
        json.push(',');
        s(&mut json, "userID", &m.user_id);
        let _ = write!(json, ",\"roleLevel\":{},\"joinTime\":{},", m.role_level, m.join_time);
        s(&mut json, "nickname", &m.nickname);
        json.push(',');
        s(&mut json, "faceURL", &m.face_url);
        let _ = write!(json, ",\"appMangerLevel\":0,\"joinSource\":{},", m.join_source);
        s(&mut json, "operatorUserID", &m.operator_user_id);
        json.push(',');
        s(&mut json, "ex", &m.ex);
        let _ = write!(json, ",\"muteEndTime\":{},", m.mute_end_time);
        s(&mut json, "inviterUserID", &m.inviter_user_id);
        json.push('}');
    }
    json.push(']');
    md5_prefix(json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_members_hash_is_of_go_json() {
        // md5 of "[]" is d751713988987e9331980363e24189ce.
        assert_eq!(members_hash(&[]), 0xd751713988987e93);
        let m = GroupMemberFullInfo {
            group_id: "g".into(),
            user_id: "u<1>".into(),
            role_level: 20,
            join_time: 5,
            app_manger_level: 2,
            ..Default::default()
        };
        let json = r#"[{"groupID":"g","userID":"u\u003c1\u003e","roleLevel":20,"joinTime":5,"nickname":"","faceURL":"","appMangerLevel":0,"joinSource":0,"operatorUserID":"","ex":"","muteEndTime":0,"inviterUserID":""}]"#;
        assert_eq!(members_hash(&[m]), md5_prefix(json.as_bytes()));
    }
}
