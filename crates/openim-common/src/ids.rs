//! Conversation IDs as OpenIM builds them, and other identifiers.

use openim_proto::constants::session;

/// `si_<a>_<b>` with the two user IDs sorted, so both sides name the same conversation.
pub fn single_conversation_id(a: &str, b: &str) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("si_{lo}_{hi}")
}

/// `sg_<groupID>`.
pub fn group_conversation_id(group_id: &str) -> String {
    format!("sg_{group_id}")
}

/// The conversation a message belongs to, from its session type and IDs.
pub fn conversation_id(session_type: i32, send_id: &str, recv_id: &str, group_id: &str) -> Option<String> {
    match session_type {
        session::SINGLE_CHAT | session::NOTIFICATION_CHAT => Some(single_conversation_id(send_id, recv_id)),
        session::READ_GROUP_CHAT | session::WRITE_GROUP_CHAT => Some(group_conversation_id(group_id)),
        _ => None,
    }
}

/// The users of a single-chat conversation ID, or the group of a group one.
pub enum ConversationTarget<'a> {
    Single(&'a str, &'a str),
    Group(&'a str),
}

/// Parses a conversation ID; user IDs with `_` in them are ambiguous in single chats, so the
/// caller passes the user it knows is a member to split at the right place.
pub fn parse_conversation_id<'a>(id: &'a str, member: &str) -> Option<ConversationTarget<'a>> {
    if let Some(group) = id.strip_prefix("sg_") {
        return (!group.is_empty()).then_some(ConversationTarget::Group(group));
    }
    let rest = id.strip_prefix("si_")?;
    if let Some(other) = rest.strip_prefix(member).and_then(|r| r.strip_prefix('_')) {
        return Some(ConversationTarget::Single(&rest[..member.len()], other));
    }
    if let Some(other) = rest.strip_suffix(member).and_then(|r| r.strip_suffix('_')) {
        return Some(ConversationTarget::Single(other, &rest[rest.len() - member.len()..]));
    }
    None
}

/// A new random ID in OpenIM's style (32 lowercase hex characters).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// OpenIM's hash of an ID list, used by the "full IDs" sync endpoints to tell a client its list is
/// current: the first 8 bytes (big-endian) of the MD5 of the list as JSON; 0 for an empty list.
pub fn id_hash(ids: &[String]) -> u64 {
    use md5::Digest as _;
    if ids.is_empty() {
        return 0;
    }
    let json = serde_json::to_vec(ids).unwrap_or_default();
    let sum = md5::Md5::digest(&json);
    u64::from_be_bytes(sum[..8].try_into().unwrap_or([0; 8]))
}

#[cfg(test)]
mod tests;
