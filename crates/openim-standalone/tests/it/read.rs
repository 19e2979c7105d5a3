//! Read state: marking a chat read raises the reader's has-read seq on every device and sends
//! the peer OpenIM's 2200 receipt live.

use openim_proto::constants::req;
use openim_proto::pb::{msg, sdkws};
use openim_proto::ws::Encoding;
use prost::Message as _;
use serde_json::{Value, json};

use crate::stack::Stack;

fn tips(m: &sdkws::MsgData) -> Value {
    let elem: Value = serde_json::from_slice(&m.content).unwrap();
    serde_json::from_str(elem["detail"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_a_chat_read_sends_the_sender_a_receipt_and_syncs_the_reader_s_devices() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ava", "bea", "cal"]).await;
    let mut ava = s.connect("ava", 5, Encoding::Gob, true).await;
    let mut bea_phone = s.connect("bea", 2, Encoding::Gob, false).await;
    let bea = s.token("bea", 5).await;
    for text in ["one", "two", "three"] {
        assert_eq!(ava.send_text("bea", text).await.err_code, 0);
    }
    // Acknowledged means accepted; stored (with a seq) once pushed.
    let mut got = 0;
    while got < 3 {
        got += bea_phone.next_push().await.len();
    }
    let conv = "si_ava_bea";
    let unread = |r: &msg::GetConversationsHasReadAndMaxSeqResp| r.seqs[conv].max_seq - r.seqs[conv].has_read_seq;
    let has_read = async |c: &mut openim_testkit::Client| {
        let q = msg::GetConversationsHasReadAndMaxSeqReq {
            user_id: c.user.clone(),
            conversation_i_ds: vec![conv.into()],
            ..Default::default()
        };
        let r = c.call(req::GET_CONV_MAX_READ_SEQ, q.encode_to_vec()).await;
        msg::GetConversationsHasReadAndMaxSeqResp::decode(r.data.as_ref()).unwrap()
    };
    assert_eq!(unread(&has_read(&mut bea_phone).await), 3);

    s.rest
        .ok_as(
            &bea,
            "/msg/mark_conversation_as_read",
            json!({"conversationID": conv, "userID": "bea", "hasReadSeq": 2}),
        )
        .await;
    let (n_conv, receipt) = ava.next_notification_of(2200).await;
    assert_eq!(n_conv, "n_ava_bea");
    assert_eq!(receipt.seq, 0, "receipts are live only, as in OpenIM");
    let t = tips(&receipt);
    assert_eq!(
        (t["markAsReadUserID"].as_str(), t["hasReadSeq"].as_i64(), t["seqs"].clone()),
        (Some("bea"), Some(2), json!([1, 2]))
    );
    bea_phone.next_notification_of(2200).await; // the reader's other device follows too
    assert_eq!(unread(&has_read(&mut bea_phone).await), 1);

    s.rest.ok_as(&bea, "/msg/mark_msgs_as_read", json!({"conversationID": conv, "userID": "bea", "seqs": [3]})).await;
    let (_, receipt) = ava.next_notification_of(2200).await;
    assert_eq!((tips(&receipt)["seqs"].clone(), tips(&receipt)["hasReadSeq"].as_i64()), (json!([3]), Some(3)));
    assert_eq!(unread(&has_read(&mut bea_phone).await), 0);
    // A mark never lowers the read seq.
    s.rest
        .ok_as(
            &bea,
            "/msg/mark_conversation_as_read",
            json!({"conversationID": conv, "userID": "bea", "hasReadSeq": 1}),
        )
        .await;
    assert_eq!(unread(&has_read(&mut bea_phone).await), 0);
    s.rest
        .ok_as(
            &bea,
            "/msg/set_conversation_has_read_seq",
            json!({"conversationID": conv, "userID": "bea", "hasReadSeq": 3}),
        )
        .await;
    // The marks above also reach this device, in the chat's notification conversation, when
    // they arrive after a reply it was waiting for (pushes before a reply are skipped): skip them.
    let self_conv = loop {
        match bea_phone.next_notification_of(2200).await {
            (c, _) if c == "n_ava_bea" => continue,
            (c, _) => break c,
        }
    };
    assert_eq!(self_conv, "n_bea_bea");

    // Refusals: beyond the max seq, someone else's read state, a chat one is not in, no token.
    let env = s
        .rest
        .raw(
            "/msg/mark_conversation_as_read",
            &bea,
            json!({"conversationID": conv, "userID": "bea", "hasReadSeq": 99}).to_string(),
        )
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    let cal = s.token("cal", 5).await;
    for path in ["/msg/mark_conversation_as_read", "/msg/mark_msgs_as_read", "/msg/set_conversation_has_read_seq"] {
        let body = json!({"conversationID": conv, "userID": "bea", "hasReadSeq": 1, "seqs": [1]});
        assert_eq!(s.rest.raw(path, &cal, body.to_string()).await["errCode"], 1002, "{path}: another user");
        let body = json!({"conversationID": conv, "userID": "cal", "hasReadSeq": 1, "seqs": [1]});
        assert_eq!(s.rest.raw(path, &cal, body.to_string()).await["errCode"], 1002, "{path}: not in the chat");
        assert_eq!(s.rest.raw(path, "", body.to_string()).await["errCode"], 1507, "{path}: no token");
    }
    let many: Vec<i64> = (1..=1001).collect();
    let env = s
        .rest
        .raw("/msg/mark_msgs_as_read", &bea, json!({"conversationID": conv, "userID": "bea", "seqs": many}).to_string())
        .await;
    assert_eq!(env["errCode"], 1001, "{env}");
    s.stop().await;
}
