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

/// Whether a conversation holds notifications (`n_…`) rather than chat messages.
pub fn is_notification(conversation_id: &str) -> bool {
    conversation_id.starts_with("n_")
}

/// The notification conversation that goes with a chat: `si_a_b` → `n_a_b`, `sg_g` → `n_g`.
pub fn notification_conversation_id(conversation_id: &str) -> Option<String> {
    let rest = conversation_id.strip_prefix("si_").or_else(|| conversation_id.strip_prefix("sg_"))?;
    Some(format!("n_{rest}"))
}

/// A user's own notification conversation, `n_<u>_<u>`.
pub fn self_notification_conversation_id(user_id: &str) -> String {
    format!("n_{user_id}_{user_id}")
}

/// The conversation a message goes to, as OpenIM decides it: like [`conversation_id`], except
/// that a message whose options set `isNotNotification` to false is a notification and goes to
/// the `n_…` conversation of the chat.
pub fn conversation_id_of(m: &openim_proto::pb::sdkws::MsgData) -> Option<String> {
    let chat = conversation_id(m.session_type, &m.send_id, &m.recv_id, &m.group_id)?;
    if m.options.get("isNotNotification") == Some(&false) && m.session_type != session::NOTIFICATION_CHAT {
        return notification_conversation_id(&chat);
    }
    Some(chat)
}

/// The users of a single-chat conversation ID, or the group of a group one.
pub enum ConversationTarget<'a> {
    Single(&'a str, &'a str),
    Group(&'a str),
}

/// Parses a conversation ID; user IDs with `_` in them are ambiguous in single chats, so the
/// caller passes the user it knows is a member to split at the right place.
/// Notification conversations (`n_…`) parse as the chat they go with: a pair of users when
/// `member` is one of them, a group otherwise.
pub fn parse_conversation_id<'a>(id: &'a str, member: &str) -> Option<ConversationTarget<'a>> {
    if let Some(group) = id.strip_prefix("sg_") {
        return (!group.is_empty()).then_some(ConversationTarget::Group(group));
    }
    if let Some(rest) = id.strip_prefix("n_") {
        return split_pair(rest, member).or_else(|| (!rest.is_empty()).then_some(ConversationTarget::Group(rest)));
    }
    split_pair(id.strip_prefix("si_")?, member)
}

/// `<a>_<b>` split where `member` is `a` or `b`.
fn split_pair<'a>(rest: &'a str, member: &str) -> Option<ConversationTarget<'a>> {
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

/// A version number for a list that changes whenever the list does: its [`id_hash`] cut to
/// 53 bits. The official SDK keeps versions in a JavaScript store (sql.js in the browser), where
/// a larger integer loses precision and would never match again.
pub fn list_version(ids: &[String]) -> u64 {
    id_hash(ids) & ((1 << 53) - 1)
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
