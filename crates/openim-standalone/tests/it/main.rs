//! End-to-end tests on the standalone stack bound to port 0, driven over real WebSockets and HTTP.

mod admin_msgs;
mod authz;
mod backpressure;
mod compat;
mod conversations;
mod flows;
mod friends;
mod gateway;
mod group_life;
mod group_matrix;
mod groups;
mod marks;
mod objects;
mod read;
mod relay;
mod security;
mod stack;
mod users;
mod webhooks;

use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt as _;
use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message as WsMsg;

use openim_testkit::text_content;
use stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_exchange_messages_in_both_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["alice", "bob"]).await;
    let mut alice = s.connect("alice", 1, Encoding::Gob, true).await;
    let mut bob = s.connect("bob", 5, Encoding::Json, false).await;

    let ack = alice.send_text("bob", "hello bob").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let ack = sdkws::UserSendMsgResp::decode(ack.data.as_ref()).unwrap();
    assert!(!ack.server_msg_id.is_empty());

    let got = bob.next_push().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content, text_content("hello bob"));
    assert_eq!(got[0].seq, 1);
    assert_eq!(got[0].send_id, "alice");
    // The sending connection gets its own message back too: that is where it learns the seq.
    let own = alice.next_own_push_within(Duration::from_secs(10)).await.expect("the sender's own copy");
    assert_eq!((own[0].client_msg_id.as_str(), own[0].seq), (ack.client_msg_id.as_str(), 1));

    let ack = bob.send_text("alice", "hi alice").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let got = alice.next_push().await;
    assert_eq!(got[0].content, text_content("hi alice"));
    assert_eq!(got[0].seq, 2);

    // Sync by seq: newest seq, then pull the range.
    let r = alice.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "alice".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(max.max_seqs.get("si_alice_bob"), Some(&2));
    let pull = sdkws::PullMessageBySeqsReq {
        user_id: "alice".into(),
        seq_ranges: vec![sdkws::SeqRange { conversation_id: "si_alice_bob".into(), begin: 1, end: 2, num: 10 }],
        order: 0,
    };
    let r = alice.call(req::PULL_MSG_BY_SEQ_LIST, pull.encode_to_vec()).await;
    assert_eq!(r.err_code, 0, "{}", r.err_msg);
    let msgs = sdkws::PullMessageBySeqsResp::decode(r.data.as_ref()).unwrap();
    let seqs: Vec<i64> = msgs.msgs["si_alice_bob"].msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_connection_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["carol", "dave"]).await;
    let mut carol = s.connect("carol", 1, Encoding::Gob, true).await;

    // Garbage bytes (not gzip).
    carol.socket.send(WsMsg::Binary(Bytes::from_static(b"\x00garbage"))).await.unwrap();
    let r = carol.recv().await;
    assert_eq!((r.req_identifier, r.err_code), (req::WS_DATA_ERROR, 3001));

    // Valid gzip around garbage.
    carol.socket.send(WsMsg::Binary(openim_proto::ws::gzip(b"not gob at all").into())).await.unwrap();
    let r = carol.recv().await;
    assert_eq!((r.req_identifier, r.err_code), (req::WS_DATA_ERROR, 3001));

    // Unknown request code.
    let r = carol.call(4242, Vec::new()).await;
    assert_eq!(r.err_code, 1001, "{}", r.err_msg);

    // A payload that is not the protobuf the code expects.
    let r = carol.call(req::SEND_MSG, b"\xff\xff\xff".to_vec()).await;
    assert_eq!(r.err_code, 1001, "{}", r.err_msg);

    // Spoofed sendID inside the envelope.
    carol.user = "dave".into();
    let r = carol.call(req::GET_NEWEST_SEQ, Vec::new()).await;
    assert_eq!(r.err_code, 3001, "{}", r.err_msg);
    carol.user = "carol".into();

    // Spoofed sendID inside the message.
    let mut m = carol.text("carol", false, "spoof-1", "from dave?");
    m.send_id = "dave".into();
    let r = carol.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(r.err_code, 1002, "{}", r.err_msg);

    // A clientMsgID too long to be indexed (and so found again on a resend).
    let m = carol.text("dave", false, &"x".repeat(65), "long id");
    let r = carol.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(r.err_code, 1001, "{}", r.err_msg);
    assert!(r.err_msg.contains("clientMsgID"), "{}", r.err_msg);

    // Still serving.
    let ack = carol.send_text("dave", "still here").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);

    // WebSocket heartbeat.
    carol.socket.send(WsMsg::Ping(Bytes::from_static(b"beat"))).await.unwrap();
    loop {
        use futures::StreamExt as _;
        if let WsMsg::Pong(p) = carol.socket.next().await.unwrap().unwrap() {
            assert_eq!(&p[..], b"beat");
            break;
        }
    }

    // Text heartbeat (JS SDK).
    carol.socket.send(WsMsg::Text(r#"{"type":"ping"}"#.into())).await.unwrap();
    loop {
        use futures::StreamExt as _;
        let m = carol.socket.next().await.unwrap().unwrap();
        if let WsMsg::Text(t) = m {
            assert_eq!(t.as_str(), r#"{"type":"pong"}"#);
            break;
        }
    }

    // An oversized frame closes that connection with a reason; others are unaffected.
    let mut eve = s.connect("dave", 2, Encoding::Gob, false).await;
    eve.socket.send(WsMsg::Binary(vec![0u8; 60_000].into())).await.unwrap();
    let closed = loop {
        use futures::StreamExt as _;
        match eve.socket.next().await {
            Some(Ok(WsMsg::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|f| u16::from(f.code)), Some(1009));
    let ack = carol.send_text("dave", "after the oversized frame").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);

    // A token of another user, or garbage, is refused at connect.
    let dave_token = s.token("dave", 1).await;
    for token in [dave_token.as_str(), "garbage"] {
        let url = format!("ws://{}/?sendID=carol&token={token}&platformID=1&operationID=op", s.server.ws_addr);
        assert!(tokio_tungstenite::connect_async(url).await.is_err(), "token {token} must not open carol's connection");
    }
    // JS clients (isMsgResp) get the refusal as their first text frame.
    let url = format!(
        "ws://{}/?sendID=carol&token={dave_token}&platformID=1&operationID=op&sdkType=js&isMsgResp=true",
        s.server.ws_addr
    );
    let (mut js, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = futures::StreamExt::next(&mut js).await.unwrap().unwrap();
    let reply: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(reply["errCode"], 1502, "{reply}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_accepted_messages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Stack::start(dir.path()).await;
        s.register(&["erin", "frank"]).await;
        let mut erin = s.connect("erin", 1, Encoding::Gob, false).await;
        for i in 0..50 {
            let ack = erin.send_text("frank", &format!("m{i}")).await;
            assert_eq!(ack.err_code, 0);
        }
        s.stop().await;
    }
    let s = Stack::start(dir.path()).await;
    let mut frank = s.connect("frank", 1, Encoding::Gob, true).await;
    let r = frank.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "frank".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(max.max_seqs.get("si_erin_frank"), Some(&50), "every accepted message survived the restart");
    s.stop().await;
}
