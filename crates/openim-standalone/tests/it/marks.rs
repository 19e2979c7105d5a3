//! Revoke, delete and clear end to end, as OpenIM's SDKs drive them: REST calls, notifications
//! pushed in the `n_…` conversations, and pulls that show the marks per reader.

use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use prost::Message as _;
use serde_json::{Value, json};

use openim_testkit::{Client, text_content};

use crate::stack::Stack;

/// Posts as a user and returns the envelope.
async fn post(s: &Stack, token: &str, path: &str, body: Value) -> Value {
    s.rest.raw(path, token, body.to_string()).await
}

/// The `detail` of a notification's (or revoked message's) content, parsed.
fn detail(m: &sdkws::MsgData) -> Value {
    let elem: Value = serde_json::from_slice(&m.content).unwrap_or_else(|e| panic!("content of seq {}: {e}", m.seq));
    serde_json::from_str(elem["detail"].as_str().expect("a detail string")).unwrap()
}

/// Pulls `begin..=end` of a conversation; notifications come back in their own map.
async fn max_seqs(c: &mut Client) -> sdkws::GetMaxSeqResp {
    let r = c.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: c.user.clone() }.encode_to_vec()).await;
    assert_eq!(r.err_code, 0, "{}", r.err_msg);
    sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap()
}

/// Sends a text and waits until `to` has it; returns its seq.
async fn exchange(from: &mut Client, to: &mut Client, group: Option<&str>, text: &str) -> sdkws::MsgData {
    let target = group.unwrap_or(&to.user).to_owned();
    let m = from.text(&target, group.is_some(), &format!("{}-{text}", from.user), text);
    let ack = from.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let got = to.next_push().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content, text_content(text));
    got[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_revokes_a_single_chat_message_and_both_sides_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["alice", "bob", "carol"]).await;
    let mut alice = s.connect("alice", 1, Encoding::Json, false).await;
    let mut bob = s.connect("bob", 1, Encoding::Gob, true).await;
    let (alice_rest, bob_rest, carol_rest) =
        (s.token("alice", 3).await, s.token("bob", 3).await, s.token("carol", 3).await);
    let secret = exchange(&mut alice, &mut bob, None, "secret").await;
    exchange(&mut alice, &mut bob, None, "hello").await;
    let conv = "si_alice_bob";
    let revoke = |user: &str, seq: i64| json!({"conversationID": conv, "seq": seq, "userID": user});

    let env = post(&s, &bob_rest, "/msg/revoke_msg", revoke("bob", 1)).await;
    assert_eq!(env["errCode"], 1002, "only the sender revokes in a single chat: {env}");
    let env = post(&s, &carol_rest, "/msg/revoke_msg", revoke("alice", 1)).await;
    assert_eq!(env["errCode"], 1002, "userID must be the token's user: {env}");
    let env = post(&s, &alice_rest, "/msg/revoke_msg", revoke("alice", 99)).await;
    assert_eq!(env["errCode"], 1004, "no message at seq 99: {env}");
    let env = post(&s, &alice_rest, "/msg/revoke_msg", json!({"conversationID": conv, "seq": 1})).await;
    assert_eq!(env["errCode"], 1001, "userID is required: {env}");

    let env = post(&s, &alice_rest, "/msg/revoke_msg", revoke("alice", 1)).await;
    assert_eq!((env["errCode"].as_i64(), env.get("data")), (Some(0), None), "no data, as OpenIM: {env}");

    // Both sides are told, in the chat's notification conversation, with a seq there.
    for c in [&mut bob, &mut alice] {
        let (n_conv, note) = c.next_notification().await;
        assert_eq!(n_conv, "n_alice_bob", "{}", c.user);
        assert_eq!((note.content_type, note.seq, note.session_type), (2101, 1, 1), "{}", c.user);
        assert_eq!((note.send_id.as_str(), note.recv_id.as_str()), ("alice", "bob"));
        let tips = detail(&note);
        assert_eq!(tips["revokerUserID"], "alice");
        assert_eq!(tips["clientMsgID"], secret.client_msg_id);
        assert_eq!((tips["seq"].as_i64(), tips["sesstionType"].as_i64()), (Some(1), Some(1)));
        assert_eq!(tips["conversationID"], conv);
        assert_eq!(tips["isAdminRevoke"], false);
    }
    let env = post(&s, &alice_rest, "/msg/revoke_msg", revoke("alice", 1)).await;
    assert_eq!(env["errCode"], 1404, "a second revoke: {env}");

    // Pulls show the revoked message as OpenIM's revoke notice, the other one unchanged.
    let msgs = bob.pull(conv, 1, 2).await;
    assert_eq!(msgs.iter().map(|m| (m.seq, m.content_type)).collect::<Vec<_>>(), vec![(1, 2101), (2, 101)]);
    let revoked = detail(&msgs[0]);
    assert_eq!((revoked["revokerID"].as_str(), revoked["revokerNickname"].as_str()), (Some("alice"), Some("alice")));
    assert_eq!(revoked["sourceMessageSendID"], "alice");
    assert_eq!(revoked["clientMsgID"], secret.client_msg_id);
    assert_eq!(revoked["sourceMessageSendTime"], secret.send_time);
    assert_eq!(msgs[1].content, text_content("hello"));

    // The notification conversations are synced like any other.
    let seqs = max_seqs(&mut bob).await;
    assert_eq!(seqs.max_seqs.get("n_alice_bob"), Some(&1));
    assert_eq!(seqs.max_seqs.get("n_bob_bob"), Some(&0));
    let notes = bob.pull("n_alice_bob", 1, 1).await;
    assert_eq!(notes.iter().map(|m| m.content_type).collect::<Vec<_>>(), vec![2101]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_owners_and_admins_revoke_within_their_rights() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["own", "adm", "m1", "m2"]).await;
    s.rest
        .ok(
            "/group/create_group",
            // No creation tip (`sendMessage`): the chat's seqs are its messages.
            json!({"ownerUserID": "own", "memberUserIDs": ["m1", "m2"], "adminUserIDs": ["adm"],
                   "groupInfo": {"groupID": "gr", "groupName": "gr", "groupType": 2}, "sendMessage": false}),
        )
        .await;
    let mut own = s.connect("own", 1, Encoding::Json, false).await;
    let mut adm = s.connect("adm", 1, Encoding::Json, false).await;
    let mut m1 = s.connect("m1", 1, Encoding::Gob, false).await;
    let mut m2 = s.connect("m2", 1, Encoding::Gob, false).await;
    let tokens = [s.token("own", 3).await, s.token("adm", 3).await, s.token("m2", 3).await];
    let [own_rest, adm_rest, m2_rest] = &tokens;
    exchange(&mut m1, &mut m2, Some("gr"), "from m1").await; // seq 1
    exchange(&mut own, &mut m2, Some("gr"), "from own").await; // seq 2
    exchange(&mut adm, &mut m2, Some("gr"), "from adm").await; // seq 3
    for c in [&mut own, &mut adm, &mut m1] {
        while c.next_push_within(std::time::Duration::from_millis(300)).await.is_some() {}
    }
    let revoke = |user: &str, seq: i64| json!({"conversationID": "sg_gr", "seq": seq, "userID": user});

    let env = post(&s, m2_rest, "/msg/revoke_msg", revoke("m2", 1)).await;
    assert_eq!(env["errCode"], 1002, "a member may not revoke another's message: {env}");
    let env = post(&s, adm_rest, "/msg/revoke_msg", revoke("adm", 2)).await;
    assert_eq!(env["errCode"], 1002, "an admin may not revoke the owner's message: {env}");
    let env = post(&s, adm_rest, "/msg/revoke_msg", revoke("adm", 1)).await;
    assert_eq!(env["errCode"], 0, "an admin revokes an ordinary member's message: {env}");
    let env = post(&s, own_rest, "/msg/revoke_msg", revoke("own", 3)).await;
    assert_eq!(env["errCode"], 0, "the owner revokes an admin's message: {env}");
    let env = s.rest.post("/msg/revoke_msg", revoke("own", 2)).await;
    assert_eq!(env["errCode"], 0, "the app administrator revokes anything: {env}");

    // Every member hears of each revoke in n_gr, in order, after the group's creation (1501,
    // n_gr's seq 1).
    for c in [&mut own, &mut adm, &mut m1, &mut m2] {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let (n_conv, note) = c.next_notification().await;
            assert_eq!(n_conv.as_str(), "n_gr", "{}", c.user);
            if note.content_type == 1501 {
                continue;
            }
            assert_eq!(note.content_type, 2101, "{}", c.user);
            let tips = detail(&note);
            seen.push((note.seq, tips["seq"].as_i64().unwrap(), tips["isAdminRevoke"].as_bool().unwrap()));
        }
        assert_eq!(seen, vec![(2, 1, false), (3, 3, false), (4, 2, true)], "{}", c.user);
    }
    let msgs = m2.pull("sg_gr", 1, 3).await;
    let roles: Vec<(i64, i64)> = msgs.iter().map(|m| (m.seq, detail(m)["revokerRole"].as_i64().unwrap())).collect();
    assert_eq!(roles, vec![(1, 60), (2, 0), (3, 100)], "the revoker's role; 0 for the app administrator");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_hide_messages_for_one_user_and_clears_move_their_history_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann", "ben", "eve"]).await;
    let mut ann = s.connect("ann", 1, Encoding::Json, false).await;
    let mut ben = s.connect("ben", 1, Encoding::Gob, true).await;
    let (ben_rest, eve_rest) = (s.token("ben", 3).await, s.token("eve", 3).await);
    for i in 1..=4 {
        exchange(&mut ann, &mut ben, None, &format!("m{i}")).await;
    }
    let conv = "si_ann_ben";

    // As the SDK sends it (no deleteSyncOpt): for ben alone, no notification.
    let env =
        post(&s, &ben_rest, "/msg/delete_msgs", json!({"conversationID": conv, "seqs": [2], "userID": "ben"})).await;
    assert_eq!((env["errCode"].as_i64(), env.get("data")), (Some(0), None), "no data, as OpenIM: {env}");
    let for_ben = ben.pull(conv, 1, 4).await;
    assert_eq!((for_ben[1].seq, for_ben[1].status, for_ben[1].content.len()), (2, 4, 0), "hidden and emptied for ben");
    assert!(!for_ben[1].client_msg_id.is_empty(), "the rest of the message is kept");
    let for_ann = ann.pull(conv, 1, 4).await;
    assert_eq!(for_ann[1].content, text_content("m2"), "ann still has it");
    let env =
        post(&s, &eve_rest, "/msg/delete_msgs", json!({"conversationID": conv, "seqs": [1], "userID": "eve"})).await;
    assert_eq!(env["errCode"], 1002, "eve is not in the conversation: {env}");

    // With IsSyncSelf, ben's devices are told in his own notification conversation.
    let body = json!({"conversationID": conv, "seqs": [1], "userID": "ben",
                      "deleteSyncOpt": {"IsSyncSelf": true, "IsSyncOther": false}});
    assert_eq!(post(&s, &ben_rest, "/msg/delete_msgs", body).await["errCode"], 0);
    let (n_conv, note) = ben.next_notification().await;
    assert_eq!((n_conv.as_str(), note.content_type, note.seq), ("n_ben_ben", 2102, 1));
    assert_eq!(detail(&note), json!({"userID": "ben", "conversationID": conv, "seqs": [1]}));

    // Deleting for everyone by seq is for administrators; the slot then reads as deleted.
    let physical = json!({"conversationID": conv, "seqs": [3]});
    assert_eq!(post(&s, &ben_rest, "/msg/delete_msg_phsical_by_seq", physical.clone()).await["errCode"], 1002);
    s.rest.ok("/msg/delete_msg_phsical_by_seq", physical).await;
    let for_ann = ann.pull(conv, 1, 4).await;
    assert_eq!(for_ann[2], sdkws::MsgData { seq: 3, status: 4, ..Default::default() }, "a placeholder");
    assert_eq!(for_ann[3].content, text_content("m4"));

    // A clear: ben's history of the conversation now starts after seq 4, ann's is untouched.
    let env =
        post(&s, &ben_rest, "/msg/clear_conversation_msg", json!({"conversationIDs": [conv], "userID": "ben"})).await;
    assert_eq!(env["errCode"], 0, "{env}");
    let (n_conv, note) = ben.next_notification().await;
    assert_eq!((n_conv.as_str(), note.content_type, note.seq), ("n_ben_ben", 1300, 0), "online only, no seq");
    assert_eq!(detail(&note), json!({"userID": "ben", "conversationIDList": [conv]}));
    let seqs = max_seqs(&mut ben).await;
    assert_eq!((seqs.max_seqs.get(conv), seqs.min_seqs.get(conv)), (Some(&4), Some(&5)));
    assert_eq!(max_seqs(&mut ann).await.min_seqs.get(conv), Some(&0));
    assert!(ben.pull(conv, 1, 4).await.is_empty());
    let by_seq = openim_proto::pb::msg::GetSeqMessageReq {
        user_id: "ben".into(),
        conversations: vec![openim_proto::pb::msg::ConversationSeqs { conversation_id: conv.into(), seqs: vec![1, 4] }],
        order: 0,
    };
    let r = ben.call(req::PULL_MSG, by_seq.encode_to_vec()).await;
    let r = openim_proto::pb::msg::GetSeqMessageResp::decode(r.data.as_ref()).unwrap();
    assert!(r.msgs.get(conv).is_none_or(|m| m.msgs.is_empty()), "nor by seq: {r:?}");
    assert_eq!(ann.pull(conv, 1, 4).await.len(), 4);
    exchange(&mut ann, &mut ben, None, "after the clear").await;
    let after: Vec<i64> = ben.pull(conv, 1, 5).await.iter().map(|m| m.seq).collect();
    assert_eq!(after, vec![5]);
    s.stop().await;
}
