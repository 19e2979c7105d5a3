//! `openim-rpc-user`: registration, profiles and online status.

use std::sync::Arc;

use openim_common::config::Share;
use openim_common::rpc;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::sdkws::UserInfo;
use openim_proto::pb::user::{self, user_server::User as UserRpc};
use openim_storage::{OnlineStore, StoreError, User, UserPatch, UserStore};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::user::user_server::UserServer;

/// Longest user ID accepted (OpenIM's column is 64 characters).
const MAX_USER_ID: usize = 64;

pub struct UserService {
    share: Share,
    users: Arc<dyn UserStore>,
    online: Arc<dyn OnlineStore>,
}

impl UserService {
    pub fn new(share: Share, users: Arc<dyn UserStore>, online: Arc<dyn OnlineStore>) -> Self {
        Self { share, users, online }
    }
}

pub fn to_pb(u: User) -> UserInfo {
    UserInfo {
        user_id: u.user_id,
        nickname: u.nickname,
        face_url: u.face_url,
        ex: u.ex,
        create_time: u.create_time,
        app_manger_level: u.app_manger_level,
        global_recv_msg_opt: u.global_recv_msg_opt,
    }
}

fn store_err(e: StoreError) -> Status {
    match e {
        StoreError::Duplicate(what) => ImError::new(ErrCode::REGISTERED_ALREADY, what).into(),
        StoreError::NotFound(what) => ImError::new(ErrCode::USER_ID_NOT_FOUND, what).into(),
        other => openim_common::error::store_status(other),
    }
}

fn valid_user_id(id: &str) -> Result<(), ImError> {
    if id.is_empty() || id.len() > MAX_USER_ID || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ImError::args(format!("userID {id:?} must be 1-{MAX_USER_ID} characters without spaces")));
    }
    Ok(())
}

#[tonic::async_trait]
impl UserRpc for UserService {
    async fn get_designate_users(
        &self,
        req: Request<user::GetDesignateUsersReq>,
    ) -> Result<Response<user::GetDesignateUsersResp>, Status> {
        let ids = req.into_inner().user_i_ds;
        if ids.is_empty() {
            return Err(ImError::args("userIDs is empty").into());
        }
        let mut users = self.users.get_users(&ids).await.map_err(store_err)?;
        // Answer in the order asked, as OpenIM does.
        users.sort_by_key(|u| ids.iter().position(|i| *i == u.user_id));
        Ok(Response::new(user::GetDesignateUsersResp { users_info: users.into_iter().map(to_pb).collect() }))
    }

    async fn update_user_info_ex(
        &self,
        req: Request<user::UpdateUserInfoExReq>,
    ) -> Result<Response<user::UpdateUserInfoExResp>, Status> {
        let op = rpc::op_user_id(&req);
        let info = req.into_inner().user_info.ok_or_else(|| ImError::args("userInfo is missing"))?;
        if op != info.user_id && !self.share.is_admin(&op) {
            return Err(ImError::no_permission("a user may only change their own profile").into());
        }
        let patch = UserPatch {
            user_id: info.user_id,
            nickname: info.nickname.map(|v| v.value),
            face_url: info.face_url.map(|v| v.value),
            ex: info.ex.map(|v| v.value),
            global_recv_msg_opt: info.global_recv_msg_opt.map(|v| v.value),
        };
        self.users.update_user(&patch).await.map_err(store_err)?;
        Ok(Response::new(user::UpdateUserInfoExResp {}))
    }

    async fn user_register(
        &self,
        req: Request<user::UserRegisterReq>,
    ) -> Result<Response<user::UserRegisterResp>, Status> {
        let op = rpc::op_user_id(&req);
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may register users").into());
        }
        let users = req.into_inner().users;
        if users.is_empty() {
            return Err(ImError::args("users is empty").into());
        }
        let now = now_millis();
        let mut seen = std::collections::HashSet::new();
        let mut records = Vec::with_capacity(users.len());
        for u in users {
            valid_user_id(&u.user_id)?;
            if self.share.is_admin(&u.user_id) {
                return Err(ImError::args(format!("userID {} is reserved for an administrator", u.user_id)).into());
            }
            if !seen.insert(u.user_id.clone()) {
                return Err(ImError::args(format!("userID {} appears twice", u.user_id)).into());
            }
            records.push(User {
                user_id: u.user_id,
                nickname: u.nickname,
                face_url: u.face_url,
                ex: u.ex,
                app_manger_level: u.app_manger_level,
                global_recv_msg_opt: u.global_recv_msg_opt,
                create_time: now,
            });
        }
        self.users.create_users(&records).await.map_err(store_err)?;
        Ok(Response::new(user::UserRegisterResp {}))
    }

    async fn get_user_status(
        &self,
        req: Request<user::GetUserStatusReq>,
    ) -> Result<Response<user::GetUserStatusResp>, Status> {
        let ids = req.into_inner().user_i_ds;
        let online = self.online.online(&ids).await.map_err(store_err)?;
        let status_list = ids
            .into_iter()
            .map(|id| {
                let mut platforms: Vec<i32> =
                    online.get(&id).map(|v| v.iter().map(|(p, _)| *p).collect()).unwrap_or_default();
                platforms.sort_unstable();
                platforms.dedup();
                user::OnlineStatus { status: i32::from(!platforms.is_empty()), user_id: id, platform_i_ds: platforms }
            })
            .collect();
        Ok(Response::new(user::GetUserStatusResp { status_list }))
    }
}
