//! Bounds on the work one request may ask for: every list a client sends has a maximum length,
//! checked before anything is read or written, and answered with OpenIM's `ArgsError` (1001)
//! naming the field. The limits are above what the official SDKs send (the SDK pulls at most
//! about 100 messages per request, in as many ranges) and far below what would hold a service
//! busy: a request with 30,000 ranges is refused at once instead of costing 30,000 reads.

use openim_proto::pb::{conversation, group, msg, relation, sdkws, third, user};

use crate::ImError;

/// Seq ranges in one pull (`seqRanges`).
pub const MAX_SEQ_RANGES: usize = 1_000;
/// Seqs in one request (`seqs`), and conversations of one `GetSeqMessage`.
pub const MAX_SEQS: usize = 5_000;
/// Conversation IDs in one request: a user's every conversation may be named.
pub const MAX_CONVERSATION_IDS: usize = 10_000;
/// Parts of one upload (`parts`): S3's limit.
pub const MAX_PARTS: usize = 10_000;
/// User or group IDs in one request (`userIDs`, `groupIDs`, `friendUserIDs`, members, …).
pub const MAX_IDS: usize = 1_000;

/// A request whose lists are bounded: each list's field name (as in the .proto) and length.
pub trait Bounded {
    fn lists(&self) -> Vec<(&'static str, usize)>;
}

/// Refuses `req` with 1001 when one of its lists is longer than its field's limit.
pub fn check<T: Bounded>(req: &T) -> Result<(), ImError> {
    for (field, len) in req.lists() {
        let max = limit(field);
        if len > max {
            return Err(ImError::args(format!("{field} has {len} entries; at most {max} are allowed")));
        }
    }
    Ok(())
}

/// The limit of a list field.
pub fn limit(field: &str) -> usize {
    match field {
        "seqRanges" => MAX_SEQ_RANGES,
        "seqs" | "conversations" => MAX_SEQS,
        "conversationIDs" => MAX_CONVERSATION_IDS,
        // S3's most parts of one upload.
        "parts" => MAX_PARTS,
        _ => MAX_IDS,
    }
}

/// `items` in order, in runs whose `size`s add up to at most `max` (an item larger than `max`
/// is a run of its own): how a burst is cut into calls and frames of bounded size.
pub fn runs_within<T>(items: Vec<T>, max: usize, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut runs: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let len = size(&item);
        match runs.last_mut() {
            Some(run) if bytes + len <= max => run.push(item),
            _ => {
                bytes = 0;
                runs.push(vec![item]);
            }
        }
        bytes += len;
    }
    runs
}

macro_rules! bounded {
    ($($ty:ty => $($field:ident as $name:literal),+;)*) => {$(
        impl Bounded for $ty {
            fn lists(&self) -> Vec<(&'static str, usize)> {
                vec![$(($name, self.$field.len())),+]
            }
        }
    )*};
}

bounded! {
    sdkws::PullMessageBySeqsReq => seq_ranges as "seqRanges";
    msg::MarkMsgsAsReadReq => seqs as "seqs";
    msg::MarkConversationAsReadReq => seqs as "seqs";
    msg::GetConversationsHasReadAndMaxSeqReq => conversation_i_ds as "conversationIDs";
    msg::GetSeqMessageReq => conversations as "conversations";
    msg::GetLastMessageReq => conversation_i_ds as "conversationIDs";
    msg::DeleteMsgsReq => seqs as "seqs";
    msg::DeleteMsgPhysicalBySeqReq => seqs as "seqs";
    msg::DeleteMsgPhysicalReq => conversation_i_ds as "conversationIDs";
    msg::ClearConversationsMsgReq => conversation_i_ds as "conversationIDs";
    conversation::GetConversationsReq => conversation_i_ds as "conversationIDs";
    conversation::GetSortedConversationListReq => conversation_i_ds as "conversationIDs";
    conversation::SetConversationsReq => user_i_ds as "userIDs";
    conversation::GetConversationOfflinePushUserIDsReq => user_i_ds as "userIDs";
    user::UserRegisterReq => users as "users";
    user::GetDesignateUsersReq => user_i_ds as "userIDs";
    user::AccountCheckReq => check_user_i_ds as "checkUserIDs";
    user::GetUserStatusReq => user_i_ds as "userIDs";
    user::SubscribeOrCancelUsersStatusReq => user_i_ds as "userIDs";
    relation::ImportFriendReq => friend_user_i_ds as "friendUserIDs";
    relation::GetDesignatedFriendsReq => friend_user_i_ds as "friendUserIDs";
    relation::UpdateFriendsReq => friend_user_i_ds as "friendUserIDs";
    relation::GetSpecifiedFriendsInfoReq => user_id_list as "userIDList";
    relation::GetSpecifiedBlacksReq => user_id_list as "userIDList";
    group::CreateGroupReq => member_user_i_ds as "memberUserIDs", admin_user_i_ds as "adminUserIDs";
    group::GetGroupsInfoReq => group_i_ds as "groupIDs";
    group::InviteUserToGroupReq => invited_user_i_ds as "invitedUserIDs";
    group::GetGroupMembersInfoReq => user_i_ds as "userIDs";
    group::BatchGetIncrementalGroupMemberReq => req_list as "reqList";
    group::GetGroupApplicationListReq => group_i_ds as "groupIDs", handle_results as "handleResults";
    group::GetUserReqApplicationListReq => group_i_ds as "groupIDs", handle_results as "handleResults";
    group::GetGroupUsersReqApplicationListReq => user_i_ds as "userIDs";
    group::KickGroupMemberReq => kicked_user_i_ds as "kickedUserIDs";
    group::SetGroupMemberInfoReq => members as "members";
    group::GetGroupAbstractInfoReq => group_i_ds as "groupIDs";
    third::AuthSignReq => part_numbers as "partNumbers";
    third::CompleteMultipartUploadReq => parts as "parts";
    third::UploadLogsReq => file_ur_ls as "fileURLs";
    third::DeleteLogsReq => log_i_ds as "logIDs";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_over_its_limit_is_refused_naming_the_field() {
        let ranges = |n: usize| sdkws::PullMessageBySeqsReq {
            seq_ranges: vec![sdkws::SeqRange::default(); n],
            ..Default::default()
        };
        assert!(check(&ranges(MAX_SEQ_RANGES)).is_ok());
        let e = check(&ranges(30_000)).unwrap_err();
        assert_eq!(e.code, crate::ErrCode::ARGS);
        assert_eq!(e.detail, "seqRanges has 30000 entries; at most 1000 are allowed");
        let group = group::CreateGroupReq { admin_user_i_ds: vec![String::new(); MAX_IDS + 1], ..Default::default() };
        assert!(check(&group).unwrap_err().detail.starts_with("adminUserIDs has 1001"));
    }
}
