//! Groups: members, their version logs, and requests to join.

use std::collections::HashMap;

use super::prefix;

use crate::*;

/// The log's entries after `since`, as (entry, state, version).
async fn changes(store: &dyn GroupStore, kind: i32, owner: &str, since: u64) -> Vec<(String, i32, u64)> {
    let (entries, total) = store.version_changes(kind, owner, since, 100).await.unwrap();
    assert_eq!(total as usize, entries.len());
    entries.into_iter().map(|e| (e.entry_id, e.state, e.version)).collect()
}

pub async fn groups(store: &dyn GroupStore) {
    let p = prefix();
    let gid = format!("{p}-g");
    let id = |u: &str| format!("{p}{u}");
    let member = |u: &str, role: i32, t: i64| GroupMember {
        group_id: gid.clone(),
        user_id: id(u),
        role_level: role,
        join_time: t,
        ..Default::default()
    };
    let group = Group {
        group_id: gid.clone(),
        group_name: "g".into(),
        owner_user_id: id("a"),
        create_time: 1,
        group_type: 2,
        ..Default::default()
    };
    let head =
        store.create_group(&group, &[member("a", role::OWNER, 1), member("b", role::ORDINARY, 2)]).await.unwrap();
    assert_eq!(head.version, 1);
    assert_eq!(head.version_id.len(), 32, "{head:?}");
    let err = store.create_group(&group, &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(store.get_groups(&[gid.clone(), format!("{p}-none")]).await.unwrap(), vec![group.clone()]);
    let members = version::GROUP_MEMBERS;
    assert_eq!(
        changes(store, members, &gid, 0).await,
        vec![(id("a"), version::INSERT, 1), (id("b"), version::INSERT, 1)]
    );
    assert_eq!(changes(store, version::JOINED_GROUPS, &id("b"), 0).await, vec![(gid.clone(), version::INSERT, 1)]);

    let (added, head) = store.add_members(&[member("b", 20, 3), member("c", 20, 4)]).await.unwrap();
    assert_eq!(added, vec![id("c")], "an existing member is skipped");
    assert_eq!(head.version, 2);
    assert_eq!(changes(store, members, &gid, 1).await, vec![(id("c"), version::INSERT, 2)]);
    let (none, same) = store.add_members(&[member("c", 20, 5)]).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(same, head, "no change, no new version");
    let (page, total) = store.members(&gid, 1, 1).await.unwrap();
    assert_eq!((page, total), (vec![member("b", role::ORDINARY, 2)], 3), "ordered by join time");
    assert_eq!(store.member_ids(&gid).await.unwrap(), vec![id("a"), id("b"), id("c")]);
    assert_eq!(store.get_members(&gid, &[id("c"), id("x")]).await.unwrap(), vec![member("c", 20, 4)]);
    assert_eq!(store.joined_group_ids(&id("c")).await.unwrap(), vec![gid.clone()]);

    // The group's info: its own entry in the member log.
    let patch = GroupPatch {
        group_name: Some("renamed".into()),
        notification: Some("read me".into()),
        notification_user_id: id("a"),
        notification_update_time: 77,
        need_verification: Some(1),
        ..Default::default()
    };
    assert_eq!(store.update_group(&gid, &patch).await.unwrap().version, 3);
    let g = store.get_groups(std::slice::from_ref(&gid)).await.unwrap().remove(0);
    assert_eq!(
        (g.group_name.as_str(), g.notification.as_str(), g.notification_user_id.clone(), g.notification_update_time),
        ("renamed", "read me", id("a"), 77)
    );
    assert_eq!((g.need_verification, g.introduction.as_str()), (1, ""), "fields not in the patch stay");
    assert_eq!(changes(store, members, &gid, 2).await, vec![(String::new(), version::UPDATE, 3)]);
    let missing = store.update_group(&format!("{p}-none"), &patch).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing:?}");

    // Members' own info; a role change also moves the order entry.
    let promote = MemberPatch { role_level: Some(role::ADMIN), nickname: Some("bee".into()), ..Default::default() };
    let mute = MemberPatch { mute_end_time: Some(9_999), ..Default::default() };
    let head = store.update_members(&gid, &[(id("b"), promote), (id("c"), mute)]).await.unwrap();
    assert_eq!(head.version, 4);
    let mut got = changes(store, members, &gid, 3).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (version::SORT.to_owned(), version::UPDATE, 4),
            (id("b"), version::UPDATE, 4),
            (id("c"), version::UPDATE, 4)
        ]
    );
    let b = store.get_members(&gid, &[id("b")]).await.unwrap().remove(0);
    assert_eq!((b.role_level, b.nickname.as_str(), b.join_time), (role::ADMIN, "bee", 2));
    assert_eq!(store.get_members(&gid, &[id("c")]).await.unwrap()[0].mute_end_time, 9_999);
    let managers: Vec<_> = store.managers(&gid).await.unwrap().into_iter().map(|m| m.user_id).collect();
    assert_eq!(managers, vec![id("a"), id("b")], "owner first");
    assert_eq!(store.managed_group_ids(&id("b")).await.unwrap(), vec![gid.clone()]);
    assert!(store.managed_group_ids(&id("c")).await.unwrap().is_empty());

    // Ownership moves in one step: the old owner takes the new one's role.
    assert_eq!(store.transfer_owner(&gid, &id("a"), &id("b")).await.unwrap().version, 5);
    let roles: HashMap<String, i32> = store
        .get_members(&gid, &[id("a"), id("b")])
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user_id, m.role_level))
        .collect();
    assert_eq!((roles[&id("a")], roles[&id("b")]), (role::ADMIN, role::OWNER));
    assert_eq!(store.get_groups(std::slice::from_ref(&gid)).await.unwrap()[0].owner_user_id, id("b"));
    let err = store.transfer_owner(&gid, &id("b"), &id("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "a non-member cannot become owner: {err:?}");

    // Leaving: the member log and the leaver's joined-group log both record it.
    let (removed, head) = store.remove_members(&gid, &[id("c"), id("x")]).await.unwrap();
    assert_eq!((removed, head.version), (vec![id("c")], 6));
    assert_eq!(changes(store, members, &gid, 5).await, vec![(id("c"), version::DELETE, 6)]);
    assert_eq!(changes(store, version::JOINED_GROUPS, &id("c"), 1).await, vec![(gid.clone(), version::DELETE, 2)]);
    assert!(store.joined_group_ids(&id("c")).await.unwrap().is_empty());
    let (none, same) = store.remove_members(&gid, &[id("c")]).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(same, head);
    let counts = store.member_counts(&[gid.clone(), format!("{p}-none")]).await.unwrap();
    assert_eq!(counts, HashMap::from([(gid.clone(), 2)]));

    // One entry per member, however often it changed; paging by limit, counting all.
    let (first, total) = store.version_changes(members, &gid, 0, 2).await.unwrap();
    assert_eq!((first.len(), total), (2, 5), "a, b, c, the info entry and the order entry");
    assert!(first.windows(2).all(|w| w[0].version <= w[1].version), "oldest first");

    // Concurrent changes neither deadlock nor lose a version: groups created at once with the
    // same members (listed in different orders), then members added to one group at once.
    let shared: Vec<String> = ["s1", "s2", "s3"].iter().map(|u| id(u)).collect();
    let creations = (0..6).map(|i| {
        let cid = format!("{p}-c{i}");
        let mut users = shared.clone();
        users.rotate_left(i % 3);
        let members: Vec<GroupMember> = users
            .into_iter()
            .map(|u| GroupMember {
                group_id: cid.clone(),
                user_id: u,
                role_level: role::ORDINARY,
                ..Default::default()
            })
            .collect();
        let g = Group { group_id: cid, owner_user_id: shared[0].clone(), group_type: 2, ..Default::default() };
        async move { store.create_group(&g, &members).await }
    });
    for r in futures::future::join_all(creations).await {
        r.expect("concurrent creations");
    }
    assert_eq!(store.version_head(version::JOINED_GROUPS, &shared[2]).await.unwrap().version, 6, "one per group");
    let cid = format!("{p}-c0");
    let adds = (0..6).map(|i| {
        let m = GroupMember { group_id: cid.clone(), user_id: id(&format!("n{i}")), ..Default::default() };
        async move { store.add_members(&[m]).await }
    });
    for r in futures::future::join_all(adds).await {
        r.expect("concurrent additions");
    }
    assert_eq!(store.version_head(members, &cid).await.unwrap().version, 7, "created, then six additions");

    // A log nobody wrote to starts at 1 (OpenIM's first version) and keeps its ID; its first
    // change is version 2, told as a change.
    let fresh = store.version_head(version::JOINED_GROUPS, &id("nobody")).await.unwrap();
    assert_eq!(fresh.version, 1);
    assert_eq!(store.version_head(version::JOINED_GROUPS, &id("nobody")).await.unwrap(), fresh);
    assert_eq!(store.version_head(members, &gid).await.unwrap(), head);
    let joins = GroupMember { group_id: gid.clone(), user_id: id("nobody"), ..Default::default() };
    store.add_members(&[joins]).await.unwrap();
    let after = store.version_head(version::JOINED_GROUPS, &id("nobody")).await.unwrap();
    assert_eq!((after.version, &after.version_id), (2, &fresh.version_id));
    assert_eq!(changes(store, version::JOINED_GROUPS, &id("nobody"), 1).await, vec![(gid.clone(), version::INSERT, 2)]);

    // Search by name: newest first, dismissed groups left out, LIKE's wildcards taken literally.
    for (n, name, status) in [(1, "x_1", 0), (2, "x%2", 0), (3, "xy", 0), (4, "x_4", group_status::DISMISSED)] {
        let g = Group {
            group_id: format!("{p}-s{n}"),
            group_name: format!("{p} {name}"),
            create_time: 100 + n,
            group_type: 2,
            status,
            ..Default::default()
        };
        store.create_group(&g, &[]).await.unwrap();
    }
    let names = |found: Vec<Group>| found.into_iter().map(|g| g.group_id).collect::<Vec<_>>();
    let (found, total) = store.search_groups(&format!("{p} x"), 0, 10).await.unwrap();
    assert_eq!((names(found), total), (vec![format!("{p}-s3"), format!("{p}-s2"), format!("{p}-s1")], 3));
    let (found, total) = store.search_groups(&format!("{p} x_"), 0, 10).await.unwrap();
    assert_eq!((names(found), total), (vec![format!("{p}-s1")], 1), "_ is no wildcard");
    let (found, total) = store.search_groups(&format!("{p} x%"), 0, 10).await.unwrap();
    assert_eq!((names(found), total), (vec![format!("{p}-s2")], 1), "% is no wildcard");
    let (found, total) = store.search_groups(&format!("{p} x"), 1, 1).await.unwrap();
    assert_eq!((names(found), total), (vec![format!("{p}-s2")], 3), "paged");
}

pub async fn group_requests(store: &dyn GroupStore) {
    let p = prefix();
    let gid = format!("{p}-g");
    let id = |u: &str| format!("{p}{u}");
    let owner = GroupMember { group_id: gid.clone(), user_id: id("o"), role_level: role::OWNER, ..Default::default() };
    let group = Group { group_id: gid.clone(), owner_user_id: id("o"), group_type: 2, ..Default::default() };
    store.create_group(&group, std::slice::from_ref(&owner)).await.unwrap();
    let req = |u: &str, t: i64| GroupRequest {
        group_id: gid.clone(),
        user_id: id(u),
        req_msg: format!("let {u} in"),
        req_time: t,
        join_source: 3,
        ..Default::default()
    };
    store.put_group_requests(&[req("u1", 10), req("u2", 20)]).await.unwrap();
    assert_eq!(store.group_request(&gid, &id("u1")).await.unwrap(), Some(req("u1", 10)));
    assert_eq!(store.group_request(&gid, &id("u9")).await.unwrap(), None);
    let all = RequestFilter { limit: 10, ..Default::default() };
    let to = store.group_requests_to(std::slice::from_ref(&gid), &all).await.unwrap();
    assert_eq!(to, (vec![req("u2", 20), req("u1", 10)], 2), "newest first");
    let second = RequestFilter { offset: 1, limit: 1, ..Default::default() };
    assert_eq!(store.group_requests_to(std::slice::from_ref(&gid), &second).await.unwrap(), (vec![req("u1", 10)], 2));
    assert_eq!(store.group_requests_to(&[], &all).await.unwrap(), (vec![], 0));
    assert_eq!(store.pending_group_requests(std::slice::from_ref(&gid), 0).await.unwrap(), 2);
    assert_eq!(store.pending_group_requests(std::slice::from_ref(&gid), 10).await.unwrap(), 1, "after a time");

    // Accepting adds the member in the same step; a request is answered once.
    let answer = GroupRequestAnswer {
        group_id: gid.clone(),
        user_id: id("u1"),
        handle_result: handle_result::ACCEPTED,
        handle_msg: "welcome".into(),
        handle_user_id: id("o"),
        handle_time: 30,
    };
    let joined =
        GroupMember { group_id: gid.clone(), user_id: id("u1"), role_level: role::ORDINARY, ..Default::default() };
    let head = store.answer_group_request(&answer, Some(&joined)).await.unwrap();
    assert_eq!(head.map(|h| h.version), Some(2));
    assert_eq!(store.member_ids(&gid).await.unwrap(), vec![id("o"), id("u1")]);
    let err = store.answer_group_request(&answer, Some(&joined)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "answered twice: {err:?}");
    let handled = store.group_request(&gid, &id("u1")).await.unwrap().unwrap();
    assert_eq!(
        (handled.handle_result, handled.handle_msg.as_str(), handled.handle_user_id.clone(), handled.handle_time),
        (handle_result::ACCEPTED, "welcome", id("o"), 30)
    );
    let refuse = GroupRequestAnswer { user_id: id("u2"), handle_result: handle_result::REFUSED, ..answer.clone() };
    assert_eq!(store.answer_group_request(&refuse, None).await.unwrap(), None);
    assert_eq!(store.pending_group_requests(std::slice::from_ref(&gid), 0).await.unwrap(), 0);
    let refused = RequestFilter { handle_results: vec![handle_result::REFUSED], limit: 10, offset: 0 };
    let (rows, total) = store.group_requests_to(std::slice::from_ref(&gid), &refused).await.unwrap();
    assert_eq!((rows.len(), total, rows[0].user_id.clone()), (1, 1, id("u2")));

    // A new application replaces the answered one.
    store.put_group_requests(&[req("u2", 40)]).await.unwrap();
    assert_eq!(store.group_request(&gid, &id("u2")).await.unwrap(), Some(req("u2", 40)));
    let from = store.group_requests_from(&id("u2"), &[], &all).await.unwrap();
    assert_eq!(from, (vec![req("u2", 40)], 1));
    let elsewhere = store.group_requests_from(&id("u2"), &[format!("{p}-other")], &all).await.unwrap();
    assert_eq!(elsewhere, (vec![], 0));
    let of = store.group_requests_of(&gid, &[id("u1"), id("u2"), id("u3")]).await.unwrap();
    assert_eq!(of.iter().map(|r| r.user_id.clone()).collect::<Vec<_>>(), vec![id("u2"), id("u1")]);
}

/// A membership cache (`cached`, in front of `inner`): it serves what it holds, even when the
/// database changed behind its back, and every write through it drops what that write changed.
pub async fn group_cache(cached: &dyn GroupStore, inner: &dyn GroupStore) {
    let p = prefix();
    let gid = format!("{p}-cache");
    let member = |u: &str, role: i32| GroupMember {
        group_id: gid.clone(),
        user_id: format!("{p}{u}"),
        role_level: role,
        ..Default::default()
    };
    let id = |u: &str| format!("{p}{u}");
    let g = Group { group_id: gid.clone(), owner_user_id: id("a"), group_type: 2, ..Default::default() };
    cached.create_group(&g, &[member("a", role::OWNER), member("b", role::ORDINARY)]).await.unwrap();
    let count = |n: u64| HashMap::from([(gid.clone(), n)]);
    assert_eq!(cached.member_ids(&gid).await.unwrap(), vec![id("a"), id("b")]);
    assert_eq!(cached.member_counts(std::slice::from_ref(&gid)).await.unwrap(), count(2));
    assert!(cached.get_members(&gid, &[id("c")]).await.unwrap().is_empty(), "c is no member (cached so)");
    assert_eq!(cached.get_members(&gid, &[id("b")]).await.unwrap(), vec![member("b", role::ORDINARY)]);

    // Behind the cache's back: it still answers what it holds.
    inner.add_members(&[member("c", role::ORDINARY)]).await.unwrap();
    assert_eq!(cached.member_ids(&gid).await.unwrap(), vec![id("a"), id("b")], "served from the cache");
    assert_eq!(cached.member_counts(std::slice::from_ref(&gid)).await.unwrap(), count(2));
    assert!(cached.get_members(&gid, &[id("c")]).await.unwrap().is_empty());

    // Through it: each kind of write drops what it changed.
    cached.add_members(&[member("d", role::ORDINARY)]).await.unwrap();
    assert_eq!(cached.member_ids(&gid).await.unwrap().len(), 4);
    assert_eq!(cached.member_counts(std::slice::from_ref(&gid)).await.unwrap(), count(4));
    assert_eq!(cached.get_members(&gid, &[id("d")]).await.unwrap(), vec![member("d", role::ORDINARY)]);
    let muted = MemberPatch { mute_end_time: Some(99), ..Default::default() };
    cached.update_members(&gid, &[(id("b"), muted)]).await.unwrap();
    assert_eq!(cached.get_members(&gid, &[id("b")]).await.unwrap()[0].mute_end_time, 99);
    cached.transfer_owner(&gid, &id("a"), &id("b")).await.unwrap();
    let both = cached.get_members(&gid, &[id("a"), id("b")]).await.unwrap();
    assert_eq!(both.iter().map(|m| m.role_level).collect::<Vec<_>>(), vec![role::ORDINARY, role::OWNER]);
    assert_eq!(cached.member_ids(&gid).await.unwrap(), inner.member_ids(&gid).await.unwrap(), "join order kept");
    cached.remove_members(&gid, &[id("d")]).await.unwrap();
    assert!(cached.get_members(&gid, &[id("d")]).await.unwrap().is_empty());
    assert_eq!(cached.member_counts(std::slice::from_ref(&gid)).await.unwrap(), count(3));
    assert!(!cached.member_ids(&gid).await.unwrap().contains(&id("d")));
    let request = GroupRequest { group_id: gid.clone(), user_id: id("e"), req_time: 1, ..Default::default() };
    cached.put_group_requests(&[request]).await.unwrap();
    assert!(cached.get_members(&gid, &[id("e")]).await.unwrap().is_empty(), "e is no member yet (cached so)");
    let answer = GroupRequestAnswer {
        group_id: gid.clone(),
        user_id: id("e"),
        handle_result: handle_result::ACCEPTED,
        ..Default::default()
    };
    cached.answer_group_request(&answer, Some(&member("e", role::ORDINARY))).await.unwrap();
    assert_eq!(cached.get_members(&gid, &[id("e")]).await.unwrap().len(), 1, "let in");
    assert_eq!(cached.member_counts(std::slice::from_ref(&gid)).await.unwrap(), count(4));
}
