//! User command lists (`/user/process_user_command_*`): per-user entries keyed by (type, uuid),
//! which apps use for favourites and similar lists; and REST presence subscriptions
//! (`/user/subscribe_users_status`). Each change is announced to the user's own devices.

use openim_common::notify::Note;
use openim_common::token::now_millis;
use openim_common::{ImError, rpc};
use openim_proto::pb::sdkws::{UserCommandAddTips, UserCommandDeleteTips, UserCommandUpdateTips};
use openim_proto::pb::user;
use openim_storage::UserCommand;
use tonic::{Request, Status};

use crate::{UserService, store_err};

/// `UserCommandAddNotification`, `…DeleteNotification`, `…UpdateNotification`.
const USER_COMMAND_ADD: i32 = 1305;
const USER_COMMAND_DELETE: i32 = 1306;
const USER_COMMAND_UPDATE: i32 = 1307;

/// Bounds on a command entry and on a user's list (OpenIM sets none; the columns and a sane
/// list size set ours).
const MAX_UUID: usize = 128;
const MAX_VALUE: usize = 16 * 1024;
const MAX_EX: usize = 2048;
pub(crate) const MAX_COMMANDS_PER_USER: u64 = 5_000;

/// Most users one REST subscription call names, and most one user may subscribe to (the same
/// bound as a connection's 2005 subscriptions).
const MAX_SUBSCRIBE_BATCH: usize = 1_000;
pub(crate) const MAX_SUBSCRIPTIONS: usize = 3_000;

/// `genre` of `/user/subscribe_users_status`.
const SUBSCRIBE: i32 = 1;
const UNSUBSCRIBE: i32 = 2;

fn check_key(user_id: &str, command_type: i32, uuid: &str) -> Result<(), ImError> {
    if user_id.is_empty() {
        return Err(ImError::args("userID is empty"));
    }
    if command_type == 0 {
        return Err(ImError::args("type is not specified"));
    }
    if uuid.is_empty() {
        return Err(ImError::args("uuid is empty"));
    }
    if uuid.chars().count() > MAX_UUID {
        return Err(ImError::args(format!("uuid is longer than {MAX_UUID} characters")));
    }
    Ok(())
}

fn check_fields(value: Option<&str>, ex: Option<&str>) -> Result<(), ImError> {
    for (field, v, max) in [("value", value, MAX_VALUE), ("ex", ex, MAX_EX)] {
        if v.is_some_and(|v| v.chars().count() > max) {
            return Err(ImError::args(format!("{field} is longer than {max} characters")));
        }
    }
    Ok(())
}

impl UserService {
    /// Tells the user's devices that their command list changed.
    async fn command_changed<T: serde::Serialize>(&self, content_type: i32, user: &str, tips: &T) {
        self.notifier.send(Note::single(content_type, user, user), tips).await;
    }

    pub(crate) async fn command_add(&self, req: Request<user::ProcessUserCommandAddReq>) -> Result<(), Status> {
        let r = req.get_ref();
        check_key(&r.user_id, r.r#type, &r.uuid)?;
        rpc::check_self_or_admin(&req, &self.share, &r.user_id)?;
        let r = req.into_inner();
        let (value, ex) = (r.value.map(|v| v.value).unwrap_or_default(), r.ex.map(|v| v.value).unwrap_or_default());
        check_fields(Some(&value), Some(&ex))?;
        let count = self.stores.user_commands.count_user_commands(&r.user_id).await.map_err(store_err)?;
        let command = UserCommand {
            user_id: r.user_id,
            command_type: r.r#type,
            uuid: r.uuid,
            value,
            ex,
            create_time: now_millis() / 1000,
        };
        if count >= MAX_COMMANDS_PER_USER {
            // A re-add of an existing entry is still allowed at the limit.
            let exists = self
                .stores
                .user_commands
                .user_commands(&command.user_id, Some(command.command_type))
                .await
                .map_err(store_err)?
                .iter()
                .any(|c| c.uuid == command.uuid);
            if !exists {
                return Err(ImError::args(format!(
                    "{} already has {MAX_COMMANDS_PER_USER} command entries, the most allowed",
                    command.user_id
                ))
                .into());
            }
        }
        self.stores.user_commands.put_user_command(&command).await.map_err(store_err)?;
        let user = &command.user_id;
        let tips = UserCommandAddTips { from_user_id: user.clone(), to_user_id: user.clone() };
        self.command_changed(USER_COMMAND_ADD, user, &tips).await;
        Ok(())
    }

    pub(crate) async fn command_update(&self, req: Request<user::ProcessUserCommandUpdateReq>) -> Result<(), Status> {
        let r = req.get_ref();
        check_key(&r.user_id, r.r#type, &r.uuid)?;
        rpc::check_self_or_admin(&req, &self.share, &r.user_id)?;
        let r = req.into_inner();
        let (value, ex) = (r.value.map(|v| v.value), r.ex.map(|v| v.value));
        check_fields(value.as_deref(), ex.as_deref())?;
        let found = self
            .stores
            .user_commands
            .update_user_command(&r.user_id, r.r#type, &r.uuid, value.as_deref(), ex.as_deref())
            .await
            .map_err(store_err)?;
        if !found {
            return Err(ImError::not_found(format!("command {} of type {} not found", r.uuid, r.r#type)).into());
        }
        let tips = UserCommandUpdateTips { from_user_id: r.user_id.clone(), to_user_id: r.user_id.clone() };
        self.command_changed(USER_COMMAND_UPDATE, &r.user_id, &tips).await;
        Ok(())
    }

    pub(crate) async fn command_delete(&self, req: Request<user::ProcessUserCommandDeleteReq>) -> Result<(), Status> {
        let r = req.get_ref();
        check_key(&r.user_id, r.r#type, &r.uuid)?;
        rpc::check_self_or_admin(&req, &self.share, &r.user_id)?;
        let r = req.into_inner();
        let found =
            self.stores.user_commands.delete_user_command(&r.user_id, r.r#type, &r.uuid).await.map_err(store_err)?;
        if !found {
            return Err(ImError::not_found(format!("command {} of type {} not found", r.uuid, r.r#type)).into());
        }
        let tips = UserCommandDeleteTips { from_user_id: r.user_id.clone(), to_user_id: r.user_id.clone() };
        self.command_changed(USER_COMMAND_DELETE, &r.user_id, &tips).await;
        Ok(())
    }

    pub(crate) async fn commands(
        &self,
        req: &Request<impl Sized>,
        user_id: &str,
        command_type: Option<i32>,
    ) -> Result<Vec<UserCommand>, Status> {
        if user_id.is_empty() {
            return Err(ImError::args("userID is empty").into());
        }
        rpc::check_self_or_admin(req, &self.share, user_id)?;
        self.stores.user_commands.user_commands(user_id, command_type).await.map_err(store_err)
    }

    pub(crate) async fn subscribe_rest(
        &self,
        req: Request<user::SubscribeOrCancelUsersStatusReq>,
    ) -> Result<Vec<user::OnlineStatus>, Status> {
        let r = req.get_ref();
        if r.user_id.is_empty() {
            return Err(ImError::args("userID is empty").into());
        }
        rpc::check_self_or_admin(&req, &self.share, &r.user_id)?;
        if r.user_i_ds.len() > MAX_SUBSCRIBE_BATCH {
            return Err(ImError::args(format!(
                "userIDs has {} entries; at most {MAX_SUBSCRIBE_BATCH} are allowed",
                r.user_i_ds.len()
            ))
            .into());
        }
        let r = req.into_inner();
        let mut targets = r.user_i_ds;
        targets.sort_unstable();
        targets.dedup();
        targets.retain(|t| !t.is_empty() && *t != r.user_id);
        let subs = &self.stores.subscriptions;
        match r.genre {
            SUBSCRIBE => {
                let existing = subs.subscriptions(&r.user_id).await.map_err(store_err)?;
                let known: std::collections::HashSet<&String> = existing.iter().collect();
                let added = targets.iter().filter(|t| !known.contains(t)).count();
                if existing.len() + added > MAX_SUBSCRIPTIONS {
                    return Err(ImError::args(format!(
                        "{} would subscribe to {} users; at most {MAX_SUBSCRIPTIONS} are allowed",
                        r.user_id,
                        existing.len() + added
                    ))
                    .into());
                }
                subs.subscribe(&r.user_id, &targets, now_millis()).await.map_err(store_err)?;
                self.statuses(targets).await
            }
            UNSUBSCRIBE => {
                subs.unsubscribe(&r.user_id, &targets).await.map_err(store_err)?;
                Ok(Vec::new())
            }
            other => Err(ImError::args(format!("genre {other} is neither 1 (subscribe) nor 2 (cancel)")).into()),
        }
    }

    pub(crate) async fn subscribed_statuses(
        &self,
        req: Request<user::GetSubscribeUsersStatusReq>,
    ) -> Result<Vec<user::OnlineStatus>, Status> {
        let user_id = &req.get_ref().user_id;
        if user_id.is_empty() {
            return Err(ImError::args("userID is empty").into());
        }
        rpc::check_self_or_admin(&req, &self.share, user_id)?;
        let targets = self.stores.subscriptions.subscriptions(user_id).await.map_err(store_err)?;
        self.statuses(targets).await
    }
}

pub(crate) fn command_info(c: UserCommand) -> user::CommandInfoResp {
    user::CommandInfoResp { r#type: c.command_type, create_time: c.create_time, uuid: c.uuid, value: c.value, ex: c.ex }
}

pub(crate) fn all_command_info(c: UserCommand) -> user::AllCommandInfoResp {
    user::AllCommandInfoResp {
        r#type: c.command_type,
        create_time: c.create_time,
        uuid: c.uuid,
        value: c.value,
        ex: c.ex,
    }
}
