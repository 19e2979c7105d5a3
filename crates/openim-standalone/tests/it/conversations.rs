//! Conversation settings as the official SDK changes them: `set_conversations` for one's own
//! chats, a 1300 notification to every device of the user, and a new device's full sync.

use std::time::Duration;

use openim_proto::ws::Encoding;
use serde_json::{Value, json};

use crate::stack::Stack;

fn set(user: &str, conv: &str, fields: Value) -> Value {
    let mut c = json!({"conversationID": conv});
    c.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    json!({"userIDs": [user], "conversation": c})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_and_do_not_disturb_reach_the_user_s_other_device_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["amy", "ben"]).await;
    let amy = s.token("amy", 5).await;
    let mut amy_desktop = s.connect("amy", 3, Encoding::Gob, true).await;
    let mut ben = s.connect("ben", 5, Encoding::Json, false).await;
    assert_eq!(ben.send_text("amy", "hi").await.err_code, 0);
    let conv = "si_amy_ben";

    s.rest
        .ok_as(&amy, "/conversation/set_conversations", set("amy", conv, json!({"isPinned": true, "recvMsgOpt": 2})))
        .await;
    let (n_conv, note) = amy_desktop.next_notification_of(1300).await;
    assert_eq!(n_conv, "n_amy_amy", "the user's own notification conversation");
    let elem: Value = serde_json::from_slice(&note.content).unwrap();
    let tips: Value = serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap();
    assert_eq!(tips["conversationIDList"], json!([conv]));

    let got = s
        .rest
        .ok_as(&amy, "/conversation/get_conversation", json!({"ownerUserID": "amy", "conversationID": conv}))
        .await;
    assert_eq!(
        (got["conversation"]["isPinned"].as_bool(), got["conversation"]["recvMsgOpt"].as_i64()),
        (Some(true), Some(2))
    );
    let ids = s.rest.ok_as(&amy, "/conversation/get_not_notify_conversation_ids", json!({"userID": "amy"})).await;
    assert_eq!(ids["conversationIDs"], json!([conv]));
    // Ben's side is his own.
    let ben_token = s.token("ben", 3).await;
    let his = s
        .rest
        .ok_as(&ben_token, "/conversation/get_conversation", json!({"ownerUserID": "ben", "conversationID": conv}))
        .await;
    assert_eq!(his["conversation"]["isPinned"], false);
    assert!(
        ben.next_push_messages_within(Duration::from_millis(500)).await.is_none_or(|p| p.notification_msgs.is_empty()),
        "ben is not told about amy's settings"
    );

    // Setting what is already set changes nothing and tells nobody.
    s.rest.ok_as(&amy, "/conversation/set_conversations", set("amy", conv, json!({"isPinned": true}))).await;
    assert!(amy_desktop.next_push_messages_within(Duration::from_millis(500)).await.is_none());

    // A new device's first sync: every conversation, paged.
    let page = s
        .rest
        .ok_as(
            &amy,
            "/conversation/get_owner_conversation",
            json!({"userID": "amy", "pagination": {"pageNumber": 1, "showNumber": 20}}),
        )
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(
        (page["conversations"][0]["conversationID"].as_str(), page["conversations"][0]["maxSeq"].as_i64()),
        (Some(conv), Some(1))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_settings_are_one_s_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["cat", "dog", "eel"]).await;
    let cat = s.token("cat", 5).await;
    let eel = s.token("eel", 5).await;
    let body = set("cat", "si_cat_dog", json!({"isPinned": true}));
    for (token, code, why) in [(&eel, 1002, "another user's token"), (&String::new(), 1507, "no token")] {
        let env = s.rest.raw("/conversation/set_conversations", token, body.to_string()).await;
        assert_eq!(env["errCode"], code, "{why}: {env}");
    }
    let env = s.rest.raw("/conversation/get_owner_conversation", &eel, json!({"userID": "cat"}).to_string()).await;
    assert_eq!(env["errCode"], 1002, "{env}");
    // Not a conversation of the user.
    let env = s
        .rest
        .raw("/conversation/set_conversations", &eel, set("eel", "si_cat_dog", json!({"isPinned": true})).to_string())
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    s.rest.ok("/group/create_group", json!({"ownerUserID": "cat", "memberUserIDs": ["dog"], "groupInfo": {"groupID": "pets", "groupName": "pets", "groupType": 2}})).await;
    let env = s
        .rest
        .raw("/conversation/set_conversations", &eel, set("eel", "sg_pets", json!({"recvMsgOpt": 1})).to_string())
        .await;
    assert_eq!(env["errCode"], 1203, "a non-member: {env}");
    s.rest.ok_as(&cat, "/conversation/set_conversations", set("cat", "sg_pets", json!({"recvMsgOpt": 1}))).await;
    // Bounded input.
    let env = s
        .rest
        .raw(
            "/conversation/set_conversations",
            &cat,
            set("cat", "si_cat_dog", json!({"ex": "x".repeat(2049)})).to_string(),
        )
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    let env = s
        .rest
        .raw("/conversation/set_conversations", &cat, set("cat", "si_cat_dog", json!({"recvMsgOpt": 9})).to_string())
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    // Whose do-not-disturb is on is for administrators.
    let ask = json!({"conversationID": "sg_pets", "userIDs": ["cat", "dog"]});
    assert_eq!(
        s.rest.raw("/conversation/get_conversation_offline_push_user_ids", &cat, ask.to_string()).await["errCode"],
        1002
    );
    let got = s.rest.ok("/conversation/get_conversation_offline_push_user_ids", ask).await;
    assert_eq!(got["userIDs"], json!(["dog"]));
    s.stop().await;
}

/// The JS SDK's conversation list joins users, friends and groups; a user with more peers than
/// one internal request may name (1,000) still gets all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jssdk_conversation_list_answers_more_peers_than_one_request_may_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let peers: Vec<String> = (0..1100).map(|i| format!("p{i:04}")).collect();
    let mut all: Vec<&str> = peers.iter().map(String::as_str).collect();
    all.push("amy");
    for chunk in all.chunks(500) {
        s.register(chunk).await;
    }
    for p in &peers {
        s.rest
            .ok("/conversation/set_conversations", set("amy", &format!("si_amy_{p}"), json!({"isPinned": true})))
            .await;
    }
    let amy = s.token("amy", 5).await;
    let js = s.rest.ok_as(&amy, "/jssdk/get_conversations", json!({"ownerUserID": "amy", "conversationIDs": []})).await;
    let convs = js["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 1100);
    let mut users: Vec<&str> = convs.iter().filter_map(|c| c["user"]["userID"].as_str()).collect();
    users.sort_unstable();
    assert_eq!(users, peers.iter().map(String::as_str).collect::<Vec<_>>(), "every peer's profile is joined");
    s.stop().await;
}
