//! Security hardening (issue 16): secrets, authorization, bounds. Each test shows a finding closed.

use openim_common::rpc;
use openim_common::token::TokenSigner;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::auth::GetAdminTokenReq;
use openim_proto::ws::Encoding;
use serde_json::json;

use crate::stack::Stack;

fn admin_req(secret: &str, from: Option<&str>) -> tonic::Request<GetAdminTokenReq> {
    let mut req = rpc::request(GetAdminTokenReq { secret: secret.into(), user_id: "imAdmin".into() }, "", "sec");
    if let Some(addr) = from {
        rpc::set_client_addr(&mut req, addr.parse().unwrap());
    }
    req
}

/// The published trial secret works only from loopback; wrong guesses lock the guessing address
/// out (even with the right secret next) and leave other addresses alone.
#[tokio::test]
async fn the_admin_secret_is_loopback_only_when_published_and_guessing_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let auth = || s.server.clients.auth.clone();

    for from in [Some("192.0.2.7"), Some("2001:db8::1"), None] {
        let e = ImError::from(auth().get_admin_token(admin_req("openIM123", from)).await.unwrap_err());
        assert_eq!(e.code, ErrCode::NO_PERMISSION, "{from:?}: {e:?}");
        assert!(e.detail.contains("loopback"), "{from:?}: {e:?}");
    }
    auth().get_admin_token(admin_req("openIM123", Some("127.0.0.1"))).await.unwrap();
    auth().get_admin_token(admin_req("openIM123", Some("::1"))).await.unwrap();

    // Guessing over REST (the client address is the TCP peer, 127.0.0.1).
    for guess in ["openIM1234", "openim123", "", "admin", "x"] {
        let env = s.rest.post("/auth/get_admin_token", json!({"secret": guess, "userID": "imAdmin"})).await;
        assert_eq!(env["errCode"], 1002, "{env}");
        assert!(env["errDlt"].as_str().unwrap().contains("wrong secret"), "{env}");
    }
    let env = s.rest.post("/auth/get_admin_token", json!({"secret": "openIM123", "userID": "imAdmin"})).await;
    assert_eq!(env["errCode"], 1002, "locked out: {env}");
    assert!(env["errDlt"].as_str().unwrap().contains("too many failed attempts from 127.0.0.1"), "{env}");
    // ::1 is another address: not locked.
    auth().get_admin_token(admin_req("openIM123", Some("::1"))).await.unwrap();
    // Tokens already issued keep working.
    s.rest.ok("/user/get_users", json!({"pagination": {"pageNumber": 1, "showNumber": 10}})).await;
    s.stop().await;
}

/// Tokens are signed with a key of their own, so a user's token is no oracle for the admin
/// secret: a token forged with the secret is refused, and the real key is the generated one.
#[tokio::test]
async fn tokens_are_not_signed_with_the_admin_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann"]).await;
    let token = s.token("ann", 1).await;
    assert!(TokenSigner::new("openIM123").verify(&token).is_err(), "signed with share.secret");
    let key = std::fs::read_to_string(openim_common::secrets::token_key_path(dir.path())).unwrap();
    assert_eq!(TokenSigner::new(key.trim()).verify(&token).unwrap().user_id, "ann");

    let (forged, _) = TokenSigner::new("openIM123").issue("imAdmin", 10, 3600).unwrap();
    let env = s.rest.raw("/user/get_users", &forged, json!({}).to_string()).await;
    assert_eq!(env["errCode"], ErrCode::TOKEN_INVALID.0, "{env}");
    s.stop().await;
}

/// IDs are joined with `_` into conversation IDs, so an ID holding `_` could share a
/// conversation with others (`si_a_b_c` is `a`+`b_c` and `a_b`+`c`; group `alice_bob` would own
/// `n_alice_bob`, alice's and bob's notifications): registration and creation refuse them, and a
/// conversation ID with more than one reading is nobody's.
#[tokio::test]
async fn ids_that_could_alias_a_conversation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["a", "c", "alice", "bob"]).await;
    for bad in ["a_b", "b_c", "x y", ""] {
        let env = s.rest.post("/user/user_register", json!({"users": [{"userID": bad, "nickname": "x"}]})).await;
        assert_eq!(env["errCode"], 1001, "{bad:?}: {env}");
        assert!(env["errDlt"].as_str().unwrap().contains("userID"), "{env}");
    }
    let alice = s.token("alice", 1).await;
    let group = json!({"memberUserIDs": ["bob"], "ownerUserID": "alice",
                       "groupInfo": {"groupID": "alice_bob", "groupName": "g", "groupType": 2}});
    let env = s.rest.raw("/group/create_group", &alice, group.to_string()).await;
    assert_eq!(env["errCode"], 1001, "{env}");
    assert!(env["errDlt"].as_str().unwrap().contains("groupID"), "{env}");

    // `a` asks for the chat `a_b` would have with `c`, and for alice's notification conversation
    // spelt as a group's: nothing comes back.
    let a = s.token("a", 1).await;
    for conv in ["si_a_b_c", "n_alice_bob"] {
        let pull = json!({"userID": "a", "seqRanges": [{"conversationID": conv, "begin": 1, "end": 100, "num": 100}]});
        let env = s.rest.raw("/msg/pull_msg_by_seq", &a, pull.to_string()).await;
        let msgs = &env["data"]["msgs"];
        assert!(env["errCode"] != 0 || msgs.get(conv).is_none(), "{conv}: {env}");
    }
    s.stop().await;
}

/// A group's members are for its members (and administrators): a non-member gets 1002 from every
/// member read, and a user cannot list another user's groups.
#[tokio::test]
async fn a_non_member_cannot_read_a_group_s_members() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "mem", "out"]).await;
    let group = json!({"ownerUserID": "own", "memberUserIDs": ["mem"], "adminUserIDs": [],
        "groupInfo": {"groupID": "secret-club", "groupName": "club", "groupType": 2}});
    s.rest.ok("/group/create_group", group).await;
    let (mem, out) = (s.token("mem", 1).await, s.token("out", 1).await);
    let page = json!({"pageNumber": 1, "showNumber": 100});
    let reads = [
        ("/group/get_group_member_list", json!({"groupID": "secret-club", "pagination": page})),
        ("/group/get_group_members_info", json!({"groupID": "secret-club", "userIDs": ["own", "mem"]})),
        ("/group/get_incremental_group_members", json!({"groupID": "secret-club", "versionID": "", "version": 0})),
        ("/group/get_full_group_member_user_ids", json!({"groupID": "secret-club", "idHash": 0})),
    ];
    for (path, body) in &reads {
        let env = s.rest.raw(path, &out, body.to_string()).await;
        assert_eq!(env["errCode"], 1002, "{path}: {env}");
        assert!(!env.to_string().contains("\"own\""), "{path} leaked a member: {env}");
        let env = s.rest.raw(path, &mem, body.to_string()).await;
        assert_eq!(env["errCode"], 0, "a member may: {path}: {env}");
        s.rest.ok(path, body.clone()).await;
    }
    let batch = json!({"userID": "out", "reqList": [{"groupID": "secret-club", "versionID": "", "version": 0}]});
    let data = s.rest.ok_as(&out, "/group/get_incremental_group_members_batch", batch).await;
    // An answer that tells nothing (the version asked back, no members, no group), so that the
    // SDK stops asking.
    let r = &data["respList"]["secret-club"];
    assert_eq!((r["version"].as_u64(), r["versionID"].as_str(), r["full"].as_bool()), (Some(0), Some(""), Some(false)));
    for field in ["insert", "update", "delete"] {
        assert!(r[field].as_array().is_none_or(|l| l.is_empty()), "{field}: {data}");
    }
    assert!(r["group"].is_null(), "{data}");

    let joined = json!({"fromUserID": "mem", "pagination": page});
    let env = s.rest.raw("/group/get_joined_group_list", &out, joined.to_string()).await;
    assert_eq!(env["errCode"], 1002, "another user's groups: {env}");
    let data = s.rest.ok_as(&mem, "/group/get_joined_group_list", joined).await;
    assert_eq!(data["total"], 1);
    s.stop().await;
}

/// Deleting or clearing for everyone erases other people's messages: an ordinary member may do
/// it only to their own messages, the group's owner to anyone's; nobody clears a single chat
/// for the other side.
#[tokio::test]
async fn only_owners_and_admins_delete_others_messages_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "mem", "pal"]).await;
    // No creation tip (`sendMessage`): the chat's seqs are its messages.
    let group = json!({"ownerUserID": "own", "memberUserIDs": ["mem"], "adminUserIDs": [],
        "groupInfo": {"groupID": "g-del", "groupName": "del", "groupType": 2}, "sendMessage": false});
    s.rest.ok("/group/create_group", group).await;
    for (from, text) in [("own", "owner's"), ("mem", "member's"), ("own", "owner's again")] {
        let msg = json!({"sendID": from, "groupID": "g-del", "sessionType": 3, "contentType": 101,
            "content": {"content": text}});
        s.rest.ok("/msg/send_msg", msg).await;
    }
    let (own, mem) = (s.token("own", 1).await, s.token("mem", 1).await);
    let conv = "sg_g-del";
    wait_for_max_seq(&s, &mem, "mem", conv, 3).await;
    let delete = |user: &str, seqs: &[i64]| {
        json!({"conversationID": conv, "userID": user, "seqs": seqs,
               "deleteSyncOpt": {"IsSyncSelf": true, "IsSyncOther": true}})
        .to_string()
    };

    let env = s.rest.raw("/msg/delete_msgs", &mem, delete("mem", &[1])).await;
    assert_eq!(env["errCode"], 1002, "a member deleting the owner's message: {env}");
    let env = s.rest.raw("/msg/delete_msgs", &mem, delete("mem", &[1, 2])).await;
    assert_eq!(env["errCode"], 1002, "one foreign seq refuses the whole request: {env}");
    assert_eq!(pull_texts(&s, "own", conv).await, ["owner's", "member's", "owner's again"]);

    let env = s.rest.raw("/msg/delete_msgs", &mem, delete("mem", &[2])).await;
    assert_eq!(env["errCode"], 0, "one's own: {env}");
    let env = s.rest.raw("/msg/delete_msgs", &own, delete("own", &[3])).await;
    assert_eq!(env["errCode"], 0, "the owner: {env}");
    assert_eq!(pull_texts(&s, "own", conv).await, ["owner's"]);

    let clear = |user: &str, c: &str| {
        json!({"conversationIDs": [c], "userID": user, "deleteSyncOpt": {"IsSyncSelf": true, "IsSyncOther": true}})
            .to_string()
    };
    let env = s.rest.raw("/msg/clear_conversation_msg", &mem, clear("mem", conv)).await;
    assert_eq!(env["errCode"], 1002, "a member clearing the group for everyone: {env}");
    assert_eq!(pull_texts(&s, "own", conv).await, ["owner's"]);
    s.rest
        .ok(
            "/msg/send_msg",
            json!({"sendID": "pal", "recvID": "mem", "sessionType": 1, "contentType": 101,
        "content": {"content": "hi"}}),
        )
        .await;
    let single = "si_mem_pal";
    wait_for_max_seq(&s, &mem, "mem", single, 1).await;
    let env = s.rest.raw("/msg/clear_conversation_msg", &mem, clear("mem", single)).await;
    assert_eq!(env["errCode"], 1002, "clearing a single chat for the peer: {env}");
    let env = s.rest.raw("/msg/clear_conversation_msg", &own, clear("own", conv)).await;
    assert_eq!(env["errCode"], 0, "the owner clears the group: {env}");
    s.stop().await;
}

async fn wait_for_max_seq(s: &Stack, token: &str, user: &str, conv: &str, seq: i64) {
    for _ in 0..200 {
        let data = s
            .rest
            .ok_as(
                token,
                "/msg/get_conversations_has_read_and_max_seq",
                json!({"userID": user, "conversationIDs": [conv]}),
            )
            .await;
        if data["seqs"][conv]["maxSeq"].as_i64() >= Some(seq) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{conv} never reached seq {seq}");
}

/// The texts `user` pulls from `conv` (seqs 1..=100) over WebSocket, in seq order.
/// The texts of `conv` as `user` pulls them, from an Android connection: its login must not
/// replace the iOS (platform 1) tokens the tests send REST requests with.
async fn pull_texts(s: &Stack, user: &str, conv: &str) -> Vec<String> {
    let mut client = s.connect(user, 2, Encoding::Json, false).await;
    client
        .pull(conv, 1, 100)
        .await
        .into_iter()
        .filter(|m| m.content_type == 101)
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(&m.content).unwrap_or_default();
            v["content"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Every list a client sends is bounded: a pull of 30,000 ranges, a lookup of 5,000 users or a
/// group created with 2,000 members is refused at once with 1001 naming the field, and the
/// server goes on serving.
#[tokio::test]
async fn oversized_lists_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann"]).await;
    let ann = s.token("ann", 1).await;
    let ranges: Vec<_> = (0..30_000)
        .map(|i| json!({"conversationID": format!("si_ann_u{i}"), "begin": 1, "end": 100, "num": 100}))
        .collect();
    let many = |n: usize| (0..n).map(|i| format!("u{i}")).collect::<Vec<_>>();
    for (path, body, field) in [
        ("/msg/pull_msg_by_seq", json!({"userID": "ann", "seqRanges": ranges}), "seqRanges"),
        ("/user/get_users_info", json!({"userIDs": many(5_000)}), "userIDs"),
        (
            "/msg/mark_msgs_as_read",
            json!({"userID": "ann", "conversationID": "si_ann_u1", "seqs": (1..=6_000).collect::<Vec<_>>()}),
            "seqs",
        ),
        (
            "/group/create_group",
            json!({"ownerUserID": "ann", "memberUserIDs": many(2_000), "groupInfo": {"groupName": "big", "groupType": 2}}),
            "memberUserIDs",
        ),
        (
            "/msg/get_conversations_has_read_and_max_seq",
            json!({"userID": "ann", "conversationIDs": many(10_001)}),
            "conversationIDs",
        ),
    ] {
        let env = s.rest.raw(path, &ann, body.to_string()).await;
        assert_eq!(env["errCode"], 1001, "{path}: {env}");
        let detail = env["errDlt"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{field} has ")) && detail.contains("at most"), "{path}: {detail}");
    }
    s.rest.ok_as(&ann, "/msg/get_conversations_has_read_and_max_seq", json!({"userID": "ann"})).await;
    s.stop().await;
}

/// 100 messages of 45 KB in a 200-member group: every online member gets all of them, in
/// pushes no frame of which passes the SDK's 1 MiB read limit, and a pull of them all answers in
/// pages (`isEnd: false`) that together hold every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_large_messages_reaches_every_member_and_syncs_in_pages() {
    use openim_testkit::Client;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let members: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let ids: Vec<&str> = members.iter().map(String::as_str).collect();
    s.register(&ids).await;
    // No creation tip (`sendMessage`): the chat's seqs are its messages.
    let group = json!({"ownerUserID": "m0", "memberUserIDs": &members[1..], "adminUserIDs": [],
        "groupInfo": {"groupID": "g-big", "groupName": "big", "groupType": 2}, "sendMessage": false});
    s.rest.ok("/group/create_group", group).await;
    let mut online: Vec<Client> = Vec::new();
    for m in &members[..12] {
        online.push(s.connect(m, 1, Encoding::Gob, false).await);
    }
    let text = "x".repeat(45_000);
    let mut sender = online.remove(0);
    for i in 0..100 {
        let m = sender.text("g-big", true, &format!("big-{i}"), &text);
        let ack = sender.call(openim_proto::constants::req::SEND_MSG, prost::Message::encode_to_vec(&m)).await;
        assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    }
    for c in online.iter_mut() {
        let mut seqs = std::collections::BTreeSet::new();
        while seqs.len() < 100 {
            let frame = c.next_push_messages_within(std::time::Duration::from_secs(20)).await;
            let frame = frame.unwrap_or_else(|| panic!("{} got {} of 100", c.user, seqs.len()));
            let bytes: usize = frame.msgs.values().flat_map(|p| &p.msgs).map(prost::Message::encoded_len).sum();
            assert!(bytes <= 1 << 20, "a push frame of {bytes} bytes");
            seqs.extend(frame.msgs.values().flat_map(|p| p.msgs.iter().map(|m| m.seq)));
        }
        assert_eq!(seqs, (1..=100).collect(), "{}", c.user);
    }

    // Sync back: each page answers the newest that fit; ask again below them.
    let reader = &mut online[0];
    let (mut got, mut end, mut pages) = (Vec::new(), 100, 0);
    while end >= 1 {
        let page = reader.pull_page("sg_g-big", 1, end).await;
        assert!(!page.msgs.is_empty(), "a page made no progress below {end}");
        pages += 1;
        let first = page.msgs[0].seq;
        got.extend(page.msgs.iter().map(|m| m.seq));
        assert!(!page.is_end, "more below {first}");
        end = first - 1;
    }
    got.sort_unstable();
    assert_eq!(got, (1..=100).collect::<Vec<_>>());
    assert!(pages >= 9, "{pages} pages for 4.5 MB");
    s.stop().await;
}

/// Connections that send nothing, or drip their headers, are dropped after `header_read_secs`;
/// an address over `max_connections_per_address` has its extra connections closed at once; and
/// a client already chatting notices none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_shed_while_a_client_keeps_chatting() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |c| {
        c.api.header_read_secs = 1;
        c.msggateway.header_read_secs = 1;
        c.msggateway.max_connections_per_address = 32;
    })
    .await;
    s.register(&["ann", "ben"]).await;
    let mut ann = s.connect("ann", 1, Encoding::Gob, false).await;
    let mut ben = s.connect("ben", 1, Encoding::Gob, false).await;

    /// Whether the server closed `c` (EOF or reset) within `wait`.
    async fn closed_within(c: &mut TcpStream, wait: std::time::Duration) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(wait, c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // a 408 or the like, then the close
                Err(_) => return false,
            }
        }
    }
    // 40 silent connections to the gateway: 30 fit beside Ann's and Ben's, 10 are over the cap.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(TcpStream::connect(s.server.ws_addr).await.unwrap());
    }
    // All at once, well within the header timeout.
    let closed =
        futures::future::join_all(idle.iter_mut().map(|c| closed_within(c, std::time::Duration::from_millis(300))))
            .await;
    let refused = closed.iter().filter(|c| **c).count();
    assert_eq!(refused, 10, "connections over the per-address cap are closed at once");
    // 20 slow ones to REST, dripping a header a byte at a time.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(s.server.api_addr).await.unwrap();
        c.write_all(b"POST /msg/get_server_time HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(c);
    }
    let drip = tokio::spawn(async move {
        for _ in 0..10 {
            for c in slow.iter_mut() {
                let _ = c.write_all(b"X").await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        slow
    });

    // Ann and Ben chat through it all.
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        assert_eq!(ann.send_text("ben", &format!("m{sent}")).await.err_code, 0);
        sent += 1;
        assert!(!ben.next_push().await.is_empty());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent >= 20, "{sent}");
    let mut slow = drip.await.unwrap();
    for (i, c) in idle.iter_mut().chain(slow.iter_mut()).enumerate() {
        assert!(closed_within(c, std::time::Duration::from_secs(1)).await, "connection {i} is still open");
    }
    // Their slots are free again.
    let mut again = s.connect("ben", 5, Encoding::Json, false).await;
    assert!(again.ping().await);
    assert_eq!(ann.send_text("ben", "still here").await.err_code, 0);
    s.stop().await;
}
