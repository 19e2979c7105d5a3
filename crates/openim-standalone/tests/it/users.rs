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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_s_command_list_is_kept_and_their_devices_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["fay", "gus"]).await;
    let fay = s.token("fay", 5).await;
    let mut fay_phone = s.connect("fay", 2, Encoding::Gob, false).await;

    let add = |uuid: &str, value: &str| json!({"userID": "fay", "type": 1, "uuid": uuid, "value": value, "ex": null});
    s.rest.ok_as(&fay, "/user/process_user_command_add", add("m1", "first")).await;
    let (conv, note) = fay_phone.next_notification_of(1305).await;
    assert_eq!((conv.as_str(), tips(&note)["fromUserID"].as_str()), ("n_fay_fay", Some("fay")));
    s.rest.ok_as(&fay, "/user/process_user_command_add", add("m2", "second")).await;
    let other = json!({"userID": "fay", "type": 2, "uuid": "m1", "value": "v", "ex": "x"});
    s.rest.ok_as(&fay, "/user/process_user_command_add", other).await;
    // A re-add of the same entry replaces it.
    s.rest.ok_as(&fay, "/user/process_user_command_add", add("m1", "again")).await;

    let got = s.rest.ok_as(&fay, "/user/process_user_command_get", json!({"userID": "fay", "type": 1})).await;
    let list = got["CommandResp"].as_array().unwrap();
    let entries: Vec<(&str, &str)> =
        list.iter().map(|c| (c["uuid"].as_str().unwrap(), c["value"].as_str().unwrap())).collect();
    assert_eq!(entries, vec![("m1", "again"), ("m2", "second")]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((list[0]["createTime"].as_i64().unwrap() - now).abs() < 60, "createTime is in seconds: {got}");

    let update = json!({"userID": "fay", "type": 1, "uuid": "m2", "ex": "starred"});
    s.rest.ok_as(&fay, "/user/process_user_command_update", update).await;
    fay_phone.next_notification_of(1307).await;
    let all = s.rest.ok_as(&fay, "/user/process_user_command_get_all", json!({"userID": "fay"})).await;
    let all = all["CommandResp"].as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let m2 = all.iter().find(|c| c["uuid"] == "m2" && c["type"] == 1).unwrap();
    assert_eq!((m2["value"].as_str(), m2["ex"].as_str()), (Some("second"), Some("starred")), "update keeps the value");

    let del = json!({"userID": "fay", "type": 1, "uuid": "m1"});
    s.rest.ok_as(&fay, "/user/process_user_command_delete", del.clone()).await;
    fay_phone.next_notification_of(1306).await;
    assert_eq!(s.rest.raw("/user/process_user_command_delete", &fay, del.to_string()).await["errCode"], 1004);
    let missing = json!({"userID": "fay", "type": 1, "uuid": "nope", "value": "v"});
    assert_eq!(s.rest.raw("/user/process_user_command_update", &fay, missing.to_string()).await["errCode"], 1004);
    let got = s.rest.ok_as(&fay, "/user/process_user_command_get", json!({"userID": "fay", "type": 9})).await;
    assert_eq!(got["CommandResp"], json!([]), "an empty list is [], not null");

    // Bad input: OpenIM's argument errors, and bounded sizes.
    for bad in [
        json!({"userID": "fay", "type": 0, "uuid": "a"}),
        json!({"userID": "fay", "type": 1, "uuid": ""}),
        json!({"userID": "", "type": 1, "uuid": "a"}),
        json!({"userID": "fay", "type": 1, "uuid": "u".repeat(129)}),
        json!({"userID": "fay", "type": 1, "uuid": "a", "value": "v".repeat(16 * 1024 + 1)}),
    ] {
        let env = s.rest.raw("/user/process_user_command_add", &fay, bad.to_string()).await;
        assert_eq!(env["errCode"], 1001, "{bad}: {env}");
    }

    // Another user's list is theirs alone; and every route wants a token.
    let gus = s.token("gus", 5).await;
    let rows = [
        ("/user/process_user_command_add", add("x", "y")),
        ("/user/process_user_command_update", json!({"userID": "fay", "type": 1, "uuid": "m2", "value": "x"})),
        ("/user/process_user_command_delete", json!({"userID": "fay", "type": 1, "uuid": "m2"})),
        ("/user/process_user_command_get", json!({"userID": "fay", "type": 1})),
        ("/user/process_user_command_get_all", json!({"userID": "fay"})),
        ("/user/subscribe_users_status", json!({"userID": "fay", "userIDs": ["gus"], "genre": 1})),
        ("/user/get_subscribe_users_status", json!({"userID": "fay"})),
    ];
    for (path, body) in &rows {
        let env = s.rest.raw(path, &gus, body.to_string()).await;
        assert_eq!(env["errCode"], 1002, "{path} as another user: {env}");
        let env = s.rest.raw(path, "", body.to_string()).await;
        assert_eq!(env["errCode"], 1507, "{path} without a token: {env}");
    }
    let all = s.rest.ok_as(&fay, "/user/process_user_command_get_all", json!({"userID": "fay"})).await;
    assert_eq!(all["CommandResp"].as_array().unwrap().len(), 2, "nothing changed by the refused calls");
    // The administrator may manage anyone's list.
    s.rest.ok("/user/process_user_command_delete", json!({"userID": "fay", "type": 2, "uuid": "m1"})).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_presence_subscriptions_are_kept_and_answer_current_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["hal", "ivy", "jo"]).await;
    let hal = s.token("hal", 5).await;
    let _ivy_pc = s.connect("ivy", 3, Encoding::Gob, false).await;

    let sub = json!({"userID": "hal", "userIDs": ["ivy", "jo", "ivy"], "genre": 1});
    let got = s.rest.ok_as(&hal, "/user/subscribe_users_status", sub).await;
    assert_eq!(
        got["statusList"],
        json!([
            {"userID": "ivy", "status": 1, "platformIDs": [3]},
            {"userID": "jo", "status": 0, "platformIDs": []},
        ])
    );
    let got = s.rest.ok_as(&hal, "/user/get_subscribe_users_status", json!({"userID": "hal"})).await;
    let ids: Vec<&str> = got["statusList"].as_array().unwrap().iter().map(|x| x["userID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ivy", "jo"]);
    s.rest.ok_as(&hal, "/user/subscribe_users_status", json!({"userID": "hal", "userIDs": ["jo"], "genre": 2})).await;
    let got = s.rest.ok_as(&hal, "/user/get_subscribe_users_status", json!({"userID": "hal"})).await;
    assert_eq!(got["statusList"], json!([{"userID": "ivy", "status": 1, "platformIDs": [3]}]));

    for bad in [
        json!({"userID": "hal", "userIDs": ["jo"], "genre": 3}),
        json!({"userID": "", "userIDs": ["jo"], "genre": 1}),
        json!({"userID": "hal", "userIDs": (0..1001).map(|i| format!("u{i}")).collect::<Vec<_>>(), "genre": 1}),
    ] {
        let env = s.rest.raw("/user/subscribe_users_status", &hal, bad.to_string()).await;
        assert_eq!(env["errCode"], 1001, "{bad}: {env}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_see_each_connection_with_its_token_and_background_state() {
    use openim_proto::constants::req;
    use prost::Message as _;

    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["kit", "lou"]).await;
    let mut kit_phone = s.connect("kit", 1, Encoding::Gob, false).await;
    let _kit_pc = s.connect("kit", 3, Encoding::Gob, false).await;
    let background = openim_proto::pb::sdkws::SetAppBackgroundStatusReq { user_id: "kit".into(), is_background: true };
    assert_eq!(kit_phone.call(req::SET_BACKGROUND_STATUS, background.encode_to_vec()).await.err_code, 0);

    let got = s.rest.ok("/user/get_users_online_status", json!({"userIDs": ["kit", "lou"]})).await;
    assert_eq!((got[0]["userID"].as_str(), got[0]["status"].as_i64()), (Some("kit"), Some(1)));
    let mut conns: Vec<(i64, bool)> = got[0]["detailPlatformStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["connID"].as_str().is_some_and(|id| !id.is_empty()), "{c}");
            assert!(c["token"].as_str().is_some_and(|t| !t.is_empty()), "{c}");
            (c["platformID"].as_i64().unwrap(), c["isBackground"].as_bool().unwrap())
        })
        .collect();
    conns.sort_unstable();
    assert_eq!(conns, [(1, true), (3, false)]);
    assert_eq!((got[1]["status"].as_i64(), got[1]["detailPlatformStatus"].is_null()), (Some(0), true));

    let got = s.rest.ok("/user/get_users_online_token_detail", json!({"userIDs": ["kit", "lou"]})).await;
    let detail = got.as_array().unwrap();
    assert_eq!(detail.len(), 1, "only connected users are listed: {got}");
    let platforms = detail[0]["singlePlatformToken"].as_array().unwrap();
    assert_eq!(platforms.iter().map(|p| p["platformID"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(platforms[0]["total"], 1);
    let parsed = s.rest.ok("/auth/parse_token", json!({"token": platforms[0]["token"][0]})).await;
    assert_eq!((parsed["userID"].as_str(), parsed["platformID"].as_i64()), (Some("kit"), Some(1)), "the phone's token");

    // Tokens are for administrators only.
    let lou = s.token("lou", 5).await;
    for path in ["/user/get_users_online_status", "/user/get_users_online_token_detail"] {
        let env = s.rest.raw(path, &lou, json!({"userIDs": ["kit"]}).to_string()).await;
        assert_eq!(env["errCode"], 1002, "{path} as a user: {env}");
        let env = s.rest.raw(path, "", json!({"userIDs": ["kit"]}).to_string()).await;
        assert_eq!(env["errCode"], 1507, "{path} without a token: {env}");
        let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        assert_eq!(s.rest.raw(path, &s.rest.token, json!({"userIDs": many}).to_string()).await["errCode"], 1001);
    }
    s.stop().await;
}
