//! Changes to one's friend list: delete, update (pin, remark, ex), remark; and the combined
//! user/friend/blacklist view of `get_specified_friends_info`.

use std::collections::HashMap;

use openim_common::error::store_status;
use openim_common::{ErrCode, ImError, ids, rpc};
use openim_proto::pb::{relation, sdkws};
use openim_storage::FriendPatch;
use tonic::{Request, Status};

use crate::{FriendService, limits};

impl FriendService {
    /// Removes the friend from the owner's list (one direction, as OpenIM does: the other side
    /// keeps theirs until they delete too).
    pub(crate) async fn delete_friend(&self, req: Request<relation::DeleteFriendReq>) -> Result<(), Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        // Deleting someone who is not a friend succeeds, as in OpenIM; only a change is announced.
        let (is_friend, _) = self.are_friends(&r.owner_user_id, &r.friend_user_id).await?;
        if is_friend {
            self.stores.friends.remove_friend(&r.owner_user_id, &r.friend_user_id).await.map_err(store_status)?;
            self.notes.friend_deleted(&r.owner_user_id, &r.friend_user_id).await;
        }
        Ok(())
    }

    pub(crate) async fn update_friends(&self, req: Request<relation::UpdateFriendsReq>) -> Result<(), Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        if r.friend_user_i_ds.is_empty() {
            return Err(ImError::args("friendUserIDs is empty").into());
        }
        limits::ids("friendUserIDs", r.friend_user_i_ds.len())?;
        let patch = FriendPatch {
            remark: r.remark.map(|v| v.value),
            is_pinned: r.is_pinned.map(|v| v.value),
            ex: r.ex.map(|v| v.value),
        };
        if let Some(remark) = &patch.remark {
            limits::text("remark", remark, limits::REMARK)?;
        }
        if let Some(ex) = &patch.ex {
            limits::text("ex", ex, limits::EX)?;
        }
        self.update(&r.owner_user_id, r.friend_user_i_ds.clone(), &patch).await?;
        self.notes.friends_updated(&r.owner_user_id, r.friend_user_i_ds).await;
        Ok(())
    }

    pub(crate) async fn set_remark(&self, req: Request<relation::SetFriendRemarkReq>) -> Result<(), Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        limits::text("remark", &r.remark, limits::REMARK)?;
        let patch = FriendPatch { remark: Some(r.remark), ..Default::default() };
        self.update(&r.owner_user_id, vec![r.friend_user_id.clone()], &patch).await?;
        self.notes.remark_set(&r.owner_user_id, &r.friend_user_id).await;
        Ok(())
    }

    /// Applies `patch`; every ID must be the owner's friend (`RecordNotFoundError` otherwise,
    /// and nothing changes).
    async fn update(&self, owner: &str, friend_ids: Vec<String>, patch: &FriendPatch) -> Result<(), Status> {
        let mut ids = friend_ids;
        ids.sort();
        ids.dedup();
        let found = self.stores.friends.friends(owner, Some(&ids)).await.map_err(store_status)?;
        if let Some(missing) = ids::first_missing(&ids, found.iter().map(|f| f.friend_user_id.as_str())) {
            return Err(ImError::new(ErrCode::RECORD_NOT_FOUND, format!("{missing} is not {owner}'s friend")).into());
        }
        self.stores.friends.update_friends(owner, &ids, patch).await.map_err(store_status)?;
        Ok(())
    }

    /// For each user: the profile, the friend entry and the blacklist entry the owner has.
    pub(crate) async fn specified_info(
        &self,
        req: Request<relation::GetSpecifiedFriendsInfoReq>,
    ) -> Result<relation::GetSpecifiedFriendsInfoResp, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        limits::ids("userIDList", r.user_id_list.len())?;
        let users = self.stores.users.get_users(&r.user_id_list).await.map_err(store_status)?;
        let friends =
            self.stores.friends.friends(&r.owner_user_id, Some(&r.user_id_list)).await.map_err(store_status)?;
        let friends = self.infos(friends).await?;
        let blacks = self.blacks(&r.owner_user_id, Some(&r.user_id_list)).await?;
        // Joined by ID through maps: the list runs to a thousand users.
        let users: HashMap<&str, &openim_storage::User> = users.iter().map(|u| (u.user_id.as_str(), u)).collect();
        let friends: HashMap<&str, &sdkws::FriendInfo> =
            friends.iter().filter_map(|f| Some((f.friend_user.as_ref()?.user_id.as_str(), f))).collect();
        let blacks: HashMap<&str, &sdkws::BlackInfo> =
            blacks.iter().filter_map(|b| Some((b.black_user_info.as_ref()?.user_id.as_str(), b))).collect();
        let infos = r
            .user_id_list
            .iter()
            .filter_map(|id| {
                let user = users.get(id.as_str())?;
                Some(relation::GetSpecifiedFriendsInfoInfo {
                    user_info: Some(openim_rpc_user::to_pb((*user).clone())),
                    friend_info: friends.get(id.as_str()).map(|f| (*f).clone()),
                    black_info: blacks.get(id.as_str()).map(|b| (*b).clone()),
                })
            })
            .collect();
        Ok(relation::GetSpecifiedFriendsInfoResp { infos })
    }
}
