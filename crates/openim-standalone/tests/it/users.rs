//! Profiles as the official SDK changes them, and the administrators' user routes.

use openim_proto::ws::Encoding;
use serde_json::{Value, json};

use crate::stack::Stack;

fn tips(m: &openim_proto::pb::sdkws::MsgData) -> Value {
    let elem: Value = serde_json::from_slice(&m.content).unwrap();
    serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nickname_change_reaches_the_user_s_devices_and_their_friends() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann", "bo", "cy"]).await;
    s.rest.ok("/friend/import_friend", json!({"ownerUserID": "ann", "friendUserIDs": ["bo"]})).await;
    let ann = s.token("ann", 5).await;
    let mut ann_phone = s.connect("ann", 2, Encoding::Gob, false).await;
    let mut bo = s.connect("bo", 5, Encoding::Gob, true).await;
    let mut cy = s.connect("cy", 5, Encoding::Gob, true).await;
    // Drain the friendship notifications.
    while bo.next_push_messages_within(std::time::Duration::from_millis(300)).await.is_some() {}
    while ann_phone.next_push_messages_within(std::time::Duration::from_millis(300)).await.is_some() {}

    let body = json!({"userInfo": {"userID": "ann", "nickname": "Annie"}});
    s.rest.ok_as(&ann, "/user/update_user_info_ex", body).await;
    let (conv, note) = ann_phone.next_notification_of(1303).await;
    assert_eq!((conv.as_str(), note.content_type, tips(&note)["userID"].as_str()), ("n_ann_ann", 1303, Some("ann")));
    let (conv, note) = bo.next_notification_of(1209).await;
    assert_eq!((conv.as_str(), note.content_type, tips(&note)["userID"].as_str()), ("n_ann_bo", 1209, Some("ann")));
    assert!(
        cy.next_push_messages_within(std::time::Duration::from_millis(500)).await.is_none(),
        "not a friend: not told"
    );
    let got = s.rest.ok_as(&ann, "/user/get_users_info", json!({"userIDs": ["ann"]})).await;
    assert_eq!(got["usersInfo"][0]["nickname"], "Annie");

    // The older route: empty fields stay as they are.
    s.rest
        .ok_as(&ann, "/user/update_user_info", json!({"userInfo": {"userID": "ann", "faceURL": "http://x/a.png"}}))
        .await;
    let got = s.rest.ok_as(&ann, "/user/get_users_info", json!({"userIDs": ["ann"]})).await;
    assert_eq!(
        (got["usersInfo"][0]["nickname"].as_str(), got["usersInfo"][0]["faceURL"].as_str()),
        (Some("Annie"), Some("http://x/a.png"))
    );
    s.rest.ok_as(&ann, "/user/set_global_msg_recv_opt", json!({"userID": "ann", "globalRecvMsgOpt": 2})).await;
    let got = s.rest.ok_as(&ann, "/user/get_users_info", json!({"userIDs": ["ann"]})).await;
    assert_eq!(got["usersInfo"][0]["globalRecvMsgOpt"], 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_routes_refuse_other_users_and_non_administrators() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["dee", "eve"]).await;
    let eve = s.token("eve", 5).await;
    let rows: Vec<(&str, Value, i64)> = vec![
        ("/user/update_user_info_ex", json!({"userInfo": {"userID": "dee", "nickname": "x"}}), 1002),
        ("/user/update_user_info", json!({"userInfo": {"userID": "dee", "nickname": "x"}}), 1002),
        ("/user/set_global_msg_recv_opt", json!({"userID": "dee", "globalRecvMsgOpt": 1}), 1002),
        ("/user/account_check", json!({"checkUserIDs": ["dee"]}), 1002),
        ("/user/get_all_users_uid", json!({"pagination": {"pageNumber": 1, "showNumber": 10}}), 1002),
        ("/user/get_users", json!({"pagination": {"pageNumber": 1, "showNumber": 10}}), 1002),
    ];
    for (path, body, code) in &rows {
        let env = s.rest.raw(path, &eve, body.to_string()).await;
        assert_eq!(env["errCode"], *code, "{path} as another user: {env}");
        let env = s.rest.raw(path, "", body.to_string()).await;
        assert_eq!(env["errCode"], 1507, "{path} without a token: {env}");
    }
    let long = json!({"userInfo": {"userID": "eve", "nickname": "n".repeat(256)}});
    assert_eq!(s.rest.raw("/user/update_user_info_ex", &eve, long.to_string()).await["errCode"], 1001);
    let bad = json!({"userID": "eve", "globalRecvMsgOpt": 7});
    assert_eq!(s.rest.raw("/user/set_global_msg_recv_opt", &eve, bad.to_string()).await["errCode"], 1001);

    // Presence and the server's clock are for any signed-in user; lists are bounded.
    let status = s.rest.ok_as(&eve, "/user/get_users_status", json!({"userID": "eve", "userIDs": ["dee"]})).await;
    assert_eq!(status["statusList"][0]["status"], 0);
    assert_eq!(
        s.rest.raw("/user/get_users_status", "", json!({"userIDs": ["dee"]}).to_string()).await["errCode"],
        1507
    );
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    assert_eq!(s.rest.raw("/user/get_users_status", &eve, json!({"userIDs": many}).to_string()).await["errCode"], 1001);
    let now = s.rest.ok_as(&eve, "/msg/get_server_time", json!({})).await;
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now["serverTime"].as_i64().unwrap() - ms).abs() < 5_000, "{now}");

    let check = s.rest.ok("/user/account_check", json!({"checkUserIDs": ["dee", "nobody"]})).await;
    assert_eq!(
        check["results"],
        json!([{"userID": "dee", "accountStatus": 1}, {"userID": "nobody", "accountStatus": 0}])
    );
    let all = s.rest.ok("/user/get_all_users_uid", json!({"pagination": {"pageNumber": 1, "showNumber": 10}})).await;
    assert_eq!((all["total"].as_i64(), all["userIDs"].clone()), (Some(2), json!(["dee", "eve"])));
    let one = s.rest.ok("/user/get_users", json!({"userID": "eve"})).await;
    assert_eq!((one["total"].as_i64(), one["users"][0]["userID"].as_str()), (Some(1), Some("eve")));
    s.stop().await;
}
