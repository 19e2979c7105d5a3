//! Messages: storing, reading, marks and scans.

use std::collections::HashSet;

use super::prefix;
use openim_proto::pb::sdkws::MsgData;

use crate::*;

fn msg(seq: i64, client: &str, send_time: i64) -> MsgData {
    MsgData {
        seq,
        client_msg_id: client.to_owned(),
        server_msg_id: format!("s-{client}"),
        send_time,
        content: b"{}".to_vec(),
        ..Default::default()
    }
}

pub async fn messages(store: &dyn MessageStore) {
    let p = prefix();
    let conv = format!("si_{p}_a_b");
    let stored: Vec<StoredMsg> = (1..=10)
        .map(|s| StoredMsg { conversation_id: conv.clone(), msg: msg(s, &format!("{p}c{s}"), 1_000 + s) })
        .collect();
    assert_eq!(store.insert_messages(&stored[..6]).await.unwrap(), 6);
    let new = store.insert_messages(&stored[4..]).await.expect("a retried overlapping batch is accepted");
    assert_eq!(new, 4, "only seqs 7..=10 are new");
    // A seq already taken by another message is not stored, and the count says so.
    let taken_seq = StoredMsg { conversation_id: conv.clone(), msg: msg(3, &format!("{p}other"), 1_003) };
    assert_eq!(store.insert_messages(&[taken_seq]).await.unwrap(), 0);

    let by_seq = store.messages_by_seqs(&conv, &[3, 1, 42]).await.unwrap();
    assert_eq!(by_seq.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(by_seq[0], stored[0].msg, "messages round-trip unchanged");

    let range = store.messages_in_range(&conv, 2, 9, 3).await.unwrap();
    assert_eq!(range.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![7, 8, 9], "newest of the range, ascending");
    let all = store.messages_in_range(&conv, 1, 100, 100).await.unwrap();
    assert_eq!(all.len(), 10, "no duplicates after the overlapping retry");

    let latest = store.latest_messages(&[conv.clone(), format!("{p}-empty")]).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[&conv].seq, 10);

    // Found by clientMsgID and send time, as a replayed record carries them.
    let existing =
        store.existing_client_msg_ids(&conv, &[(format!("{p}c2"), 1_002), (format!("{p}nope"), 1_002)]).await.unwrap();
    assert_eq!(existing.keys().cloned().collect::<Vec<_>>(), vec![format!("{p}c2")]);
    assert_eq!(existing[&format!("{p}c2")].seq, 2);
    assert!(store.existing_client_msg_ids(&conv, &[]).await.unwrap().is_empty());

    let keys = vec![
        (conv.clone(), format!("{p}c3"), 1_003),
        (conv.clone(), format!("{p}zz"), 1_003),
        (format!("{p}-other"), format!("{p}c3"), 1_003),
        (conv.clone(), format!("{p}c4"), 1_003),
    ];
    let found = store.existing_client_msg_ids_many(&keys).await.unwrap();
    // c4 under another message's send time: not the message stored (SQLite, which finds by
    // time), or the same clientMsgID resent (MySQL and MongoDB, which find by clientMsgID).
    assert!(found.contains(&(conv.clone(), format!("{p}c3"))), "a stored key is found: {found:?}");
    assert!(
        found.iter().all(|k| *k == (conv.clone(), format!("{p}c3")) || *k == (conv.clone(), format!("{p}c4"))),
        "keys match on conversation and clientMsgID: {found:?}"
    );
    assert!(store.existing_client_msg_ids_many(&[]).await.unwrap().is_empty());

    let deleted = store.delete_messages_before(1_004).await.unwrap();
    assert!(deleted >= 3, "deleted {deleted}");
    let left = store.messages_in_range(&conv, 1, 100, 100).await.unwrap();
    assert_eq!(left.first().map(|m| m.seq), Some(4));
}

/// Stores with a unique (conversation, clientMsgID) index (MySQL, MongoDB): a client's resend,
/// which rpc-msg gave a new send time, is not stored twice and is found by its clientMsgID.
pub async fn resends_found_by_client_msg_id(store: &dyn MessageStore) {
    let p = prefix();
    let conv = format!("si_{p}_resend");
    let first = StoredMsg { conversation_id: conv.clone(), msg: msg(1, &format!("{p}r1"), 5_000) };
    assert_eq!(store.insert_messages(&[first]).await.unwrap(), 1);
    let resent = StoredMsg { conversation_id: conv.clone(), msg: msg(2, &format!("{p}r1"), 9_000) };
    assert_eq!(store.insert_messages(&[resent]).await.unwrap(), 0, "the same clientMsgID under another seq");
    let found = store.existing_client_msg_ids_many(&[(conv.clone(), format!("{p}r1"), 9_000)]).await.unwrap();
    assert_eq!(found, HashSet::from([(conv.clone(), format!("{p}r1"))]));
    let stored = store.existing_client_msg_ids(&conv, &[(format!("{p}r1"), 9_000)]).await.unwrap();
    assert_eq!(stored[&format!("{p}r1")].send_time, 5_000, "the first copy, as stored");
}

pub async fn message_marks(store: &dyn MessageStore) {
    let p = prefix();
    let conv = format!("sg_{p}marks");
    // Send times far from the retention test's, which runs on the same database.
    let stored: Vec<StoredMsg> = (1..=6)
        .map(|s| StoredMsg { conversation_id: conv.clone(), msg: msg(s, &format!("{p}m{s}"), 9_000_000 + s) })
        .collect();
    assert_eq!(store.insert_messages(&stored).await.unwrap(), 6);
    assert!(store.marks(&conv, 1, 6).await.unwrap().is_empty(), "new messages have no marks");

    let mark = RevokeMark { role: role::OWNER, user_id: format!("{p}owner"), nickname: "Owner".into(), time: 77 };
    assert!(store.revoke(&conv, 2, &mark).await.unwrap(), "the first revoke marks the message");
    let again = RevokeMark { user_id: format!("{p}admin"), time: 78, ..mark.clone() };
    assert!(!store.revoke(&conv, 2, &again).await.unwrap(), "a second revoke changes nothing");

    store.delete_for_user(&conv, &[3, 4, 99], &format!("{p}u1")).await.unwrap();
    store.delete_for_user(&conv, &[4], &format!("{p}u2")).await.unwrap();
    store.delete_for_user(&conv, &[4], &format!("{p}u1")).await.expect("deleting twice is accepted");

    let marks = store.marks(&conv, 1, 100).await.unwrap();
    assert_eq!(marks.keys().copied().collect::<std::collections::BTreeSet<_>>(), [2, 3, 4].into());
    assert_eq!(marks[&2], MsgMarks { revoke: Some(mark.clone()), deleted_for: vec![] });
    assert_eq!(marks[&3].deleted_for, vec![format!("{p}u1")]);
    assert_eq!(marks[&4].deleted_for, vec![format!("{p}u1"), format!("{p}u2")], "one entry per user");
    assert!(store.marks(&conv, 5, 6).await.unwrap().is_empty(), "the range bounds the answer");
    assert_eq!(
        store.messages_by_seqs(&conv, &[2]).await.unwrap()[0],
        stored[1].msg,
        "a revoked message is kept as sent"
    );

    assert_eq!(store.delete_physically(&conv, &[2, 4, 99]).await.unwrap(), 2);
    let left: Vec<i64> = store.messages_in_range(&conv, 1, 100, 100).await.unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(left, vec![1, 3, 5, 6]);
    assert!(store.messages_by_seqs(&conv, &[2, 4]).await.unwrap().is_empty(), "not served from any cache");
    let marks = store.marks(&conv, 1, 100).await.unwrap();
    assert_eq!(marks.keys().copied().collect::<Vec<_>>(), vec![3], "marks go with their message");
    store.delete_for_user(&conv, &[2], &format!("{p}u1")).await.unwrap();
    assert!(!store.marks(&conv, 2, 2).await.unwrap().contains_key(&2), "no mark for a deleted slot");
    assert_eq!(store.delete_physically(&conv, &[]).await.unwrap(), 0);
}

/// Scanning chat messages by send time, page by page (run on its own send-time window, so a
/// shared database's other messages stay out of it).
pub async fn message_scan(store: &dyn MessageStore) {
    let p = prefix();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let base = 5_000_000_000_000 + (nanos % 1_000_000_000) as i64 * 1_000;
    let (single, group, note) = (format!("si_{p}_a_b"), format!("sg_{p}g"), format!("n_{p}_a_b"));
    let at = |conv: &str, seq: i64, t: i64| StoredMsg {
        conversation_id: conv.to_owned(),
        msg: msg(seq, &format!("{conv}-{seq}"), base + t),
    };
    store
        .insert_messages(&[
            at(&single, 1, 1),
            at(&single, 2, 2),
            at(&single, 3, 2),
            at(&group, 1, 2),
            at(&group, 2, 5),
            at(&note, 1, 3),
            at(&single, 4, 200),
        ])
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<ScanPosition> = None;
    loop {
        let page = store.scan_chat_messages(base, base + 100, after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seen.extend(page.into_iter().map(|(pos, m)| {
            assert_eq!((pos.seq, pos.send_time), (m.seq, m.send_time));
            (pos.conversation_id, m.seq)
        }));
    }
    let expect = |c: &str, s: i64| (c.to_owned(), s);
    assert_eq!(
        seen,
        vec![expect(&single, 1), expect(&group, 1), expect(&single, 2), expect(&single, 3), expect(&group, 2)],
        "in (send time, conversation, seq) order; notifications and messages outside the window left out"
    );
    let later = store.scan_chat_messages(base + 2, base + 3, None, 10).await.unwrap();
    assert_eq!(later.len(), 3, "from is inclusive, to exclusive");
}
