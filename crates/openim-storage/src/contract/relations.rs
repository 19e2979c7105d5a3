//! Users, friends, applications, blacklists, conversations, command lists and subscriptions.

use super::prefix;

use crate::*;

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
    assert_eq!(receiving, vec![stranger.clone()], "recvMsgOpt 2 (no notify) gets no offline push");

    // A clear for everyone: every owner who has the conversation, and only that conversation.
    store.set_everyones_min_seq(&format!("{p}c1"), 77).await.unwrap();
    let min_seqs = |o: String| async move {
        store
            .conversations(&o, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.conversation_id, c.min_seq))
            .collect::<Vec<_>>()
    };
    assert_eq!(min_seqs(owner).await, vec![(format!("{p}c1"), 77), (format!("{p}c2"), 42)]);
    assert_eq!(min_seqs(newcomer).await, vec![(format!("{p}c1"), 77)]);
    assert!(min_seqs(stranger).await.is_empty(), "nobody gets a conversation they did not have");
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

pub async fn objects(store: &dyn ObjectRecordStore) {
    let p = prefix();
    let obj = |name: &str, key: &str, group: &str, time: i64| ObjectRecord {
        name: format!("{p}{name}"),
        user_id: format!("{p}a"),
        hash: "0cc175b9c0f1b6a831c399e269772661".into(),
        object_key: format!("{p}{key}"),
        size: 3,
        content_type: "image/png".into(),
        object_group: group.into(),
        create_time: time,
    };
    assert_eq!(store.object(&format!("{p}a/none")).await.unwrap(), None);
    store.put_object(&obj("a/x.png", "k1", "msg-picture", 10)).await.unwrap();
    store.put_object(&obj("a/y.png", "k1", "msg-picture", 11)).await.unwrap();
    store.put_object(&obj("a/log.txt", "k2", "logs", 12)).await.unwrap();
    assert_eq!(store.object(&format!("{p}a/x.png")).await.unwrap(), Some(obj("a/x.png", "k1", "msg-picture", 10)));
    assert_eq!(store.key_refs(&format!("{p}k1")).await.unwrap(), 2, "two names share one content");

    store.put_object(&obj("a/x.png", "k3", "msg-picture", 13)).await.expect("a name can be uploaded again");
    assert_eq!(store.object(&format!("{p}a/x.png")).await.unwrap().unwrap().object_key, format!("{p}k3"));
    assert_eq!(store.key_refs(&format!("{p}k1")).await.unwrap(), 1);

    let old = store.objects_before(13, &["logs".into()], 10).await.unwrap();
    let mine: Vec<_> = old.into_iter().filter(|o| o.name.starts_with(&p)).map(|o| o.name).collect();
    assert_eq!(mine, vec![format!("{p}a/log.txt")], "only the group asked for, only older ones");
    let all = store.objects_before(14, &[], 1000).await.unwrap();
    let mine: Vec<_> = all.into_iter().filter(|o| o.name.starts_with(&p)).map(|o| o.create_time).collect();
    assert_eq!(mine, vec![11, 12, 13], "oldest first");

    let gone = store.delete_object(&format!("{p}a/y.png")).await.unwrap();
    assert_eq!(gone.map(|o| o.object_key), Some(format!("{p}k1")));
    assert_eq!(store.delete_object(&format!("{p}a/y.png")).await.unwrap(), None, "deleting twice finds nothing");
    assert_eq!(store.key_refs(&format!("{p}k1")).await.unwrap(), 0);
}

pub async fn third(store: &dyn ThirdStore) {
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b_x%"));
    store.set_fcm_token(&a, 2, "t1", 1_000).await.unwrap();
    store.set_fcm_token(&a, 2, "t2", 2_000).await.expect("a token is replaced");
    store.set_fcm_token(&a, 1, "ios", 2_000).await.unwrap();
    assert_eq!(store.fcm_token(&a, 2, 1_500).await.unwrap().as_deref(), Some("t2"));
    assert_eq!(store.fcm_token(&a, 1, 1_500).await.unwrap().as_deref(), Some("ios"), "one per platform");
    assert_eq!(store.fcm_token(&a, 2, 2_000).await.unwrap(), None, "an expired token is not given");
    assert_eq!(store.fcm_token(&b, 2, 0).await.unwrap(), None);

    assert_eq!(store.app_badge(&a).await.unwrap(), None);
    store.set_app_badge(&a, 3).await.unwrap();
    store.set_app_badge(&a, 5).await.unwrap();
    assert_eq!(store.app_badge(&a).await.unwrap(), Some(5));

    let log = |id: &str, user: &str, time: i64| ClientLog {
        log_id: format!("{p}{id}"),
        platform: "Web".into(),
        user_id: user.to_owned(),
        create_time: time,
        url: format!("http://x/object/{user}/{id}.zip"),
        file_name: format!("{id}.zip"),
        ..ClientLog::default()
    };
    store.add_logs(&[log("1", &a, 10), log("2", &a, 20), log("3", &b, 30)]).await.unwrap();
    let dup = store.add_logs(&[log("1", &b, 40)]).await.unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate(_)), "{dup:?}");
    let ids = |ls: &[ClientLog]| ls.iter().map(|l| l.log_id.trim_start_matches(&p).to_owned()).collect::<Vec<_>>();
    let (total, page) = store.search_logs(&a, 0, 100, 0, 10).await.unwrap();
    assert_eq!((total, ids(&page)), (2, vec!["2".to_owned(), "1".to_owned()]), "newest first");
    let (total, page) = store.search_logs(&a, 0, 100, 1, 10).await.unwrap();
    assert_eq!((total, ids(&page)), (2, vec!["1".to_owned()]), "paged");
    let (total, _) = store.search_logs(&format!("{p}b_x%"), 0, 100, 0, 10).await.unwrap();
    assert_eq!(total, 1, "wildcards in the keyword are literal");
    let (total, _) = store.search_logs(&format!("{p}b%"), 0, 100, 0, 10).await.unwrap();
    assert_eq!(total, 0);
    let (total, _) = store.search_logs(&a, 15, 25, 0, 10).await.unwrap();
    assert_eq!(total, 1, "within the time range only");

    let wanted = [format!("{p}1"), format!("{p}3"), format!("{p}none")];
    assert_eq!(store.logs(&wanted).await.unwrap().len(), 2);
    assert_eq!(store.delete_logs(&wanted).await.unwrap(), 2);
    assert!(store.logs(&wanted).await.unwrap().is_empty());
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
