//! The friend service's notifications (content types 1201–1210), with OpenIM's tips payloads.
//! Between two users they go in the pair's `n_<a>_<b>` conversation (both users' devices get
//! them); changes to a user's own lists (blacklist, remarks, pins) go in the user's own `n_<u>_<u>`
//! conversation, so only that user's devices hear of them.

use openim_common::notify::{Note, Notifier};
use openim_proto::pb::sdkws::{
    BlackAddedTips, BlackDeletedTips, FriendApplicationApprovedTips, FriendApplicationRejectedTips,
    FriendApplicationTips, FriendDeletedTips, FriendInfoChangedTips, FriendRequest, FriendsInfoUpdateTips,
    FromToUserId, UserInfoUpdatedTips,
};

/// OpenIM's content types of friend notifications.
pub mod content {
    pub const APPLICATION_APPROVED: i32 = 1201;
    pub const APPLICATION_REJECTED: i32 = 1202;
    pub const APPLICATION: i32 = 1203;
    pub const FRIEND_DELETED: i32 = 1205;
    pub const REMARK_SET: i32 = 1206;
    pub const BLACK_ADDED: i32 = 1207;
    pub const BLACK_DELETED: i32 = 1208;
    pub const FRIEND_INFO_UPDATED: i32 = 1209;
    pub const FRIENDS_INFO_UPDATE: i32 = 1210;
}

fn from_to(from: &str, to: &str) -> Option<FromToUserId> {
    Some(FromToUserId { from_user_id: from.to_owned(), to_user_id: to.to_owned() })
}

/// Builds and sends the friend notifications.
#[derive(Clone)]
pub struct FriendNotes {
    notifier: Notifier,
}

impl FriendNotes {
    pub fn new(notifier: Notifier) -> Self {
        Self { notifier }
    }

    /// 1203, from the applicant to the recipient.
    pub async fn application_added(&self, request: FriendRequest) {
        let (from, to) = (request.from_user_id.clone(), request.to_user_id.clone());
        let tips = FriendApplicationTips { from_to_user_id: from_to(&from, &to), request: Some(request) };
        self.notifier.send(Note::single(content::APPLICATION, &from, &to), &tips).await;
    }

    /// 1201, from the user who accepted (`recipient`) to the applicant; `request` is `None` for
    /// an imported friendship. OpenIM shows it as a message (`isSendMsg`): "you are friends now".
    pub async fn application_approved(
        &self,
        applicant: &str,
        recipient: &str,
        request: Option<FriendRequest>,
        handle_msg: &str,
    ) {
        let tips = FriendApplicationApprovedTips {
            from_to_user_id: from_to(applicant, recipient),
            handle_msg: handle_msg.to_owned(),
            request,
            ..Default::default()
        };
        let mut note = Note::single(content::APPLICATION_APPROVED, recipient, applicant);
        note.show = true;
        self.notifier.send(note, &tips).await;
    }

    /// 1202, from the user who refused to the applicant.
    pub async fn application_rejected(&self, request: FriendRequest, handle_msg: &str) {
        let (applicant, recipient) = (request.from_user_id.clone(), request.to_user_id.clone());
        let tips = FriendApplicationRejectedTips {
            from_to_user_id: from_to(&applicant, &recipient),
            handle_msg: handle_msg.to_owned(),
            request: Some(request),
        };
        self.notifier.send(Note::single(content::APPLICATION_REJECTED, &recipient, &applicant), &tips).await;
    }

    /// 1205, from the owner to the friend removed.
    pub async fn friend_deleted(&self, owner: &str, friend: &str) {
        let tips = FriendDeletedTips { from_to_user_id: from_to(owner, friend), ..Default::default() };
        self.notifier.send(Note::single(content::FRIEND_DELETED, owner, friend), &tips).await;
    }

    /// 1206, to the owner's own devices only (a remark is private).
    pub async fn remark_set(&self, owner: &str, friend: &str) {
        let tips = FriendInfoChangedTips { from_to_user_id: from_to(owner, friend), ..Default::default() };
        self.notifier.send(Note::single(content::REMARK_SET, owner, owner), &tips).await;
    }

    /// 1210, to the owner's own devices only: pins, remarks or ex of these friends changed.
    pub async fn friends_updated(&self, owner: &str, friend_ids: Vec<String>) {
        let tips = FriendsInfoUpdateTips {
            from_to_user_id: from_to("", owner),
            friend_i_ds: friend_ids,
            ..Default::default()
        };
        self.notifier.send(Note::single(content::FRIENDS_INFO_UPDATE, owner, owner), &tips).await;
    }

    /// 1207, to the owner's own devices only: the blocked user is not told.
    pub async fn black_added(&self, owner: &str, blocked: &str) {
        let tips = BlackAddedTips { from_to_user_id: from_to(owner, blocked) };
        self.notifier.send(Note::single(content::BLACK_ADDED, owner, owner), &tips).await;
    }

    /// 1208, to the owner's own devices only.
    pub async fn black_deleted(&self, owner: &str, blocked: &str) {
        let tips = BlackDeletedTips { from_to_user_id: from_to(owner, blocked) };
        self.notifier.send(Note::single(content::BLACK_DELETED, owner, owner), &tips).await;
    }

    /// 1209, from `changed` to each of `friends`: the user's profile changed, so their friend
    /// lists show the new one.
    pub async fn friend_info_updated(&self, changed: &str, friends: &[String]) {
        let tips = UserInfoUpdatedTips { user_id: changed.to_owned() };
        let body = openim_common::notify::content(&tips);
        let notes =
            friends.iter().map(|f| (Note::single(content::FRIEND_INFO_UPDATED, changed, f), body.clone())).collect();
        self.notifier.send_all(notes).await;
    }
}
