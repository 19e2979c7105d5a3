//! A batch split into shards by conversation keeps every conversation's invariants: seqs from 1
//! with no gap, in the order the messages were accepted, a resent `clientMsgID` stored once, and
//! the push topic given each conversation's messages in seq order.

use std::collections::HashMap;

use bytes::Bytes;
use openim_proto::pb::msg::PushMsgDataToMq;
use openim_proto::pb::sdkws::MsgData;
use openim_storage::{BusMessage, Stores, topic};
use prost::Message as _;

/// Message `i` from `u{from}` to `b`, keyed by its conversation as `openim-rpc-msg` publishes it.
fn record(from: usize, i: usize) -> BusMessage {
    let send_id = format!("u{from}");
    let conv = openim_common::ids::single_conversation_id(&send_id, "b");
    let msg = MsgData {
        send_id,
        recv_id: "b".into(),
        client_msg_id: format!("u{from}-m{i}"),
        session_type: 1,
        content_type: 101,
        content: b"{}".to_vec(),
        send_time: 1,
        ..Default::default()
    };
    BusMessage { key: conv, payload: Bytes::from(msg.encode_to_vec()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_batches_keep_each_conversations_order_and_seqs() {
    const SENDERS: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::embedded(dir.path()).await.unwrap();
    let mut pushed = stores.bus.subscribe(topic::TO_PUSH, "test").await.unwrap();
    let transfer = openim_msgtransfer::Transfer::new(stores.clone(), 1000).with_shards(4);
    let stop = tokio_util::sync::CancellationToken::new();

    // Interleaved as many senders' messages arrive; the second batch resends two of the first.
    let first: Vec<BusMessage> = (0..6).flat_map(|i| (0..SENDERS).map(move |u| record(u, i))).collect();
    let mut second: Vec<BusMessage> = (6..10).flat_map(|i| (0..SENDERS).map(move |u| record(u, i))).collect();
    second.insert(5, record(3, 2));
    second.push(record(17, 5));
    assert!(transfer.handle_sharded(first, &stop).await);
    assert!(transfer.handle_sharded(second, &stop).await);

    for u in 0..SENDERS {
        let conv = openim_common::ids::single_conversation_id(&format!("u{u}"), "b");
        let stored = stores.messages.messages_in_range(&conv, 1, 100, 100).await.unwrap();
        let got: Vec<(i64, String)> = stored.iter().map(|m| (m.seq, m.client_msg_id.clone())).collect();
        let want: Vec<(i64, String)> = (0..10).map(|i| (i as i64 + 1, format!("u{u}-m{i}"))).collect();
        assert_eq!(got, want, "{conv}: seqs 1..=10 in the order sent, each message once");
    }

    // Pushed: every message under its stored seq, each conversation's in seq order; the two
    // resends again under the seqs they were stored at (push's dedup drops them).
    let mut seqs: HashMap<String, Vec<i64>> = HashMap::new();
    let mut total = 0;
    while total < SENDERS * 10 + 2 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(5), pushed.next_batch(1000))
            .await
            .expect("the push topic gets every message")
            .unwrap()
            .unwrap();
        for r in batch {
            let m = PushMsgDataToMq::decode(r.payload.as_ref()).unwrap();
            assert_eq!(m.conversation_id, r.key);
            seqs.entry(r.key).or_default().push(m.msg_data.unwrap().seq);
            total += 1;
        }
    }
    for (conv, s) in &seqs {
        let of = |u: &str| openim_common::ids::single_conversation_id(u, "b");
        let resent = [(of("u3"), 3), (of("u17"), 6)].into_iter().find(|(c, _)| c == conv).map(|(_, seq)| seq);
        let mut want: Vec<i64> = (1..=6).collect();
        want.extend(resent);
        want.extend(7..=10);
        assert_eq!(s, &want, "{conv}: pushed in order, the resend under its stored seq");
    }
}

/// A shown group notification is published as itself (`n_<group>`) and then as its copy in the
/// chat (`sg_<group>`). Apps must get them in that order: one that meets the group first in the
/// chat fetches and stores its card, and its sync on the notification then finds the group
/// already there and never reports `OnJoinedGroupAdded` (the official SDK's flows 19, 20, 23
/// failed so). Both go to one shard, so sharding cannot push the copy first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_notification_is_pushed_before_its_copy_in_the_chat() {
    const GROUPS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::embedded(dir.path()).await.unwrap();
    let mut published = stores.bus.subscribe(topic::TO_TRANSFER, "test").await.unwrap();
    let mut pushed = stores.bus.subscribe(topic::TO_PUSH, "test").await.unwrap();
    let notifier = openim_common::notify::Notifier::new(stores.bus.clone());
    for g in 0..GROUPS {
        let note = openim_common::notify::Note {
            show: true,
            ..openim_common::notify::Note::group(1501, "owner", &format!("g{g}"))
        };
        notifier.send(note, &serde_json::json!({ "group": { "groupID": format!("g{g}") } })).await;
    }
    let mut batch = Vec::new();
    while batch.len() < 2 * GROUPS {
        batch.extend(published.next_batch(1000).await.unwrap().unwrap());
    }
    let transfer = openim_msgtransfer::Transfer::new(stores.clone(), 1000).with_shards(4);
    assert!(transfer.handle_sharded(batch, &tokio_util::sync::CancellationToken::new()).await);

    let mut order = Vec::new();
    while order.len() < 2 * GROUPS {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(5), pushed.next_batch(1000))
            .await
            .expect("the push topic gets both records of every group")
            .unwrap()
            .unwrap();
        order.extend(batch.into_iter().map(|r| r.key));
    }
    for g in 0..GROUPS {
        let at = |key: String| order.iter().position(|k| *k == key).unwrap_or_else(|| panic!("{key} pushed"));
        assert!(
            at(format!("n_g{g}")) < at(format!("sg_g{g}")),
            "g{g}: the notification before its chat copy: {order:?}"
        );
    }
}
