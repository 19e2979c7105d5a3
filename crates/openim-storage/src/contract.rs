//! Contract tests every storage adapter must pass. Each function exercises one trait through its
//! public behaviour and panics with a message on the first violation; adapters' test suites call
//! them (the embedded ones in this crate's `tests/`, production ones against real servers).
//! IDs carry a random prefix so runs can share a database.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use openim_proto::pb::sdkws::MsgData;

use crate::*;

fn prefix() -> String {
    format!("t{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

pub async fn users(store: &dyn UserStore) {
    let p = prefix();
    let user = |n: u32| User {
        user_id: format!("{p}-u{n}"),
        nickname: format!("nick{n}"),
        create_time: 1000 + i64::from(n),
        ..Default::default()
    };
    store.create_users(&[user(1), user(2)]).await.expect("create two users");
    let err = store.create_users(&[user(3), user(1)]).await.expect_err("duplicate user must fail");
    assert!(matches!(err, StoreError::Duplicate(_)), "duplicate is reported as Duplicate: {err:?}");
    let got = store.get_users(&[user(3).user_id]).await.unwrap();
    assert!(got.is_empty(), "a failed batch creates nobody: {got:?}");

    let mut got = store.get_users(&[user(1).user_id, user(2).user_id, format!("{p}-none")]).await.unwrap();
    got.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(got, vec![user(1), user(2)]);

    store
        .update_user(&UserPatch { user_id: user(1).user_id, nickname: Some("renamed".into()), ..Default::default() })
        .await
        .unwrap();
    let got = store.get_users(&[user(1).user_id]).await.unwrap();
    assert_eq!(got[0].nickname, "renamed");
    assert_eq!(got[0].face_url, "", "unset patch fields stay unchanged");
    let err = store.update_user(&UserPatch { user_id: format!("{p}-none"), ..Default::default() }).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let (_, total) = store.page_users(0, 1).await.unwrap();
    assert!(total >= 2);

    // IDs are case-sensitive: `x` and `X` are two users.
    let lower = User { user_id: format!("{p}-case-x"), create_time: 1, ..Default::default() };
    let upper = User { user_id: format!("{p}-CASE-X"), create_time: 1, ..Default::default() };
    store.create_users(&[lower.clone(), upper.clone()]).await.expect("IDs differing in case are distinct");
    assert_eq!(store.get_users(std::slice::from_ref(&lower.user_id)).await.unwrap(), vec![lower]);
}

pub async fn friends(store: &dyn FriendStore) {
    let p = prefix();
    let f = |a: &str, b: &str| Friend {
        owner_user_id: format!("{p}{a}"),
        friend_user_id: format!("{p}{b}"),
        create_time: 5,
        ..Default::default()
    };
    store.add_friend(&f("a", "b")).await.unwrap();
    store.add_friend(&f("a", "c")).await.unwrap();
    store.add_friend(&f("a", "b")).await.expect("adding twice is not an error");
    let all = store.friends(&format!("{p}a"), None).await.unwrap();
    assert_eq!(all.len(), 2);
    let some = store.friends(&format!("{p}a"), Some(&[format!("{p}c"), format!("{p}z")])).await.unwrap();
    assert_eq!(some, vec![f("a", "c")]);
    assert!(store.friends(&format!("{p}b"), None).await.unwrap().is_empty(), "friendship is one-directional");
    assert_eq!(store.owners_of(&format!("{p}b")).await.unwrap(), vec![format!("{p}a")]);
    assert!(store.owners_of(&format!("{p}a")).await.unwrap().is_empty());
    store.remove_friend(&format!("{p}a"), &format!("{p}b")).await.unwrap();
    assert_eq!(store.friends(&format!("{p}a"), None).await.unwrap(), vec![f("a", "c")]);

    // A patch sets only the fields it has, on the owner's entries that exist.
    let pin = FriendPatch { is_pinned: Some(true), remark: Some("Cee".into()), ..Default::default() };
    let found = store.update_friends(&format!("{p}a"), &[format!("{p}c"), format!("{p}z")], &pin).await.unwrap();
    assert_eq!(found, 1, "only existing entries count");
    let found = store.update_friends(&format!("{p}a"), &[format!("{p}c")], &pin).await.unwrap();
    assert_eq!(found, 1, "an unchanged entry is still found");
    let ex = FriendPatch { ex: Some("x".into()), ..Default::default() };
    store.update_friends(&format!("{p}a"), &[format!("{p}c")], &ex).await.unwrap();
    let got = store.friends(&format!("{p}a"), None).await.unwrap();
    assert_eq!(got, vec![Friend { remark: "Cee".into(), is_pinned: true, ex: "x".into(), ..f("a", "c") }]);
}

pub async fn friend_requests(store: &dyn FriendRequestStore, friends: &dyn FriendStore) {
    let p = prefix();
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let apply = |from: &str, to: &str, t: i64| FriendRequest {
        from_user_id: from.to_owned(),
        to_user_id: to.to_owned(),
        req_msg: format!("hi from {from}"),
        create_time: t,
        ..Default::default()
    };
    store.put_friend_request(&apply(&a, &b, 10)).await.unwrap();
    store.put_friend_request(&apply(&c, &b, 20)).await.unwrap();
    assert_eq!(store.friend_request(&a, &b).await.unwrap(), Some(apply(&a, &b, 10)));
    assert_eq!(store.friend_request(&b, &a).await.unwrap(), None, "applications are directed");

    let (got, total) = store.friend_requests(&b, true, &[], 0, 10).await.unwrap();
    assert_eq!((got, total), (vec![apply(&c, &b, 20), apply(&a, &b, 10)], 2), "received, newest first");
    let (got, total) = store.friend_requests(&b, true, &[], 1, 1).await.unwrap();
    assert_eq!((got, total), (vec![apply(&a, &b, 10)], 2), "paged");
    let (got, _) = store.friend_requests(&a, false, &[], 0, 10).await.unwrap();
    assert_eq!(got, vec![apply(&a, &b, 10)], "sent");
    assert_eq!(store.unhandled_friend_requests(&b, 0).await.unwrap(), 2);
    assert_eq!(store.unhandled_friend_requests(&b, 15).await.unwrap(), 1, "only those after `since`");

    // Accepting marks the application and adds both friend entries at once.
    let handled = FriendRequest {
        handle_result: handle_result::ACCEPTED,
        handler_user_id: b.clone(),
        handle_msg: "welcome".into(),
        handle_time: 30,
        ..apply(&a, &b, 10)
    };
    let pair = |x: &str, y: &str| Friend {
        owner_user_id: x.to_owned(),
        friend_user_id: y.to_owned(),
        create_time: 30,
        ..Default::default()
    };
    store.put_friend_request(&apply(&b, &a, 25)).await.unwrap();
    store.handle_friend_request(&handled, &[pair(&a, &b), pair(&b, &a)]).await.unwrap();
    assert_eq!(store.friend_request(&a, &b).await.unwrap(), Some(handled.clone()));
    let reverse = store.friend_request(&b, &a).await.unwrap().unwrap();
    assert_eq!(
        (reverse.handle_result, reverse.handler_user_id.as_str(), reverse.handle_time),
        (handle_result::ACCEPTED, b.as_str(), 30),
        "accepting settles the reverse application too"
    );
    assert_eq!(friends.friends(&a, None).await.unwrap(), vec![pair(&a, &b)]);
    assert_eq!(friends.friends(&b, None).await.unwrap(), vec![pair(&b, &a)]);
    let again = store.handle_friend_request(&handled, &[pair(&a, &c)]).await.unwrap_err();
    assert!(matches!(again, StoreError::NotFound(_)), "a handled application cannot be handled again: {again:?}");
    assert!(friends.friends(&a, Some(std::slice::from_ref(&c))).await.unwrap().is_empty(), "nothing added");
    let none = FriendRequest { from_user_id: format!("{p}nobody"), ..handled.clone() };
    assert!(matches!(store.handle_friend_request(&none, &[]).await, Err(StoreError::NotFound(_))));

    let (pending, total) = store.friend_requests(&b, true, &[handle_result::PENDING], 0, 10).await.unwrap();
    assert_eq!((pending, total), (vec![apply(&c, &b, 20)], 1), "filtered by handle result");
    assert_eq!(store.unhandled_friend_requests(&b, 0).await.unwrap(), 1);

    // A new application replaces the handled one, pending again.
    store.put_friend_request(&apply(&a, &b, 40)).await.unwrap();
    assert_eq!(store.friend_request(&a, &b).await.unwrap(), Some(apply(&a, &b, 40)));
    assert_eq!(store.friend_requests(&b, true, &[], 0, 10).await.unwrap().1, 2, "still one per pair");
}

pub async fn blacks(store: &dyn BlackStore) {
    let p = prefix();
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let black = |o: &str, x: &str, t: i64| Black {
        owner_user_id: o.to_owned(),
        block_user_id: x.to_owned(),
        create_time: t,
        ..Default::default()
    };
    store.add_blacks(&[black(&a, &b, 1), black(&a, &c, 2)]).await.unwrap();
    store.add_blacks(&[black(&a, &b, 9)]).await.expect("adding twice is not an error");
    assert_eq!(
        store.blacks(&a, None).await.unwrap(),
        vec![black(&a, &b, 1), black(&a, &c, 2)],
        "the first entry stays"
    );
    assert_eq!(store.blacks(&a, Some(std::slice::from_ref(&c))).await.unwrap(), vec![black(&a, &c, 2)]);
    assert!(store.blacks(&a, Some(&[])).await.unwrap().is_empty());
    assert!(store.blacks(&b, None).await.unwrap().is_empty(), "blacklists are one-directional");
    assert!(store.remove_black(&a, &b).await.unwrap());
    assert!(!store.remove_black(&a, &b).await.unwrap(), "removing twice says it was not there");
    assert_eq!(store.blacks(&a, None).await.unwrap(), vec![black(&a, &c, 2)]);
}

pub async fn groups(store: &dyn GroupStore) {
    let p = prefix();
    let gid = format!("{p}-g");
    let member = |u: &str, t: i64| GroupMember {
        group_id: gid.clone(),
        user_id: format!("{p}{u}"),
        role_level: role::ORDINARY,
        join_time: t,
        ..Default::default()
    };
    let group = Group {
        group_id: gid.clone(),
        group_name: "g".into(),
        owner_user_id: format!("{p}a"),
        create_time: 1,
        group_type: 2,
        ..Default::default()
    };
    store.create_group(&group, &[member("a", 1), member("b", 2)]).await.unwrap();
    let err = store.create_group(&group, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(store.get_groups(&[gid.clone(), format!("{p}-none")]).await.unwrap(), vec![group]);

    let added = store.add_members(&[member("b", 3), member("c", 4)]).await.unwrap();
    assert_eq!(added, 1, "an existing member is skipped");
    let (page, total) = store.members(&gid, 1, 1).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(page, vec![member("b", 2)], "ordered by join time");
    assert_eq!(store.member_ids(&gid).await.unwrap(), vec![format!("{p}a"), format!("{p}b"), format!("{p}c")]);
    assert_eq!(store.get_members(&gid, &[format!("{p}c"), format!("{p}x")]).await.unwrap(), vec![member("c", 4)]);
    assert_eq!(store.joined_group_ids(&format!("{p}c")).await.unwrap(), vec![gid]);
}

pub async fn conversations(store: &dyn ConversationStore) {
    let p = prefix();
    let owner = format!("{p}o");
    let conv = |id: &str, t: i64| Conversation {
        owner_user_id: owner.clone(),
        conversation_id: format!("{p}{id}"),
        conversation_type: 1,
        create_time: t,
        ..Default::default()
    };
    store.ensure_conversations(&[conv("c1", 1), conv("c2", 2)]).await.unwrap();
    let mut changed = conv("c1", 1);
    changed.is_pinned = true;
    store.ensure_conversations(&[changed]).await.unwrap();
    let all = store.conversations(&owner, None).await.unwrap();
    assert_eq!(all, vec![conv("c1", 1), conv("c2", 2)], "existing conversations keep their settings");
    let some = store.conversations(&owner, Some(&[format!("{p}c2")])).await.unwrap();
    assert_eq!(some, vec![conv("c2", 2)]);
    assert!(store.conversations(&owner, Some(&[])).await.unwrap().is_empty());

    store.set_min_seqs(&owner, &[(format!("{p}c2"), 42), (format!("{p}none"), 7)]).await.unwrap();
    store.set_min_seqs(&format!("{p}other"), &[(format!("{p}c1"), 9)]).await.unwrap();
    let all = store.conversations(&owner, None).await.unwrap();
    assert_eq!(all.iter().map(|c| c.min_seq).collect::<Vec<_>>(), vec![0, 42], "only the owner's own row changes");
    assert_eq!(all.len(), 2, "no conversation is created by setting a min seq");

    // Settings: set fields change, others stay; owners without the conversation get it.
    let newcomer = format!("{p}n");
    let base = Conversation {
        conversation_id: format!("{p}c1"),
        conversation_type: 1,
        user_id: "peer".into(),
        create_time: 5,
        ..Default::default()
    };
    let patch = ConversationPatch { is_pinned: Some(true), recv_msg_opt: Some(2), ..Default::default() };
    store.set_conversations(&[owner.clone(), newcomer.clone()], &base, &patch).await.unwrap();
    let mine = store.conversations(&owner, Some(&[format!("{p}c1")])).await.unwrap().remove(0);
    assert_eq!(
        (mine.is_pinned, mine.recv_msg_opt, mine.create_time, mine.user_id.as_str()),
        (true, 2, 1, ""),
        "set fields only"
    );
    assert!(!patch.changes(&mine), "applied");
    let theirs = store.conversations(&newcomer, None).await.unwrap();
    assert_eq!(theirs.len(), 1, "created for an owner who did not have it");
    assert_eq!(
        (theirs[0].is_pinned, theirs[0].user_id.as_str(), theirs[0].msg_destruct_time),
        (true, "peer", DEFAULT_MSG_DESTRUCT_SECS)
    );
    let unpin = ConversationPatch {
        is_pinned: Some(false),
        ex: Some("x".into()),
        is_msg_destruct: Some(true),
        msg_destruct_time: Some(60),
        ..Default::default()
    };
    assert!(unpin.changes(&mine));
    store.set_conversations(std::slice::from_ref(&owner), &base, &unpin).await.unwrap();
    let mine = store.conversations(&owner, Some(&[format!("{p}c1")])).await.unwrap().remove(0);
    assert_eq!(
        (mine.is_pinned, mine.recv_msg_opt, mine.ex.as_str(), mine.is_msg_destruct, mine.msg_destruct_time),
        (false, 2, "x", true, 60)
    );

    // Offline push goes to owners who receive normally, or have no entry yet.
    let stranger = format!("{p}s");
    let receiving =
        store.receiving_owners(&format!("{p}c1"), &[owner.clone(), newcomer.clone(), stranger.clone()]).await.unwrap();
    assert_eq!(receiving, vec![stranger], "recvMsgOpt 2 (no notify) gets no offline push");
}

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
    // A seq already taken by another message, and a clientMsgID already stored under another
    // seq: neither is stored, and the count says so.
    let taken_seq = StoredMsg { conversation_id: conv.clone(), msg: msg(3, &format!("{p}other"), 1_003) };
    let taken_id = StoredMsg { conversation_id: conv.clone(), msg: msg(11, &format!("{p}c1"), 1_011) };
    assert_eq!(store.insert_messages(&[taken_seq, taken_id]).await.unwrap(), 0);

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

    let existing = store.existing_client_msg_ids(&conv, &[format!("{p}c2"), format!("{p}nope")]).await.unwrap();
    assert_eq!(existing.keys().cloned().collect::<Vec<_>>(), vec![format!("{p}c2")]);
    assert_eq!(existing[&format!("{p}c2")].seq, 2);

    let keys = vec![
        (conv.clone(), format!("{p}c3")),
        (conv.clone(), format!("{p}zz")),
        (format!("{p}-other"), format!("{p}c3")),
    ];
    let found = store.existing_client_msg_ids_many(&keys).await.unwrap();
    assert_eq!(found, HashSet::from([(conv.clone(), format!("{p}c3"))]), "pairs match on both parts");
    assert!(store.existing_client_msg_ids_many(&[]).await.unwrap().is_empty());

    let deleted = store.delete_messages_before(1_004).await.unwrap();
    assert!(deleted >= 3, "deleted {deleted}");
    let left = store.messages_in_range(&conv, 1, 100, 100).await.unwrap();
    assert_eq!(left.first().map(|m| m.seq), Some(4));
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

pub async fn seqs(store: Arc<dyn SeqStore>) {
    let p = prefix();
    let conv = format!("sg_{p}");
    assert_eq!(store.allocate_seqs(&conv, 1).await.unwrap(), 1, "seqs start at 1");
    assert_eq!(store.allocate_seqs(&conv, 5).await.unwrap(), 2);
    assert_eq!(store.allocate_seqs(&conv, 1).await.unwrap(), 7);
    assert!(store.allocate_seqs(&conv, 0).await.is_err(), "zero seqs is a caller bug");
    let other = format!("sg_{p}_other");
    let firsts = store.allocate_seqs_many(&[(other.clone(), 2), (conv.clone(), 0)]).await;
    assert!(firsts.is_err(), "a zero count fails the whole call");
    let firsts = store.allocate_seqs_many(&[(other.clone(), 2), (other.clone(), 3)]).await.unwrap();
    assert_eq!(firsts, vec![1, 3], "requests are served in order");
    assert_eq!(store.max_seqs(std::slice::from_ref(&other)).await.unwrap()[&other], 5);

    // Concurrent allocators get disjoint, gap-free ranges.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let conv = conv.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..20 {
                    let first = store.allocate_seqs(&conv, 3).await.unwrap();
                    got.extend(first..first + 3);
                }
                got
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in tasks {
        for s in t.await.unwrap() {
            assert!(all.insert(s), "seq {s} handed out twice");
        }
    }
    assert_eq!(all.len(), 16 * 20 * 3);
    assert_eq!(*all.iter().min().unwrap(), 8);
    assert_eq!(*all.iter().max().unwrap(), 7 + 16 * 20 * 3);

    let maxes = store.max_seqs(&[conv.clone(), format!("{p}-none")]).await.unwrap();
    assert_eq!(maxes[&conv], 7 + 16 * 20 * 3);
    assert_eq!(maxes[&format!("{p}-none")], 0);

    store.set_read_seq("u", &conv, 5).await.unwrap();
    store.set_read_seq("u", &conv, 3).await.unwrap();
    let read = store.read_seqs("u", std::slice::from_ref(&conv)).await.unwrap();
    assert_eq!(read[&conv], 5, "read seqs never go down");
}

pub async fn tokens(store: &dyn TokenStore) {
    let p = prefix();
    let user = format!("{p}u");
    let far = 4_000_000_000;
    store.add_token(&user, 1, "t1", far).await.unwrap();
    store.add_token(&user, 1, "t2", far).await.unwrap();
    store.add_token(&user, 2, "t3", far).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Normal));
    assert_eq!(store.token_state(&user, 1, "nope").await.unwrap(), None);
    assert_eq!(store.token_state(&user, 2, "t1").await.unwrap(), None, "tokens are per platform");

    let kicked = store.set_platform_tokens(&user, 1, TokenState::Kicked, Some("t2")).await.unwrap();
    assert_eq!(kicked, 1);
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Kicked));
    assert_eq!(store.token_state(&user, 1, "t2").await.unwrap(), Some(TokenState::Normal));
    assert_eq!(store.token_state(&user, 2, "t3").await.unwrap(), Some(TokenState::Normal));

    // A login drops the platform's expired tokens; live ones, kicked or not, stay.
    let past = crate::sql::unix_now() - 10;
    store.add_token(&user, 1, "old", past).await.unwrap();
    store.add_token(&user, 2, "old2", past).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "old").await.unwrap(), Some(TokenState::Normal), "not pruned yet");
    store.add_token(&user, 1, "t4", far).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "old").await.unwrap(), None, "pruned by the next login");
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Kicked));
    assert_eq!(store.token_state(&user, 2, "old2").await.unwrap(), Some(TokenState::Normal), "other platforms wait");
}

pub async fn online(store: &dyn OnlineStore) {
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    store.set_online(&a, 1, "gw1", true).await.unwrap();
    store.set_online(&a, 1, "gw1", true).await.unwrap();
    store.set_online(&a, 5, "gw2", true).await.unwrap();
    let got = store.online(&[a.clone(), b.clone()]).await.unwrap();
    let mut places = got[&a].clone();
    places.sort();
    assert_eq!(places, vec![(1, "gw1".to_owned()), (5, "gw2".to_owned())]);
    assert!(!got.contains_key(&b));

    store.set_online(&a, 1, "gw1", false).await.unwrap();
    assert_eq!(store.online(std::slice::from_ref(&a)).await.unwrap()[&a].len(), 2, "one of two connections left");
    store.set_online(&a, 1, "gw1", false).await.unwrap();
    assert_eq!(store.online(std::slice::from_ref(&a)).await.unwrap()[&a], vec![(5, "gw2".to_owned())]);
    store.clear_gateway("gw2").await.unwrap();
    assert!(store.online(&[a]).await.unwrap().is_empty());
}

pub async fn bus(bus: &dyn Bus) {
    let p = prefix();
    let topic = format!("{p}-topic");
    let rec = |k: &str, v: u32| BusMessage { key: k.to_owned(), payload: Bytes::from(v.to_be_bytes().to_vec()) };
    // Records published before the consumer joins are not lost.
    bus.publish(&topic, vec![rec("a", 0)]).await.unwrap();
    let mut sub = bus.subscribe(&topic, "g1").await.unwrap();
    bus.publish(&topic, (1..100).map(|i| rec(if i % 2 == 0 { "a" } else { "b" }, i)).collect()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 100 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next_batch(30))
            .await
            .expect("records arrive")
            .unwrap()
            .expect("bus open");
        assert!(!batch.is_empty() && batch.len() <= 30, "batch of {}", batch.len());
        seen.extend(batch);
        sub.commit().await.unwrap();
    }
    for key in ["a", "b"] {
        let order: Vec<u32> = seen
            .iter()
            .filter(|r| r.key == key)
            .map(|r| u32::from_be_bytes(r.payload[..4].try_into().unwrap()))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key {key} keeps publish order: {order:?}");
    }
    assert_eq!(seen.len(), 100);
}

pub async fn dedup(store: &dyn DedupStore) {
    let p = prefix();
    let ttl = std::time::Duration::from_secs(60);
    let keys = vec![format!("{p}a"), format!("{p}b")];
    assert_eq!(store.first_time(&keys, ttl).await.unwrap(), vec![true, true]);
    let again = vec![format!("{p}b"), format!("{p}c")];
    assert_eq!(store.first_time(&again, ttl).await.unwrap(), vec![false, true], "a key is new once");
    assert!(store.first_time(&[], ttl).await.unwrap().is_empty());
    store.forget(std::slice::from_ref(&keys[0])).await.unwrap();
    assert_eq!(store.first_time(&keys, ttl).await.unwrap(), vec![true, false], "a forgotten key is new again");
    assert!(store.marked(&keys[1]).await.unwrap());
    assert!(!store.marked(&format!("{p}none")).await.unwrap());
    assert!(!store.first_time(std::slice::from_ref(&keys[1]), ttl).await.unwrap()[0], "asking does not unmark");
}

pub async fn user_commands(store: &dyn UserCommandStore) {
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    let cmd = |u: &str, t: i32, id: &str, v: &str, time: i64| UserCommand {
        user_id: u.to_owned(),
        command_type: t,
        uuid: id.to_owned(),
        value: v.to_owned(),
        ex: String::new(),
        create_time: time,
    };
    assert!(store.put_user_command(&cmd(&a, 1, "x", "first", 10)).await.unwrap());
    assert!(store.put_user_command(&cmd(&a, 1, "y", "second", 11)).await.unwrap());
    assert!(store.put_user_command(&cmd(&a, 2, "x", "other type", 12)).await.unwrap());
    assert!(store.put_user_command(&cmd(&b, 1, "x", "b's", 13)).await.unwrap());
    assert!(!store.put_user_command(&cmd(&a, 1, "x", "replaced", 99)).await.unwrap(), "same key is not new");
    assert_eq!(
        store.user_commands(&a, Some(1)).await.unwrap(),
        vec![cmd(&a, 1, "x", "replaced", 10), cmd(&a, 1, "y", "second", 11)],
        "a re-add replaces the value and keeps the creation time"
    );
    assert_eq!(store.user_commands(&a, None).await.unwrap().len(), 3);
    assert_eq!(store.count_user_commands(&a).await.unwrap(), 3);
    assert!(store.user_commands(&a, Some(3)).await.unwrap().is_empty());

    assert!(store.update_user_command(&a, 1, "y", None, Some("extra")).await.unwrap());
    assert!(store.update_user_command(&a, 1, "y", None, Some("extra")).await.unwrap(), "an unchanged update finds it");
    let y = store.user_commands(&a, Some(1)).await.unwrap().pop().unwrap();
    assert_eq!((y.value.as_str(), y.ex.as_str()), ("second", "extra"), "only what is given changes");
    assert!(!store.update_user_command(&a, 1, "none", Some("v"), None).await.unwrap());
    assert!(!store.update_user_command(&a, 3, "x", Some("v"), None).await.unwrap(), "the type is part of the key");

    assert!(store.delete_user_command(&a, 1, "x").await.unwrap());
    assert!(!store.delete_user_command(&a, 1, "x").await.unwrap(), "deleting twice says it was not there");
    assert_eq!(store.count_user_commands(&a).await.unwrap(), 2);
    assert_eq!(store.user_commands(&b, None).await.unwrap(), vec![cmd(&b, 1, "x", "b's", 13)], "others untouched");
}

pub async fn subscriptions(store: &dyn SubscriptionStore) {
    let p = prefix();
    let (a, b, c, d) = (format!("{p}a"), format!("{p}b"), format!("{p}c"), format!("{p}d"));
    store.subscribe(&a, &[b.clone(), c.clone()], 1).await.unwrap();
    store.subscribe(&a, &[b.clone(), d.clone()], 2).await.expect("subscribing twice is not an error");
    assert_eq!(store.subscriptions(&a).await.unwrap(), vec![b.clone(), c.clone(), d.clone()]);
    assert!(store.subscriptions(&b).await.unwrap().is_empty(), "subscriptions are one-directional");
    store.unsubscribe(&a, &[c.clone(), format!("{p}none")]).await.unwrap();
    assert_eq!(store.subscriptions(&a).await.unwrap(), vec![b, d]);
    store.unsubscribe(&a, &[]).await.unwrap();
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
