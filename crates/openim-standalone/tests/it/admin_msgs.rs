//! The administrators' message routes: business notifications, batch sends, the outcome of a
//! send by operationID, and deleting messages by age.

use std::time::Duration;

use openim_proto::constants::req;
use openim_proto::ws::Encoding;
use openim_testkit::text_content;
use prost::Message as _;
use serde_json::{Value, json};

use crate::stack::Stack;

fn text(from: &str, to: &str, body: &str) -> Value {
    json!({"sendID": from, "recvID": to, "sessionType": 1, "contentType": 101, "content": {"content": body}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_notification_reaches_both_users_live_and_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ada", "bea"]).await;
    let mut ada = s.connect("ada", 3, Encoding::Gob, false).await;
    let mut bea = s.connect("bea", 5, Encoding::Json, true).await;

    let body = json!({"key": "order", "data": "{\"id\":7}", "sendUserID": "ada", "recvUserID": "bea"});
    let sent = s.rest.ok("/msg/send_business_notification", body.clone()).await;
    assert!(sent["serverMsgID"].as_str().is_some_and(|v| !v.is_empty()), "{sent}");
    for c in [&mut bea, &mut ada] {
        let (conv, note) = c.next_notification_of(2001).await;
        assert_eq!((conv.as_str(), note.seq, note.msg_from), ("n_ada_bea", 0, 200), "{}", c.user);
        let elem: Value = serde_json::from_slice(&note.content).unwrap();
        let detail: Value = serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail, json!({"key": "order", "data": "{\"id\":7}"}));
    }
    // Online only: nothing to sync later.
    let bea_token = s.token("bea", 3).await;
    let seqs = s.rest.ok_as(&bea_token, "/msg/newest_seq", json!({"userID": "bea"})).await;
    assert!(seqs["maxSeqs"].get("n_ada_bea").is_none_or(|v| v == 0), "{seqs}");

    let env = s.rest.raw("/msg/send_business_notification", &bea_token, body.to_string()).await;
    assert_eq!(env["errCode"], 1002, "users cannot send them: {env}");
    assert_eq!(s.rest.raw("/msg/send_business_notification", "", body.to_string()).await["errCode"], 1507);
    for bad in [
        json!({"key": "k", "data": "d", "sendUserID": "", "recvUserID": "bea"}),
        json!({"key": "k", "data": {"not": "a string"}, "sendUserID": "ada", "recvUserID": "bea"}),
        json!({"key": "k", "data": "d".repeat(64 * 1024 + 1), "sendUserID": "ada", "recvUserID": "bea"}),
    ] {
        assert_eq!(s.rest.post("/msg/send_business_notification", bad.clone()).await["errCode"], 1001, "{bad}");
    }
    // Nor can a user dress a message of theirs up as a notification over the WebSocket.
    let mut m = ada.text("bea", false, "fake-note", "gotcha");
    m.options.insert("isNotNotification".into(), false);
    let r = ada.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(r.err_code, 1002, "{}", r.err_msg);
    // Nor send a notification's content type (a 2101 revoke notice, a 2001), or a system
    // message; an ordinary message still goes through.
    for (content_type, msg_from) in [(2101, 100), (2001, 100), (1201, 100), (101, 200)] {
        let mut m = ada.text("bea", false, &format!("fake-{content_type}-{msg_from}"), "gotcha");
        (m.content_type, m.msg_from) = (content_type, msg_from);
        let r = ada.call(req::SEND_MSG, m.encode_to_vec()).await;
        assert_eq!(r.err_code, 1002, "contentType {content_type} msgFrom {msg_from}: {}", r.err_msg);
    }
    assert_eq!(ada.send_text("bea", "a real one").await.err_code, 0);
    let got = bea.next_push().await;
    assert_eq!(got.iter().map(|m| m.client_msg_id.starts_with("fake")).collect::<Vec<_>>(), [false], "{got:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_send_reaches_each_receiver_and_names_the_failures() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["cal", "dot", "eli"]).await;
    let mut dot = s.connect("dot", 3, Encoding::Gob, false).await;
    let mut eli = s.connect("eli", 3, Encoding::Gob, false).await;

    let mut body = text("cal", "", "to all of you");
    body["recvIDs"] = json!(["dot", "eli", "nobody"]);
    let got = s.rest.ok("/msg/batch_send_msg", body.clone()).await;
    assert_eq!(got["failedUserIDs"], json!(["nobody"]), "{got}");
    let results = got["results"].as_array().unwrap();
    assert_eq!(results.iter().map(|r| r["recvID"].as_str().unwrap()).collect::<Vec<_>>(), ["dot", "eli"]);
    assert_eq!(results[0]["clientMsgID"], results[1]["clientMsgID"], "one clientMsgID per batch, as in OpenIM");
    for c in [&mut dot, &mut eli] {
        let got = c.next_push().await;
        assert_eq!((got[0].send_id.as_str(), &got[0].content), ("cal", &text_content("to all of you")));
    }

    // Everyone: the sender included, as OpenIM pages through all users.
    let mut all = text("cal", "", "everyone");
    all["isSendAll"] = json!(true);
    all["recvIDs"] = json!([]);
    let got = s.rest.ok("/msg/batch_send_msg", all).await;
    let mut to: Vec<&str> = got["results"].as_array().unwrap().iter().map(|r| r["recvID"].as_str().unwrap()).collect();
    to.sort_unstable();
    assert_eq!(to, ["cal", "dot", "eli"], "{got}");
    assert_eq!(dot.next_push().await[0].content, text_content("everyone"));

    let dot_token = s.token("dot", 5).await;
    assert_eq!(s.rest.raw("/msg/batch_send_msg", &dot_token, body.to_string()).await["errCode"], 1002);
    assert_eq!(s.rest.raw("/msg/batch_send_msg", "", body.to_string()).await["errCode"], 1507);
    let mut no_list = body.clone();
    no_list.as_object_mut().unwrap().remove("recvIDs");
    let mut too_many = body.clone();
    too_many["recvIDs"] = json!((0..10_001).map(|i| format!("u{i}")).collect::<Vec<_>>());
    let mut bad_type = body.clone();
    bad_type["contentType"] = json!(2001);
    for bad in [no_list, too_many, bad_type] {
        assert_eq!(s.rest.post("/msg/batch_send_msg", bad).await["errCode"], 1001);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_s_outcome_is_kept_by_its_operation_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["fox", "gil"]).await;
    let admin = s.rest.token.clone();
    let sent = s.rest.raw_as_operation("/msg/send_msg", &admin, "op-sent", text("fox", "gil", "hi").to_string()).await;
    assert_eq!(sent["errCode"], 0, "{sent}");
    let failed =
        s.rest.raw_as_operation("/msg/send_msg", &admin, "op-failed", text("fox", "nobody", "hi").to_string()).await;
    assert_eq!(failed["errCode"], 1101, "{failed}");

    let gil = s.token("gil", 5).await;
    for (op, status) in [("op-sent", 2), ("op-failed", 3), ("op-unknown", 0)] {
        let env = s.rest.raw_as_operation("/msg/check_msg_is_send_success", &gil, op, "{}").await;
        assert_eq!((env["errCode"].as_i64(), env["data"]["status"].as_i64()), (Some(0), Some(status)), "{op}: {env}");
    }
    let env = s.rest.raw_as_operation("/msg/check_msg_is_send_success", "", "op-sent", "{}").await;
    assert_eq!(env["errCode"], 1507);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_older_than_an_age_are_deleted_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["hub", "ivo"]).await;
    let mut ivo = s.connect("ivo", 3, Encoding::Gob, false).await;
    s.rest.ok("/msg/send_msg", text("hub", "ivo", "old news")).await;
    assert_eq!(ivo.next_push().await[0].seq, 1);
    let body = json!({"conversationIDs": [], "timestamp": 3600});
    s.rest.ok("/msg/delete_msg_physical", body).await;
    assert_eq!(ivo.pull("si_hub_ivo", 1, 1).await.len(), 1, "younger than an hour: kept");

    tokio::time::sleep(Duration::from_millis(20)).await;
    let ivo_token = s.token("ivo", 5).await;
    let all = json!({"conversationIDs": [], "timestamp": 0});
    assert_eq!(s.rest.raw("/msg/delete_msg_physical", &ivo_token, all.to_string()).await["errCode"], 1002);
    assert_eq!(s.rest.raw("/msg/delete_msg_physical", "", all.to_string()).await["errCode"], 1507);
    let negative = json!({"conversationIDs": [], "timestamp": -1});
    assert_eq!(s.rest.post("/msg/delete_msg_physical", negative).await["errCode"], 1001);
    s.rest.ok("/msg/delete_msg_physical", all).await;
    let left = ivo.pull("si_hub_ivo", 1, 1).await;
    assert!(left.iter().all(|m| m.content.is_empty()), "everything sent before now is gone: {left:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_search_chat_messages_by_sender_receiver_type_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["jan", "kim", "lee"]).await;
    s.rest.ok("/user/update_user_info_ex", json!({"userInfo": {"userID": "kim", "nickname": "Kim K"}})).await;
    let mut kim = s.connect("kim", 3, Encoding::Gob, false).await;
    let group = json!({"ownerUserID": "jan", "memberUserIDs": ["kim", "lee"], "adminUserIDs": [],
        "groupInfo": {"groupID": "g-search", "groupName": "Searchers", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    s.rest.ok("/msg/send_msg", text("jan", "kim", "one")).await;
    s.rest.ok("/msg/send_msg", text("jan", "kim", "two")).await;
    s.rest.ok("/msg/send_msg", text("lee", "kim", "three")).await;
    let to_group = json!({"sendID": "jan", "groupID": "g-search", "sessionType": 3, "contentType": 101,
        "content": {"content": "all"}});
    s.rest.ok("/msg/send_msg", to_group).await;
    let custom = json!({"sendID": "jan", "recvID": "kim", "sessionType": 1, "contentType": 110,
        "content": {"data": "x"}});
    s.rest.ok("/msg/send_msg", custom).await;
    // Everything is stored before the search looks (the last one reached Kim).
    while kim.next_push_messages_within(Duration::from_millis(500)).await.is_some() {}

    let search = |body: Value| {
        let mut body = body;
        body["pagination"] = json!({"pageNumber": 1, "showNumber": 10});
        body
    };
    let got = s.rest.ok("/msg/search_msg", search(json!({"sendID": "jan", "recvID": "kim", "contentType": 101}))).await;
    assert_eq!(got["chatLogsNum"], 2, "{got}");
    let logs = got["chatLogs"].as_array().unwrap();
    let first = &logs[0]["chatLog"];
    assert_eq!(
        (first["content"].as_str(), first["recvNickname"].as_str(), logs[0]["isRevoked"].as_bool()),
        (Some(r#"{"content":"one"}"#), Some("Kim K"), Some(false)),
        "oldest first, with names: {got}"
    );
    assert_eq!(logs[1]["chatLog"]["content"], r#"{"content":"two"}"#);

    let got = s.rest.ok("/msg/search_msg", search(json!({"recvID": "g-search"}))).await;
    let log = &got["chatLogs"][0]["chatLog"];
    assert_eq!(
        (log["groupName"].as_str(), log["groupMemberCount"].as_u64(), log["groupOwner"].as_str()),
        (Some("Searchers"), Some(3), Some("jan")),
        "{got}"
    );
    let got = s.rest.ok("/msg/search_msg", search(json!({"sessionType": 1}))).await;
    assert_eq!(got["chatLogsNum"], 4, "notifications are not searched: {got}");
    let mut page2 = search(json!({"sessionType": 1}));
    page2["pagination"] = json!({"pageNumber": 2, "showNumber": 3});
    let got = s.rest.ok("/msg/search_msg", page2).await;
    assert_eq!((got["chatLogsNum"].as_i64(), got["chatLogs"].as_array().map(Vec::len)), (Some(4), Some(1)));
    let today = time_today();
    let got = s.rest.ok("/msg/search_msg", search(json!({"sendTime": today, "sendID": "lee"}))).await;
    assert_eq!(got["chatLogsNum"], 1, "{got}");
    let got = s.rest.ok("/msg/search_msg", search(json!({"sendTime": "2001-01-01"}))).await;
    assert_eq!(got["chatLogsNum"], 0);

    assert_eq!(s.rest.post("/msg/search_msg", json!({"sendTime": "1 Dec"})).await["errCode"], 1001);
    let kim_token = s.token("kim", 5).await;
    assert_eq!(s.rest.raw("/msg/search_msg", &kim_token, "{}").await["errCode"], 1002, "not for users");
    assert_eq!(s.rest.raw("/msg/search_msg", "", "{}").await["errCode"], 1507);
    s.stop().await;
}

/// Today in UTC as YYYY-MM-DD.
fn time_today() -> String {
    time::OffsetDateTime::now_utc().date().to_string()
}
