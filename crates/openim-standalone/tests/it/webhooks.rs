//! `webhooks.yml`'s message callbacks against a real HTTP server in the test: a refusal stops the
//! message with the webhook's error, a modification changes the stored text, `failedContinue`
//! decides when the webhook is down, and after-callbacks arrive once per message.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use openim_common::webhook::{AfterConfig, BeforeConfig, WebhooksConfig};
use openim_proto::ws::Encoding;
use openim_testkit::client::text_content;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::stack::Stack;

/// One call the webhook server got: (command from the path, operationID header, body).
type Calls = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A webhook server: refuses texts holding "forbidden", rewrites "modify me", accepts the rest.
async fn hook_server() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hooks/{command}",
            axum::routing::post(
                |State(calls): State<Calls>, Path(command): Path<String>, headers: HeaderMap, body: String| async move {
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let op = headers.get("operationID").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    calls.lock().push((command.clone(), op, body.clone()));
                    let content = body["content"].as_str().unwrap_or_default();
                    let answer = match command.as_str() {
                        "callbackBeforeSendSingleMsgCommand" if content.contains("forbidden") => {
                            json!({"actionCode": 0, "nextCode": 1, "errCode": 5001, "errMsg": "blocked by policy", "errDlt": "word"})
                        }
                        "callbackBeforeAddFriendCommand" if body["reqMsg"].as_str().is_some_and(|m| m.contains("forbidden")) => {
                            json!({"actionCode": 0, "nextCode": 1, "errCode": 5002, "errMsg": "no friends for you"})
                        }
                        "callbackBeforeCreateGroupCommand" if body["groupName"] == "forbidden" => {
                            json!({"actionCode": 0, "nextCode": 1, "errCode": 5003, "errMsg": "no such groups"})
                        }
                        "callbackBeforeCreateGroupCommand" if body["groupName"] == "rename me" => {
                            json!({"actionCode": 0, "groupName": "renamed by the webhook"})
                        }
                        "callbackBeforeOfflinePushCommand" if content.contains("secret") => {
                            json!({"actionCode": 0, "nextCode": 1, "errCode": 5004, "errMsg": "not pushed"})
                        }
                        "callbackBeforeOfflinePushCommand" if content.contains("redirect") => {
                            json!({"actionCode": 0, "userIDList": ["pc"], "offlinePushInfo": {"title": "changed by the webhook"}})
                        }
                        "callbackBeforeMsgModifyCommand" if content.contains("modify me") => {
                            json!({"actionCode": 0, "content": "{\"content\":\"modified by the webhook\"}"})
                        }
                        _ => json!({"actionCode": 0, "errCode": 0, "errMsg": "", "nextCode": 0}),
                    };
                    axum::Json(answer)
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn before(failed_continue: bool) -> BeforeConfig {
    BeforeConfig { enable: true, timeout: 5, failed_continue, ..Default::default() }
}

fn hooks(url: &str, failed_continue: bool) -> WebhooksConfig {
    WebhooksConfig {
        url: url.to_owned(),
        before_send_single_msg: before(failed_continue),
        before_msg_modify: before(failed_continue),
        after_send_single_msg: AfterConfig { enable: true, timeout: 5, ..Default::default() },
        ..Default::default()
    }
}

fn count(calls: &Calls, command: &str, client_msg_id: &str) -> usize {
    calls.lock().iter().filter(|(c, _, b)| c == command && b["clientMsgID"] == client_msg_id).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_stops_the_message_and_a_modification_changes_it() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |cfg| cfg.webhooks = hooks(&url, false)).await;
    s.register(&["wa", "wb"]).await;
    let mut a = s.connect("wa", 1, Encoding::Json, false).await;
    let mut b = s.connect("wb", 1, Encoding::Json, false).await;

    let refused = a.send_text("wb", "forbidden words").await;
    assert_eq!(refused.err_code, 5001, "the webhook's errCode: {}", refused.err_msg);
    assert!(refused.err_msg.contains("blocked by policy"), "the webhook's errMsg: {}", refused.err_msg);
    let modified = a.send_text("wb", "modify me").await;
    assert_eq!(modified.err_code, 0, "{}", modified.err_msg);
    let got = b.next_push().await;
    assert_eq!(got.len(), 1, "only the accepted message arrives");
    assert_eq!(got[0].content, text_content("modified by the webhook"));
    let stored = b.pull("si_wa_wb", 1, 10).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content, text_content("modified by the webhook"), "the stored text is the webhook's");

    // The before-callback saw OpenIM's body and header.
    let first = calls.lock().iter().find(|(c, _, _)| c == "callbackBeforeSendSingleMsgCommand").cloned().unwrap();
    assert_eq!(first.2["callbackCommand"], "callbackBeforeSendSingleMsgCommand");
    assert_eq!((first.2["sendID"].as_str(), first.2["recvID"].as_str()), (Some("wa"), Some("wb")));
    assert_eq!(first.2["contentType"], 101);
    assert!(!first.1.is_empty(), "the operationID header is set");

    // After-callbacks: once per accepted message, none for the refused one.
    let accepted = stored[0].client_msg_id.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&calls, "callbackAfterSendSingleMsgCommand", &accepted) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no afterSendSingleMsg came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&calls, "callbackAfterSendSingleMsgCommand", &accepted), 1, "exactly once");
    let after = calls.lock().iter().filter(|(c, _, _)| c == "callbackAfterSendSingleMsgCommand").count();
    assert_eq!(after, 1, "no after-callback for the refused message");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_continue_decides_when_the_webhook_is_down() {
    // Nothing listens there.
    let down = format!("http://127.0.0.1:{}/hooks", openim_testkit::servers::free_port());
    for (failed_continue, want) in [(false, 90004), (true, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let s = Stack::start_with(dir.path(), |cfg| cfg.webhooks = hooks(&down, failed_continue)).await;
        s.register(&["da", "db"]).await;
        let mut a = s.connect("da", 1, Encoding::Json, false).await;
        let mut b = s.connect("db", 1, Encoding::Json, false).await;
        let ack = a.send_text("db", "hello").await;
        assert_eq!(ack.err_code, want, "failedContinue {failed_continue}: {}", ack.err_msg);
        let delivered = b.next_push_within(Duration::from_millis(800)).await.is_some();
        assert_eq!(delivered, failed_continue, "failedContinue {failed_continue}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_types_are_not_sent_to_the_webhook() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |cfg| {
        let mut h = hooks(&url, false);
        h.before_send_single_msg.denied_types = vec!["100-199".into()];
        cfg.webhooks = h;
    })
    .await;
    s.register(&["ta", "tb"]).await;
    let mut a = s.connect("ta", 1, Encoding::Json, false).await;
    let ack = a.send_text("tb", "forbidden, but texts are not checked").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    assert!(calls.lock().iter().all(|(c, _, _)| c != "callbackBeforeSendSingleMsgCommand"));
    s.stop().await;
}

fn commands(calls: &Calls) -> Vec<String> {
    calls.lock().iter().map(|(c, _, _)| c.clone()).collect()
}

/// The first call of `command`, waited for.
async fn wait_for(calls: &Calls, command: &str) -> Value {
    wait_for_n(calls, command, 1).await.swap_remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friend_applications_and_revokes_reach_the_webhook() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let on = || BeforeConfig { enable: true, timeout: 5, ..Default::default() };
    let told = || AfterConfig { enable: true, timeout: 5, ..Default::default() };
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.webhooks = WebhooksConfig {
            url: url.clone(),
            before_add_friend: on(),
            after_add_friend: told(),
            before_add_friend_agree: on(),
            after_add_friend_agree: told(),
            after_revoke_msg: told(),
            ..Default::default()
        }
    })
    .await;
    s.register(&["fa", "fb"]).await;
    let (fa, fb) = (s.token("fa", 2).await, s.token("fb", 2).await);
    let apply = |msg: &str| json!({"fromUserID": "fa", "toUserID": "fb", "reqMsg": msg}).to_string();
    let refused = s.rest.raw("/friend/add_friend", &fa, apply("forbidden")).await;
    assert_eq!(refused["errCode"], 5002, "{refused}");
    assert!(
        s.rest
            .raw(
                "/friend/get_friend_apply_list",
                &fb,
                json!({"userID": "fb", "pagination": {"pageNumber": 1, "showNumber": 10}}).to_string()
            )
            .await["data"]["friendRequests"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "a refused application is not stored"
    );

    s.rest.ok_as(&fa, "/friend/add_friend", serde_json::from_str(&apply("hi")).unwrap()).await;
    let added = wait_for(&calls, "callbackAfterAddFriendCommand").await;
    assert_eq!(
        (added["fromUserID"].as_str(), added["toUserID"].as_str(), added["reqMsg"].as_str()),
        (Some("fa"), Some("fb"), Some("hi"))
    );

    let answer = json!({"fromUserID": "fa", "toUserID": "fb", "handleResult": 1, "handleMsg": "ok"});
    s.rest.ok_as(&fb, "/friend/add_friend_response", answer).await;
    let agreed = wait_for(&calls, "callbackAfterAddFriendAgreeCommand").await;
    assert_eq!(
        (agreed["fromUserID"].as_str(), agreed["blackUserID"].as_str()),
        (Some("fa"), Some("fb")),
        "OpenIM's field names"
    );
    assert_eq!(agreed["HandleResult"], 1);
    assert!(commands(&calls).contains(&"callbackBeforeAddFriendAgreeCommand".to_owned()));

    let mut a = s.connect("fa", 1, Encoding::Json, false).await;
    assert_eq!(a.send_text("fb", "oops").await.err_code, 0);
    while a.next_own_push_within(Duration::from_millis(300)).await.is_some() {}
    s.rest.ok_as(&fa, "/msg/revoke_msg", json!({"conversationID": "si_fa_fb", "seq": 1, "userID": "fa"})).await;
    let revoked = wait_for(&calls, "callbackBeforeAfterMsgCommand").await;
    assert_eq!(
        (revoked["conversationID"].as_str(), revoked["seq"].as_i64(), revoked["userID"].as_str()),
        (Some("si_fa_fb"), Some(1), Some("fa"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_s_life_reaches_the_webhook() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let on = || BeforeConfig { enable: true, timeout: 5, ..Default::default() };
    let told = || AfterConfig { enable: true, timeout: 5, ..Default::default() };
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.webhooks = WebhooksConfig {
            url: url.clone(),
            before_create_group: on(),
            after_create_group: told(),
            before_member_join_group: on(),
            after_join_group: told(),
            after_quit_group: told(),
            after_kick_group_member: told(),
            after_dismiss_group: told(),
            after_transfer_group_owner: told(),
            before_set_group_info: on(),
            after_set_group_info: told(),
            ..Default::default()
        }
    })
    .await;
    s.register(&["ga", "gb", "gc", "gd"]).await;
    let create = |id: &str, name: &str| {
        json!({"ownerUserID": "ga", "memberUserIDs": ["gb", "gd"], "adminUserIDs": [],
            "groupInfo": {"groupID": id, "groupName": name, "groupType": 2, "needVerification": 2}})
        .to_string()
    };
    let refused = s.rest.raw("/group/create_group", &s.rest.token, create("g-no", "forbidden")).await;
    assert_eq!(refused["errCode"], 5003, "{refused}");
    let created = s.rest.raw("/group/create_group", &s.rest.token, create("g-hook", "rename me")).await;
    assert_eq!(created["errCode"], 0, "{created}");
    assert_eq!(created["data"]["groupInfo"]["groupName"], "renamed by the webhook", "the webhook's name is kept");
    let after = wait_for(&calls, "callbackAfterCreateGroupCommand").await;
    assert_eq!(
        (after["groupID"].as_str(), after["groupName"].as_str()),
        (Some("g-hook"), Some("renamed by the webhook"))
    );
    let before = calls
        .lock()
        .iter()
        .find(|(c, _, b)| c == "callbackBeforeCreateGroupCommand" && b["groupName"] == "rename me")
        .cloned()
        .unwrap()
        .2;
    let listed: Vec<(&str, i64)> = before["initMemberList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userID"].as_str().unwrap(), m["roleLevel"].as_i64().unwrap()))
        .collect();
    assert_eq!(listed, vec![("ga", 100), ("gb", 20), ("gd", 20)], "owner first, then the members");

    let gc = s.token("gc", 2).await;
    s.rest
        .ok_as(
            &gc,
            "/group/join_group",
            json!({"groupID": "g-hook", "reqMessage": "hi", "joinSource": 3, "inviterUserID": "gc"}),
        )
        .await;
    let joined = wait_for(&calls, "callbackAfterJoinGroupCommand").await;
    assert_eq!(joined["groupID"], "g-hook");
    assert!(commands(&calls).contains(&"callbackBeforeMembersJoinGroupCommand".to_owned()));

    s.rest.ok_as(&gc, "/group/quit_group", json!({"groupID": "g-hook", "userID": "gc"})).await;
    assert_eq!(wait_for(&calls, "callbackAfterQuitGroupCommand").await["userID"], "gc");
    let ga = s.token("ga", 2).await;
    s.rest
        .ok_as(&ga, "/group/kick_group", json!({"groupID": "g-hook", "kickedUserIDs": ["gd"], "reason": "spam"}))
        .await;
    let kicked = wait_for(&calls, "callbackAfterKickGroupCommand").await;
    assert_eq!((kicked["kickedUserIDs"].clone(), kicked["reason"].clone()), (json!(["gd"]), json!("spam")));
    s.rest.ok_as(&ga, "/group/set_group_info_ex", json!({"groupID": "g-hook", "introduction": "about"})).await;
    assert_eq!(wait_for(&calls, "callbackAfterSetGroupInfoCommand").await["introduction"], "about");
    assert!(commands(&calls).contains(&"callbackBeforeSetGroupInfoCommand".to_owned()));
    s.rest
        .ok_as(
            &ga,
            "/group/transfer_group",
            json!({"groupID": "g-hook", "oldOwnerUserID": "ga", "newOwnerUserID": "gb"}),
        )
        .await;
    assert_eq!(wait_for(&calls, "callbackAfterTransferGroupOwnerCommand").await["newOwnerUserID"], "gb");
    let gb = s.token("gb", 2).await;
    s.rest.ok_as(&gb, "/group/dismiss_group", json!({"groupID": "g-hook"})).await;
    let dismissed = wait_for(&calls, "callbackAfterDisMissGroupCommand").await;
    assert_eq!((dismissed["groupID"].as_str(), dismissed["ownerID"].as_str()), (Some("g-hook"), Some("gb")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_change_reaches_the_webhook() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let told = || AfterConfig { enable: true, timeout: 5, ..Default::default() };
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.webhooks = WebhooksConfig {
            url: url.clone(),
            after_update_user_info: told(),
            after_update_user_info_ex: told(),
            ..Default::default()
        }
    })
    .await;
    s.register(&["ua"]).await;
    let ua = s.token("ua", 2).await;
    s.rest.ok_as(&ua, "/user/update_user_info_ex", json!({"userInfo": {"userID": "ua", "nickname": "Ann"}})).await;
    let ex = wait_for(&calls, "callbackAfterUpdateUserInfoExCommand").await;
    assert_eq!(
        (ex["userID"].clone(), ex["nickName"].clone(), ex["faceURL"].clone()),
        (json!("ua"), json!("Ann"), Value::Null)
    );
    s.rest
        .ok_as(&ua, "/user/update_user_info", json!({"userInfo": {"userID": "ua", "faceURL": "http://x/f.png"}}))
        .await;
    let plain = wait_for(&calls, "callbackAfterUpdateUserInfoCommand").await;
    assert_eq!((plain["nickName"].clone(), plain["faceURL"].clone()), (json!(""), json!("http://x/f.png")));
    s.stop().await;
}

/// The calls of `command` (bodies, in order) once there are at least `n`.
async fn wait_for_n(calls: &Calls, command: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got: Vec<Value> = calls.lock().iter().filter(|(c, _, _)| c == command).map(|(_, _, b)| b.clone()).collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} {command} came; got {:?}",
            got.len(),
            commands(calls)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_coming_going_and_kicked_reach_the_webhook() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let told = || AfterConfig { enable: true, timeout: 5, ..Default::default() };
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.webhooks = WebhooksConfig {
            url: url.clone(),
            after_user_online: told(),
            after_user_offline: told(),
            after_user_kick_off: told(),
            ..Default::default()
        }
    })
    .await;
    s.register(&["pa"]).await;
    let first = s.connect("pa", 1, Encoding::Json, false).await;
    let online = wait_for(&calls, "callbackAfterUserOnlineCommand").await;
    assert_eq!((online["userID"].as_str(), online["platformID"].as_i64()), (Some("pa"), Some(1)), "{online}");
    assert_eq!(online["platform"], "IOS");
    assert_eq!(online["isAppBackground"], false);
    assert!(online["seq"].as_i64().unwrap() > 1_700_000_000_000, "seq is the time in ms: {online}");

    // A second login on the same platform closes the first: kicked off, online again, and the
    // user never went offline on that platform.
    let _second = s.connect("pa", 1, Encoding::Json, false).await;
    let kicked = wait_for(&calls, "callbackAfterUserKickOffCommand").await;
    assert_eq!((kicked["userID"].as_str(), kicked["platformID"].as_i64()), (Some("pa"), Some(1)), "{kicked}");
    wait_for_n(&calls, "callbackAfterUserOnlineCommand", 2).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!commands(&calls).iter().any(|c| c == "callbackAfterUserOfflineCommand"), "still online on IOS");

    // The last connection on the platform goes: offline, once.
    drop(_second);
    let offline = wait_for(&calls, "callbackAfterUserOfflineCommand").await;
    assert_eq!((offline["userID"].as_str(), offline["platformID"].as_i64()), (Some("pa"), Some(1)), "{offline}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(wait_for_n(&calls, "callbackAfterUserOfflineCommand", 1).await.len(), 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_offline_push_refuses_or_changes_the_push() {
    let (url, calls) = hook_server().await;
    let dir = tempfile::tempdir().unwrap();
    let bridge = format!("{url}/bridge");
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.webhooks = WebhooksConfig { url: url.clone(), before_offline_push: before(false), ..Default::default() };
        cfg.push.offline_webhook = bridge.clone();
    })
    .await;
    s.register(&["oa", "ob", "pc"]).await;
    let mut a = s.connect("oa", 2, Encoding::Json, false).await;

    // Accepted as it is: the bridge gets the push the hook saw, with the message's push text.
    let mut msg = a.text("ob", false, "c-plain", "hello");
    msg.offline_push_info =
        Some(openim_proto::pb::sdkws::OfflinePushInfo { title: "A says".into(), ..Default::default() });
    let ack = a.call(openim_proto::constants::req::SEND_MSG, prost::Message::encode_to_vec(&msg)).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let pushed = wait_for(&calls, "bridge").await;
    assert_eq!(pushed["userIDList"], json!(["ob"]), "{pushed}");
    assert_eq!(pushed["offlinePushInfo"]["title"], "A says");
    let hook = wait_for(&calls, "callbackBeforeOfflinePushCommand").await;
    assert_eq!(hook["callbackCommand"], "callbackBeforeOfflinePushCommand");
    assert_eq!((hook["platformID"].as_i64(), hook["platform"].as_str()), (Some(2), Some("Android")), "{hook}");
    assert_eq!(hook["userIDList"], json!(["ob"]));
    assert_eq!(hook["title"], "A says", "offlinePushInfo's fields are at the top level, as OpenIM's: {hook}");
    assert_eq!((hook["sendID"].as_str(), hook["clientMsgID"].as_str()), (Some("oa"), Some("c-plain")));

    // Refused: nothing reaches the bridge.
    assert_eq!(a.send_text("ob", "a secret").await.err_code, 0, "the message itself is sent");
    wait_for_n(&calls, "callbackBeforeOfflinePushCommand", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(wait_for_n(&calls, "bridge", 1).await.len(), 1, "a refused push is not bridged");

    // Changed: who is pushed and what they see.
    assert_eq!(a.send_text("ob", "redirect this").await.err_code, 0);
    let pushed = wait_for_n(&calls, "bridge", 2).await.pop().unwrap();
    assert_eq!(pushed["userIDList"], json!(["pc"]), "the webhook's user list: {pushed}");
    assert_eq!(pushed["offlinePushInfo"]["title"], "changed by the webhook");
    s.stop().await;
}
