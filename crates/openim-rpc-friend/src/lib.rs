//! `openim-rpc-friend`: friends, friend applications and blacklists (OpenIM's "relation"
//! service). The tonic impl below is a dispatch table; the rules live in `applications.rs`,
//! `friends.rs` and `blacks.rs`, the notifications in `notes.rs`.

mod applications;
mod blacks;
mod friends;
mod notes;

use std::collections::HashMap;

use openim_common::config::Share;
use openim_common::error::store_status;
use openim_common::ids::{self, first_missing};
use openim_common::notify::Notifier;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::relation::{self, friend_server::Friend as FriendRpc};
use openim_proto::pb::sdkws::FriendInfo;
use openim_storage::{Friend, Stores, User};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::relation::friend_server::FriendServer;

pub use notes::FriendNotes;

/// How a friendship or blacklist entry came about (`addSource`), as OpenIM numbers it.
mod add_source {
    pub const IMPORT: i32 = 1;
    pub const APPLY: i32 = 2;
}

/// Bounds on what one request may carry; longer input is an `ArgsError` naming the field.
pub mod limits {
    use openim_common::ImError;

    /// User IDs in one request.
    pub const IDS: usize = 1000;
    /// Characters of an application or answer message.
    pub const REQ_MSG: usize = 1024;
    /// Characters of a remark.
    pub const REMARK: usize = 255;
    /// Characters of an `ex` field.
    pub const EX: usize = 2048;

    pub fn text(field: &str, value: &str, max: usize) -> Result<(), ImError> {
        let n = value.chars().count();
        if n > max {
            Err(ImError::args(format!("{field} has {n} characters; at most {max} are allowed")))
        } else {
            Ok(())
        }
    }

    pub fn ids(field: &str, n: usize) -> Result<(), ImError> {
        if n > IDS { Err(ImError::args(format!("{field} has {n} entries; at most {IDS} are allowed"))) } else { Ok(()) }
    }
}

pub struct FriendService {
    share: Share,
    stores: Stores,
    notes: FriendNotes,
    hooks: openim_common::webhook::Webhooks,
}

impl FriendService {
    pub fn new(share: Share, stores: Stores) -> Self {
        let notes = FriendNotes::new(Notifier::new(stores.bus.clone()));
        Self { share, stores, notes, hooks: openim_common::webhook::Webhooks::none() }
    }

    /// Calls the friend callbacks of `webhooks.yml`.
    pub fn with_webhooks(mut self, hooks: openim_common::webhook::Webhooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Fails with `UserIDNotFoundError` naming the first ID that is not registered.
    async fn check_users(&self, ids: &[&String]) -> Result<(), Status> {
        let ids: Vec<String> = ids.iter().map(|s| (*s).clone()).collect();
        let found = self.stores.users.get_users(&ids).await.map_err(store_status)?;
        if let Some(missing) = first_missing(&ids, found.iter().map(|u| u.user_id.as_str())) {
            return Err(ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {missing} is not registered")).into());
        }
        Ok(())
    }

    /// Whether `b` is in `a`'s friend list, and `a` in `b`'s.
    async fn are_friends(&self, a: &str, b: &str) -> Result<(bool, bool), Status> {
        let one = self.stores.friends.friends(a, Some(&[b.to_owned()])).await.map_err(store_status)?;
        let two = self.stores.friends.friends(b, Some(&[a.to_owned()])).await.map_err(store_status)?;
        Ok((!one.is_empty(), !two.is_empty()))
    }

    /// Friend records joined with the friends' profiles.
    async fn infos(&self, friends: Vec<Friend>) -> Result<Vec<FriendInfo>, Status> {
        let ids: Vec<String> = friends.iter().map(|f| f.friend_user_id.clone()).collect();
        let users = self.stores.users.get_users(&ids).await.map_err(store_status)?;
        let users: HashMap<&str, &User> = users.iter().map(|u| (u.user_id.as_str(), u)).collect();
        Ok(friends
            .into_iter()
            .map(|f| FriendInfo {
                friend_user: users.get(f.friend_user_id.as_str()).map(|u| openim_rpc_user::to_pb((*u).clone())),
                owner_user_id: f.owner_user_id,
                remark: f.remark,
                create_time: f.create_time,
                add_source: f.add_source,
                operator_user_id: f.operator_user_id,
                ex: f.ex,
                is_pinned: f.is_pinned,
            })
            .collect())
    }

    async fn friend_ids(&self, owner: &str) -> Result<Vec<String>, Status> {
        let all = self.stores.friends.friends(owner, None).await.map_err(store_status)?;
        Ok(all.into_iter().map(|f| f.friend_user_id).collect())
    }
}

#[tonic::async_trait]
impl FriendRpc for FriendService {
    async fn import_friends(
        &self,
        req: Request<relation::ImportFriendReq>,
    ) -> Result<Response<relation::ImportFriendResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may import friends").into());
        }
        let req = req.into_inner();
        limits::ids("friendUserIDs", req.friend_user_i_ds.len())?;
        if req.friend_user_i_ds.contains(&req.owner_user_id) {
            return Err(ImError::new(ErrCode::CAN_NOT_ADD_YOURSELF, "a user cannot befriend themselves").into());
        }
        let mut unique = req.friend_user_i_ds.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != req.friend_user_i_ds.len() {
            return Err(ImError::args("friendUserIDs lists a user twice").into());
        }
        let mut all = req.friend_user_i_ds.clone();
        all.push(req.owner_user_id.clone());
        let found = self.stores.users.get_users(&all).await.map_err(store_status)?;
        if let Some(missing) = first_missing(&all, found.iter().map(|u| u.user_id.as_str())) {
            return Err(ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {missing} is not registered")).into());
        }
        let now = now_millis();
        for f in &req.friend_user_i_ds {
            for (owner, friend) in [(&req.owner_user_id, f), (f, &req.owner_user_id)] {
                let record = Friend {
                    owner_user_id: owner.clone(),
                    friend_user_id: friend.clone(),
                    create_time: now,
                    add_source: add_source::IMPORT,
                    operator_user_id: op.clone(),
                    ..Default::default()
                };
                self.stores.friends.add_friend(&record).await.map_err(store_status)?;
            }
        }
        for f in &req.friend_user_i_ds {
            self.notes.application_approved(&req.owner_user_id, f, None, "").await;
        }
        Ok(Response::new(relation::ImportFriendResp {}))
    }

    async fn get_designated_friends(
        &self,
        req: Request<relation::GetDesignatedFriendsReq>,
    ) -> Result<Response<relation::GetDesignatedFriendsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let owner = req.get_ref().owner_user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &owner)?;
        let req = req.into_inner();
        let friends = self.stores.friends.friends(&owner, Some(&req.friend_user_i_ds)).await.map_err(store_status)?;
        Ok(Response::new(relation::GetDesignatedFriendsResp { friends_info: self.infos(friends).await? }))
    }

    async fn get_pagination_friends(
        &self,
        req: Request<relation::GetPaginationFriendsReq>,
    ) -> Result<Response<relation::GetPaginationFriendsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        let (offset, limit) = rpc::page(req.get_ref().pagination.as_ref());
        let all = self.stores.friends.friends(&user, None).await.map_err(store_status)?;
        let total = all.len() as i32;
        let page = all.into_iter().skip(offset as usize).take(limit as usize).collect();
        Ok(Response::new(relation::GetPaginationFriendsResp { friends_info: self.infos(page).await?, total }))
    }

    async fn get_friend_i_ds(
        &self,
        req: Request<relation::GetFriendIDsReq>,
    ) -> Result<Response<relation::GetFriendIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        Ok(Response::new(relation::GetFriendIDsResp { friend_i_ds: self.friend_ids(&user).await? }))
    }

    async fn is_friend(&self, req: Request<relation::IsFriendReq>) -> Result<Response<relation::IsFriendResp>, Status> {
        // OpenIM answers anyone; here only one of the two (or an administrator) may ask.
        let op = rpc::op_user_id(&req);
        let r = req.get_ref();
        if op != r.user_id1 && op != r.user_id2 && !self.share.is_admin(&op) {
            return Err(ImError::no_permission(format!("{op} is neither userID1 nor userID2")).into());
        }
        let req = req.into_inner();
        let one = self
            .stores
            .friends
            .friends(&req.user_id1, Some(std::slice::from_ref(&req.user_id2)))
            .await
            .map_err(store_status)?;
        let two = self
            .stores
            .friends
            .friends(&req.user_id2, Some(std::slice::from_ref(&req.user_id1)))
            .await
            .map_err(store_status)?;
        Ok(Response::new(relation::IsFriendResp {
            in_user1_friends: !one.is_empty(),
            in_user2_friends: !two.is_empty(),
        }))
    }

    async fn get_incremental_friends(
        &self,
        req: Request<relation::GetIncrementalFriendsReq>,
    ) -> Result<Response<relation::GetIncrementalFriendsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        let all = self.stores.friends.friends(&user, None).await.map_err(store_status)?;
        let ids: Vec<String> = all.iter().map(|f| f.friend_user_id.clone()).collect();
        // Always a full answer: the client replaces its list (see ARCHITECTURE.md, sync).
        Ok(Response::new(relation::GetIncrementalFriendsResp {
            version: ids::list_version(&ids),
            version_id: format!("friends-{user}"),
            full: true,
            delete: Vec::new(),
            insert: self.infos(all).await?,
            update: Vec::new(),
            sort_version: 0,
        }))
    }

    async fn get_full_friend_user_i_ds(
        &self,
        req: Request<relation::GetFullFriendUserIDsReq>,
    ) -> Result<Response<relation::GetFullFriendUserIDsResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        let ids = self.friend_ids(&user).await?;
        let hash = ids::id_hash(&ids);
        let equal = hash == req.get_ref().id_hash;
        Ok(Response::new(relation::GetFullFriendUserIDsResp {
            // OpenIM answers the hash itself here (the SDK compares hashes, not versions).
            version: hash,
            version_id: format!("friends-{user}"),
            equal,
            user_i_ds: if equal { Vec::new() } else { ids },
        }))
    }

    async fn apply_to_add_friend(
        &self,
        req: Request<relation::ApplyToAddFriendReq>,
    ) -> Result<Response<relation::ApplyToAddFriendResp>, Status> {
        self.apply(req).await?;
        Ok(Response::new(relation::ApplyToAddFriendResp {}))
    }

    async fn respond_friend_apply(
        &self,
        req: Request<relation::RespondFriendApplyReq>,
    ) -> Result<Response<relation::RespondFriendApplyResp>, Status> {
        self.respond(req).await?;
        Ok(Response::new(relation::RespondFriendApplyResp {}))
    }

    async fn get_pagination_friends_apply_to(
        &self,
        req: Request<relation::GetPaginationFriendsApplyToReq>,
    ) -> Result<Response<relation::GetPaginationFriendsApplyToResp>, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let (friend_requests, total) =
            self.applications(&r.user_id, true, &r.handle_results, r.pagination.as_ref()).await?;
        Ok(Response::new(relation::GetPaginationFriendsApplyToResp { friend_requests, total }))
    }

    async fn get_pagination_friends_apply_from(
        &self,
        req: Request<relation::GetPaginationFriendsApplyFromReq>,
    ) -> Result<Response<relation::GetPaginationFriendsApplyFromResp>, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let (friend_requests, total) =
            self.applications(&r.user_id, false, &r.handle_results, r.pagination.as_ref()).await?;
        Ok(Response::new(relation::GetPaginationFriendsApplyFromResp { friend_requests, total }))
    }

    async fn get_designated_friends_apply(
        &self,
        req: Request<relation::GetDesignatedFriendsApplyReq>,
    ) -> Result<Response<relation::GetDesignatedFriendsApplyResp>, Status> {
        let friend_requests = self.designated_applications(req).await?;
        Ok(Response::new(relation::GetDesignatedFriendsApplyResp { friend_requests }))
    }

    async fn get_self_unhandled_apply_count(
        &self,
        req: Request<relation::GetSelfUnhandledApplyCountReq>,
    ) -> Result<Response<relation::GetSelfUnhandledApplyCountResp>, Status> {
        let count = self.unhandled_count(req).await?;
        Ok(Response::new(relation::GetSelfUnhandledApplyCountResp { count }))
    }

    async fn delete_friend(
        &self,
        req: Request<relation::DeleteFriendReq>,
    ) -> Result<Response<relation::DeleteFriendResp>, Status> {
        FriendService::delete_friend(self, req).await?;
        Ok(Response::new(relation::DeleteFriendResp {}))
    }

    async fn update_friends(
        &self,
        req: Request<relation::UpdateFriendsReq>,
    ) -> Result<Response<relation::UpdateFriendsResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        FriendService::update_friends(self, req).await?;
        Ok(Response::new(relation::UpdateFriendsResp {}))
    }

    async fn set_friend_remark(
        &self,
        req: Request<relation::SetFriendRemarkReq>,
    ) -> Result<Response<relation::SetFriendRemarkResp>, Status> {
        self.set_remark(req).await?;
        Ok(Response::new(relation::SetFriendRemarkResp {}))
    }

    async fn get_specified_friends_info(
        &self,
        req: Request<relation::GetSpecifiedFriendsInfoReq>,
    ) -> Result<Response<relation::GetSpecifiedFriendsInfoResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        Ok(Response::new(self.specified_info(req).await?))
    }

    async fn add_black(&self, req: Request<relation::AddBlackReq>) -> Result<Response<relation::AddBlackResp>, Status> {
        FriendService::add_black(self, req).await?;
        Ok(Response::new(relation::AddBlackResp {}))
    }

    async fn remove_black(
        &self,
        req: Request<relation::RemoveBlackReq>,
    ) -> Result<Response<relation::RemoveBlackResp>, Status> {
        FriendService::remove_black(self, req).await?;
        Ok(Response::new(relation::RemoveBlackResp {}))
    }

    async fn get_pagination_blacks(
        &self,
        req: Request<relation::GetPaginationBlacksReq>,
    ) -> Result<Response<relation::GetPaginationBlacksResp>, Status> {
        Ok(Response::new(self.blacks_page(req).await?))
    }

    async fn get_specified_blacks(
        &self,
        req: Request<relation::GetSpecifiedBlacksReq>,
    ) -> Result<Response<relation::GetSpecifiedBlacksResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        let blacks = self.blacks(&r.owner_user_id, Some(&r.user_id_list)).await?;
        Ok(Response::new(relation::GetSpecifiedBlacksResp { total: blacks.len() as i32, blacks }))
    }

    async fn get_incremental_blacks(
        &self,
        req: Request<relation::GetIncrementalBlacksReq>,
    ) -> Result<Response<relation::GetIncrementalBlacksResp>, Status> {
        let user = req.get_ref().user_id.clone();
        rpc::check_self_or_admin(&req, &self.share, &user)?;
        let all = self.blacks(&user, None).await?;
        let ids: Vec<String> =
            all.iter().filter_map(|b| b.black_user_info.as_ref().map(|u| u.user_id.clone())).collect();
        // Always a full answer: the client replaces its list (see ARCHITECTURE.md, sync).
        Ok(Response::new(relation::GetIncrementalBlacksResp {
            version: ids::list_version(&ids),
            version_id: format!("blacks-{user}"),
            full: true,
            delete: Vec::new(),
            insert: all,
            update: Vec::new(),
        }))
    }

    async fn is_black(&self, req: Request<relation::IsBlackReq>) -> Result<Response<relation::IsBlackResp>, Status> {
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        // Not for users: it would tell a blocked user who blocked them.
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may ask").into());
        }
        let one = self
            .stores
            .blacks
            .blacks(&r.user_id1, Some(std::slice::from_ref(&r.user_id2)))
            .await
            .map_err(store_status)?;
        let two = self
            .stores
            .blacks
            .blacks(&r.user_id2, Some(std::slice::from_ref(&r.user_id1)))
            .await
            .map_err(store_status)?;
        Ok(Response::new(relation::IsBlackResp { in_user1_blacks: !one.is_empty(), in_user2_blacks: !two.is_empty() }))
    }
}
