//! `openim-rpc-user`: registration, profiles and online status.

use openim_common::config::Share;
use openim_common::notify::{Note, Notifier};
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_common::{ids, rpc};
use openim_proto::pb::sdkws::UserInfo;
use openim_proto::pb::sdkws::UserInfoUpdatedTips;
use openim_proto::pb::user::{self, user_server::User as UserRpc};
use openim_storage::{StoreError, Stores, User, UserPatch};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::user::user_server::UserServer;

mod commands;

/// `UserInfoUpdatedNotification`, to the user's own devices.
const USER_INFO_UPDATED: i32 = 1303;
/// `FriendInfoUpdatedNotification`, to everyone who has the user as a friend.
const FRIEND_INFO_UPDATED: i32 = 1209;
/// Longest nickname, face URL and ex accepted (the columns' widths).
const MAX_NICKNAME: usize = 255;
const MAX_FACE_URL: usize = 1024;
const MAX_EX: usize = 2048;

pub struct UserService {
    share: Share,
    stores: Stores,
    notifier: Notifier,
    hooks: openim_common::webhook::Webhooks,
}

impl UserService {
    pub fn new(share: Share, stores: Stores) -> Self {
        let notifier = Notifier::new(stores.bus.clone());
        Self { share, stores, notifier, hooks: openim_common::webhook::Webhooks::none() }
    }

    /// Calls the user callbacks of `webhooks.yml`.
    pub fn with_webhooks(mut self, hooks: openim_common::webhook::Webhooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Applies a profile change the caller may make, then tells the user's devices (1303) and
    /// everyone who has the user as a friend (1209), as OpenIM does.
    async fn update(&self, op: &str, patch: UserPatch) -> Result<(), Status> {
        if op != patch.user_id && !self.share.is_admin(op) {
            return Err(ImError::no_permission("a user may only change their own profile").into());
        }
        for (field, value, max) in [
            ("nickname", &patch.nickname, MAX_NICKNAME),
            ("faceURL", &patch.face_url, MAX_FACE_URL),
            ("ex", &patch.ex, MAX_EX),
        ] {
            if let Some(v) = value
                && v.chars().count() > max
            {
                return Err(ImError::args(format!("{field} is longer than {max} characters")).into());
            }
        }
        if patch.global_recv_msg_opt.is_some_and(|o| !(0..=2).contains(&o)) {
            return Err(ImError::args("globalRecvMsgOpt must be 0, 1 or 2").into());
        }
        self.stores.users.update_user(&patch).await.map_err(store_err)?;
        let user = patch.user_id;
        let tips = openim_common::notify::content(&UserInfoUpdatedTips { user_id: user.clone() });
        let mut notes = vec![(Note::single(USER_INFO_UPDATED, &user, &user), tips.clone())];
        let friends_of = self.stores.friends.owners_of(&user).await.map_err(store_err)?;
        notes.extend(friends_of.iter().map(|f| (Note::single(FRIEND_INFO_UPDATED, &user, f), tips.clone())));
        self.notifier.send_all(notes).await;
        Ok(())
    }

    /// The online status of each user, in the order given.
    async fn statuses(&self, ids: Vec<String>) -> Result<Vec<user::OnlineStatus>, Status> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let online = self.stores.online.online(&ids).await.map_err(store_err)?;
        Ok(ids
            .into_iter()
            .map(|id| {
                let mut platforms: Vec<i32> =
                    online.get(&id).map(|v| v.iter().map(|(p, _)| *p).collect()).unwrap_or_default();
                platforms.sort_unstable();
                platforms.dedup();
                user::OnlineStatus { status: i32::from(!platforms.is_empty()), user_id: id, platform_i_ds: platforms }
            })
            .collect())
    }

    fn check_admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let op = rpc::op_user_id(req);
        if self.share.is_admin(&op) {
            Ok(())
        } else {
            Err(ImError::no_permission("only an administrator may list users").into())
        }
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
    ids::check_id("userID", id).map_err(ImError::args)
}

#[tonic::async_trait]
impl UserRpc for UserService {
    async fn get_designate_users(
        &self,
        req: Request<user::GetDesignateUsersReq>,
    ) -> Result<Response<user::GetDesignateUsersResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let ids = req.into_inner().user_i_ds;
        if ids.is_empty() {
            return Err(ImError::args("userIDs is empty").into());
        }
        let mut users = self.stores.users.get_users(&ids).await.map_err(store_err)?;
        // Answer in the order asked, as OpenIM does.
        let order: std::collections::HashMap<&str, usize> =
            ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).rev().collect();
        users.sort_by_key(|u| order.get(u.user_id.as_str()).copied());
        Ok(Response::new(user::GetDesignateUsersResp { users_info: users.into_iter().map(to_pb).collect() }))
    }

    async fn update_user_info_ex(
        &self,
        req: Request<user::UpdateUserInfoExReq>,
    ) -> Result<Response<user::UpdateUserInfoExResp>, Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let info = req.into_inner().user_info.ok_or_else(|| ImError::args("userInfo is missing"))?;
        let patch = UserPatch {
            user_id: info.user_id,
            nickname: info.nickname.map(|v| v.value),
            face_url: info.face_url.map(|v| v.value),
            ex: info.ex.map(|v| v.value),
            global_recv_msg_opt: info.global_recv_msg_opt.map(|v| v.value),
        };
        // OpenIM's body: null for what was not sent, `ex` always null.
        let body = serde_json::json!({"userID": patch.user_id, "nickName": patch.nickname, "faceURL": patch.face_url, "ex": null});
        self.update(&op, patch).await?;
        let command = "callbackAfterUpdateUserInfoExCommand";
        let hook = &self.hooks.config().after_update_user_info_ex;
        self.hooks.tell("afterUpdateUserInfoEx", hook, command, body, &operation_id);
        Ok(Response::new(user::UpdateUserInfoExResp {}))
    }

    async fn user_register(
        &self,
        req: Request<user::UserRegisterReq>,
    ) -> Result<Response<user::UserRegisterResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
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
        self.stores.users.create_users(&records).await.map_err(store_err)?;
        Ok(Response::new(user::UserRegisterResp {}))
    }

    async fn get_user_status(
        &self,
        req: Request<user::GetUserStatusReq>,
    ) -> Result<Response<user::GetUserStatusResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        // OpenIM ignores `userID`; the SDK sends its own, so a different one is refused.
        let asker = req.get_ref().user_id.clone();
        if !asker.is_empty() {
            rpc::check_self_or_admin(&req, &self.share, &asker)?;
        }
        let ids = req.into_inner().user_i_ds;
        if ids.len() > 1000 {
            return Err(ImError::args(format!("userIDs has {} entries; at most 1000 are allowed", ids.len())).into());
        }
        let status_list = self.statuses(ids).await?;
        Ok(Response::new(user::GetUserStatusResp { status_list }))
    }

    /// The older form of `update_user_info_ex`: empty strings mean "unchanged", as in OpenIM.
    async fn update_user_info(
        &self,
        req: Request<user::UpdateUserInfoReq>,
    ) -> Result<Response<user::UpdateUserInfoResp>, Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let info = req.into_inner().user_info.ok_or_else(|| ImError::args("userInfo is missing"))?;
        let body =
            serde_json::json!({"userID": info.user_id, "nickName": info.nickname, "faceURL": info.face_url, "ex": ""});
        let set = |v: String| (!v.is_empty()).then_some(v);
        let patch = UserPatch {
            user_id: info.user_id,
            nickname: set(info.nickname),
            face_url: set(info.face_url),
            ex: set(info.ex),
            global_recv_msg_opt: None,
        };
        self.update(&op, patch).await?;
        let hook = &self.hooks.config().after_update_user_info;
        self.hooks.tell("afterUpdateUserInfo", hook, "callbackAfterUpdateUserInfoCommand", body, &operation_id);
        Ok(Response::new(user::UpdateUserInfoResp {}))
    }

    async fn set_global_recv_message_opt(
        &self,
        req: Request<user::SetGlobalRecvMessageOptReq>,
    ) -> Result<Response<user::SetGlobalRecvMessageOptResp>, Status> {
        let op = rpc::op_user_id(&req);
        let r = req.into_inner();
        let patch =
            UserPatch { user_id: r.user_id, global_recv_msg_opt: Some(r.global_recv_msg_opt), ..Default::default() };
        self.update(&op, patch).await?;
        Ok(Response::new(user::SetGlobalRecvMessageOptResp {}))
    }

    async fn account_check(
        &self,
        req: Request<user::AccountCheckReq>,
    ) -> Result<Response<user::AccountCheckResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        self.check_admin(&req)?;
        let ids = req.into_inner().check_user_i_ds;
        if ids.is_empty() || ids.len() > 1000 {
            return Err(ImError::args(format!("checkUserIDs has {} entries; 1 to 1000 are allowed", ids.len())).into());
        }
        let found = self.stores.users.get_users(&ids).await.map_err(store_err)?;
        let found: std::collections::HashSet<&str> = found.iter().map(|u| u.user_id.as_str()).collect();
        let results = ids
            .iter()
            .map(|id| user::account_check_resp::SingleUserStatus {
                account_status: i32::from(found.contains(id.as_str())),
                user_id: id.clone(),
            })
            .collect();
        Ok(Response::new(user::AccountCheckResp { results }))
    }

    async fn get_all_user_id(
        &self,
        req: Request<user::GetAllUserIdReq>,
    ) -> Result<Response<user::GetAllUserIdResp>, Status> {
        self.check_admin(&req)?;
        let (offset, limit) = rpc::page(req.get_ref().pagination.as_ref());
        let (users, total) = self.stores.users.page_users(offset, limit).await.map_err(store_err)?;
        Ok(Response::new(user::GetAllUserIdResp {
            total: total as i32,
            user_i_ds: users.into_iter().map(|u| u.user_id).collect(),
        }))
    }

    async fn get_pagination_users(
        &self,
        req: Request<user::GetPaginationUsersReq>,
    ) -> Result<Response<user::GetPaginationUsersResp>, Status> {
        self.check_admin(&req)?;
        let r = req.into_inner();
        if !r.user_id.is_empty() {
            let found = self.stores.users.get_users(std::slice::from_ref(&r.user_id)).await.map_err(store_err)?;
            return Ok(Response::new(user::GetPaginationUsersResp {
                total: found.len() as i32,
                users: found.into_iter().map(to_pb).collect(),
            }));
        }
        let (offset, limit) = rpc::page(r.pagination.as_ref());
        let (users, total) = self.stores.users.page_users(offset, limit).await.map_err(store_err)?;
        Ok(Response::new(user::GetPaginationUsersResp {
            total: total as i32,
            users: users.into_iter().map(to_pb).collect(),
        }))
    }

    async fn process_user_command_add(
        &self,
        req: Request<user::ProcessUserCommandAddReq>,
    ) -> Result<Response<user::ProcessUserCommandAddResp>, Status> {
        self.command_add(req).await?;
        Ok(Response::new(user::ProcessUserCommandAddResp {}))
    }

    async fn process_user_command_delete(
        &self,
        req: Request<user::ProcessUserCommandDeleteReq>,
    ) -> Result<Response<user::ProcessUserCommandDeleteResp>, Status> {
        self.command_delete(req).await?;
        Ok(Response::new(user::ProcessUserCommandDeleteResp {}))
    }

    async fn process_user_command_update(
        &self,
        req: Request<user::ProcessUserCommandUpdateReq>,
    ) -> Result<Response<user::ProcessUserCommandUpdateResp>, Status> {
        self.command_update(req).await?;
        Ok(Response::new(user::ProcessUserCommandUpdateResp {}))
    }

    async fn process_user_command_get(
        &self,
        req: Request<user::ProcessUserCommandGetReq>,
    ) -> Result<Response<user::ProcessUserCommandGetResp>, Status> {
        let (user_id, command_type) = (req.get_ref().user_id.clone(), req.get_ref().r#type);
        if command_type == 0 {
            return Err(ImError::args("type is not specified").into());
        }
        let found = self.commands(&req, &user_id, Some(command_type)).await?;
        Ok(Response::new(user::ProcessUserCommandGetResp {
            command_resp: found.into_iter().map(commands::command_info).collect(),
        }))
    }

    async fn process_user_command_get_all(
        &self,
        req: Request<user::ProcessUserCommandGetAllReq>,
    ) -> Result<Response<user::ProcessUserCommandGetAllResp>, Status> {
        let user_id = req.get_ref().user_id.clone();
        let found = self.commands(&req, &user_id, None).await?;
        Ok(Response::new(user::ProcessUserCommandGetAllResp {
            command_resp: found.into_iter().map(commands::all_command_info).collect(),
        }))
    }

    async fn subscribe_or_cancel_users_status(
        &self,
        req: Request<user::SubscribeOrCancelUsersStatusReq>,
    ) -> Result<Response<user::SubscribeOrCancelUsersStatusResp>, Status> {
        openim_common::limits::check(req.get_ref())?;
        let status_list = self.subscribe_rest(req).await?;
        Ok(Response::new(user::SubscribeOrCancelUsersStatusResp { status_list }))
    }

    async fn get_subscribe_users_status(
        &self,
        req: Request<user::GetSubscribeUsersStatusReq>,
    ) -> Result<Response<user::GetSubscribeUsersStatusResp>, Status> {
        let status_list = self.subscribed_statuses(req).await?;
        Ok(Response::new(user::GetSubscribeUsersStatusResp { status_list }))
    }
}
