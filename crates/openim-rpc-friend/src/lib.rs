//! `openim-rpc-friend`: friend lists (OpenIM's "relation" service). Friend requests are not
//! implemented yet; administrators import friendships directly.

use openim_common::config::Share;
use openim_common::error::store_status;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, ids};
use openim_proto::pb::relation::{self, friend_server::Friend as FriendRpc};
use openim_proto::pb::sdkws::FriendInfo;
use openim_storage::{Friend, Stores};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::relation::friend_server::FriendServer;

/// `addSource` of an imported friendship.
const ADD_SOURCE_IMPORT: i32 = 3;

pub struct FriendService {
    share: Share,
    stores: Stores,
}

impl FriendService {
    pub fn new(share: Share, stores: Stores) -> Self {
        Self { share, stores }
    }

    /// Friend records joined with the friends' profiles.
    async fn infos(&self, friends: Vec<Friend>) -> Result<Vec<FriendInfo>, Status> {
        let ids: Vec<String> = friends.iter().map(|f| f.friend_user_id.clone()).collect();
        let users = self.stores.users.get_users(&ids).await.map_err(store_status)?;
        Ok(friends
            .into_iter()
            .map(|f| FriendInfo {
                friend_user: users.iter().find(|u| u.user_id == f.friend_user_id).cloned().map(openim_rpc_user::to_pb),
                owner_user_id: f.owner_user_id,
                remark: f.remark,
                create_time: f.create_time,
                add_source: f.add_source,
                operator_user_id: f.operator_user_id,
                ex: f.ex,
                ..Default::default()
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
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may import friends").into());
        }
        let req = req.into_inner();
        if req.friend_user_i_ds.contains(&req.owner_user_id) {
            return Err(ImError::args("a user cannot befriend themselves").into());
        }
        let mut all = req.friend_user_i_ds.clone();
        all.push(req.owner_user_id.clone());
        let found = self.stores.users.get_users(&all).await.map_err(store_status)?;
        if let Some(missing) = all.iter().find(|id| !found.iter().any(|u| &u.user_id == *id)) {
            return Err(ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {missing} is not registered")).into());
        }
        let now = now_millis();
        for f in &req.friend_user_i_ds {
            for (owner, friend) in [(&req.owner_user_id, f), (f, &req.owner_user_id)] {
                let record = Friend {
                    owner_user_id: owner.clone(),
                    friend_user_id: friend.clone(),
                    create_time: now,
                    add_source: ADD_SOURCE_IMPORT,
                    operator_user_id: op.clone(),
                    ..Default::default()
                };
                self.stores.friends.add_friend(&record).await.map_err(store_status)?;
            }
        }
        Ok(Response::new(relation::ImportFriendResp {}))
    }

    async fn get_designated_friends(
        &self,
        req: Request<relation::GetDesignatedFriendsReq>,
    ) -> Result<Response<relation::GetDesignatedFriendsResp>, Status> {
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
            version: ids::id_hash(&ids),
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
            version: hash,
            version_id: format!("friends-{user}"),
            equal,
            user_i_ds: if equal { Vec::new() } else { ids },
        }))
    }
}
