//! What one client can make the gateway hold or do (issue 16): a connection that does not read
//! is closed once its queue passes `max_outbound_bytes`, and a user sending faster than
//! `send_rate_per_sec` is refused with 1605 while everyone else carries on.

use std::time::Duration;

use openim_proto::constants::req;
use openim_proto::ws::Encoding;
use openim_testkit::Client;

use crate::stack::Stack;

/// Push messages `c` reads until nothing comes for `quiet` or the server closes it.
async fn drain(c: &mut Client, quiet: Duration) -> usize {
    let mut got = 0;
    while let Some(r) = c.recv_within(quiet).await {
        if r.req_identifier == req::PUSH_MSG {
            let push = <openim_proto::pb::sdkws::PushMessages as prost::Message>::decode(r.data.as_ref()).unwrap();
            got += push.msgs.values().map(|p| p.msgs.len()).sum::<usize>();
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_once_its_queue_passes_the_byte_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |c| {
        c.msggateway.max_outbound_bytes = 1 << 20;
        c.msggateway.send_rate_per_sec = 0;
    })
    .await;
    s.register(&["ann", "ben", "cat"]).await;
    let mut ann = s.connect("ann", 1, Encoding::Gob, false).await;
    // Ben reads nothing while 300 messages of 45 KB (13.5 MB: far more than the kernel's socket
    // buffers hold, far fewer frames than the frame cap) are sent to him.
    let mut ben = s.connect("ben", 1, Encoding::Gob, false).await;
    let mut cat = s.connect("cat", 1, Encoding::Gob, false).await;
    let text = "x".repeat(45_000);
    for i in 0..300 {
        let m = ann.text("ben", false, &format!("big-{i}"), &text);
        let ack = ann.call(req::SEND_MSG, prost::Message::encode_to_vec(&m)).await;
        assert_eq!(ack.err_code, 0, "message {i}: {}", ack.err_msg);
    }
    // Every message was accepted and stored; Ben's connection was closed with part of them.
    let got = drain(&mut ben, Duration::from_secs(3)).await;
    assert!(got < 300, "a client that did not read got all {got} messages: its queue was unbounded in bytes");
    assert!(!ben.ping().await || ben.recv_within(Duration::from_secs(2)).await.is_none(), "the connection is gone");
    let metrics = reqwest::get(format!("http://{}/metrics", s.server.admin_addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("openim_gateway_slow_connections_closed_total"), "{metrics}");

    // Ben resyncs by seq on a new connection; others were never affected.
    let mut ben = s.connect("ben", 1, Encoding::Gob, false).await;
    let mut seqs = Vec::new();
    let mut end = 300;
    while end >= 1 {
        let page = ben.pull_page("si_ann_ben", 1, end).await;
        assert!(!page.msgs.is_empty(), "no progress below {end}");
        seqs.extend(page.msgs.iter().map(|m| m.seq));
        end = page.msgs[0].seq - 1;
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    assert_eq!(cat.send_text("ann", "fine").await.err_code, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sending_too_fast_is_refused_with_1605_and_others_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |c| {
        c.msggateway.send_rate_per_sec = 1;
        c.msggateway.send_burst = 5;
    })
    .await;
    s.register(&["ann", "ben", "cat"]).await;
    let mut ann = s.connect("ann", 1, Encoding::Gob, false).await;
    // The budget is the user's, not the connection's: a second device shares it.
    let mut ann_web = s.connect("ann", 5, Encoding::Json, false).await;
    let mut ben = s.connect("ben", 1, Encoding::Gob, false).await;
    let mut cat = s.connect("cat", 1, Encoding::Gob, false).await;

    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(ann.send_text("ben", &format!("a{i}")).await);
        answers.push(ann_web.send_text("ben", &format!("w{i}")).await);
    }
    let codes: Vec<i32> = answers.iter().map(|a| a.err_code).collect();
    assert_eq!(codes[..5], [0; 5], "the burst goes through: {codes:?}");
    // One more may fit for each second the loop took (it takes milliseconds).
    let refused: Vec<_> = answers.iter().filter(|a| a.err_code == 1605).collect();
    assert!(refused.len() >= 3 && codes.iter().all(|c| *c == 0 || *c == 1605), "{codes:?}");
    assert!(refused[0].err_msg.contains("at most 1 messages per second"), "{}", refused[0].err_msg);
    let accepted = codes.iter().filter(|c| **c == 0).count();

    // Someone else sends as fast as they like meanwhile.
    for i in 0..5 {
        assert_eq!(cat.send_text("ben", &format!("c{i}")).await.err_code, 0);
    }
    // The refused ones were never stored: Ben's chat with Ann holds exactly the accepted ones.
    let mut pushed = 0;
    while pushed < accepted + 5 {
        pushed += ben.next_push_within(Duration::from_secs(5)).await.expect("a push").len();
    }
    assert_eq!(ben.pull("si_ann_ben", 1, 100).await.len(), accepted);
    // The budget refills at the rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ann.send_text("ben", "later").await.err_code, 0);
    s.stop().await;
}
