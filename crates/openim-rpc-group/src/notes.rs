//! The group service's notifications (content types 1501–1520), with OpenIM's tips payloads,
//! to the group's members in `n_<groupID>`. Each carries the member log's version after the
//! change, so an SDK one version behind applies it without asking for a sync.

use openim_common::notify::{Note, Notifier};
use openim_proto::pb::sdkws::{
    GroupCancelMutedTips, GroupInfo, GroupInfoSetAnnouncementTips, GroupInfoSetNameTips, GroupInfoSetTips,
    GroupMemberCancelMutedTips, GroupMemberFullInfo, GroupMemberMutedTips, GroupMutedTips, GroupOwnerTransferredTips,
};
use openim_storage::VersionHead;

/// OpenIM's content types of group notifications.
pub mod content {
    pub const GROUP_INFO_SET: i32 = 1502;
    pub const OWNER_TRANSFERRED: i32 = 1507;
    pub const MEMBER_MUTED: i32 = 1512;
    pub const MEMBER_CANCEL_MUTED: i32 = 1513;
    pub const GROUP_MUTED: i32 = 1514;
    pub const GROUP_CANCEL_MUTED: i32 = 1515;
    pub const ANNOUNCEMENT_SET: i32 = 1519;
    pub const NAME_SET: i32 = 1520;
}

/// Builds and sends the group notifications.
#[derive(Clone)]
pub struct GroupNotes {
    notifier: Notifier,
}

/// Who did it, and the group after it.
pub struct Change<'a> {
    pub op: &'a str,
    pub op_user: GroupMemberFullInfo,
    pub group: GroupInfo,
    pub head: VersionHead,
}

impl GroupNotes {
    pub fn new(notifier: Notifier) -> Self {
        Self { notifier }
    }

    async fn send<T: serde::Serialize>(&self, content_type: i32, c: &Change<'_>, tips: &T) {
        self.send_shown(content_type, c, tips, true).await;
    }

    /// `show`: counted as unread and shown in the chat (OpenIM's `isSendMsg`).
    async fn send_shown<T: serde::Serialize>(&self, content_type: i32, c: &Change<'_>, tips: &T, show: bool) {
        let note = Note { show, ..Note::group(content_type, c.op, &c.group.group_id) };
        self.notifier.send(note, tips).await;
    }

    /// 1502: the group's info other than its name and announcement changed.
    pub async fn info_set(&self, c: &Change<'_>) {
        let tips = GroupInfoSetTips {
            op_user: Some(c.op_user.clone()),
            mute_time: 0,
            group: Some(c.group.clone()),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send_shown(content::GROUP_INFO_SET, c, &tips, false).await;
    }

    /// 1520: renamed.
    pub async fn name_set(&self, c: &Change<'_>) {
        let tips = GroupInfoSetNameTips {
            op_user: Some(c.op_user.clone()),
            group: Some(c.group.clone()),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::NAME_SET, c, &tips).await;
    }

    /// 1519: a new announcement (shown as a message), or none any more (not shown).
    pub async fn announcement_set(&self, c: &Change<'_>) {
        let tips = GroupInfoSetAnnouncementTips {
            op_user: Some(c.op_user.clone()),
            group: Some(c.group.clone()),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        let shown = !c.group.notification.is_empty();
        self.send_shown(content::ANNOUNCEMENT_SET, c, &tips, shown).await;
    }

    /// 1507: `new_owner` owns the group; `old_owner` has the role the new one had.
    pub async fn owner_transferred(
        &self,
        c: &Change<'_>,
        new_owner: GroupMemberFullInfo,
        old_owner: GroupMemberFullInfo,
    ) {
        let tips = GroupOwnerTransferredTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            old_group_owner: old_owner.user_id.clone(),
            new_group_owner: Some(new_owner),
            operation_time: 0,
            old_group_owner_info: Some(old_owner),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::OWNER_TRANSFERRED, c, &tips).await;
    }

    /// 1512: `muted` may not send for `seconds`.
    pub async fn member_muted(&self, c: Change<'_>, muted: GroupMemberFullInfo, seconds: u32) {
        let tips = GroupMemberMutedTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            operation_time: 0,
            muted_user: Some(muted),
            muted_seconds: seconds,
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::MEMBER_MUTED, &c, &tips).await;
    }

    /// 1513: `muted` may send again.
    pub async fn member_unmuted(&self, c: Change<'_>, muted: GroupMemberFullInfo) {
        let tips = GroupMemberCancelMutedTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            operation_time: 0,
            muted_user: Some(muted),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::MEMBER_CANCEL_MUTED, &c, &tips).await;
    }

    /// 1514 (muted) or 1515 (no longer).
    pub async fn group_muted(&self, c: Change<'_>, muted: bool) {
        let (group, op_user) = (Some(c.group.clone()), Some(c.op_user.clone()));
        let (version, version_id) = (c.head.version, c.head.version_id.clone());
        if muted {
            let tips = GroupMutedTips {
                group,
                op_user,
                operation_time: 0,
                group_member_version: version,
                group_member_version_id: version_id,
            };
            self.send(content::GROUP_MUTED, &c, &tips).await;
        } else {
            let tips = GroupCancelMutedTips {
                group,
                op_user,
                operation_time: 0,
                group_member_version: version,
                group_member_version_id: version_id,
            };
            self.send(content::GROUP_CANCEL_MUTED, &c, &tips).await;
        }
    }
}
