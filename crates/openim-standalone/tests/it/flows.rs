//! Group fan-out, offline sync, concurrency, deduplication, login policy and the REST API.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use prost::Message as _;
use serde_json::json;

use openim_testkit::{Client, text_content};

use crate::stack::Stack;

async fn create_group(s: &Stack, id: &str, owner: &str, members: &[String]) {
    let data = s
        .rest
        .ok(
            "/group/create_group",
            json!({"ownerUserID": owner, "memberUserIDs": members, "adminUserIDs": [], "groupInfo": {"groupID": id, "groupName": id, "groupType": 2}}),
        )
        .await;
    assert_eq!(data["groupInfo"]["groupID"], id);
    assert_eq!(data["groupInfo"]["memberCount"], (members.len() + 1) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_member_group_receives_each_message_exactly_once_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let users: Vec<String> = (0..50).map(|i| format!("g{i:02}")).collect();
    s.register(&users.iter().map(String::as_str).collect::<Vec<_>>()).await;
    create_group(&s, "grp50", &users[0], &users[1..]).await;

    let mut clients = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (enc, gzip) = if i % 2 == 0 { (Encoding::Gob, true) } else { (Encoding::Json, false) };
        clients.push(s.connect(u, 1, enc, gzip).await);
    }
    let m = clients[7].text("grp50", true, "group-msg-1", "hello group");
    let ack = clients[7].call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);

    for (i, c) in clients.iter_mut().enumerate() {
        if i == 7 {
            continue; // the sender's own device is not pushed its message
        }
        let got = c.next_push().await;
        assert_eq!(got.len(), 1, "{}", c.user);
        // Seq 1 is the group's creation tip.
        assert_eq!((got[0].seq, got[0].content.clone()), (2, text_content("hello group")), "{}", c.user);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in clients.iter_mut() {
        assert!(c.next_push_within(Duration::from_millis(5)).await.is_none(), "{} got a second push", c.user);
    }
    // A non-member may not send to the group.
    s.register(&["outsider"]).await;
    let mut outsider = s.connect("outsider", 1, Encoding::Gob, false).await;
    let m = outsider.text("grp50", true, "out-1", "let me in");
    let r = outsider.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(r.err_code, 1203, "{}", r.err_msg);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_user_syncs_by_seq_after_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["on", "off"]).await;
    let mut off = s.connect("off", 1, Encoding::Gob, true).await;
    off.socket.close(None).await.unwrap();
    let mut on = s.connect("on", 1, Encoding::Json, false).await;
    for i in 0..5 {
        assert_eq!(on.send_text("off", &format!("while away {i}")).await.err_code, 0);
    }
    let mut off = s.connect("off", 1, Encoding::Gob, true).await;
    // Acked messages get their seqs in msgtransfer, a moment later (as in OpenIM): under load the
    // newest seq may still be catching up when the user is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = off.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "off".into() }.encode_to_vec()).await;
        let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
        let newest = max.max_seqs.get("si_off_on").copied();
        if newest == Some(5) || tokio::time::Instant::now() > deadline {
            assert_eq!(newest, Some(5), "the five messages sent while away");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msgs = off.pull("si_off_on", 1, 5).await;
    let texts: Vec<Vec<u8>> = msgs.iter().map(|m| m.content.clone()).collect();
    assert_eq!(texts, (0..5).map(|i| text_content(&format!("while away {i}"))).collect::<Vec<_>>());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_get_gap_free_seqs_and_resends_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let users: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    s.register(&users.iter().map(String::as_str).collect::<Vec<_>>()).await;
    create_group(&s, "busy", &users[0], &users[1..]).await;
    let mut tasks = Vec::new();
    for u in &users {
        let mut c = s.connect(u, 3, Encoding::Gob, true).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let m = c.text("busy", true, &format!("{}-{i}", c.user), "x");
                let r = c.call(req::SEND_MSG, m.encode_to_vec()).await;
                assert_eq!(r.err_code, 0, "{}", r.err_msg);
            }
            // A resend of an accepted clientMsgID is accepted again but not stored twice.
            let m = c.text("busy", true, &format!("{}-0", c.user), "x");
            assert_eq!(c.call(req::SEND_MSG, m.encode_to_vec()).await.err_code, 0);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut reader = s.connect("c0", 5, Encoding::Gob, false).await;
    // The resends are still on their way through the pipeline: wait for the seq to settle.
    let mut max = 0;
    for _ in 0..50 {
        let r = reader.call(req::GET_NEWEST_SEQ, Vec::new()).await;
        max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap().max_seqs.get("sg_busy").copied().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(max, 201, "the creation tip and 200 distinct messages, resends not counted");
    let mut msgs = reader.pull("sg_busy", 1, 201).await;
    assert_eq!(msgs.remove(0).content_type, 1501, "seq 1: the group's creation tip");
    let seqs: Vec<i64> = msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (2..=201).collect::<Vec<_>>(), "gap-free, no duplicates");
    let ids: HashSet<&str> = msgs.iter().map(|m| m.client_msg_id.as_str()).collect();
    assert_eq!(ids.len(), 200);
    // Each sender's messages keep their send order.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for m in &msgs {
        let n: i64 = m.client_msg_id.rsplit('-').next().unwrap().parse().unwrap();
        let prev = last.insert(m.send_id.as_str(), n);
        assert!(prev.is_none_or(|p| p < n), "{} out of order", m.client_msg_id);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_login_on_the_same_platform_kicks_the_old_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["kim"]).await;
    let mut first = s.connect("kim", 2, Encoding::Gob, true).await;
    let _second = s.connect("kim", 2, Encoding::Gob, true).await;
    let r = first.recv().await;
    assert_eq!(r.req_identifier, req::KICK_ONLINE);
    // Another platform is not affected.
    let mut web = s.connect("kim", 5, Encoding::Json, false).await;
    assert_eq!(web.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_4_kicks_the_same_terminal_class() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.share.multi_login.policy = 4;
    })
    .await;
    s.register(&["lee"]).await;
    let mut ios = s.connect("lee", 1, Encoding::Gob, true).await;
    let mut web = s.connect("lee", 5, Encoding::Json, false).await;
    let ios_token = s.token("lee", 1).await;
    // Android is in the same (mobile) class as iOS: the iOS connection and token are pushed out.
    let _android = s.connect("lee", 2, Encoding::Gob, true).await;
    assert_eq!(ios.recv().await.req_identifier, req::KICK_ONLINE);
    let env = s.rest.raw("/user/get_users_info", &ios_token, json!({"userIDs": ["lee"]}).to_string()).await;
    assert_eq!(env["errCode"], 1506, "{env}");
    // Web is another class and stays.
    assert_eq!(web.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_0_kicks_nobody_but_caps_connections_per_platform() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |cfg| {
        cfg.share.multi_login.policy = 0;
        cfg.share.multi_login.max_num_one_end = 2;
    })
    .await;
    s.register(&["max"]).await;
    let token = s.token("max", 3).await;
    // A connection is registered before it answers its first request: answered calls fix the
    // order in which the gateway saw them.
    let mut first = Client::connect(s.server.ws_addr, "max", &token, 3, Encoding::Gob, false).await;
    assert_eq!(first.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    let mut second = Client::connect(s.server.ws_addr, "max", &token, 3, Encoding::Gob, false).await;
    assert_eq!(second.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    let mut mobile = s.connect("max", 1, Encoding::Gob, false).await;
    assert!(first.recv_within(Duration::from_millis(200)).await.is_none(), "two connections are within the cap");
    let _third = Client::connect(s.server.ws_addr, "max", &token, 3, Encoding::Gob, false).await;
    assert_eq!(first.recv().await.req_identifier, req::KICK_ONLINE, "the oldest beyond the cap goes");
    assert_eq!(second.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    assert_eq!(mobile.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_speaks_openims_envelope_and_sync_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann", "ben"]).await;
    let ann = s.token("ann", 5).await;

    // Admin send_msg, then the sync endpoints a client calls at login.
    let sent = s
        .rest
        .ok("/msg/send_msg", json!({"sendID": "ann", "recvID": "ben", "sessionType": 1, "contentType": 101, "content": {"content": "via rest"}}))
        .await;
    assert!(sent["serverMsgID"].as_str().is_some_and(|v| !v.is_empty()));
    s.rest.ok("/friend/import_friend", json!({"ownerUserID": "ann", "friendUserIDs": ["ben"]})).await;

    let seqs = wait_for_seq(&s, &ann, "si_ann_ben", 1).await;
    assert_eq!(seqs["maxSeq"], 1);
    let sorted = s
        .rest
        .ok_as(&ann, "/conversation/get_sorted_conversation_list", json!({"userID": "ann", "conversationIDs": []}))
        .await;
    assert_eq!(sorted["conversationTotal"], 1);
    let elem = &sorted["conversationElems"][0];
    assert_eq!(elem["conversationID"], "si_ann_ben");
    assert_eq!(elem["msgInfo"]["content"], r#"{"content":"via rest"}"#);
    assert!(elem.get("IsPinned").is_some(), "OpenIM's capitalised key: {elem}");

    let inc = s
        .rest
        .ok_as(
            &ann,
            "/conversation/get_incremental_conversations",
            json!({"userID": "ann", "versionID": "", "version": 0}),
        )
        .await;
    assert_eq!((inc["full"].as_bool(), inc["insert"][0]["conversationID"].as_str()), (Some(true), Some("si_ann_ben")));
    let friends = s
        .rest
        .ok_as(&ann, "/friend/get_incremental_friends", json!({"userID": "ann", "versionID": "", "version": 0}))
        .await;
    assert_eq!(friends["insert"][0]["friendUser"]["userID"], "ben");
    let ids = s.rest.ok_as(&ann, "/friend/get_full_friend_user_ids", json!({"userID": "ann", "idHash": 0})).await;
    assert_eq!(ids["userIDs"], json!(["ben"]));
    let again = s
        .rest
        .ok_as(&ann, "/friend/get_full_friend_user_ids", json!({"userID": "ann", "idHash": ids["version"]}))
        .await;
    assert_eq!(again["equal"], true, "a matching idHash answers equal");
    let groups = s.rest.ok_as(&ann, "/group/get_full_join_group_ids", json!({"userID": "ann", "idHash": 0})).await;
    assert_eq!(groups["groupIDs"], json!([]));
    s.rest
        .ok_as(&ann, "/group/get_incremental_join_groups", json!({"userID": "ann", "versionID": "", "version": 0}))
        .await;
    s.rest.ok_as(&ann, "/conversation/get_not_notify_conversation_ids", json!({"userID": "ann"})).await;
    let users = s.rest.ok_as(&ann, "/user/get_users_info", json!({"userIDs": ["ann"]})).await;
    assert_eq!(users["usersInfo"][0]["nickname"], "ann");
    s.rest.ok_as(&ann, "/user/update_user_info_ex", json!({"userInfo": {"userID": "ann", "nickname": "Ann"}})).await;
    let users = s.rest.ok_as(&ann, "/user/get_users_info", json!({"userIDs": ["ann"]})).await;
    assert_eq!(
        (users["usersInfo"][0]["nickname"].as_str(), users["usersInfo"][0]["faceURL"].as_str()),
        (Some("Ann"), Some(""))
    );
    let js = s
        .rest
        .ok_as(&ann, "/jssdk/get_conversations", json!({"ownerUserID": "ann", "conversationIDs": ["si_ann_ben"]}))
        .await;
    assert_eq!((js["unreadCount"].as_i64(), js["conversations"][0]["user"]["userID"].as_str()), (Some(1), Some("ben")));
    assert_eq!(js["conversations"][0]["friend"]["friendUserID"], "ben");

    s.rest
        .ok_as(
            &ann,
            "/msg/mark_conversation_as_read",
            json!({"userID": "ann", "conversationID": "si_ann_ben", "hasReadSeq": 1}),
        )
        .await;
    let seqs = wait_for_seq(&s, &ann, "si_ann_ben", 1).await;
    assert_eq!(seqs["hasReadSeq"], 1);
    let online = s.rest.ok("/user/get_users_online_status", json!({"userIDs": ["ann"]})).await;
    assert_eq!(online[0]["status"], 0, "{online}");
    s.rest.ok("/auth/force_logout", json!({"userID": "ann", "platformID": 5})).await;
    let env = s.rest.raw("/user/get_users_info", &ann, json!({"userIDs": ["ann"]}).to_string()).await;
    assert_eq!(env["errCode"], 1506, "a logged-out token is refused: {env}");

    // Liveness on the public ports; readiness and metrics only on the admin port.
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    for public in [s.server.api_addr, s.server.ws_addr] {
        let healthz = reqwest::get(format!("http://{public}/healthz")).await.unwrap();
        assert_eq!((healthz.status().as_u16(), healthz.text().await.unwrap()), (200, "ok".to_owned()));
        for path in ["/readyz", "/metrics"] {
            assert_ne!(status(format!("http://{public}{path}")).await, 200, "{path} on public port {public}");
        }
    }
    let admin = format!("http://{}", s.server.admin_addr);
    assert_eq!(status(format!("{admin}/healthz")).await, 200);
    assert_eq!(status(format!("{admin}/readyz")).await, 200);
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("openim_transfer_stored_total"), "{metrics}");

    // Bad input: each gets a clear error, and the server keeps serving.
    let check = |env: serde_json::Value, code: i64| {
        assert_eq!(env["errCode"], code, "{env}");
        assert!(
            env["errDlt"].as_str().is_some_and(|d| !d.is_empty())
                || env["errMsg"].as_str().is_some_and(|m| !m.is_empty())
        );
    };
    check(s.rest.raw("/user/get_users_info", &s.rest.token, "{not json").await, 1001);
    check(s.rest.raw("/user/get_users_info", &s.rest.token, "").await, 1001);
    check(s.rest.raw("/user/get_users_info", "garbage", "{}").await, 1503);
    check(s.rest.raw("/user/get_users_info", "", "{}").await, 1507);
    check(s.rest.post("/auth/get_admin_token", json!({"secret": "wrong", "userID": "imAdmin"})).await, 1002);
    check(s.rest.post("/user/user_register", json!({"users": [{"userID": "ann", "nickname": "again"}]})).await, 1102);
    check(s.rest.post("/msg/send_msg", json!({"sendID": "ann", "recvID": "nobody", "sessionType": 1, "contentType": 101, "content": {"content": "x"}})).await, 1101);
    let ben = s.token("ben", 1).await;
    check(s.rest.raw("/user/user_register", &ben, json!({"users": [{"userID": "x"}]}).to_string()).await, 1002);
    check(s.rest.raw("/msg/pull_msg_by_seq", &ben, json!({"userID": "ann", "seqRanges": []}).to_string()).await, 1002);
    s.rest.ok("/user/get_users_info", json!({"userIDs": ["ben"]})).await;
    s.stop().await;
}

/// Polls `/msg/get_conversations_has_read_and_max_seq` until the conversation reaches `seq`
/// (the pipeline is asynchronous).
async fn wait_for_seq(s: &Stack, token: &str, conv: &str, seq: i64) -> serde_json::Value {
    for _ in 0..100 {
        let data = s
            .rest
            .ok_as(
                token,
                "/msg/get_conversations_has_read_and_max_seq",
                json!({"userID": "ann", "conversationIDs": [conv]}),
            )
            .await;
        if data["seqs"][conv]["maxSeq"].as_i64() >= Some(seq) {
            return data["seqs"][conv].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{conv} never reached seq {seq}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_sync_requests_answer_over_websocket() {
    use openim_proto::pb::msg;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ivy", "jon"]).await;
    let mut ivy = s.connect("ivy", 1, Encoding::Json, true).await;
    for i in 0..3 {
        assert_eq!(ivy.send_text("jon", &format!("n{i}")).await.err_code, 0);
    }
    let mut jon = s.connect("jon", 1, Encoding::Gob, true).await;
    // Wait until all three are stored.
    for _ in 0..100 {
        let r = jon.call(req::GET_NEWEST_SEQ, Vec::new()).await;
        if sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap().max_seqs.get("si_ivy_jon") == Some(&3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 1005: messages by explicit seqs.
    let req_1005 = msg::GetSeqMessageReq {
        user_id: "jon".into(),
        conversations: vec![msg::ConversationSeqs { conversation_id: "si_ivy_jon".into(), seqs: vec![3, 1] }],
        order: 0,
    };
    let r = jon.call(req::PULL_MSG, req_1005.encode_to_vec()).await;
    assert_eq!(r.err_code, 0, "{}", r.err_msg);
    let got = msg::GetSeqMessageResp::decode(r.data.as_ref()).unwrap();
    let seqs: Vec<i64> = got.msgs["si_ivy_jon"].msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 3]);

    // 1006: has-read and max seqs, after marking two as read.
    s.rest
        .ok("/msg/mark_conversation_as_read", json!({"userID": "jon", "conversationID": "si_ivy_jon", "hasReadSeq": 2}))
        .await;
    let req_1006 = msg::GetConversationsHasReadAndMaxSeqReq { user_id: "jon".into(), ..Default::default() };
    let r = jon.call(req::GET_CONV_MAX_READ_SEQ, req_1006.encode_to_vec()).await;
    let got = msg::GetConversationsHasReadAndMaxSeqResp::decode(r.data.as_ref()).unwrap();
    let seqs = &got.seqs["si_ivy_jon"];
    assert_eq!((seqs.max_seq, seqs.has_read_seq), (3, 2));
    assert!(seqs.max_seq_time > 0);

    // 1007: the last message of each conversation.
    let req_1007 = msg::GetLastMessageReq { user_id: "jon".into(), conversation_i_ds: vec!["si_ivy_jon".into()] };
    let r = jon.call(req::PULL_CONV_LAST_MESSAGE, req_1007.encode_to_vec()).await;
    let got = msg::GetLastMessageResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(got.msgs["si_ivy_jon"].content, text_content("n2"));

    // A user cannot read a conversation that is not theirs.
    s.register(&["kay"]).await;
    let mut kay = s.connect("kay", 1, Encoding::Gob, false).await;
    let req_1005 = msg::GetSeqMessageReq {
        user_id: "kay".into(),
        conversations: vec![msg::ConversationSeqs { conversation_id: "si_ivy_jon".into(), seqs: vec![1] }],
        order: 0,
    };
    let r = kay.call(req::PULL_MSG, req_1005.encode_to_vec()).await;
    let got = msg::GetSeqMessageResp::decode(r.data.as_ref()).unwrap();
    assert!(got.msgs.is_empty(), "kay read someone else's conversation: {got:?}");

    // 2003 logout is acknowledged.
    let r = jon.call(req::LOGOUT, Vec::new()).await;
    assert_eq!((r.req_identifier, r.err_code), (req::LOGOUT, 0));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_phone_misses_a_message_goes_to_the_offline_push_webhook() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let hook = axum::Router::new().route(
        "/offline",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/offline", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |cfg| cfg.push.offline_webhook = url.clone()).await;
    s.register(&["online1", "offline1"]).await;
    let mut sender = s.connect("online1", 1, Encoding::Gob, false).await;
    let ack = sender.send_text("offline1", "are you there").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("the webhook is called").unwrap();
    assert_eq!(body["callbackCommand"], "callbackOfflinePushCommand");
    assert_eq!(body["userIDList"], json!(["offline1"]), "only the receiver who is online nowhere: {body}");
    assert_eq!(body["sendID"], "online1");
    assert_eq!(body["seq"], 1);

    // Once the receiver is online, the message is pushed to it and not to the webhook.
    let mut receiver = s.connect("offline1", 1, Encoding::Gob, false).await;
    let ack = sender.send_text("offline1", "now you are").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    assert_eq!(receiver.next_push().await[0].seq, 2);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(),
        "an online receiver is not sent to the webhook"
    );

    // An iOS app in the background (2004) gets no live push, and its user an offline push, as
    // in OpenIM; back in the foreground, live pushes resume.
    let background = |on: bool| sdkws::SetAppBackgroundStatusReq { user_id: String::new(), is_background: on };
    let r = receiver.call(req::SET_BACKGROUND_STATUS, background(true).encode_to_vec()).await;
    assert_eq!((r.req_identifier, r.err_code, r.data.len()), (req::SET_BACKGROUND_STATUS, 0, 0));
    let ack = sender.send_text("offline1", "in your pocket").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("the webhook is called").unwrap();
    assert_eq!((body["userIDList"].clone(), body["seq"].clone()), (json!(["offline1"]), json!(3)), "{body}");
    assert!(
        receiver.next_push_messages_within(Duration::from_millis(300)).await.is_none(),
        "an iOS app in the background gets no live push"
    );
    receiver.call(req::SET_BACKGROUND_STATUS, background(false).encode_to_vec()).await;
    sender.send_text("offline1", "welcome back").await;
    assert_eq!(receiver.next_push().await[0].seq, 4);
    assert!(tokio::time::timeout(Duration::from_millis(500), rx.recv()).await.is_err(), "foreground again: no webhook");

    // Online only on a computer: the phone is offline-pushed.
    drop(receiver);
    let mut desktop = s.connect("offline1", 3, Encoding::Gob, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sender.send_text("offline1", "at your desk?").await;
    assert_eq!(desktop.next_push().await[0].seq, 5, "the desktop gets it live");
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("the webhook is called").unwrap();
    assert_eq!((body["userIDList"].clone(), body["seq"].clone()), (json!(["offline1"]), json!(5)), "{body}");
    drop(desktop);

    // Do-not-disturb on the chat: once offline again, no offline push either.
    let token = s.token("offline1", 3).await;
    let dnd =
        json!({"userIDs": ["offline1"], "conversation": {"conversationID": "si_offline1_online1", "recvMsgOpt": 2}});
    s.rest.ok_as(&token, "/conversation/set_conversations", dnd).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ack = sender.send_text("offline1", "quiet please").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), rx.recv()).await.is_err(),
        "a receiver with do-not-disturb gets no offline push"
    );
    s.stop().await;
}
