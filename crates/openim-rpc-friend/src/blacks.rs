//! Blacklists. A user's blacklist is theirs alone: nobody else may read it, and the blocked
//! user is never told (OpenIM v3.8 sends the blocked user a notification; we send it only to the
//! owner's own devices, which is what the SDK needs to update its list).

use openim_common::error::store_status;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, rpc};
use openim_proto::pb::relation;
use openim_proto::pb::sdkws;
use openim_storage::Black;
use tonic::{Request, Status};

use crate::{FriendService, limits};

impl FriendService {
    pub(crate) async fn add_black(&self, req: Request<relation::AddBlackReq>) -> Result<(), Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        limits::text("ex", &r.ex, limits::EX)?;
        if r.owner_user_id == r.black_user_id {
            return Err(ImError::new(ErrCode::CAN_NOT_ADD_YOURSELF, "cannot block yourself").into());
        }
        self.check_users(&[&r.owner_user_id, &r.black_user_id]).await?;
        let black = Black {
            owner_user_id: r.owner_user_id.clone(),
            block_user_id: r.black_user_id.clone(),
            create_time: now_millis(),
            add_source: 0,
            operator_user_id: op,
            ex: r.ex,
        };
        self.stores.blacks.add_blacks(std::slice::from_ref(&black)).await.map_err(store_status)?;
        self.notes.black_added(&r.owner_user_id, &r.black_user_id).await;
        Ok(())
    }

    pub(crate) async fn remove_black(&self, req: Request<relation::RemoveBlackReq>) -> Result<(), Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().owner_user_id)?;
        let r = req.into_inner();
        // Removing someone who is not there succeeds, as in OpenIM; only a change is announced.
        if self.stores.blacks.remove_black(&r.owner_user_id, &r.black_user_id).await.map_err(store_status)? {
            self.notes.black_deleted(&r.owner_user_id, &r.black_user_id).await;
        }
        Ok(())
    }

    /// `owner`'s blacklist entries (all, or those for `ids`) with the blocked users' profiles.
    pub(crate) async fn blacks(&self, owner: &str, ids: Option<&[String]>) -> Result<Vec<sdkws::BlackInfo>, Status> {
        if let Some(ids) = ids {
            limits::ids("userIDList", ids.len())?;
        }
        let rows = self.stores.blacks.blacks(owner, ids).await.map_err(store_status)?;
        let ids: Vec<String> = rows.iter().map(|b| b.block_user_id.clone()).collect();
        let users = self.stores.users.get_users(&ids).await.map_err(store_status)?;
        let users: std::collections::HashMap<&str, &openim_storage::User> =
            users.iter().map(|u| (u.user_id.as_str(), u)).collect();
        Ok(rows
            .into_iter()
            .map(|b| {
                let user = users.get(b.block_user_id.as_str());
                sdkws::BlackInfo {
                    owner_user_id: b.owner_user_id,
                    create_time: b.create_time,
                    black_user_info: Some(sdkws::PublicUserInfo {
                        user_id: b.block_user_id.clone(),
                        nickname: user.map(|u| u.nickname.clone()).unwrap_or_default(),
                        face_url: user.map(|u| u.face_url.clone()).unwrap_or_default(),
                        ex: user.map(|u| u.ex.clone()).unwrap_or_default(),
                    }),
                    add_source: b.add_source,
                    operator_user_id: b.operator_user_id,
                    ex: b.ex,
                }
            })
            .collect())
    }

    pub(crate) async fn blacks_page(
        &self,
        req: Request<relation::GetPaginationBlacksReq>,
    ) -> Result<relation::GetPaginationBlacksResp, Status> {
        rpc::check_self_or_admin(&req, &self.share, &req.get_ref().user_id)?;
        let r = req.into_inner();
        let (offset, limit) = rpc::page(r.pagination.as_ref());
        let all = self.blacks(&r.user_id, None).await?;
        let total = all.len() as i32;
        let blacks = all.into_iter().skip(offset as usize).take(limit as usize).collect();
        Ok(relation::GetPaginationBlacksResp { blacks, total })
    }
}
