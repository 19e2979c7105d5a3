//! `/third/fcm_update_token`, `/third/set_app_badge` and the client logs (`/third/logs/*`).
//! OpenIM lets any user set any account's token or badge; here a user sets their own (an
//! administrator anyone's). Logs are uploaded by users and read and deleted by administrators.

use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError, rpc};
use openim_proto::constants::platform;
use openim_proto::pb::third;
use openim_storage::{ClientLog, StoreError};
use tonic::Status;

use crate::ThirdService;

/// Longest FCM token accepted.
const MAX_TOKEN: usize = 1024;
/// Most files of one log upload, and most log IDs of one deletion.
const MAX_FILES: usize = 100;
const MAX_LOG_IDS: usize = 1000;
/// Longest file name, URL, version and app framework, and `ex`, of a log.
const MAX_FILE_NAME: usize = 255;
const MAX_URL: usize = 2048;
const MAX_SHORT: usize = 64;
const MAX_EX: usize = 2048;

fn store_err(e: StoreError) -> Status {
    openim_common::error::store_status(e)
}

fn too_long(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.chars().count() > max {
        return Err(ImError::args(format!("{field} is longer than {max} characters")).into());
    }
    Ok(())
}

impl ThirdService {
    /// A user acts for themselves; an administrator for anyone.
    fn check_self(&self, op: &str, user: &str, what: &str) -> Result<(), Status> {
        if user.is_empty() {
            return Err(ImError::args(format!("{what} is empty")).into());
        }
        if op != user && !self.share.is_admin(op) {
            return Err(ImError::no_permission(format!("{what} must be the caller's own")).into());
        }
        Ok(())
    }

    pub(crate) async fn fcm_update_token(&self, op: &str, req: &third::FcmUpdateTokenReq) -> Result<(), Status> {
        self.check_self(op, &req.account, "account")?;
        if platform::name(req.platform_id).is_none() {
            return Err(ImError::args(format!("platformID {} is not a platform", req.platform_id)).into());
        }
        if req.fcm_token.is_empty() {
            return Err(ImError::args("fcmToken is empty").into());
        }
        too_long("fcmToken", &req.fcm_token, MAX_TOKEN)?;
        // Seconds the token stays valid, as OpenIM keeps it (0 or less: until replaced).
        let expire_time = if req.expire_time <= 0 {
            i64::MAX
        } else {
            now_millis().saturating_add(req.expire_time.saturating_mul(1000))
        };
        self.stores
            .third
            .set_fcm_token(&req.account, req.platform_id, &req.fcm_token, expire_time)
            .await
            .map_err(store_err)
    }

    pub(crate) async fn set_app_badge(&self, op: &str, req: &third::SetAppBadgeReq) -> Result<(), Status> {
        self.check_self(op, &req.user_id, "userID")?;
        if req.app_unread_count < 0 {
            return Err(ImError::args("appUnreadCount must not be negative").into());
        }
        self.stores.third.set_app_badge(&req.user_id, req.app_unread_count).await.map_err(store_err)
    }

    pub(crate) async fn upload_logs(&self, op: &str, req: &third::UploadLogsReq) -> Result<(), Status> {
        if req.file_ur_ls.is_empty() || req.file_ur_ls.len() > MAX_FILES {
            return Err(ImError::args(format!("fileURLs must hold 1 to {MAX_FILES} files")).into());
        }
        for f in &req.file_ur_ls {
            too_long("filename", &f.filename, MAX_FILE_NAME)?;
            too_long("URL", &f.url, MAX_URL)?;
            if !(f.url.starts_with("http://") || f.url.starts_with("https://")) {
                return Err(ImError::args(format!("URL {:?} is not an http(s) URL", f.url)).into());
            }
        }
        too_long("appFramework", &req.app_framework, MAX_SHORT)?;
        too_long("version", &req.version, MAX_SHORT)?;
        too_long("ex", &req.ex, MAX_EX)?;
        let platform = platform::name(req.platform).unwrap_or_default().to_owned();
        let now = now_millis();
        let logs: Vec<ClientLog> = req
            .file_ur_ls
            .iter()
            .map(|f| ClientLog {
                log_id: new_log_id(),
                platform: platform.clone(),
                user_id: op.to_owned(),
                create_time: now,
                url: f.url.clone(),
                file_name: f.filename.clone(),
                system_type: String::new(),
                app_framework: req.app_framework.clone(),
                version: req.version.clone(),
                ex: req.ex.clone(),
            })
            .collect();
        self.stores.third.add_logs(&logs).await.map_err(store_err)
    }

    pub(crate) async fn delete_logs(&self, op: &str, req: &third::DeleteLogsReq) -> Result<(), Status> {
        self.check_admin(op)?;
        if req.log_i_ds.is_empty() || req.log_i_ds.len() > MAX_LOG_IDS {
            return Err(ImError::args(format!("logIDs must hold 1 to {MAX_LOG_IDS} IDs")).into());
        }
        let found = self.stores.third.logs(&req.log_i_ds).await.map_err(store_err)?;
        let missing: Vec<&String> = req.log_i_ds.iter().filter(|id| !found.iter().any(|l| &l.log_id == *id)).collect();
        if !missing.is_empty() {
            return Err(ImError::new(ErrCode::RECORD_NOT_FOUND, format!("logIDs not found: {missing:?}")).into());
        }
        self.stores.third.delete_logs(&req.log_i_ds).await.map_err(store_err)?;
        Ok(())
    }

    pub(crate) async fn search_logs(
        &self,
        op: &str,
        req: &third::SearchLogsReq,
    ) -> Result<third::SearchLogsResp, Status> {
        self.check_admin(op)?;
        too_long("keyword", &req.keyword, MAX_SHORT)?;
        let (start, end) = match (req.start_time, req.end_time) {
            // OpenIM: no range means from 2019 until now.
            (0, 0) => (1_546_300_800_000, now_millis()),
            (s, e) if s > e => return Err(ImError::args("startTime is after endTime").into()),
            range => range,
        };
        let (offset, limit) = rpc::page(req.pagination.as_ref());
        let (total, logs) =
            self.stores.third.search_logs(&req.keyword, start, end, offset, limit).await.map_err(store_err)?;
        let ids: Vec<String> = logs.iter().map(|l| l.user_id.clone()).collect();
        let users = self.stores.users.get_users(&ids).await.map_err(store_err)?;
        let logs_infos = logs
            .into_iter()
            .map(|l| third::LogInfo {
                nickname: users.iter().find(|u| u.user_id == l.user_id).map(|u| u.nickname.clone()).unwrap_or_default(),
                user_id: l.user_id,
                platform: l.platform,
                url: l.url,
                create_time: l.create_time,
                log_id: l.log_id,
                filename: l.file_name,
                system_type: l.system_type,
                ex: l.ex,
                version: l.version,
            })
            .collect();
        Ok(third::SearchLogsResp { logs_infos, total: u32::try_from(total).unwrap_or(u32::MAX) })
    }

    fn check_admin(&self, op: &str) -> Result<(), Status> {
        if self.share.is_admin(op) {
            Ok(())
        } else {
            Err(ImError::no_permission("only an administrator may read or delete client logs").into())
        }
    }
}

/// A log ID as OpenIM makes them: 10 random digits, the first not 0 (a clash is refused by the
/// store as a duplicate: one in 9 × 10⁹).
fn new_log_id() -> String {
    let hex = openim_common::secrets::random_hex(10);
    hex.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("0"), 16).unwrap_or(0);
            if i == 0 { char::from(b'1' + byte % 9) } else { char::from(b'0' + byte % 10) }
        })
        .collect()
}
