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
#[derive(Debug, PartialEq, Eq)]
pub enum ConversationTarget<'a> {
    Single(&'a str, &'a str),
    Group(&'a str),
}

/// Longest user or group ID (OpenIM's columns are `varchar(64)`).
pub const MAX_ID_LEN: usize = 64;

/// Checks a user or group ID given at registration or creation: 1–64 characters, ASCII letters,
/// digits and `-.@+=~`. No `_`: conversation IDs join IDs with it (`si_<a>_<b>`, `n_<a>_<b>`,
/// `n_<group>`), so an ID holding one could make two conversations share an ID (`si_a_b_c` is
/// both `a` with `b_c` and `a_b` with `c`; a group `alice_bob` would own `n_alice_bob`).
/// `field` names the request field in the error.
pub fn check_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(format!("{field} {id:?} must be 1-{MAX_ID_LEN} characters"));
    }
    match id.chars().find(|c| !(c.is_ascii_alphanumeric() || "-.@+=~".contains(*c))) {
        Some(c) => Err(format!("{field} {id:?} holds {c:?}: use ASCII letters, digits and -.@+=~ only")),
        None => Ok(()),
    }
}

/// Parses a conversation ID into its users (when `member` is one of them) or its group.
/// Notification conversations (`n_…`) parse as the chat they go with: `n_<a>_<b>` a pair of
/// users, `n_<g>` a group. Every ID has at most one reading: a part holding `_` (which
/// [`check_id`] refuses at registration) makes the whole ID unparseable.
pub fn parse_conversation_id<'a>(id: &'a str, member: &str) -> Option<ConversationTarget<'a>> {
    if let Some(group) = id.strip_prefix("sg_") {
        return is_part(group).then_some(ConversationTarget::Group(group));
    }
    if let Some(rest) = id.strip_prefix("n_") {
        return match rest.split_once('_') {
            None => is_part(rest).then_some(ConversationTarget::Group(rest)),
            Some((a, b)) => pair(a, b, member),
        };
    }
    let (a, b) = id.strip_prefix("si_")?.split_once('_')?;
    pair(a, b, member)
}

fn is_part(s: &str) -> bool {
    !s.is_empty() && !s.contains('_')
}

/// Users `a` and `b` when both are well-formed and `member` is one of them.
fn pair<'a>(a: &'a str, b: &'a str, member: &str) -> Option<ConversationTarget<'a>> {
    (is_part(a) && is_part(b) && (member == a || member == b)).then_some(ConversationTarget::Single(a, b))
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
    if ids.is_empty() {
        return 0;
    }
    let mut json = String::from("[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        go_json_string(&mut json, id);
    }
    json.push(']');
    md5_prefix(json.as_bytes())
}

/// The first 8 bytes of the MD5 of `data`, big-endian: OpenIM's hashes of lists.
pub fn md5_prefix(data: &[u8]) -> u64 {
    use md5::Digest as _;
    let sum = md5::Md5::digest(data);
    u64::from_be_bytes(sum[..8].try_into().unwrap_or([0; 8]))
}

/// Appends `s` as Go's `encoding/json` writes a string (quoted; `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u00XX`/`\u20XX`), so that hashes of JSON match the Go server's.
pub fn go_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The first of `wanted` that is not among `found`, in time linear in both (a set of `found`
/// first): request lists run to thousands, and a nested search over two of them would not.
pub fn first_missing<'w, 'f, W: AsRef<str>>(
    wanted: &'w [W],
    found: impl IntoIterator<Item = &'f str>,
) -> Option<&'w W> {
    let found: std::collections::HashSet<&str> = found.into_iter().collect();
    wanted.iter().find(|w| !found.contains(w.as_ref()))
}

#[cfg(test)]
mod tests;
