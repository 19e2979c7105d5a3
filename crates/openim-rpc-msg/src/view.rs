//! How stored messages read for one user: revoked ones as OpenIM's revoke notice, ones the user
//! deleted as empty and hidden, and seqs that hold nothing any more as hidden placeholders.

use std::collections::HashMap;

use openim_proto::constants::{content, status};
use openim_proto::pb::sdkws::{MessageRevokedContent, MsgData};
use openim_storage::MsgMarks;

/// `found` (ascending seqs of one conversation, as read) as `viewer` sees them.
///
/// Seqs of `wanted` that hold no message come back as `{seq, status: 4}` placeholders, as
/// OpenIM answers them, but only below the highest seq found: above it a seq may belong to a
/// message that is still being stored, and a placeholder would hide it from the client.
pub fn present(
    found: Vec<MsgData>,
    marks: &HashMap<i64, MsgMarks>,
    viewer: &str,
    wanted: impl IntoIterator<Item = i64>,
) -> Vec<MsgData> {
    let Some(highest) = found.last().map(|m| m.seq) else { return Vec::new() };
    let mut by_seq: HashMap<i64, MsgData> = found.into_iter().map(|m| (m.seq, m)).collect();
    let mut out = Vec::with_capacity(by_seq.len());
    for seq in wanted.into_iter().filter(|s| *s <= highest) {
        match by_seq.remove(&seq) {
            Some(m) => out.push(match marks.get(&seq) {
                Some(marks) => apply(m, marks, viewer),
                None => m,
            }),
            None => out.push(MsgData { seq, status: status::DELETED, ..Default::default() }),
        }
    }
    out
}

/// One message with its marks applied for `viewer`: a delete first, then a revoke.
pub fn apply(mut m: MsgData, marks: &MsgMarks, viewer: &str) -> MsgData {
    if marks.deleted_for.iter().any(|u| u == viewer) {
        m.content = Vec::new();
        m.status = status::DELETED;
    }
    if let Some(r) = &marks.revoke {
        let detail = MessageRevokedContent {
            revoker_id: r.user_id.clone(),
            revoker_role: r.role,
            client_msg_id: m.client_msg_id.clone(),
            revoker_nickname: r.nickname.clone(),
            revoke_time: r.time,
            source_message_send_time: m.send_time,
            source_message_send_id: m.send_id.clone(),
            source_message_sender_nickname: m.sender_nickname.clone(),
            session_type: m.session_type,
            seq: m.seq,
            ex: m.ex.clone(),
        };
        m.content_type = content::REVOKE;
        m.content = notification_content(&detail);
    }
    m
}

/// A notification's `content`: `{"detail": "<JSON of the tips>"}`.
pub use openim_common::notify::content as notification_content;

#[cfg(test)]
mod tests {
    use openim_storage::RevokeMark;

    use super::*;

    fn msg(seq: i64) -> MsgData {
        MsgData {
            seq,
            client_msg_id: format!("c{seq}"),
            send_id: "alice".into(),
            sender_nickname: "Alice".into(),
            session_type: 3,
            content_type: content::TEXT,
            content: br#"{"content":"hi"}"#.to_vec(),
            send_time: 1_000 + seq,
            status: status::SEND_SUCCESS,
            ..Default::default()
        }
    }

    fn revoke() -> RevokeMark {
        RevokeMark { role: 100, user_id: "owner".into(), nickname: "Owner".into(), time: 5_000 }
    }

    #[test]
    fn marks_apply_per_reader() {
        let marks = HashMap::from([
            (2, MsgMarks { revoke: Some(revoke()), deleted_for: vec![] }),
            (3, MsgMarks { revoke: None, deleted_for: vec!["bob".into()] }),
            (4, MsgMarks { revoke: Some(revoke()), deleted_for: vec!["bob".into()] }),
        ]);
        let found = vec![msg(1), msg(2), msg(3), msg(4)];
        let bob = present(found.clone(), &marks, "bob", 1..=4);
        let carol = present(found, &marks, "carol", 1..=4);

        assert_eq!(bob[0], msg(1), "unmarked messages are untouched");
        assert_eq!(bob[1].content_type, content::REVOKE);
        assert_eq!(bob[1].status, status::SEND_SUCCESS);
        let elem: serde_json::Value = serde_json::from_slice(&bob[1].content).unwrap();
        let detail: serde_json::Value = serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail["revokerID"], "owner");
        assert_eq!(detail["revokerRole"], 100);
        assert_eq!(detail["revokerNickname"], "Owner");
        assert_eq!(detail["revokeTime"], 5_000);
        assert_eq!(detail["clientMsgID"], "c2");
        assert_eq!(detail["sourceMessageSendID"], "alice");
        assert_eq!(detail["sourceMessageSenderNickname"], "Alice");
        assert_eq!(detail["sourceMessageSendTime"], 1_002);
        assert_eq!(detail["sessionType"], 3);
        assert_eq!(detail["seq"], 2);
        assert_eq!(detail["ex"], "");

        assert_eq!((bob[2].status, bob[2].content.as_slice()), (status::DELETED, &b""[..]), "deleted for bob");
        assert_eq!(bob[2].client_msg_id, "c3", "the rest of a deleted message is kept");
        assert_eq!(carol[2], msg(3), "but not for carol");
        assert_eq!((bob[3].content_type, bob[3].status), (content::REVOKE, status::DELETED), "delete, then revoke");
        assert_eq!((carol[3].content_type, carol[3].status), (content::REVOKE, status::SEND_SUCCESS));
    }

    #[test]
    fn empty_slots_below_the_newest_found_are_placeholders() {
        let out = present(vec![msg(2), msg(5)], &HashMap::new(), "bob", 1..=8);
        let seqs: Vec<(i64, i32)> = out.iter().map(|m| (m.seq, m.status)).collect();
        assert_eq!(seqs, vec![(1, 4), (2, 2), (3, 4), (4, 4), (5, 2)], "nothing above seq 5, which may be in flight");
        assert_eq!(out[0], MsgData { seq: 1, status: status::DELETED, ..Default::default() });
        assert!(present(Vec::new(), &HashMap::new(), "bob", 1..=8).is_empty());
    }
}
