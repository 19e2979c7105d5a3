//! The group service's notifications (content types 1501–1520), with OpenIM's tips payloads,
//! to the group's members in `n_<groupID>`. Each carries the member log's version after the
//! change, so an SDK one version behind applies it without asking for a sync. Those OpenIM's
//! `notification.yml` marks `isSendMsg` also go to the group's chat as a tip message (see
//! `openim_common::notify::Note::show`).

use openim_common::notify::{Note, Notifier, content as body};
use openim_common::token::now_millis;
use openim_proto::pb::sdkws::{
    GroupApplicationAcceptedTips, GroupApplicationRejectedTips, GroupCancelMutedTips, GroupCreatedTips,
    GroupDismissedTips, GroupInfo, GroupInfoSetAnnouncementTips, GroupInfoSetNameTips, GroupInfoSetTips,
    GroupMemberCancelMutedTips, GroupMemberFullInfo, GroupMemberInfoSetTips, GroupMemberMutedTips, GroupMutedTips,
    GroupOwnerTransferredTips, GroupRequest, JoinGroupApplicationTips, MemberEnterTips, MemberInvitedTips,
    MemberKickedTips, MemberQuitTips, PublicUserInfo,
};
use openim_storage::VersionHead;

/// OpenIM's content types of group notifications.
pub mod content {
    pub const GROUP_CREATED: i32 = 1501;
    pub const GROUP_INFO_SET: i32 = 1502;
    pub const JOIN_APPLICATION: i32 = 1503;
    pub const MEMBER_QUIT: i32 = 1504;
    pub const APPLICATION_ACCEPTED: i32 = 1505;
    pub const APPLICATION_REJECTED: i32 = 1506;
    pub const OWNER_TRANSFERRED: i32 = 1507;
    pub const MEMBER_KICKED: i32 = 1508;
    pub const MEMBER_INVITED: i32 = 1509;
    pub const MEMBER_ENTER: i32 = 1510;
    pub const GROUP_DISMISSED: i32 = 1511;
    pub const MEMBER_MUTED: i32 = 1512;
    pub const MEMBER_CANCEL_MUTED: i32 = 1513;
    pub const GROUP_MUTED: i32 = 1514;
    pub const GROUP_CANCEL_MUTED: i32 = 1515;
    pub const MEMBER_INFO_SET: i32 = 1516;
    pub const SET_TO_ADMIN: i32 = 1517;
    pub const SET_TO_ORDINARY: i32 = 1518;
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

    /// The sender underneath, for the notifications that are not the group's own.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn send<T: serde::Serialize>(&self, content_type: i32, c: &Change<'_>, tips: &T) {
        self.send_shown(content_type, c, tips, true).await;
    }

    /// `show`: also shown in the chat (OpenIM's `isSendMsg`).
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

    /// 1501: the group exists, with `owner` and (as OpenIM lists them) the members up to and
    /// including whoever created it.
    pub async fn created(
        &self,
        c: &Change<'_>,
        owner: GroupMemberFullInfo,
        listed: Vec<GroupMemberFullInfo>,
        show: bool,
    ) {
        let tips = GroupCreatedTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            member_list: listed,
            operation_time: c.group.create_time,
            group_owner_user: Some(owner),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send_shown(content::GROUP_CREATED, c, &tips, show).await;
    }

    /// 1509: `invited` were added by `inviter`.
    pub async fn member_invited(
        &self,
        c: &Change<'_>,
        invited: Vec<GroupMemberFullInfo>,
        inviter: GroupMemberFullInfo,
        show: bool,
    ) {
        let tips = MemberInvitedTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            invited_user_list: invited,
            operation_time: 0,
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
            inviter_user: Some(inviter),
        };
        self.send_shown(content::MEMBER_INVITED, c, &tips, show).await;
    }

    /// 1510: `entrant` joined by itself (or was let in on its application).
    pub async fn member_enter(&self, c: &Change<'_>, entrant: GroupMemberFullInfo) {
        let tips = MemberEnterTips {
            group: Some(c.group.clone()),
            entrant_user: Some(entrant),
            operation_time: now_millis(),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::MEMBER_ENTER, c, &tips).await;
    }

    /// 1504: `quit` left. Push adds the leaver to the receivers (it is no member any more).
    pub async fn member_quit(&self, c: &Change<'_>, quit: GroupMemberFullInfo) {
        let tips = MemberQuitTips {
            group: Some(c.group.clone()),
            quit_user: Some(quit),
            operation_time: 0,
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send(content::MEMBER_QUIT, c, &tips).await;
    }

    /// 1508: `kicked` were removed. Push adds them to the receivers.
    pub async fn member_kicked(&self, c: &Change<'_>, kicked: Vec<GroupMemberFullInfo>, show: bool) {
        let tips = MemberKickedTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            kicked_user_list: kicked,
            operation_time: 0,
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
        };
        self.send_shown(content::MEMBER_KICKED, c, &tips, show).await;
    }

    /// 1511: the group was dismissed. Push, having resolved the members it tells, removes them
    /// (OpenIM's order: the members learn of it, then leave).
    pub async fn dismissed(&self, c: &Change<'_>, show: bool) {
        let tips =
            GroupDismissedTips { group: Some(c.group.clone()), op_user: Some(c.op_user.clone()), operation_time: 0 };
        self.send_shown(content::GROUP_DISMISSED, c, &tips, show).await;
    }

    /// 1516 (info), 1517 (made an admin) or 1518 (made an ordinary member): `changed` after it.
    pub async fn member_info_set(&self, c: &Change<'_>, content_type: i32, changed: GroupMemberFullInfo, sorted: bool) {
        let tips = GroupMemberInfoSetTips {
            group: Some(c.group.clone()),
            op_user: Some(c.op_user.clone()),
            operation_time: 0,
            changed_user: Some(changed),
            group_member_version: c.head.version,
            group_member_version_id: c.head.version_id.clone(),
            group_sort_version: if sorted { c.head.version } else { 0 },
        };
        self.send_shown(content_type, c, &tips, false).await;
    }

    /// 1503, one single-chat notification from `op` to each of `to`: `applicant` asks to join
    /// (or was invited, awaiting approval).
    pub async fn join_application(
        &self,
        op: &str,
        to: &[String],
        group: GroupInfo,
        applicant: PublicUserInfo,
        request: GroupRequest,
    ) {
        let tips = JoinGroupApplicationTips {
            group: Some(group),
            applicant: Some(applicant),
            req_msg: request.req_msg.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            request: Some(request),
        };
        let content = body(&tips);
        let notes = to.iter().map(|u| (Note::single(content::JOIN_APPLICATION, op, u), content.clone())).collect();
        self.notifier.send_all(notes).await;
    }

    /// 1505 (accepted) or 1506 (refused), to the group's managers (`receiverAs` 1) and the
    /// applicant (0), all with one uuid.
    pub async fn application_answered(
        &self,
        c: &Change<'_>,
        accepted: bool,
        managers: &[String],
        applicant: &str,
        request: GroupRequest,
    ) {
        let uuid = uuid::Uuid::new_v4().to_string();
        let handle_msg = request.handle_msg.clone();
        let mut notes = Vec::new();
        let mut to: Vec<(&str, i32)> = managers.iter().map(|m| (m.as_str(), 1)).collect();
        to.push((applicant, 0));
        for (user, receiver_as) in to {
            let (content_type, content) = if accepted {
                let tips = GroupApplicationAcceptedTips {
                    group: Some(c.group.clone()),
                    op_user: Some(c.op_user.clone()),
                    handle_msg: handle_msg.clone(),
                    receiver_as,
                    uuid: uuid.clone(),
                    request: Some(request.clone()),
                };
                (content::APPLICATION_ACCEPTED, body(&tips))
            } else {
                let tips = GroupApplicationRejectedTips {
                    group: Some(c.group.clone()),
                    op_user: Some(c.op_user.clone()),
                    handle_msg: handle_msg.clone(),
                    receiver_as,
                    uuid: uuid.clone(),
                    request: Some(request.clone()),
                };
                (content::APPLICATION_REJECTED, body(&tips))
            };
            notes.push((Note::single(content_type, c.op, user), content));
        }
        self.notifier.send_all(notes).await;
    }
}
