//! Records the stores keep. Messages are kept as OpenIM's own `MsgData`; everything else has a
//! plain struct here so that storage does not depend on the shape of API requests.

use openim_proto::pb::sdkws::MsgData;

/// A record the SQL stores read rows into: the struct, and `sqlx::FromRow` taking each field from
/// the column of its name, for any sqlx database whose types decode the fields. This is what
/// `#[derive(sqlx::FromRow)]` generates; a declarative macro keeps sqlx's proc-macro crate, and
/// the host build of every sqlx driver it drags in, out of the build (see `sql/migrations.rs`).
macro_rules! sql_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)* }
    ) => {
        $(#[$meta])*
        pub struct $name { $($(#[$field_meta])* pub $field: $ty,)* }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            &'r str: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
                Ok(Self { $($field: row.try_get(stringify!($field))?,)* })
            }
        }
    };
}

sql_record! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct User {
        pub user_id: String,
        pub nickname: String,
        pub face_url: String,
        pub ex: String,
        pub app_manger_level: i32,
        pub global_recv_msg_opt: i32,
        /// Unix milliseconds.
        pub create_time: i64,
    }
}

/// A partial update: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    pub user_id: String,
    pub nickname: Option<String>,
    pub face_url: Option<String>,
    pub ex: Option<String>,
    pub global_recv_msg_opt: Option<i32>,
}

sql_record! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Friend {
        pub owner_user_id: String,
        pub friend_user_id: String,
        pub remark: String,
        pub create_time: i64,
        pub add_source: i32,
        pub operator_user_id: String,
        pub ex: String,
        pub is_pinned: bool,
    }
}

/// A partial update of friend entries: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendPatch {
    pub remark: Option<String>,
    pub is_pinned: Option<bool>,
    pub ex: Option<String>,
}

sql_record! {
    /// An application to become friends, from `from_user_id` to `to_user_id`; one per ordered pair
    /// (a new application replaces a handled one).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct FriendRequest {
        pub from_user_id: String,
        pub to_user_id: String,
        /// [`handle_result`]: pending, accepted or refused.
        pub handle_result: i32,
        pub req_msg: String,
        /// Unix milliseconds.
        pub create_time: i64,
        pub handler_user_id: String,
        pub handle_msg: String,
        /// Unix milliseconds; 0 while pending.
        pub handle_time: i64,
        pub ex: String,
    }
}

/// `FriendRequest::handle_result` values, as OpenIM numbers them.
pub mod handle_result {
    pub const PENDING: i32 = 0;
    pub const ACCEPTED: i32 = 1;
    pub const REFUSED: i32 = -1;
}

sql_record! {
    /// `block_user_id` is on `owner_user_id`'s blacklist.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Black {
        pub owner_user_id: String,
        pub block_user_id: String,
        /// Unix milliseconds.
        pub create_time: i64,
        pub add_source: i32,
        pub operator_user_id: String,
        pub ex: String,
    }
}

sql_record! {
    /// One entry of a user's command list (favourites and the like): unique per
    /// (user, type, uuid).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct UserCommand {
        pub user_id: String,
        pub command_type: i32,
        pub uuid: String,
        pub value: String,
        pub ex: String,
        /// Unix seconds, as OpenIM keeps it.
        pub create_time: i64,
    }
}

sql_record! {
    /// A log file an app uploaded (`/third/logs/upload`).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ClientLog {
        pub log_id: String,
        /// The platform's name (`Android`, `Web`, …).
        pub platform: String,
        pub user_id: String,
        /// Unix milliseconds.
        pub create_time: i64,
        pub url: String,
        pub file_name: String,
        pub system_type: String,
        pub app_framework: String,
        pub version: String,
        pub ex: String,
    }
}

sql_record! {
    /// A named object (a picture, voice clip, video, file or client log): the name clients use
    /// (`<owner>/…`) and the stored content behind it, which uploads of the same content share.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ObjectRecord {
        pub name: String,
        /// Who uploaded it.
        pub user_id: String,
        /// The upload's hash (md5 of the parts' md5s), or `etag_<etag>` for form uploads.
        pub hash: String,
        /// Where the content is in the object store.
        pub object_key: String,
        pub size: i64,
        pub content_type: String,
        /// OpenIM's `cause`/`group`: what the object is for (`msg-picture`, `logs`, …).
        pub object_group: String,
        /// Unix milliseconds.
        pub create_time: i64,
    }
}

sql_record! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Group {
        pub group_id: String,
        pub group_name: String,
        pub notification: String,
        pub introduction: String,
        pub face_url: String,
        pub owner_user_id: String,
        pub creator_user_id: String,
        pub create_time: i64,
        pub ex: String,
        pub status: i32,
        pub group_type: i32,
        pub need_verification: i32,
        pub look_member_info: i32,
        pub apply_member_friend: i32,
        /// When the announcement (`notification`) was last set, unix milliseconds, and by whom.
        pub notification_update_time: i64,
        pub notification_user_id: String,
    }
}

/// Group statuses as OpenIM numbers them.
pub mod group_status {
    pub const OK: i32 = 0;
    pub const DISMISSED: i32 = 2;
    /// Only the owner and admins may send.
    pub const MUTED: i32 = 3;
}

/// A change to a group's info: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPatch {
    pub group_name: Option<String>,
    /// The announcement; `notification_user_id` and `notification_update_time` go with it.
    pub notification: Option<String>,
    pub notification_user_id: String,
    pub notification_update_time: i64,
    pub introduction: Option<String>,
    pub face_url: Option<String>,
    pub ex: Option<String>,
    pub need_verification: Option<i32>,
    pub look_member_info: Option<i32>,
    pub apply_member_friend: Option<i32>,
    pub status: Option<i32>,
}

impl GroupPatch {
    /// Nothing to change (who and when alone change nothing).
    pub fn is_empty(&self) -> bool {
        self.group_name.is_none()
            && self.notification.is_none()
            && self.introduction.is_none()
            && self.face_url.is_none()
            && self.ex.is_none()
            && self.need_verification.is_none()
            && self.look_member_info.is_none()
            && self.apply_member_friend.is_none()
            && self.status.is_none()
    }
}

/// A change to one member: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPatch {
    pub nickname: Option<String>,
    pub face_url: Option<String>,
    pub role_level: Option<i32>,
    pub ex: Option<String>,
    /// Unix milliseconds; 0 lifts a mute.
    pub mute_end_time: Option<i64>,
}

sql_record! {
    /// An application to join a group, or an invitation that needs approval
    /// (`inviter_user_id` set): one per (group, user), a new one replacing the old.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GroupRequest {
        pub group_id: String,
        pub user_id: String,
        /// [`handle_result`]: pending, accepted or refused.
        pub handle_result: i32,
        pub req_msg: String,
        pub handle_msg: String,
        /// Unix milliseconds.
        pub req_time: i64,
        pub handle_user_id: String,
        pub handle_time: i64,
        pub join_source: i32,
        pub inviter_user_id: String,
        pub ex: String,
    }
}

/// The answer to a pending group request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRequestAnswer {
    pub group_id: String,
    pub user_id: String,
    /// Accepted or refused ([`handle_result`]).
    pub handle_result: i32,
    pub handle_msg: String,
    pub handle_user_id: String,
    pub handle_time: i64,
}

/// Which filter a page of group requests takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only these results (pending, accepted, refused); all when empty.
    pub handle_results: Vec<i32>,
    pub offset: u32,
    pub limit: u32,
}

/// The version logs the SDK's incremental sync reads (OpenIM's `VersionLog`): per owner, a
/// current version and, per entry (a member, a group), the version at which it last changed.
pub mod version {
    /// A group's members; the owner is the group.
    pub const GROUP_MEMBERS: i32 = 1;
    /// A user's joined groups; the owner is the user.
    pub const JOINED_GROUPS: i32 = 2;

    /// Entry states as OpenIM numbers them.
    pub const INSERT: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const UPDATE: i32 = 3;

    /// The entry that stands for the group's own info in its member log.
    pub const GROUP_INFO: &str = "";
    /// The entry that stands for the members' order (roles changed).
    pub const SORT: &str = "____S_O_R_T_I_D____";
}

/// Where a version log is: its ID (new when the log starts over) and current version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionHead {
    pub version_id: String,
    pub version: u64,
}

/// One entry's last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub entry_id: String,
    pub state: i32,
    pub version: u64,
}

/// Role levels as OpenIM numbers them.
pub mod role {
    pub const ORDINARY: i32 = 20;
    pub const ADMIN: i32 = 60;
    pub const OWNER: i32 = 100;
}

sql_record! {
    #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct GroupMember {
        pub group_id: String,
        pub user_id: String,
        pub role_level: i32,
        pub join_time: i64,
        pub nickname: String,
        pub face_url: String,
        pub join_source: i32,
        pub inviter_user_id: String,
        pub operator_user_id: String,
        pub mute_end_time: i64,
        pub ex: String,
    }
}

sql_record! {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Conversation {
        pub owner_user_id: String,
        pub conversation_id: String,
        pub conversation_type: i32,
        /// The peer of a single chat.
        pub user_id: String,
        pub group_id: String,
        pub recv_msg_opt: i32,
        pub is_pinned: bool,
        pub is_private_chat: bool,
        pub burn_duration: i32,
        pub group_at_type: i32,
        pub attached_info: String,
        pub ex: String,
        pub min_seq: i64,
        pub create_time: i64,
        /// Seconds a message lives when `is_msg_destruct` (OpenIM's default: 7 days).
        pub msg_destruct_time: i64,
        pub is_msg_destruct: bool,
    }
}

/// How long messages live in a conversation with message destruction on, unless set: 7 days,
/// OpenIM's default.
pub const DEFAULT_MSG_DESTRUCT_SECS: i64 = 604_800;

/// A partial update of a conversation's settings: `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationPatch {
    pub recv_msg_opt: Option<i32>,
    pub is_pinned: Option<bool>,
    pub is_private_chat: Option<bool>,
    pub burn_duration: Option<i32>,
    pub group_at_type: Option<i32>,
    pub attached_info: Option<String>,
    pub ex: Option<String>,
    pub msg_destruct_time: Option<i64>,
    pub is_msg_destruct: Option<bool>,
}

impl ConversationPatch {
    /// Whether applying the patch would change `c`.
    pub fn changes(&self, c: &Conversation) -> bool {
        fn differs<T: PartialEq>(new: &Option<T>, old: &T) -> bool {
            new.as_ref().is_some_and(|n| n != old)
        }
        differs(&self.recv_msg_opt, &c.recv_msg_opt)
            || differs(&self.is_pinned, &c.is_pinned)
            || differs(&self.is_private_chat, &c.is_private_chat)
            || differs(&self.burn_duration, &c.burn_duration)
            || differs(&self.group_at_type, &c.group_at_type)
            || differs(&self.attached_info, &c.attached_info)
            || differs(&self.ex, &c.ex)
            || differs(&self.msg_destruct_time, &c.msg_destruct_time)
            || differs(&self.is_msg_destruct, &c.is_msg_destruct)
    }
}

/// A message with the conversation and seq it was stored under.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMsg {
    pub conversation_id: String,
    pub msg: MsgData,
}

/// A token's state, numbered as OpenIM's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Normal = 0,
    Invalid = 1,
    Kicked = 2,
    Expired = 3,
}

impl TokenState {
    pub fn from_i64(v: i64) -> Self {
        match v {
            0 => Self::Normal,
            2 => Self::Kicked,
            3 => Self::Expired,
            _ => Self::Invalid,
        }
    }
}

/// Bus topics, named as OpenIM's Kafka topics.
pub mod topic {
    /// From `openim-rpc-msg` to `openim-msgtransfer`: accepted messages, keyed by conversation.
    pub const TO_TRANSFER: &str = "toRedis";
    /// From `openim-msgtransfer` to `openim-push`: stored messages with their seqs.
    pub const TO_PUSH: &str = "toPush";
    /// From `openim-msgtransfer` to its persisting consumer: messages with their seqs.
    pub const TO_MONGO: &str = "toMongo";
    /// From `openim-push` to its offline-push consumer: messages for receivers not online.
    pub const TO_OFFLINE_PUSH: &str = "toOfflinePush";
    /// Ours: records `openim-msgtransfer` could not store (the same record failing while others
    /// of its batch were stored, or seqs colliding again and again), as they came from
    /// `toRedis`, to look at and replay; nothing consumes it.
    pub const DEAD_LETTER: &str = "deadLetter";
    /// Every topic, for creating them.
    pub const ALL: &[&str] = &[TO_TRANSFER, TO_MONGO, TO_PUSH, TO_OFFLINE_PUSH, DEAD_LETTER];
}

/// Who revoked a message, and when: kept beside the message, which itself stays unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokeMark {
    /// The revoker's role: group role level, or the user's app manager level in a single chat.
    pub role: i32,
    pub user_id: String,
    pub nickname: String,
    /// Unix milliseconds.
    pub time: i64,
}

/// What happened to a stored message after it was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgMarks {
    pub revoke: Option<RevokeMark>,
    /// Users who deleted the message for themselves (it stays for everyone else).
    pub deleted_for: Vec<String>,
}

/// Where a message scan stands: the last message returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPosition {
    pub send_time: i64,
    pub conversation_id: String,
    pub seq: i64,
}
