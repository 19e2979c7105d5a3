//! Friends, applications and blacklists end to end, as the official SDK drives them: REST calls
//! with each user's own token, notifications pushed live (to every device, the acting one's
//! other devices included) and kept with a seq so an offline device catches up.

use std::time::Duration;

use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use prost::Message as _;
use serde_json::{Value, json};

use openim_testkit::Client;

use crate::stack::Stack;

/// A registered user with a REST token and one connected device.
struct User {
    id: String,
    token: String,
    device: Client,
}

impl User {
    async fn new(s: &Stack, id: &str) -> Self {
        s.register(&[id]).await;
        // The REST token is another platform's: a new login on the device's platform replaces
        // that platform's older tokens (multi-login policy 1).
        let token = s.token(id, 7).await;
        let device = s.connect(id, 5, Encoding::Gob, true).await;
        Self { id: id.to_owned(), token, device }
    }

    async fn post(&self, s: &Stack, path: &str, body: Value) -> Value {
        s.rest.raw(path, &self.token, body.to_string()).await
    }

    async fn ok(&self, s: &Stack, path: &str, body: Value) -> Value {
        let env = self.post(s, path, body).await;
        assert_eq!(env["errCode"], 0, "{} {path}: {env}", self.id);
        env.get("data").cloned().unwrap_or(Value::Null)
    }

    async fn apply_to(&self, s: &Stack, to: &User) -> Value {
        self.post(s, "/friend/add_friend", json!({"fromUserID": self.id, "toUserID": to.id, "reqMsg": "hi"})).await
    }

    async fn answer(&self, s: &Stack, from: &User, result: i32) -> Value {
        let body = json!({"fromUserID": from.id, "toUserID": self.id, "handleResult": result, "handleMsg": "ok"});
        self.post(s, "/friend/add_friend_response", body).await
    }

    async fn friend_ids(&self, s: &Stack) -> Vec<String> {
        let data = self
            .ok(
                s,
                "/friend/get_friend_list",
                json!({"userID": self.id, "pagination": {"pageNumber": 1, "showNumber": 100}}),
            )
            .await;
        data["friendsInfo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["friendUser"]["userID"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn received_applications(&self, s: &Stack) -> Vec<Value> {
        let body = json!({"userID": self.id, "pagination": {"pageNumber": 1, "showNumber": 100}});
        let data = self.ok(s, "/friend/get_friend_apply_list", body).await;
        data["FriendRequests"].as_array().cloned().unwrap_or_default()
    }

    async fn send_text(&mut self, to: &User) -> i32 {
        self.device.send_text(&to.id, "hello").await.err_code
    }

    /// The next notification of `content_type` this device is pushed, skipping others.
    async fn notified(&mut self, content_type: i32) -> (String, sdkws::MsgData) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let push = self.device.next_push_messages_within(left).await;
            let push = push.unwrap_or_else(|| panic!("{} got no {content_type} notification within 10 s", self.id));
            for (conv, msgs) in push.notification_msgs {
                if let Some(m) = msgs.msgs.into_iter().find(|m| m.content_type == content_type) {
                    return (conv, m);
                }
            }
        }
    }

    /// Whether a notification of `content_type` arrives within `wait`.
    async fn is_notified_within(&mut self, content_type: i32, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(push) = self.device.next_push_messages_within(left).await else { return false };
            if push.notification_msgs.values().flat_map(|m| &m.msgs).any(|m| m.content_type == content_type) {
                return true;
            }
        }
    }
}

/// The tips of a notification, parsed.
fn tips(m: &sdkws::MsgData) -> Value {
    let elem: Value = serde_json::from_slice(&m.content).unwrap();
    serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_is_seen_accepted_and_both_friend_lists_update() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let mut alice = User::new(&s, "alice").await;
    let mut bob = User::new(&s, "bob").await;

    assert_eq!(alice.apply_to(&s, &bob).await["errCode"], 0);
    let (conv, note) = bob.notified(1203).await;
    assert_eq!(conv, "n_alice_bob");
    assert!(note.seq > 0, "kept with a seq, so other devices catch up");
    let t = tips(&note);
    assert_eq!(
        (t["fromToUserID"]["fromUserID"].as_str(), t["request"]["reqMsg"].as_str()),
        (Some("alice"), Some("hi"))
    );
    alice.notified(1203).await; // the applicant's own devices learn of it too
    let apps = bob.received_applications(&s).await;
    assert_eq!(
        (apps.len(), apps[0]["fromUserID"].as_str(), apps[0]["handleResult"].as_i64()),
        (1, Some("alice"), Some(0))
    );
    assert_eq!(apps[0]["fromNickname"], "alice");
    let count = bob.ok(&s, "/friend/get_self_unhandled_apply_count", json!({"userID": "bob", "time": 0})).await;
    assert_eq!(count["count"], 1);
    let sent = alice.ok(&s, "/friend/get_self_friend_apply_list", json!({"userID": "alice"})).await;
    assert_eq!(sent["friendRequests"][0]["toUserID"], "bob");

    assert_eq!(bob.answer(&s, &alice, 1).await["errCode"], 0);
    let (_, approved) = alice.notified(1201).await;
    assert_eq!(tips(&approved)["request"]["handleResult"], 1);
    bob.notified(1201).await;
    assert_eq!(alice.friend_ids(&s).await, vec!["bob"]);
    assert_eq!(bob.friend_ids(&s).await, vec!["alice"]);

    // What OpenIM refuses, with its codes.
    assert_eq!(alice.apply_to(&s, &bob).await["errCode"], 1304, "already friends");
    assert_eq!(alice.apply_to(&s, &alice).await["errCode"], 1301, "yourself");
    assert_eq!(bob.answer(&s, &alice, -1).await["errCode"], 1305, "answered already");
    let carol = User::new(&s, "carol").await;
    assert_eq!(bob.answer(&s, &carol, 1).await["errCode"], 1004, "no such application");
    assert_eq!(bob.answer(&s, &alice, 7).await["errCode"], 1001, "not 1 or -1");

    // Remark and pin are the owner's own; the friend is not told.
    let body = json!({"ownerUserID": "alice", "friendUserIDs": ["bob"], "isPinned": true, "remark": "Bobby"});
    alice.ok(&s, "/friend/update_friends", body).await;
    alice.notified(1210).await;
    let info =
        alice.ok(&s, "/friend/get_designated_friends", json!({"ownerUserID": "alice", "friendUserIDs": ["bob"]})).await;
    assert_eq!(
        (info["friendsInfo"][0]["isPinned"].as_bool(), info["friendsInfo"][0]["remark"].as_str()),
        (Some(true), Some("Bobby"))
    );
    assert!(!bob.is_notified_within(1210, Duration::from_millis(500)).await);
    let env = alice
        .post(&s, "/friend/set_friend_remark", json!({"ownerUserID": "alice", "friendUserID": "carol", "remark": "x"}))
        .await;
    assert_eq!(env["errCode"], 1004, "carol is not alice's friend: {env}");

    // Deleting is one-sided.
    alice.ok(&s, "/friend/delete_friend", json!({"ownerUserID": "alice", "friendUserID": "bob"})).await;
    bob.notified(1205).await;
    assert!(alice.friend_ids(&s).await.is_empty());
    assert_eq!(bob.friend_ids(&s).await, vec!["alice"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_application_is_seen_by_the_applicant() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let mut dan = User::new(&s, "dan").await;
    let mut erin = User::new(&s, "erin").await;
    assert_eq!(dan.apply_to(&s, &erin).await["errCode"], 0);
    // Applying again while pending renews the application (OpenIM's behaviour), still one.
    assert_eq!(dan.apply_to(&s, &erin).await["errCode"], 0);
    assert_eq!(erin.received_applications(&s).await.len(), 1);
    assert_eq!(erin.answer(&s, &dan, -1).await["errCode"], 0);
    let (_, refused) = dan.notified(1202).await;
    assert_eq!(tips(&refused)["request"]["handleResult"], -1);
    erin.notified(1202).await;
    assert!(dan.friend_ids(&s).await.is_empty());
    let designated =
        dan.ok(&s, "/friend/get_designated_friend_apply", json!({"fromUserID": "dan", "toUserID": "erin"})).await;
    assert_eq!(designated["friendRequests"][0]["handleResult"], -1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_refuses_messages_without_telling_the_blocked_user() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let mut fay = User::new(&s, "fay").await;
    let mut gus = User::new(&s, "gus").await;
    let mut fay_phone = s.connect("fay", 2, Encoding::Json, false).await;
    assert_eq!(gus.send_text(&fay).await, 0);

    fay.ok(&s, "/friend/add_black", json!({"ownerUserID": "fay", "blackUserID": "gus"})).await;
    fay.notified(1207).await;
    let (_, note) = loop {
        let push = fay_phone.next_push_messages_within(Duration::from_secs(10)).await.expect("fay's phone hears of it");
        if let Some(found) = push.notification_msgs.into_iter().next() {
            break found;
        }
    };
    assert_eq!(note.msgs[0].content_type, 1207);
    assert_eq!(gus.send_text(&fay).await, 1302, "blocked");
    assert_eq!(fay.send_text(&gus).await, 0, "the owner can still write");
    assert!(!gus.is_notified_within(1207, Duration::from_millis(500)).await, "the blocked user is not told");

    let list = fay.ok(&s, "/friend/get_black_list", json!({"userID": "fay"})).await;
    assert_eq!((list["total"].as_i64(), list["blacks"][0]["blackUserInfo"]["userID"].as_str()), (Some(1), Some("gus")));
    let some =
        fay.ok(&s, "/friend/get_specified_blacks", json!({"ownerUserID": "fay", "userIDList": ["gus", "x"]})).await;
    assert_eq!(some["blacks"].as_array().unwrap().len(), 1);
    let incr =
        fay.ok(&s, "/friend/get_incremental_blacks", json!({"userID": "fay", "version": 0, "versionID": ""})).await;
    assert_eq!((incr["full"].as_bool(), incr["insert"].as_array().map(Vec::len)), (Some(true), Some(1)));
    let info =
        fay.ok(&s, "/friend/get_specified_friends_info", json!({"ownerUserID": "fay", "userIDList": ["gus"]})).await;
    assert_eq!(info["infos"][0]["blackInfo"]["blackUserInfo"]["userID"], "gus");
    assert_eq!(info["infos"][0]["userInfo"]["userID"], "gus");

    fay.ok(&s, "/friend/remove_black", json!({"ownerUserID": "fay", "blackUserID": "gus"})).await;
    fay.notified(1208).await;
    assert_eq!(gus.send_text(&fay).await, 0, "unblocked");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_catches_up_on_friend_notifications_by_seq() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["hal"]).await;
    let ivy = User::new(&s, "ivy").await;
    let hal_token = s.token("hal", 5).await;
    let env =
        s.rest.raw("/friend/add_friend", &hal_token, json!({"fromUserID": "hal", "toUserID": "ivy"}).to_string()).await;
    assert_eq!(env["errCode"], 0, "{env}");
    drop(ivy.device);

    // ivy's new device: the notification conversation is in its max seqs, and pulls back.
    let mut later = s.connect("ivy", 3, Encoding::Gob, false).await;
    let r = later.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "ivy".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    let top = *max.max_seqs.get("n_hal_ivy").expect("n_hal_ivy is synced");
    assert!(top >= 1);
    let pull = sdkws::PullMessageBySeqsReq {
        user_id: "ivy".into(),
        seq_ranges: vec![sdkws::SeqRange { conversation_id: "n_hal_ivy".into(), begin: 1, end: top, num: 10 }],
        order: 0,
    };
    let r = later.call(req::PULL_MSG_BY_SEQ_LIST, pull.encode_to_vec()).await;
    let got = sdkws::PullMessageBySeqsResp::decode(r.data.as_ref()).unwrap();
    let notes = &got.notification_msgs["n_hal_ivy"].msgs;
    assert_eq!(notes[0].content_type, 1203);
    // The notification conversation is not listed as a chat.
    let convs = s.rest.ok_as(&ivy.token, "/conversation/get_all_conversations", json!({"ownerUserID": "ivy"})).await;
    let listed: Vec<&str> =
        convs["conversations"].as_array().unwrap().iter().filter_map(|c| c["conversationID"].as_str()).collect();
    assert!(!listed.iter().any(|c| c.starts_with("n_")), "{listed:?}");
    s.stop().await;
}

/// Every friend route refuses a token of someone else (1002) and no token (1507); the
/// administrator may act for anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friend_routes_refuse_other_users_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["owner", "other", "mallory"]).await;
    let mallory = s.token("mallory", 5).await;
    let page = json!({"pageNumber": 1, "showNumber": 10});
    let rows: Vec<(&str, Value)> = vec![
        ("/friend/add_friend", json!({"fromUserID": "owner", "toUserID": "other"})),
        ("/friend/add_friend_response", json!({"fromUserID": "other", "toUserID": "owner", "handleResult": 1})),
        ("/friend/get_friend_apply_list", json!({"userID": "owner", "pagination": page})),
        ("/friend/get_self_friend_apply_list", json!({"userID": "owner", "pagination": page})),
        ("/friend/get_designated_friend_apply", json!({"fromUserID": "owner", "toUserID": "other"})),
        ("/friend/get_self_unhandled_apply_count", json!({"userID": "owner"})),
        ("/friend/delete_friend", json!({"ownerUserID": "owner", "friendUserID": "other"})),
        ("/friend/update_friends", json!({"ownerUserID": "owner", "friendUserIDs": ["other"], "isPinned": true})),
        ("/friend/set_friend_remark", json!({"ownerUserID": "owner", "friendUserID": "other", "remark": "r"})),
        ("/friend/get_specified_friends_info", json!({"ownerUserID": "owner", "userIDList": ["other"]})),
        ("/friend/add_black", json!({"ownerUserID": "owner", "blackUserID": "other"})),
        ("/friend/remove_black", json!({"ownerUserID": "owner", "blackUserID": "other"})),
        ("/friend/get_black_list", json!({"userID": "owner", "pagination": page})),
        ("/friend/get_specified_blacks", json!({"ownerUserID": "owner", "userIDList": ["other"]})),
        ("/friend/get_incremental_blacks", json!({"userID": "owner"})),
    ];
    for (path, body) in &rows {
        let env = s.rest.raw(path, &mallory, body.to_string()).await;
        assert_eq!(env["errCode"], 1002, "{path} with another user's token: {env}");
        let env = s.rest.raw(path, "", body.to_string()).await;
        assert_eq!(env["errCode"], 1507, "{path} without a token: {env}");
    }
    // Bounded input: too many IDs or too long a text is an ArgsError naming the field.
    let owner = s.token("owner", 5).await;
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let env = s
        .rest
        .raw("/friend/get_specified_blacks", &owner, json!({"ownerUserID": "owner", "userIDList": many}).to_string())
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    assert!(
        env["errDlt"].as_str().unwrap_or_default().contains("userIDList")
            || env["errMsg"].as_str().unwrap_or_default().contains("userIDList"),
        "{env}"
    );
    let long = "x".repeat(1025);
    let env = s
        .rest
        .raw(
            "/friend/add_friend",
            &owner,
            json!({"fromUserID": "owner", "toUserID": "other", "reqMsg": long}).to_string(),
        )
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    // The administrator may act for a user.
    s.rest.ok("/friend/add_friend", json!({"fromUserID": "owner", "toUserID": "other"})).await;
    s.stop().await;
}
