//! Relay mode (`openim standalone --bench-relay`), the benchmark's yardstick: messages go
//! straight from sender to receivers through the gateway, nothing is stored, and it runs on
//! loopback only.

use std::time::Duration;

use openim_common::config::Config;
use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use openim_standalone::Standalone;
use openim_testkit::{Client, Rest, text_content};
use prost::Message as _;

fn loopback(dir: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    cfg.storage.data_dir = dir.to_path_buf();
    cfg.msggateway.listen = "127.0.0.1:0".parse().unwrap();
    cfg.api.listen = "127.0.0.1:0".parse().unwrap();
    cfg.api.admin_listen = "127.0.0.1:0".parse().unwrap();
    cfg
}

async fn token(rest: &Rest, user: &str) -> String {
    let data = rest.ok("/auth/get_user_token", serde_json::json!({"userID": user, "platformID": 1})).await;
    data["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_mode_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = loopback(dir.path());
    cfg.msggateway.listen = "0.0.0.0:0".parse().unwrap();
    let err = Standalone::start_bench_relay(cfg).await.err().expect("refused");
    assert!(err.to_string().contains("msggateway.listen"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_mode_forwards_single_and_group_messages_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Standalone::start_bench_relay(loopback(dir.path())).await.unwrap();
    let rest = Rest::admin(server.api_addr).await;
    let users: Vec<_> = ["ann", "ben", "cat"].iter().map(|u| serde_json::json!({"userID": u, "nickname": u})).collect();
    rest.ok("/user/user_register", serde_json::json!({ "users": users })).await;
    let mut clients = Vec::new();
    for u in ["ann", "ben", "cat"] {
        let t = token(&rest, u).await;
        clients.push(Client::connect(server.ws_addr, u, &t, 1, Encoding::Gob, false).await);
    }
    // The token is still checked at connect.
    let refused = tokio_tungstenite::connect_async(format!(
        "ws://{}/?sendID=ann&token=forged&platformID=1&operationID=t",
        server.ws_addr
    ))
    .await;
    assert!(refused.is_err(), "a forged token connects");

    let [ann, ben, cat] = &mut clients[..] else { unreachable!() };
    let ack = ann.send_text("ben", "straight through").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let ack = sdkws::UserSendMsgResp::decode(ack.data.as_ref()).unwrap();
    let got = ben.next_push().await;
    assert_eq!(got[0].content, text_content("straight through"));
    assert_eq!(got[0].server_msg_id, ack.server_msg_id);
    assert!(got[0].seq > 0 && got[0].send_time > 0);
    // (The sender's own copy is queued before the acknowledgement here, and `call` reads past it.)
    assert!(cat.next_push_within(Duration::from_millis(300)).await.is_none(), "a third user got a single chat");

    rest.ok(
        "/group/create_group",
        serde_json::json!({"ownerUserID": "ann", "memberUserIDs": ["ben", "cat"], "adminUserIDs": [],
            "groupInfo": {"groupID": "g1", "groupName": "g", "groupType": 2}}),
    )
    .await;
    let m = ann.text("g1", true, "group-1", "to all");
    let ack = ann.call(req::SEND_MSG, m.encode_to_vec()).await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    for member in [ben, cat] {
        let got = member.next_push().await;
        assert_eq!(got[0].content, text_content("to all"));
    }

    // Nothing was stored: the chat has no seqs to sync.
    let r = ann.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "ann".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(max.max_seqs.get("si_ann_ben").copied().unwrap_or(0), 0, "{:?}", max.max_seqs);
    server.stop().await.unwrap();
}
