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
    let ids_only = s.rest.ok_as(&own, "/group/get_group_member_user_id", json!({"groupID": "g-sync"})).await;
    assert_eq!(ids_only["userIDs"], full["userIDs"], "the same members, in the same order");
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

/// The detail of a notification's content.
fn tips(m: &openim_proto::pb::sdkws::MsgData) -> Value {
    let content: Value = serde_json::from_slice(&m.content).unwrap();
    serde_json::from_str(content["detail"].as_str().unwrap()).unwrap()
}

/// The next notification of `content_type` about `user` (its `mutedUser`), looking at every
/// message of each push (several notifications may share one) and skipping the others.
async fn note_about(c: &mut openim_testkit::Client, content_type: i32, user: &str) -> (String, Value) {
    loop {
        let push = c.next_push_messages_within(std::time::Duration::from_secs(10)).await;
        let push = push.unwrap_or_else(|| panic!("no {content_type} about {user} within 10 s"));
        for (conv, msgs) in push.notification_msgs {
            for m in msgs.msgs.iter().filter(|m| m.content_type == content_type) {
                let t = tips(m);
                if t["mutedUser"]["userID"] == user {
                    return (conv, t);
                }
            }
        }
    }
}

/// The tips of one notification of each content type in `want`, in `n_g-info`, whichever
/// pushes (one or several) they come in.
async fn notifications(c: &mut openim_testkit::Client, want: &[i32]) -> std::collections::HashMap<i32, Value> {
    let mut got = std::collections::HashMap::new();
    while got.len() < want.len() {
        let push = c.next_push_messages_within(std::time::Duration::from_secs(10)).await.expect("notifications");
        for (conv, msgs) in push.notification_msgs {
            for m in msgs.msgs.iter().filter(|m| want.contains(&m.content_type)) {
                assert_eq!(conv, "n_g-info");
                got.insert(m.content_type, tips(m));
            }
        }
    }
    got
}

async fn send(c: &mut openim_testkit::Client, n: &mut u32) -> i32 {
    use prost::Message as _;
    *n += 1;
    let m = c.text("g-mute", true, &format!("{}-{n}", c.user), "hello");
    c.call(openim_proto::constants::req::SEND_MSG, m.encode_to_vec()).await.err_code
}

/// Mutes as OpenIM has them: an admin mutes ordinary members, the owner admins too; a muted
/// member's messages are refused (1402) until the mute ends, by hand or by itself; in a muted
/// group only the owner and admins send (1403). Members hear of each change (1512–1515).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_members_and_muted_groups_are_refused_until_unmuted() {
    use openim_proto::ws::Encoding;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "mem", "mem2"]).await;
    let group = json!({"ownerUserID": "own", "memberUserIDs": ["mem", "mem2"], "adminUserIDs": ["adm"],
        "groupInfo": {"groupID": "g-mute", "groupName": "mute", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    let (mut own, mut adm, mut mem) = (
        s.connect("own", 1, Encoding::Gob, false).await,
        s.connect("adm", 1, Encoding::Gob, false).await,
        s.connect("mem", 1, Encoding::Gob, false).await,
    );
    let (own_t, adm_t, mem_t) = (s.token("own", 5).await, s.token("adm", 5).await, s.token("mem", 5).await);
    let mut n = 0;
    assert_eq!(send(&mut mem, &mut n).await, 0);

    // Who may mute whom.
    let mute = |user: &str, secs: u32| json!({"groupID": "g-mute", "userID": user, "mutedSeconds": secs});
    for (who, token, body, code) in [
        ("a member, another member", &mem_t, mute("mem2", 60), 1002),
        ("an admin, the owner", &adm_t, mute("own", 60), 1002),
        ("an admin, itself", &adm_t, mute("adm", 60), 1002),
        ("no time", &adm_t, mute("mem", 0), 1001),
        ("a non-member target", &adm_t, mute("nobody", 60), 1004),
    ] {
        let env = s.rest.raw("/group/mute_group_member", token, body.to_string()).await;
        assert_eq!(env["errCode"], code, "{who}: {env}");
    }
    s.rest.ok_as(&own_t, "/group/mute_group_member", mute("adm", 60)).await;
    s.rest.ok_as(&own_t, "/group/cancel_mute_group_member", json!({"groupID": "g-mute", "userID": "adm"})).await;

    // A muted member, told so, is refused until unmuted.
    s.rest.ok_as(&adm_t, "/group/mute_group_member", mute("mem", 60)).await;
    let (conv, t) = note_about(&mut mem, 1512, "mem").await;
    assert_eq!(conv, "n_g-mute");
    assert_eq!((t["mutedUser"]["userID"].as_str(), t["mutedSeconds"].as_u64()), (Some("mem"), Some(60)), "{t}");
    assert_eq!(t["opUser"]["userID"], "adm", "{t}");
    assert!(
        t["groupMemberVersion"].as_u64() > Some(1) && t["groupMemberVersionID"].as_str().is_some_and(|v| v.len() == 32),
        "{t}"
    );
    assert_eq!(send(&mut mem, &mut n).await, 1402);
    assert_eq!(send(&mut adm, &mut n).await, 0, "others still send");
    s.rest.ok_as(&adm_t, "/group/cancel_mute_group_member", json!({"groupID": "g-mute", "userID": "mem"})).await;
    note_about(&mut mem, 1513, "mem").await;
    assert_eq!(send(&mut mem, &mut n).await, 0);

    // A muted group: the owner and admins only.
    let env = s.rest.raw("/group/mute_group", &mem_t, json!({"groupID": "g-mute"}).to_string()).await;
    assert_eq!(env["errCode"], 1002, "a member may not mute the group: {env}");
    s.rest.ok_as(&adm_t, "/group/mute_group", json!({"groupID": "g-mute"})).await;
    let (_, note) = mem.next_notification_of(1514).await;
    assert_eq!(tips(&note)["group"]["status"], 3, "the group shows muted");
    assert_eq!(send(&mut mem, &mut n).await, 1403);
    assert_eq!(send(&mut adm, &mut n).await, 0);
    assert_eq!(send(&mut own, &mut n).await, 0);
    s.rest.ok_as(&own_t, "/group/cancel_mute_group", json!({"groupID": "g-mute"})).await;
    mem.next_notification_of(1515).await;
    assert_eq!(send(&mut mem, &mut n).await, 0);

    // A mute ends by itself.
    s.rest.ok_as(&adm_t, "/group/mute_group_member", mute("mem", 1)).await;
    assert_eq!(send(&mut mem, &mut n).await, 1402);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(send(&mut mem, &mut n).await, 0, "the mute ended at its time");
    s.stop().await;
}

/// The owner and admins set a group's info, and members hear of it (1520 name, 1519
/// announcement, 1502 the rest); only the owner hands the group on (1507), and the old owner
/// takes the new one's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_and_admins_set_the_info_and_only_the_owner_hands_the_group_on() {
    use openim_proto::ws::Encoding;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "mem"]).await;
    let group = json!({"ownerUserID": "own", "memberUserIDs": ["mem"], "adminUserIDs": ["adm"],
        "groupInfo": {"groupID": "g-info", "groupName": "info", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    let mut mem = s.connect("mem", 1, Encoding::Gob, false).await;
    let (own_t, adm_t, mem_t) = (s.token("own", 5).await, s.token("adm", 5).await, s.token("mem", 5).await);
    let info =
        async || s.rest.ok("/group/get_groups_info", json!({"groupIDs": ["g-info"]})).await["groupInfos"][0].clone();

    let env = s
        .rest
        .raw("/group/set_group_info_ex", &mem_t, json!({"groupID": "g-info", "groupName": "x"}).to_string())
        .await;
    assert_eq!(env["errCode"], 1002, "a member may not: {env}");
    let env = s
        .rest
        .raw("/group/set_group_info_ex", &adm_t, json!({"groupID": "g-info", "groupName": " "}).to_string())
        .await;
    assert_eq!(env["errCode"], 1001, "a blank name: {env}");
    let set =
        json!({"groupID": "g-info", "groupName": "renamed", "notification": " read me ", "introduction": "about"});
    s.rest.ok_as(&adm_t, "/group/set_group_info_ex", set).await;
    let got = notifications(&mut mem, &[1519, 1520, 1502]).await;
    assert_eq!(got[&1519]["group"]["notification"], "read me", "trimmed");
    assert_eq!(got[&1520]["group"]["groupName"], "renamed");
    assert_eq!(got[&1502]["opUser"]["userID"], "adm");
    let g = info().await;
    assert_eq!((g["groupName"].as_str(), g["introduction"].as_str()), (Some("renamed"), Some("about")), "{g}");
    assert_eq!(g["notificationUserID"], "adm", "{g}");
    assert!(g["notificationUpdateTime"].as_i64() > Some(0), "{g}");
    let face = json!({"groupInfoForSet": {"groupID": "g-info", "faceURL": "http://example.com/f.png"}});
    s.rest.ok_as(&own_t, "/group/set_group_info", face).await;
    let g = info().await;
    assert_eq!((g["faceURL"].as_str(), g["groupName"].as_str()), (Some("http://example.com/f.png"), Some("renamed")));

    // Handing the group on.
    let transfer = |old: &str, new: &str| json!({"groupID": "g-info", "oldOwnerUserID": old, "newOwnerUserID": new});
    for (who, token, body, code) in [
        ("an admin, for the owner", &adm_t, transfer("own", "mem"), 1002),
        ("to a non-member", &own_t, transfer("own", "nobody"), 1001),
        ("to itself", &own_t, transfer("own", "own"), 1001),
    ] {
        let env = s.rest.raw("/group/transfer_group", token, body.to_string()).await;
        assert_eq!(env["errCode"], code, "{who}: {env}");
    }
    let before =
        s.rest.ok_as(&own_t, "/group/get_full_group_member_user_ids", json!({"groupID": "g-info", "idHash": 0})).await;
    s.rest.ok_as(&own_t, "/group/transfer_group", transfer("own", "adm")).await;
    let (_, note) = mem.next_notification_of(1507).await;
    let t = tips(&note);
    assert_eq!(
        (t["newGroupOwner"]["userID"].as_str(), t["newGroupOwner"]["roleLevel"].as_i64()),
        (Some("adm"), Some(100)),
        "{t}"
    );
    assert_eq!(t["oldGroupOwnerInfo"]["roleLevel"], 60, "the old owner takes the admin's role: {t}");
    assert_eq!(info().await["ownerUserID"], "adm");
    let env = s.rest.raw("/group/transfer_group", &own_t, transfer("adm", "own").to_string()).await;
    assert_eq!(env["errCode"], 1002, "the old owner no longer may: {env}");
    // The member order changed: an incremental sync says so.
    let since = json!({"groupID": "g-info", "versionID": before["versionID"], "version": before["version"]});
    let delta = s.rest.ok_as(&own_t, "/group/get_incremental_group_members", since).await;
    assert_eq!(delta["full"], false, "{delta}");
    assert_eq!(ids(&delta["update"]), ["adm", "own"], "{delta}");
    assert!(delta["sortVersion"].as_u64() > Some(0), "{delta}");
    s.stop().await;
}
