//! Groups as the SDK syncs them: member lists and joined groups sync incrementally from the
//! version a client holds, in full when that cannot be told in one answer.

use serde_json::{Value, json};

use crate::stack::Stack;

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| a.iter().map(|m| m["userID"].as_str().or(m["groupID"].as_str()).unwrap().to_owned()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_and_joined_groups_sync_from_the_version_a_client_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "m1", "m2", "m3"]).await;
    let group = json!({"ownerUserID": "own", "memberUserIDs": ["m1"], "adminUserIDs": [],
        "groupInfo": {"groupID": "g-sync", "groupName": "sync", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    let own = s.token("own", 1).await;

    // A full list: the version to sync from next time.
    let full =
        s.rest.ok_as(&own, "/group/get_full_group_member_user_ids", json!({"groupID": "g-sync", "idHash": 0})).await;
    let mut members: Vec<String> = serde_json::from_value(full["userIDs"].clone()).unwrap();
    members.sort();
    assert_eq!((full["version"].as_u64(), members), (Some(1), vec!["m1".to_owned(), "own".to_owned()]), "{full}");
    let vid = full["versionID"].as_str().unwrap().to_owned();
    assert_eq!(vid.len(), 32, "{full}");
    let since = |version: u64| json!({"groupID": "g-sync", "versionID": vid, "version": version});
    let same = s.rest.ok_as(&own, "/group/get_incremental_group_members", since(1)).await;
    assert_eq!((same["full"].as_bool(), same["version"].as_u64()), (Some(false), Some(1)), "{same}");
    assert!(ids(&same["insert"]).is_empty() && same["group"].is_null(), "nothing changed: {same}");

    // Two join: exactly they are told, with the group's new count.
    s.rest.ok("/group/invite_user_to_group", json!({"groupID": "g-sync", "invitedUserIDs": ["m2", "m3"]})).await;
    let delta = s.rest.ok_as(&own, "/group/get_incremental_group_members", since(1)).await;
    assert_eq!((delta["full"].as_bool(), delta["version"].as_u64()), (Some(false), Some(2)), "{delta}");
    assert_eq!(ids(&delta["insert"]), ["m2", "m3"], "{delta}");
    assert_eq!(delta["group"]["memberCount"], 4, "{delta}");
    let batch = json!({"userID": "own", "reqList": [since(1), since(1), since(2)]});
    let batch = s.rest.ok_as(&own, "/group/get_incremental_group_members_batch", batch).await;
    assert_eq!(ids(&batch["respList"]["g-sync"]["insert"]), ["m2", "m3"], "the first of a group's requests: {batch}");

    // Another log's ID, or a version it never had: the client must list everything.
    for stale in [
        json!({"groupID": "g-sync", "versionID": "0123456789abcdef0123456789abcdef", "version": 1}),
        since(3),
        json!({"groupID": "g-sync", "versionID": "", "version": 0}),
    ] {
        let r = s.rest.ok_as(&own, "/group/get_incremental_group_members", stale.clone()).await;
        assert_eq!((r["full"].as_bool(), r["version"].as_u64()), (Some(true), Some(2)), "{stale}: {r}");
        assert!(ids(&r["insert"]).is_empty(), "in full the client lists members itself: {r}");
        assert_eq!(r["group"]["groupID"], "g-sync", "{r}");
    }

    // More changes than one answer tells: in full.
    let many: Vec<String> = (0..201).map(|i| format!("x{i:03}")).collect();
    s.register(&many.iter().map(String::as_str).collect::<Vec<_>>()).await;
    s.rest.ok("/group/invite_user_to_group", json!({"groupID": "g-sync", "invitedUserIDs": many})).await;
    let r = s.rest.ok_as(&own, "/group/get_incremental_group_members", since(2)).await;
    assert_eq!((r["full"].as_bool(), r["version"].as_u64()), (Some(true), Some(3)), "201 changes");

    // The joined groups of a member, the same way.
    let m2 = s.token("m2", 1).await;
    let joined = s.rest.ok_as(&m2, "/group/get_full_join_group_ids", json!({"userID": "m2", "idHash": 0})).await;
    assert_eq!((joined["version"].as_u64(), joined["groupIDs"].clone()), (Some(1), json!(["g-sync"])), "{joined}");
    let jvid = joined["versionID"].as_str().unwrap().to_owned();
    let r = s
        .rest
        .ok_as(&m2, "/group/get_incremental_join_groups", json!({"userID": "m2", "versionID": jvid, "version": 1}))
        .await;
    assert_eq!((r["full"].as_bool(), ids(&r["insert"]).len()), (Some(false), 0), "{r}");
    let r = s
        .rest
        .ok_as(&m2, "/group/get_incremental_join_groups", json!({"userID": "m2", "versionID": "", "version": 0}))
        .await;
    assert_eq!((r["full"].as_bool(), ids(&r["insert"])), (Some(true), vec!["g-sync".to_owned()]), "{r}");
    s.stop().await;
}
