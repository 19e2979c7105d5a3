//! The group service's notifications (content types 1501–1520), with OpenIM's tips payloads,
//! to the group's members in `n_<groupID>`. Each carries the member log's version after the
//! change, so an SDK one version behind applies it without asking for a sync.

use openim_common::notify::{Note, Notifier};
use openim_proto::pb::sdkws::{
    GroupCancelMutedTips, GroupInfo, GroupMemberCancelMutedTips, GroupMemberFullInfo, GroupMemberMutedTips,
    GroupMutedTips,
};
use openim_storage::VersionHead;

/// OpenIM's content types of group notifications.
pub mod content {
    pub const MEMBER_MUTED: i32 = 1512;
    pub const MEMBER_CANCEL_MUTED: i32 = 1513;
    pub const GROUP_MUTED: i32 = 1514;
    pub const GROUP_CANCEL_MUTED: i32 = 1515;
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
        let note = Note { show: true, ..Note::group(content_type, c.op, &c.group.group_id) };
        self.notifier.send(note, tips).await;
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
