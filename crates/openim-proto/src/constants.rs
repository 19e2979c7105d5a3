//! Numeric constants of the OpenIM v3 protocol that clients depend on.

/// WebSocket request identifiers (`GeneralWsReq.ReqIdentifier`).
pub mod req {
    pub const GET_NEWEST_SEQ: i32 = 1001;
    pub const PULL_MSG_BY_SEQ_LIST: i32 = 1002;
    pub const SEND_MSG: i32 = 1003;
    pub const SEND_SIGNAL_MSG: i32 = 1004;
    pub const PULL_MSG: i32 = 1005;
    pub const GET_CONV_MAX_READ_SEQ: i32 = 1006;
    pub const PULL_CONV_LAST_MESSAGE: i32 = 1007;
    pub const PUSH_MSG: i32 = 2001;
    pub const KICK_ONLINE: i32 = 2002;
    pub const LOGOUT: i32 = 2003;
    pub const SET_BACKGROUND_STATUS: i32 = 2004;
    pub const SUB_USER_ONLINE_STATUS: i32 = 2005;
    pub const WS_DATA_ERROR: i32 = 3001;

    /// Every code above (the authorization tests must cover each).
    pub const ALL: [i32; 12] = [
        GET_NEWEST_SEQ,
        PULL_MSG_BY_SEQ_LIST,
        SEND_MSG,
        SEND_SIGNAL_MSG,
        PULL_MSG,
        GET_CONV_MAX_READ_SEQ,
        PULL_CONV_LAST_MESSAGE,
        PUSH_MSG,
        KICK_ONLINE,
        LOGOUT,
        SET_BACKGROUND_STATUS,
        SUB_USER_ONLINE_STATUS,
    ];

    /// A metric label for a request code: the code for the known ones, `other` for anything a
    /// client made up (labels must not come from client input, or a client could grow the
    /// metrics without bound).
    pub fn label(id: i32) -> &'static str {
        match id {
            GET_NEWEST_SEQ => "1001",
            PULL_MSG_BY_SEQ_LIST => "1002",
            SEND_MSG => "1003",
            SEND_SIGNAL_MSG => "1004",
            PULL_MSG => "1005",
            GET_CONV_MAX_READ_SEQ => "1006",
            PULL_CONV_LAST_MESSAGE => "1007",
            PUSH_MSG => "2001",
            KICK_ONLINE => "2002",
            LOGOUT => "2003",
            SET_BACKGROUND_STATUS => "2004",
            SUB_USER_ONLINE_STATUS => "2005",
            WS_DATA_ERROR => "3001",
            _ => "other",
        }
    }
}

/// Session types (`MsgData.sessionType`).
pub mod session {
    pub const SINGLE_CHAT: i32 = 1;
    pub const WRITE_GROUP_CHAT: i32 = 2;
    pub const READ_GROUP_CHAT: i32 = 3;
    pub const NOTIFICATION_CHAT: i32 = 4;
}

/// Content types (`MsgData.contentType`) the server itself looks at.
pub mod content {
    pub const TEXT: i32 = 101;
    pub const PICTURE: i32 = 102;
    pub const CUSTOM: i32 = 110;
    pub const AT_TEXT: i32 = 106;
    /// Notifications live in 1000..=2999 and are never counted as unread.
    pub const NOTIFICATION_BEGIN: i32 = 1000;
    /// ConversationChangeNotification.
    pub const CONVERSATION_CHANGE: i32 = 1300;
    /// The group notifications (GroupCreated … GroupInfoSetName), and their tips in the chat.
    pub const GROUP_NOTIFICATIONS: std::ops::RangeInclusive<i32> = 1501..=1520;
    /// ClearConversationNotification.
    pub const CLEAR_CONVERSATION: i32 = 1703;
    /// MsgRevokeNotification, also the contentType a revoked message is read back as.
    pub const REVOKE: i32 = 2101;
    /// `HasReadReceipt`: who read up to where (`MarkAsReadTips`).
    pub const HAS_READ_RECEIPT: i32 = 2200;
    /// DeleteMsgsNotification.
    pub const DELETE_MSGS: i32 = 2102;
    pub const NOTIFICATION_END: i32 = 5000;
}

/// `MsgData.status`.
pub mod status {
    pub const SENDING: i32 = 1;
    pub const SEND_SUCCESS: i32 = 2;
    /// Deleted (for this reader, or for everyone): the SDK keeps it hidden.
    pub const DELETED: i32 = 4;
}

/// `MsgData.msgFrom`.
pub mod msg_from {
    pub const USER: i32 = 100;
    pub const SYSTEM: i32 = 200;
}

/// Platform IDs and their names, as OpenIM numbers them.
pub mod platform {
    pub const IOS: i32 = 1;
    pub const ANDROID: i32 = 2;
    pub const WINDOWS: i32 = 3;
    pub const OSX: i32 = 4;
    pub const WEB: i32 = 5;
    pub const MINI_WEB: i32 = 6;
    pub const LINUX: i32 = 7;
    pub const ANDROID_PAD: i32 = 8;
    pub const IPAD: i32 = 9;
    pub const ADMIN: i32 = 10;
    pub const HARMONY_OS: i32 = 11;

    /// The platform's name, or `None` for an unknown ID.
    pub fn name(id: i32) -> Option<&'static str> {
        Some(match id {
            IOS => "IOS",
            ANDROID => "Android",
            WINDOWS => "Windows",
            OSX => "OSX",
            WEB => "Web",
            MINI_WEB => "MiniWebApp",
            LINUX => "Linux",
            ANDROID_PAD => "APad",
            IPAD => "IPad",
            ADMIN => "Admin",
            HARMONY_OS => "HarmonyOS",
            _ => return None,
        })
    }

    /// Terminal class used by the multi-terminal login policies.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Class {
        Mobile,
        Desktop,
        Web,
        Pad,
        Admin,
    }

    pub fn class(id: i32) -> Class {
        match id {
            IOS | ANDROID | HARMONY_OS => Class::Mobile,
            WINDOWS | OSX | LINUX => Class::Desktop,
            WEB | MINI_WEB => Class::Web,
            ANDROID_PAD | IPAD => Class::Pad,
            _ => Class::Admin,
        }
    }
}
