//! Checks before a message is accepted that depend on where it goes (OpenIM's `verify.go`).

use openim_common::error::store_status;
use openim_common::token::now_millis;
use openim_common::{ErrCode, ImError};
use openim_storage::{group_status, role};
use tonic::Status;

use crate::MsgService;

impl MsgService {
    /// OpenIM's checks before a group message, in its order: the group exists and was not
    /// dismissed (1204); the sender is a member (1203); the owner may always send; a muted member
    /// may not until the mute ends (1402, admins too); in a muted group only the owner and admins
    /// may (1403). App administrators skip the membership and mute checks.
    pub(crate) async fn check_may_send_to_group(&self, op: &str, sender: &str, group_id: &str) -> Result<(), Status> {
        let groups = self.stores.groups.get_groups(&[group_id.to_owned()]).await.map_err(store_status)?;
        let Some(group) = groups.into_iter().next() else {
            return Err(ImError::new(ErrCode::GROUP_ID_NOT_FOUND, format!("group {group_id} does not exist")).into());
        };
        if group.status == group_status::DISMISSED {
            return Err(ImError::new(ErrCode::DISMISSED_ALREADY, format!("group {group_id} was dismissed")).into());
        }
        if self.share.is_admin(op) {
            return Ok(());
        }
        let member = self.stores.groups.get_members(group_id, &[sender.to_owned()]).await.map_err(store_status)?;
        let Some(member) = member.into_iter().next() else {
            return Err(ImError::new(
                ErrCode::NOT_IN_GROUP_YET,
                format!("{sender} is not a member of group {group_id}"),
            )
            .into());
        };
        if member.role_level == role::OWNER {
            return Ok(());
        }
        if member.mute_end_time >= now_millis() {
            return Err(ImError::new(
                ErrCode::MUTED_IN_GROUP,
                format!("{sender} is muted in group {group_id} until {}", member.mute_end_time),
            )
            .into());
        }
        if group.status == group_status::MUTED && member.role_level != role::ADMIN {
            return Err(ImError::new(
                ErrCode::MUTED_GROUP,
                format!("group {group_id} is muted: only its owner and admins may send"),
            )
            .into());
        }
        Ok(())
    }
}
