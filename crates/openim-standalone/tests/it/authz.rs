//! The authorization matrix: every REST route and every WebSocket request code, called by a user
//! who has no business with the data it names (another user's, a group they are not in) and
//! with no token, gets OpenIM's error code, and the victim's data is the same afterwards.
//!
//! Every route of the route table must have a row here: a route added without one fails
//! `every_route_has_a_row`, so authorization is decided, not forgotten.

use std::collections::BTreeSet;

use openim_proto::constants::req;
use openim_proto::pb::sdkws::{GetMaxSeqReq, MsgData, PullMessageBySeqsReq, SeqRange};

use openim_proto::ws::Encoding;
use prost::Message as _;
use serde_json::{Value, json};

use crate::stack::Stack;

/// What the attacker (`mal`, a registered user outside everything below) gets.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// No token needed; the row's body is refused on its merits with this code.
    Public(i32),
    /// Refused with this code (1002 no permission; 1203 not in the group).
    Refused(i32),
    /// Allowed to anyone logged in: the data is public in OpenIM (profiles, group cards, the
    /// clock) or scoped to the caller by the server (never to the user the body names).
    Anyone,
}

use Expect::*;

const VICTIM: &str = "alice";
const FRIEND: &str = "bob";
const GROUP: &str = "g-authz";
const CHAT: &str = "si_alice_bob";

/// (route, body sent with the attacker's token, what the attacker gets); `upload` is an upload
/// ID of the victim's, `form` a form upload ID.
fn rows(upload: &str, form: &str) -> Vec<(&'static str, Value, Expect)> {
    let page = json!({"pageNumber": 1, "showNumber": 100});
    let seqs = json!([{"conversationID": CHAT, "begin": 1, "end": 10, "num": 10}]);
    let sync = json!({"IsSyncSelf": true, "IsSyncOther": true});
    let text = |from: &str| json!({"sendID": from, "recvID": FRIEND, "sessionType": 1, "contentType": 101, "content": {"content": "x"}});
    vec![
        ("/auth/get_admin_token", json!({"secret": "guess", "userID": "imAdmin"}), Public(1002)),
        ("/auth/parse_token", json!({"token": "not-a-token"}), Public(1503)),
        ("/auth/get_user_token", json!({"userID": VICTIM, "platformID": 1}), Refused(1002)),
        ("/auth/force_logout", json!({"userID": VICTIM, "platformID": 1}), Refused(1002)),
        ("/user/user_register", json!({"users": [{"userID": "sock", "nickname": "x"}]}), Refused(1002)),
        ("/user/get_users_info", json!({"userIDs": [VICTIM]}), Anyone),
        ("/user/update_user_info_ex", json!({"userInfo": {"userID": VICTIM, "nickname": "pwned"}}), Refused(1002)),
        ("/user/update_user_info", json!({"userInfo": {"userID": VICTIM, "nickname": "pwned"}}), Refused(1002)),
        ("/user/set_global_msg_recv_opt", json!({"userID": VICTIM, "globalRecvMsgOpt": 2}), Refused(1002)),
        ("/user/account_check", json!({"checkUserIDs": [VICTIM]}), Refused(1002)),
        ("/user/get_all_users_uid", json!({"pagination": page}), Refused(1002)),
        ("/user/get_users", json!({"pagination": page}), Refused(1002)),
        ("/user/get_users_status", json!({"userID": VICTIM, "userIDs": [FRIEND]}), Refused(1002)),
        ("/user/subscribe_users_status", json!({"userID": VICTIM, "userIDs": [FRIEND], "genre": 1}), Refused(1002)),
        ("/user/get_subscribe_users_status", json!({"userID": VICTIM}), Refused(1002)),
        (
            "/user/process_user_command_add",
            json!({"userID": VICTIM, "type": 1, "uuid": "u2", "value": "v"}),
            Refused(1002),
        ),
        ("/user/process_user_command_delete", json!({"userID": VICTIM, "type": 1, "uuid": "u1"}), Refused(1002)),
        (
            "/user/process_user_command_update",
            json!({"userID": VICTIM, "type": 1, "uuid": "u1", "value": "w"}),
            Refused(1002),
        ),
        ("/user/process_user_command_get", json!({"userID": VICTIM, "type": 1}), Refused(1002)),
        ("/user/process_user_command_get_all", json!({"userID": VICTIM}), Refused(1002)),
        ("/user/get_users_online_status", json!({"userIDs": [VICTIM]}), Refused(1002)),
        ("/user/get_users_online_token_detail", json!({"userIDs": [VICTIM]}), Refused(1002)),
        ("/msg/newest_seq", json!({"userID": VICTIM}), Refused(1002)),
        ("/msg/pull_msg_by_seq", json!({"userID": VICTIM, "seqRanges": seqs}), Refused(1002)),
        ("/msg/get_conversations_has_read_and_max_seq", json!({"userID": VICTIM}), Refused(1002)),
        (
            "/msg/mark_conversation_as_read",
            json!({"userID": VICTIM, "conversationID": CHAT, "hasReadSeq": 1}),
            Refused(1002),
        ),
        ("/msg/mark_msgs_as_read", json!({"userID": VICTIM, "conversationID": CHAT, "seqs": [1]}), Refused(1002)),
        (
            "/msg/set_conversation_has_read_seq",
            json!({"userID": VICTIM, "conversationID": CHAT, "hasReadSeq": 1}),
            Refused(1002),
        ),
        ("/msg/get_server_time", json!({}), Anyone),
        ("/msg/revoke_msg", json!({"userID": VICTIM, "conversationID": CHAT, "seq": 1}), Refused(1002)),
        (
            "/msg/delete_msgs",
            json!({"userID": VICTIM, "conversationID": CHAT, "seqs": [1], "deleteSyncOpt": sync}),
            Refused(1002),
        ),
        (
            "/msg/clear_conversation_msg",
            json!({"userID": VICTIM, "conversationIDs": [CHAT], "deleteSyncOpt": sync}),
            Refused(1002),
        ),
        ("/msg/user_clear_all_msg", json!({"userID": VICTIM, "deleteSyncOpt": sync}), Refused(1002)),
        ("/msg/delete_msg_phsical_by_seq", json!({"conversationID": CHAT, "seqs": [1]}), Refused(1002)),
        ("/msg/delete_msg_physical", json!({"conversationIDs": [CHAT], "timestamp": 0}), Refused(1002)),
        // Answers the outcome of the caller's own operations only (kept per operator).
        ("/msg/check_msg_is_send_success", json!({"operationID": "x"}), Anyone),
        ("/msg/search_msg", json!({"sendID": VICTIM, "pagination": page}), Refused(1002)),
        ("/msg/send_msg", text(VICTIM), Refused(1002)),
        (
            "/msg/send_business_notification",
            json!({"key": "k", "data": "d", "sendUserID": VICTIM, "recvUserID": FRIEND}),
            Refused(1002),
        ),
        (
            "/msg/batch_send_msg",
            json!({"sendID": VICTIM, "recvIDs": [FRIEND], "content": {"content": "x"}, "contentType": 101, "sessionType": 1}),
            Refused(1002),
        ),
        ("/friend/import_friend", json!({"ownerUserID": VICTIM, "friendUserIDs": ["mal"]}), Refused(1002)),
        ("/friend/get_designated_friends", json!({"ownerUserID": VICTIM, "friendUserIDs": [FRIEND]}), Refused(1002)),
        ("/friend/get_friend_list", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        ("/friend/get_friend_id", json!({"userID": VICTIM}), Refused(1002)),
        ("/friend/is_friend", json!({"userID1": VICTIM, "userID2": FRIEND}), Refused(1002)),
        ("/friend/get_incremental_friends", json!({"userID": VICTIM, "versionID": "", "version": 0}), Refused(1002)),
        ("/friend/get_full_friend_user_ids", json!({"userID": VICTIM, "idHash": 0}), Refused(1002)),
        ("/friend/add_friend", json!({"fromUserID": VICTIM, "toUserID": "mal", "reqMsg": "x"}), Refused(1002)),
        (
            "/friend/add_friend_response",
            json!({"fromUserID": FRIEND, "toUserID": VICTIM, "handleResult": 1}),
            Refused(1002),
        ),
        ("/friend/get_friend_apply_list", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        ("/friend/get_self_friend_apply_list", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        ("/friend/get_designated_friend_apply", json!({"fromUserID": VICTIM, "toUserID": FRIEND}), Refused(1002)),
        ("/friend/get_self_unhandled_apply_count", json!({"userID": VICTIM}), Refused(1002)),
        ("/friend/delete_friend", json!({"ownerUserID": VICTIM, "friendUserID": FRIEND}), Refused(1002)),
        (
            "/friend/update_friends",
            json!({"ownerUserID": VICTIM, "friendUserIDs": [FRIEND], "isPinned": true}),
            Refused(1002),
        ),
        (
            "/friend/set_friend_remark",
            json!({"ownerUserID": VICTIM, "friendUserID": FRIEND, "remark": "x"}),
            Refused(1002),
        ),
        ("/friend/get_specified_friends_info", json!({"ownerUserID": VICTIM, "userIDList": [FRIEND]}), Refused(1002)),
        ("/friend/add_black", json!({"ownerUserID": VICTIM, "blackUserID": FRIEND}), Refused(1002)),
        ("/friend/remove_black", json!({"ownerUserID": VICTIM, "blackUserID": FRIEND}), Refused(1002)),
        ("/friend/get_black_list", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        ("/friend/get_specified_blacks", json!({"ownerUserID": VICTIM, "userIDList": [FRIEND]}), Refused(1002)),
        ("/friend/get_incremental_blacks", json!({"userID": VICTIM, "versionID": "", "version": 0}), Refused(1002)),
        (
            "/group/create_group",
            json!({"ownerUserID": VICTIM, "memberUserIDs": [FRIEND], "groupInfo": {"groupName": "x", "groupType": 2}}),
            Refused(1002),
        ),
        ("/group/invite_user_to_group", json!({"groupID": GROUP, "invitedUserIDs": ["mal"]}), Refused(1203)),
        ("/group/get_group_member_list", json!({"groupID": GROUP, "pagination": page}), Refused(1002)),
        ("/group/get_group_members_info", json!({"groupID": GROUP, "userIDs": [VICTIM]}), Refused(1002)),
        // Group cards are public in OpenIM (search, join requests).
        ("/group/get_groups_info", json!({"groupIDs": [GROUP]}), Anyone),
        ("/group/get_joined_group_list", json!({"fromUserID": VICTIM, "pagination": page}), Refused(1002)),
        ("/group/get_incremental_join_groups", json!({"userID": VICTIM, "versionID": "", "version": 0}), Refused(1002)),
        (
            "/group/get_incremental_group_members",
            json!({"groupID": GROUP, "versionID": "", "version": 0}),
            Refused(1002),
        ),
        (
            "/group/get_incremental_group_members_batch",
            json!({"userID": VICTIM, "reqList": [{"groupID": GROUP}]}),
            Refused(1002),
        ),
        ("/group/get_full_group_member_user_ids", json!({"groupID": GROUP, "idHash": 0}), Refused(1002)),
        ("/group/get_full_join_group_ids", json!({"userID": VICTIM, "idHash": 0}), Refused(1002)),
        ("/group/get_group_member_user_id", json!({"groupID": GROUP}), Refused(1002)),
        // A caller outside the group is "not found" among its members, as in OpenIM (1004).
        ("/group/mute_group_member", json!({"groupID": GROUP, "userID": FRIEND, "mutedSeconds": 600}), Refused(1004)),
        ("/group/cancel_mute_group_member", json!({"groupID": GROUP, "userID": FRIEND}), Refused(1004)),
        ("/group/mute_group", json!({"groupID": GROUP}), Refused(1004)),
        ("/group/cancel_mute_group", json!({"groupID": GROUP}), Refused(1004)),
        ("/group/set_group_info", json!({"groupInfoForSet": {"groupID": GROUP, "groupName": "pwned"}}), Refused(1004)),
        ("/group/set_group_info_ex", json!({"groupID": GROUP, "groupName": "pwned"}), Refused(1004)),
        (
            "/group/transfer_group",
            json!({"groupID": GROUP, "oldOwnerUserID": VICTIM, "newOwnerUserID": FRIEND}),
            Refused(1002),
        ),
        // One applies only for oneself; answering and reading requests is for the group's managers.
        ("/group/join_group", json!({"groupID": GROUP, "inviterUserID": VICTIM, "joinSource": 3}), Refused(1002)),
        ("/group/quit_group", json!({"groupID": GROUP, "userID": FRIEND}), Refused(1002)),
        (
            "/group/group_application_response",
            json!({"groupID": GROUP, "fromUserID": "mal", "handleResult": 1}),
            Refused(1004),
        ),
        ("/group/get_recv_group_applicationList", json!({"fromUserID": VICTIM, "pagination": page}), Refused(1002)),
        ("/group/get_user_req_group_applicationList", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        ("/group/get_group_users_req_application_list", json!({"groupID": GROUP, "userIDs": [FRIEND]}), Refused(1004)),
        ("/group/get_specified_user_group_request_info", json!({"groupID": GROUP, "userID": FRIEND}), Refused(1004)),
        ("/group/get_group_application_unhandled_count", json!({"userID": VICTIM, "time": 0}), Refused(1002)),
        ("/group/kick_group", json!({"groupID": GROUP, "kickedUserIDs": [FRIEND]}), Refused(1002)),
        ("/group/dismiss_group", json!({"groupID": GROUP}), Refused(1002)),
        (
            "/group/set_group_member_info",
            json!({"members": [{"groupID": GROUP, "userID": FRIEND, "nickname": "pwned"}]}),
            Refused(1002),
        ),
        ("/group/get_group_abstract_info", json!({"groupIDs": [GROUP]}), Refused(1002)),
        ("/group/get_groups", json!({"pagination": page}), Refused(1002)),
        ("/conversation/get_conversation", json!({"ownerUserID": VICTIM, "conversationID": CHAT}), Refused(1002)),
        ("/conversation/get_conversations", json!({"ownerUserID": VICTIM, "conversationIDs": [CHAT]}), Refused(1002)),
        ("/conversation/get_all_conversations", json!({"ownerUserID": VICTIM}), Refused(1002)),
        ("/conversation/get_sorted_conversation_list", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        (
            "/conversation/get_incremental_conversations",
            json!({"userID": VICTIM, "versionID": "", "version": 0}),
            Refused(1002),
        ),
        ("/conversation/get_full_conversation_ids", json!({"userID": VICTIM, "idHash": 0}), Refused(1002)),
        ("/conversation/get_not_notify_conversation_ids", json!({"userID": VICTIM}), Refused(1002)),
        ("/conversation/get_pinned_conversation_ids", json!({"userID": VICTIM}), Refused(1002)),
        (
            "/conversation/set_conversations",
            json!({"userIDs": [VICTIM], "conversation": {"conversationID": CHAT, "isPinned": true}}),
            Refused(1002),
        ),
        ("/conversation/get_owner_conversation", json!({"userID": VICTIM, "pagination": page}), Refused(1002)),
        (
            "/conversation/get_conversation_offline_push_user_ids",
            json!({"conversationID": CHAT, "userIDs": [VICTIM]}),
            Refused(1002),
        ),
        ("/jssdk/get_conversations", json!({"ownerUserID": VICTIM, "conversationIDs": [CHAT]}), Refused(1002)),
        ("/jssdk/get_active_conversations", json!({"ownerUserID": VICTIM, "count": 10}), Refused(1002)),
        ("/third/fcm_update_token", json!({"account": VICTIM, "platformID": 2, "fcmToken": "t"}), Refused(1002)),
        ("/third/set_app_badge", json!({"userID": VICTIM, "appUnreadCount": 1}), Refused(1002)),
        (
            "/third/logs/upload",
            json!({"platform": 5, "fileURLs": [{"filename": "a.zip", "URL": "http://x/object/mal/a.zip"}]}),
            Anyone,
        ),
        ("/third/logs/delete", json!({"logIDs": ["1234567890"]}), Refused(1002)),
        ("/third/logs/search", json!({"keyword": VICTIM, "pagination": page}), Refused(1002)),
        ("/object/part_limit", json!({}), Anyone),
        ("/object/part_size", json!({"size": 1024}), Anyone),
        (
            "/object/initiate_multipart_upload",
            json!({"hash": "0cc175b9c0f1b6a831c399e269772661", "size": 1, "name": "alice/evil.png"}),
            Refused(1002),
        ),
        ("/object/auth_sign", json!({"uploadID": upload, "partNumbers": [1]}), Refused(1002)),
        (
            "/object/complete_multipart_upload",
            json!({"uploadID": upload, "parts": ["0cc175b9c0f1b6a831c399e269772661"], "name": "mal/x.png"}),
            Refused(1002),
        ),
        ("/object/access_url", json!({"name": "alice/app.log"}), Refused(1002)),
        ("/object/initiate_form_data", json!({"name": "alice/evil.txt", "size": 4}), Refused(1002)),
        ("/object/complete_form_data", json!({"id": form}), Refused(1002)),
        // A GET that needs no token; the victim's private object is refused (403) without one
        // and with another user's (checked by GET in the test below).
        ("/object/*name", json!({}), Anyone),
    ]
}

/// Requests where the attacker acts as themselves on something they are not part of.
fn non_member_rows() -> Vec<(&'static str, Value, i32)> {
    let sync = json!({"IsSyncSelf": true, "IsSyncOther": true});
    vec![
        // Not found: a conversation one is not in is not shown to exist.
        ("/msg/revoke_msg", json!({"userID": "mal", "conversationID": CHAT, "seq": 1}), 1004),
        (
            "/msg/delete_msgs",
            json!({"userID": "mal", "conversationID": CHAT, "seqs": [1], "deleteSyncOpt": sync}),
            1002,
        ),
        (
            "/msg/delete_msgs",
            json!({"userID": "mal", "conversationID": format!("sg_{GROUP}"), "seqs": [1], "deleteSyncOpt": sync}),
            1002,
        ),
        ("/msg/mark_msgs_as_read", json!({"userID": "mal", "conversationID": CHAT, "seqs": [1]}), 1002),
    ]
}

#[test]
fn every_route_has_a_row() {
    let served: BTreeSet<&str> = openim_api::paths().into_iter().collect();
    let rows: BTreeSet<&str> = rows("", "").into_iter().map(|(p, _, _)| p).collect();
    let missing: Vec<_> = served.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&served).collect();
    assert!(missing.is_empty(), "routes without an authorization row: {missing:?}");
    assert!(stale.is_empty(), "rows for routes that do not exist: {stale:?}");
}

/// What the victim has, as the administrator sees it: must be the same after the attacks.
async fn victim_state(s: &Stack) -> Value {
    let page = json!({"pageNumber": 1, "showNumber": 100});
    let mut state = serde_json::Map::new();
    for (path, body) in [
        ("/user/get_users_info", json!({"userIDs": [VICTIM, FRIEND]})),
        ("/friend/get_friend_list", json!({"userID": VICTIM, "pagination": page})),
        ("/friend/get_black_list", json!({"userID": VICTIM, "pagination": page})),
        ("/friend/get_friend_apply_list", json!({"userID": VICTIM, "pagination": page})),
        ("/group/get_group_member_list", json!({"groupID": GROUP, "pagination": page})),
        ("/group/get_joined_group_list", json!({"fromUserID": VICTIM, "pagination": page})),
        ("/conversation/get_all_conversations", json!({"ownerUserID": VICTIM})),
        ("/msg/get_conversations_has_read_and_max_seq", json!({"userID": VICTIM})),
        (
            "/msg/pull_msg_by_seq",
            json!({"userID": VICTIM, "seqRanges": [
            {"conversationID": CHAT, "begin": 1, "end": 10, "num": 10},
            {"conversationID": format!("sg_{GROUP}"), "begin": 1, "end": 10, "num": 10}]}),
        ),
        ("/user/process_user_command_get_all", json!({"userID": VICTIM})),
        ("/user/get_subscribe_users_status", json!({"userID": VICTIM})),
    ] {
        state.insert(path.to_owned(), s.rest.ok(path, body).await);
    }
    Value::Object(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_s_token_no_token_and_a_non_member_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&[VICTIM, FRIEND, "mal"]).await;
    s.rest.ok("/friend/import_friend", json!({"ownerUserID": VICTIM, "friendUserIDs": [FRIEND]})).await;
    let group = json!({"ownerUserID": VICTIM, "memberUserIDs": [FRIEND], "adminUserIDs": [],
        "groupInfo": {"groupID": GROUP, "groupName": "g", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    s.rest.ok("/user/process_user_command_add", json!({"userID": VICTIM, "type": 1, "uuid": "u1", "value": "v"})).await;
    let mut alice = s.connect(VICTIM, 1, Encoding::Json, false).await;
    assert_eq!(alice.send_text(FRIEND, "private").await.err_code, 0);
    let group_msg = alice.text(GROUP, true, "c-group", "for members");
    let ack = alice.call(req::SEND_MSG, group_msg.encode_to_vec()).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    while alice.next_push_within(std::time::Duration::from_millis(300)).await.is_some() {}
    let alice_token = s.token(VICTIM, 2).await;
    crate::objects::upload(&s, &alice_token, "alice/app.log", "logs", b"private").await;
    let started = s
        .rest
        .ok_as(
            &alice_token,
            "/object/initiate_multipart_upload",
            json!({"hash": "92eb5ffee6ae2fec3ad71c777531578f", "size": 1, "name": "alice/b.png"}),
        )
        .await;
    let upload = started["upload"]["uploadID"].as_str().unwrap().to_owned();
    let form =
        s.rest.ok_as(&alice_token, "/object/initiate_form_data", json!({"name": "alice/c.txt", "size": 4})).await;
    let form = form["id"].as_str().unwrap().to_owned();
    let before = victim_state(&s).await;

    let mal = s.token("mal", 1).await;
    let mut failures = Vec::new();
    for (path, body, expect) in rows(&upload, &form) {
        if path == "/object/*name" {
            let url = format!("http://{}/object/alice/app.log", s.server.api_addr);
            let none = reqwest::get(&url).await.unwrap().status();
            let as_mal = reqwest::Client::new().get(&url).header("token", &mal).send().await.unwrap().status();
            if none != 403 || as_mal != 403 {
                failures
                    .push(format!("GET {url}: want 403 without a token and as another user, got {none} and {as_mal}"));
            }
            continue;
        }
        let body = body.to_string();
        let none = s.rest.raw(path, "", body.clone()).await;
        let as_mal = s.rest.raw(path, &mal, body.clone()).await;
        let (want_none, want_mal) = match expect {
            Public(code) => (code, code),
            Refused(code) => (1507, code),
            Anyone => (1507, 0),
        };
        if none["errCode"] != want_none {
            failures.push(format!("{path} without a token: want {want_none}, got {none}"));
        }
        if as_mal["errCode"] != want_mal {
            failures.push(format!("{path} as another user: want {want_mal}, got {as_mal}"));
        }
        if want_mal != 0 && as_mal.to_string().contains("private") {
            failures.push(format!("{path}: refused but leaked a message: {as_mal}"));
        }
    }
    for (path, body, want) in non_member_rows() {
        let env = s.rest.raw(path, &mal, body.to_string()).await;
        if env["errCode"] != want {
            failures.push(format!("{path} as a non-member {body}: want {want}, got {env}"));
        }
    }
    assert!(failures.is_empty(), "{} authorization failures:\n{}", failures.len(), failures.join("\n"));

    // A non-member's pull of the chat and the group answers nothing of theirs.
    let mut m = s.connect("mal", 1, Encoding::Json, false).await;
    for conv in [CHAT.to_owned(), format!("sg_{GROUP}")] {
        assert!(m.pull(&conv, 1, 10).await.is_empty(), "{conv} pulled by a non-member");
    }
    assert_eq!(victim_state(&s).await, before, "the victim's data changed");
    s.stop().await;
}

/// Every WebSocket request code: a frame naming another user as its sender is refused with 3001
/// (the connection's user is the only one it speaks for); requests that name a user in their
/// payload are answered for the connection's user; codes a client may not send (server pushes,
/// signalling) are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_websocket_request_code_speaks_only_for_the_connection_s_user() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&[VICTIM, FRIEND, "mal"]).await;
    let mut alice = s.connect(VICTIM, 1, Encoding::Json, false).await;
    assert_eq!(alice.send_text(FRIEND, "private").await.err_code, 0);
    while alice.next_push_within(std::time::Duration::from_millis(300)).await.is_some() {}
    let mut mal = s.connect("mal", 1, Encoding::Json, false).await;

    let pull = PullMessageBySeqsReq {
        user_id: VICTIM.into(),
        seq_ranges: vec![SeqRange { conversation_id: CHAT.into(), begin: 1, end: 10, num: 10 }],
        ..Default::default()
    };
    let forged = MsgData { send_id: VICTIM.into(), ..mal.text(FRIEND, false, "c-forged", "as alice") };
    // (code, payload, the code mal gets with his own sendID).
    let rows: Vec<(i32, Vec<u8>, i32)> = vec![
        (req::GET_NEWEST_SEQ, GetMaxSeqReq { user_id: VICTIM.into() }.encode_to_vec(), 0),
        (req::PULL_MSG_BY_SEQ_LIST, pull.encode_to_vec(), 0),
        (req::SEND_MSG, forged.encode_to_vec(), 1002),
        (req::SEND_SIGNAL_MSG, Vec::new(), 1001),
        (req::PULL_MSG, Vec::new(), 0),
        (req::GET_CONV_MAX_READ_SEQ, Vec::new(), 0),
        (req::PULL_CONV_LAST_MESSAGE, Vec::new(), 0),
        (req::PUSH_MSG, Vec::new(), 1001),
        (req::KICK_ONLINE, Vec::new(), 1001),
        (req::SET_BACKGROUND_STATUS, Vec::new(), 0),
        (req::SUB_USER_ONLINE_STATUS, Vec::new(), 0),
        (req::WS_DATA_ERROR, Vec::new(), 1001),
        (2101, Vec::new(), 1001),
        (req::LOGOUT, Vec::new(), 0),
    ];
    let covered: BTreeSet<i32> = rows.iter().map(|r| r.0).collect();
    for code in req::ALL {
        assert!(covered.contains(&code), "request code {code} has no authorization row");
    }
    let mut failures = Vec::new();
    for (code, payload, want) in rows {
        // Speaking as alice on mal's connection.
        let id = mal.send_req_as(code, VICTIM, payload.clone()).await;
        let resp = mal.recv_reply(&id).await;
        if resp.err_code != 3001 {
            failures.push(format!("{code} with sendID alice: want 3001, got {} {}", resp.err_code, resp.err_msg));
        }
        if code == req::LOGOUT {
            continue; // would close mal's connection: answered 0 for his own session
        }
        let resp = mal.call(code, payload).await;
        if resp.err_code != want {
            failures.push(format!("{code} as mal: want {want}, got {} {}", resp.err_code, resp.err_msg));
        }
        if String::from_utf8_lossy(&resp.data).contains("private") {
            failures.push(format!("{code}: alice's message reached mal"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // Alice's chat is as it was: one message, hers.
    let msgs = alice.pull(CHAT, 1, 10).await;
    assert_eq!(msgs.iter().map(|m| m.send_id.as_str()).collect::<Vec<_>>(), [VICTIM]);
    s.stop().await;
}
