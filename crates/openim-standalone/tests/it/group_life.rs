//! A group's life as OpenIM runs it: joining by its verification mode, applications and their
//! answers, invitations that need approval, quitting, kicking, roles, and the end. Each change
//! reaches the members (and whoever it concerns) as OpenIM's notification.

use std::time::Duration;

use openim_proto::ws::Encoding;
use openim_testkit::Client;
use serde_json::{Value, json};

use crate::stack::Stack;

/// The tips of the next notification of `content_type`, and its conversation; every
/// notification of each push is looked at (several may share one). Copies in the chat are not
/// notifications: [`tip`] reads those.
async fn note(c: &mut Client, content_type: i32) -> (String, Value) {
    loop {
        let push = c.next_push_messages_within(Duration::from_secs(10)).await;
        let push = push.unwrap_or_else(|| panic!("{}: no {content_type} within 10 s", c.user));
        for (conv, msgs) in push.notification_msgs {
            if let Some(m) = msgs.msgs.iter().find(|m| m.content_type == content_type) {
                let content: Value = serde_json::from_slice(&m.content).unwrap();
                return (conv, serde_json::from_str(content["detail"].as_str().unwrap()).unwrap());
            }
        }
    }
}

async fn send(c: &mut Client, group: &str) -> i32 {
    use prost::Message as _;
    let id = openim_common::ids::new_id();
    let m = c.text(group, true, &id, "hello");
    c.call(openim_proto::constants::req::SEND_MSG, m.encode_to_vec()).await.err_code
}

fn create(id: &str, owner: &str, admins: &[&str], members: &[&str], need_verification: i32) -> Value {
    json!({"ownerUserID": owner, "memberUserIDs": members, "adminUserIDs": admins,
        "groupInfo": {"groupID": id, "groupName": id, "groupType": 2, "needVerification": need_verification}})
}

async fn member_ids(s: &Stack, group: &str) -> Vec<String> {
    let r = s.rest.ok("/group/get_group_member_user_id", json!({"groupID": group})).await;
    let mut ids: Vec<String> = serde_json::from_value(r["userIDs"].clone()).unwrap_or_default();
    ids.sort();
    ids
}

/// needVerification 2 lets anyone in (1510); 0 and 1 take applications (1503 to the owner and
/// admins), which they accept (1505, then 1510) or refuse (1506) once; in a group where all need
/// approval, an ordinary member's invitation waits for them too, and its acceptance is an
/// invitation (1509) by that member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_join_by_the_groups_verification_mode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "mem", "cat", "dan", "eve"]).await;
    s.rest.ok("/group/create_group", create("g-open", "own", &[], &[], 2)).await;
    s.rest.ok("/group/create_group", create("g-apply", "own", &["adm"], &["mem"], 0)).await;
    s.rest.ok("/group/create_group", create("g-closed", "own", &[], &["mem"], 1)).await;
    let mut own = s.connect("own", 1, Encoding::Gob, false).await;
    let mut cat = s.connect("cat", 1, Encoding::Gob, false).await;
    let (own_t, adm_t, mem_t, cat_t) =
        (s.token("own", 5).await, s.token("adm", 5).await, s.token("mem", 5).await, s.token("cat", 5).await);
    let join = |g: &str| json!({"groupID": g, "reqMessage": "let me in", "joinSource": 3, "inviterUserID": "cat"});

    // Anyone may join.
    s.rest.ok_as(&cat_t, "/group/join_group", join("g-open")).await;
    let (conv, t) = note(&mut own, 1510).await;
    assert_eq!((conv.as_str(), t["entrantUser"]["userID"].as_str()), ("n_g-open", Some("cat")), "{t}");
    assert_eq!(member_ids(&s, "g-open").await, ["cat", "own"]);
    let env = s.rest.raw("/group/join_group", &cat_t, join("g-open").to_string()).await;
    assert_eq!(env["errCode"], 1001, "already a member: {env}");

    // An application: the managers hear of it and list it; the applicant lists its own.
    s.rest.ok_as(&cat_t, "/group/join_group", join("g-apply")).await;
    let (conv, t) = note(&mut own, 1503).await;
    assert_eq!(conv, "n_cat_own", "a single-chat notification from the applicant");
    assert_eq!((t["applicant"]["userID"].as_str(), t["reqMsg"].as_str()), (Some("cat"), Some("let me in")), "{t}");
    assert_eq!(t["group"]["groupID"], "g-apply");
    let rest = &s.rest;
    let count = async |token: &String, user: &str| {
        let body = json!({"userID": user, "time": 0});
        rest.ok_as(token, "/group/get_group_application_unhandled_count", body).await["count"].clone()
    };
    assert_eq!(count(&own_t, "own").await, 1);
    assert_eq!(count(&adm_t, "adm").await, 1);
    assert_eq!(count(&mem_t, "mem").await, 0, "an ordinary member answers nothing");
    let page = json!({"pageNumber": 1, "showNumber": 10});
    let recv = s
        .rest
        .ok_as(&adm_t, "/group/get_recv_group_applicationList", json!({"fromUserID": "adm", "pagination": page}))
        .await;
    assert_eq!(recv["total"], 1, "{recv}");
    let r = &recv["groupRequests"][0];
    assert_eq!((r["userInfo"]["userID"].as_str(), r["groupInfo"]["groupID"].as_str()), (Some("cat"), Some("g-apply")));
    assert_eq!((r["handleResult"].as_i64(), r["joinSource"].as_i64()), (Some(0), Some(3)), "{r}");
    let mine = s
        .rest
        .ok_as(&cat_t, "/group/get_user_req_group_applicationList", json!({"userID": "cat", "pagination": page}))
        .await;
    assert_eq!((mine["total"].as_u64(), mine["groupRequests"][0]["reqMsg"].as_str()), (Some(1), Some("let me in")));
    let one = json!({"groupID": "g-apply", "userID": "cat"});
    let env = s.rest.raw("/group/get_specified_user_group_request_info", &mem_t, one.to_string()).await;
    assert_eq!(env["errCode"], 1002, "another member's request: {env}");
    assert_eq!(s.rest.ok_as(&cat_t, "/group/get_specified_user_group_request_info", one).await["total"], 1);
    let users = json!({"groupID": "g-apply", "userIDs": ["cat", "dan"]});
    let users = s.rest.ok_as(&adm_t, "/group/get_group_users_req_application_list", users).await;
    assert_eq!(users["total"], 1, "{users}");

    // Refused once; answering again is 1206; applying again starts over; accepted, the applicant
    // is in and told so.
    let answer =
        |result: i32| json!({"groupID": "g-apply", "fromUserID": "cat", "handledMsg": "no", "handleResult": result});
    let env = s.rest.raw("/group/group_application_response", &mem_t, answer(-1).to_string()).await;
    assert_eq!(env["errCode"], 1002, "an ordinary member may not answer: {env}");
    s.rest.ok_as(&adm_t, "/group/group_application_response", answer(-1)).await;
    let (_, t) = note(&mut cat, 1506).await;
    assert_eq!((t["receiverAs"].as_i64(), t["request"]["handleResult"].as_i64()), (Some(0), Some(-1)), "{t}");
    let env = s.rest.raw("/group/group_application_response", &own_t, answer(1).to_string()).await;
    assert_eq!(env["errCode"], 1206, "answered already: {env}");
    assert_eq!(member_ids(&s, "g-apply").await, ["adm", "mem", "own"]);
    s.rest.ok_as(&cat_t, "/group/join_group", join("g-apply")).await;
    s.rest.ok_as(&own_t, "/group/group_application_response", answer(1)).await;
    let (_, t) = note(&mut cat, 1505).await;
    assert_eq!(t["opUser"]["userID"], "own", "{t}");
    let (_, t) = note(&mut own, 1510).await;
    assert_eq!(t["entrantUser"]["userID"], "cat", "{t}");
    assert_eq!(member_ids(&s, "g-apply").await, ["adm", "cat", "mem", "own"]);
    assert_eq!(count(&own_t, "own").await, 0);
    assert_eq!(send(&mut cat, "g-apply").await, 0, "a member now");

    // All need approval: an ordinary member's invitation waits; the owner's does not.
    s.rest
        .ok_as(&mem_t, "/group/invite_user_to_group", json!({"groupID": "g-closed", "invitedUserIDs": ["dan"]}))
        .await;
    let (_, t) = note(&mut own, 1503).await;
    assert_eq!((t["request"]["inviterUserID"].as_str(), t["applicant"]["userID"].as_str()), (Some("mem"), Some("mem")));
    assert_eq!(member_ids(&s, "g-closed").await, ["mem", "own"], "dan waits");
    s.rest
        .ok_as(&own_t, "/group/invite_user_to_group", json!({"groupID": "g-closed", "invitedUserIDs": ["eve"]}))
        .await;
    let (_, t) = note(&mut own, 1509).await;
    assert_eq!(t["invitedUserList"][0]["userID"], "eve", "{t}");
    let accept = json!({"groupID": "g-closed", "fromUserID": "dan", "handleResult": 1});
    s.rest.ok_as(&own_t, "/group/group_application_response", accept).await;
    let (_, t) = note(&mut own, 1509).await;
    assert_eq!(
        (t["invitedUserList"][0]["userID"].as_str(), t["inviterUser"]["userID"].as_str()),
        (Some("dan"), Some("mem"))
    );
    assert_eq!(member_ids(&s, "g-closed").await, ["dan", "eve", "mem", "own"]);
    s.stop().await;
}

/// The owner cannot quit; a member quits (1504, to it too); an admin kicks ordinary members,
/// the owner admins too (1508, to the kicked too), and a kicked member can no longer send; the
/// owner dismisses the group (1511): its members are told, then removed, and it takes no more
/// messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_quit_are_kicked_and_the_owner_dismisses_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "m1", "m2", "m3"]).await;
    s.rest.ok("/group/create_group", create("g-life", "own", &["adm"], &["m1", "m2", "m3"], 0)).await;
    let mut m1 = s.connect("m1", 1, Encoding::Gob, false).await;
    let mut m2 = s.connect("m2", 1, Encoding::Gob, false).await;
    let mut m3 = s.connect("m3", 1, Encoding::Gob, false).await;
    let (own_t, adm_t, m1_t, m3_t) =
        (s.token("own", 5).await, s.token("adm", 5).await, s.token("m1", 5).await, s.token("m3", 5).await);

    let env = s.rest.raw("/group/quit_group", &own_t, json!({"groupID": "g-life"}).to_string()).await;
    assert_eq!(env["errCode"], 1002, "the owner hands the group on first: {env}");
    s.rest.ok_as(&m3_t, "/group/quit_group", json!({"groupID": "g-life"})).await;
    let (conv, t) = note(&mut m3, 1504).await;
    assert_eq!((conv.as_str(), t["quitUser"]["userID"].as_str()), ("n_g-life", Some("m3")), "{t}");
    let (_, t) = note(&mut m1, 1504).await;
    assert_eq!(t["group"]["memberCount"], 4, "{t}");
    assert_eq!(send(&mut m3, "g-life").await, 1203, "no member any more");
    let joined = s.rest.ok_as(&m3_t, "/group/get_full_join_group_ids", json!({"userID": "m3", "idHash": 0})).await;
    assert_eq!(joined["groupIDs"], json!([]), "{joined}");
    let ask = json!({"groupID": "g-life", "userIDs": ["own", "m3"]});
    let cards = s.rest.ok_as(&m3_t, "/group/get_group_members_info", ask).await;
    assert_eq!(cards["members"].as_array().map(|m| m.len()), Some(1), "a former member reads members' cards: {cards}");

    let kick = |ids: &[&str]| json!({"groupID": "g-life", "kickedUserIDs": ids, "reason": "x"});
    for (who, token, body, code) in [
        ("a member", &m1_t, kick(&["m2"]), 1002),
        ("an admin, the owner", &adm_t, kick(&["own"]), 1001),
        ("itself", &adm_t, kick(&["adm"]), 1001),
        ("a non-member", &adm_t, kick(&["m3"]), 1101),
        ("twice", &adm_t, kick(&["m2", "m2"]), 1001),
    ] {
        let env = s.rest.raw("/group/kick_group", token, body.to_string()).await;
        assert_eq!(env["errCode"], code, "{who}: {env}");
    }
    s.rest.ok_as(&adm_t, "/group/kick_group", kick(&["m2"])).await;
    let (_, t) = note(&mut m2, 1508).await;
    assert_eq!((t["kickedUserList"][0]["userID"].as_str(), t["opUser"]["userID"].as_str()), (Some("m2"), Some("adm")));
    note(&mut m1, 1508).await;
    assert_eq!(send(&mut m2, "g-life").await, 1203);
    s.rest.ok_as(&own_t, "/group/kick_group", kick(&["adm"])).await;
    assert_eq!(member_ids(&s, "g-life").await, ["m1", "own"]);

    // The end.
    let env = s.rest.raw("/group/dismiss_group", &m1_t, json!({"groupID": "g-life"}).to_string()).await;
    assert_eq!(env["errCode"], 1002, "only the owner: {env}");
    s.rest.ok_as(&own_t, "/group/dismiss_group", json!({"groupID": "g-life"})).await;
    let (_, t) = note(&mut m1, 1511).await;
    assert_eq!((t["group"]["status"].as_i64(), t["opUser"]["userID"].as_str()), (Some(2), Some("own")), "{t}");
    let joined = s.rest.ok_as(&m1_t, "/group/get_full_join_group_ids", json!({"userID": "m1", "idHash": 0})).await;
    assert_eq!(joined["groupIDs"], json!([]), "removed before being told: {joined}");
    assert!(member_ids(&s, "g-life").await.is_empty());
    assert_eq!(send(&mut m1, "g-life").await, 1204, "dismissed");
    let env = s.rest.raw("/group/dismiss_group", &own_t, json!({"groupID": "g-life"}).to_string()).await;
    assert_eq!(env["errCode"], 1204, "{env}");
    s.stop().await;
}

/// Roles and members' info: the owner makes a member an admin (1517), who may then mute
/// ordinary members; a member sets its own group nickname (1516) but not its role; the members
/// hash changes with the members; administrators find groups by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sets_roles_and_members_set_their_own_info() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "m1", "m2"]).await;
    s.rest.ok("/group/create_group", create("g-roles", "own", &[], &["m1", "m2"], 0)).await;
    let mut m2 = s.connect("m2", 1, Encoding::Gob, false).await;
    let (own_t, m1_t, m2_t) = (s.token("own", 5).await, s.token("m1", 5).await, s.token("m2", 5).await);
    let set = |user: &str, field: &str, value: Value| {
        let mut m = json!({"groupID": "g-roles", "userID": user});
        m[field] = value;
        json!({"members": [m]})
    };
    let mute = json!({"groupID": "g-roles", "userID": "m2", "mutedSeconds": 600});
    let env = s.rest.raw("/group/mute_group_member", &m1_t, mute.to_string()).await;
    assert_eq!(env["errCode"], 1002, "not yet an admin: {env}");
    s.rest.ok_as(&own_t, "/group/set_group_member_info", set("m1", "roleLevel", json!(60))).await;
    let (_, t) = note(&mut m2, 1517).await;
    assert_eq!((t["changedUser"]["userID"].as_str(), t["changedUser"]["roleLevel"].as_i64()), (Some("m1"), Some(60)));
    assert!(t["groupSortVersion"].as_u64() > Some(0), "the order changed: {t}");
    s.rest.ok_as(&m1_t, "/group/mute_group_member", mute).await;
    assert_eq!(send(&mut m2, "g-roles").await, 1402);

    let abstract_info = async || {
        let r = s.rest.ok_as(&own_t, "/group/get_group_abstract_info", json!({"groupIDs": ["g-roles"]})).await;
        r["groupAbstractInfos"][0].clone()
    };
    let before = abstract_info().await;
    assert_eq!(before["groupMemberNumber"], 3, "{before}");
    for (who, token, body, code) in [
        ("an admin, the owner's nickname", &m1_t, set("own", "nickname", json!("x")), 1002),
        ("a member, its role", &m2_t, set("m2", "roleLevel", json!(60)), 1002),
        ("the owner, its role", &own_t, set("own", "roleLevel", json!(20)), 1001),
        ("anyone, to owner", &own_t, set("m2", "roleLevel", json!(100)), 1002),
        ("no such role", &own_t, set("m2", "roleLevel", json!(50)), 1001),
        ("a non-member", &own_t, set("nobody", "nickname", json!("x")), 1001),
    ] {
        let env = s.rest.raw("/group/set_group_member_info", token, body.to_string()).await;
        assert_eq!(env["errCode"], code, "{who}: {env}");
    }
    s.rest.ok_as(&m2_t, "/group/set_group_member_info", set("m2", "nickname", json!("two"))).await;
    let (_, t) = note(&mut m2, 1516).await;
    assert_eq!(t["changedUser"]["nickname"], "two", "{t}");
    let after = abstract_info().await;
    assert_ne!(after["groupMemberListHash"], before["groupMemberListHash"], "the hash follows the members");
    let members = s
        .rest
        .ok_as(&own_t, "/group/get_group_members_info", json!({"groupID": "g-roles", "userIDs": ["own", "m1", "m2"]}))
        .await;
    let mut members: Vec<openim_proto::pb::sdkws::GroupMemberFullInfo> =
        serde_json::from_value(members["members"].clone()).unwrap();
    members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    for m in &mut members {
        // The hash fills empty group nicknames from the profiles (registered as the user IDs).
        if m.nickname.is_empty() {
            m.nickname = m.user_id.clone();
        }
    }
    assert_eq!(after["groupMemberListHash"].as_u64(), Some(openim_rpc_group::members_hash(&members)));

    // Administrators search groups.
    let env = s
        .rest
        .raw("/group/get_groups", &own_t, json!({"pagination": {"pageNumber": 1, "showNumber": 10}}).to_string())
        .await;
    assert_eq!(env["errCode"], 1002, "{env}");
    let found = s
        .rest
        .ok("/group/get_groups", json!({"groupName": "roles", "pagination": {"pageNumber": 1, "showNumber": 10}}))
        .await;
    assert_eq!((found["total"].as_u64(), found["groups"][0]["groupOwnerUserID"].as_str()), (Some(1), Some("own")));
    s.stop().await;
}

/// `max_members` bounds a group however members come: created, invited, joining or let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_grows_no_larger_than_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |c| c.rpc_group.max_members = 3).await;
    s.register(&["own", "m1", "m2", "m3", "m4"]).await;
    let env = s.rest.post("/group/create_group", create("g-big", "own", &[], &["m1", "m2", "m3"], 0)).await;
    assert_eq!(env["errCode"], 1001, "four at once: {env}");
    s.rest.ok("/group/create_group", create("g-cap", "own", &[], &["m1"], 2)).await;
    let env =
        s.rest.post("/group/invite_user_to_group", json!({"groupID": "g-cap", "invitedUserIDs": ["m2", "m3"]})).await;
    assert_eq!(env["errCode"], 1001, "two more: {env}");
    s.rest.ok("/group/invite_user_to_group", json!({"groupID": "g-cap", "invitedUserIDs": ["m2"]})).await;
    let m3 = s.token("m3", 5).await;
    let join = json!({"groupID": "g-cap", "joinSource": 3, "reqMessage": ""});
    let env = s.rest.raw("/group/join_group", &m3, join.to_string()).await;
    assert_eq!(env["errCode"], 1001, "a fourth: {env}");
    assert!(env["errDlt"].as_str().unwrap_or_default().contains("limit of 3"), "the limit is named: {env}");
    assert_eq!(member_ids(&s, "g-cap").await, ["m1", "m2", "own"]);
    s.stop().await;
}

/// The changes OpenIM's `notification.yml` marks `isSendMsg` are also tips in the group's chat
/// (`sg_`), between its messages, with seqs of their own, so a member who was away reads them in
/// the history; the others (1502) are not. A new announcement marks every member's chat
/// (`groupAtType` 4) and tells their devices (1300). A dismissal's tip reaches the members the
/// notification removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shown_changes_are_tips_in_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "m1", "m2"]).await;
    let mut m1 = s.connect("m1", 1, Encoding::Gob, false).await;
    let (own_t, m1_t, m2_t) = (s.token("own", 5).await, s.token("m1", 5).await, s.token("m2", 5).await);
    s.rest.ok("/group/create_group", create("g-tips", "own", &[], &["m1", "m2"], 2)).await;
    let (conv, tip) = m1.next_tip_of(1501).await;
    assert_eq!((conv.as_str(), tip.seq, tip.send_id.as_str()), ("sg_g-tips", 1, "imAdmin"), "created by REST");
    assert_eq!(tip.msg_from, 200, "a system message");
    for (option, on) in [("isNotNotification", true), ("unreadCount", false), ("offlinePush", false)] {
        assert_eq!(tip.options.get(option), Some(&on), "{option}: {:?}", tip.options);
    }
    let notes = m1.pull("n_g-tips", 1, 1).await;
    assert_eq!(notes.iter().map(|m| m.content_type).collect::<Vec<_>>(), [1501], "and the notification itself");

    s.rest.ok_as(&m2_t, "/group/quit_group", json!({"groupID": "g-tips"})).await;
    m1.next_tip_of(1504).await;
    let set = |info: Value| json!({"groupInfoForSet": info});
    s.rest.ok_as(&own_t, "/group/set_group_info", set(json!({"groupID": "g-tips", "introduction": "x"}))).await;
    s.rest.ok_as(&own_t, "/group/set_group_info", set(json!({"groupID": "g-tips", "groupName": "Tips"}))).await;
    m1.next_tip_of(1520).await;
    assert_eq!(send(&mut m1, "g-tips").await, 0);
    let ex = json!({"groupID": "g-tips", "notification": "read me"});
    s.rest.ok_as(&own_t, "/group/set_group_info_ex", ex).await;
    let (_, tip) = m1.next_tip_of(1519).await;
    let history: Vec<(i64, i32, String)> =
        m1.pull("sg_g-tips", 1, 10).await.into_iter().map(|m| (m.seq, m.content_type, m.send_id)).collect();
    let expected = [(1, 1501, "imAdmin"), (2, 1504, "m2"), (3, 1520, "own"), (4, 101, "m1"), (5, 1519, "own")];
    let expected: Vec<(i64, i32, String)> = expected.into_iter().map(|(s, c, u)| (s, c, u.to_owned())).collect();
    assert_eq!(history, expected, "tips between the messages, no 1502");
    assert_eq!(tip.seq, 5);

    // The announcement marks the chat of every member, and their devices are told.
    let body = json!({"ownerUserID": "m1", "conversationIDs": ["sg_g-tips"]});
    let convs = s.rest.ok_as(&m1_t, "/conversation/get_conversations", body).await;
    assert_eq!(convs["conversations"][0]["groupAtType"], 4, "{convs}");
    let told = m1.pull("n_m1_m1", 1, 20).await;
    let told: Vec<Value> = told
        .iter()
        .filter(|m| m.content_type == 1300)
        .map(|m| serde_json::from_slice::<Value>(&m.content).unwrap())
        .collect();
    assert!(told.iter().any(|c| c["detail"].as_str().unwrap().contains("sg_g-tips")), "{told:?}");

    // The dismissal's tip comes after the notification, which removed the members.
    s.rest.ok_as(&own_t, "/group/dismiss_group", json!({"groupID": "g-tips"})).await;
    let (conv, tip) = m1.next_tip_of(1511).await;
    assert_eq!((conv.as_str(), tip.seq), ("sg_g-tips", 6));
    // The notification itself may have come in the same push; it removes the members.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !member_ids(&s, "g-tips").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the members stayed after the dismissal");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}
