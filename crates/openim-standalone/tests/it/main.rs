//! End-to-end tests on the standalone stack bound to port 0, driven over real WebSockets.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use openim_common::config::Config;
use openim_common::rpc;
use openim_proto::constants::{content, req, session};
use openim_proto::pb::auth::GetUserTokenReq;
use openim_proto::pb::sdkws::{self, MsgData, PushMessages, UserInfo};
use openim_proto::pb::user::UserRegisterReq;
use openim_proto::ws::{self, Encoding, WsRequest, WsResponse};
use openim_standalone::Standalone;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message as WsMsg;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn start(dir: &std::path::Path) -> Standalone {
    let mut cfg = Config::default();
    cfg.storage.data_dir = dir.to_path_buf();
    cfg.msggateway.listen = "127.0.0.1:0".parse().unwrap();
    Standalone::start(cfg).await.unwrap()
}

async fn register(s: &Standalone, users: &[&str]) {
    let req = UserRegisterReq {
        users: users
            .iter()
            .map(|u| UserInfo { user_id: (*u).into(), nickname: (*u).into(), ..Default::default() })
            .collect(),
    };
    s.clients.user.clone().user_register(rpc::request(req, "imAdmin", "t")).await.unwrap();
}

async fn token(s: &Standalone, user: &str, platform: i32) -> String {
    let req = GetUserTokenReq { platform_id: platform, user_id: user.into() };
    s.clients.auth.clone().get_user_token(rpc::request(req, "imAdmin", "t")).await.unwrap().into_inner().token
}

/// A minimal OpenIM WebSocket client speaking either envelope.
struct Client {
    user: String,
    socket: Socket,
    encoding: Encoding,
    gzip: bool,
    incr: u64,
}

impl Client {
    async fn connect(s: &Standalone, user: &str, platform: i32, encoding: Encoding, gzip: bool) -> Self {
        let tok = token(s, user, platform).await;
        let mut url = format!("ws://{}/?sendID={user}&token={tok}&platformID={platform}&operationID=op", s.ws_addr);
        if encoding == Encoding::Json {
            url.push_str("&sdkType=js&isMsgResp=true");
        }
        if gzip {
            url.push_str("&compression=gzip");
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        if encoding == Encoding::Json {
            let first = socket.next().await.unwrap().unwrap();
            assert_eq!(first, WsMsg::Text(r#"{"errCode":0,"errDlt":"","errMsg":""}"#.into()));
        }
        Self { user: user.into(), socket, encoding, gzip, incr: 0 }
    }

    async fn send_req(&mut self, id: i32, data: Vec<u8>) -> String {
        self.incr += 1;
        let r = WsRequest {
            req_identifier: id,
            send_id: self.user.clone(),
            operation_id: format!("op{}", self.incr),
            msg_incr: format!("{}_{}", self.user, self.incr),
            data: data.into(),
            ..Default::default()
        };
        let mut frame = r.encode(self.encoding);
        if self.gzip {
            frame = ws::gzip(&frame);
        }
        self.socket.send(WsMsg::Binary(frame.into())).await.unwrap();
        r.msg_incr
    }

    /// The next binary frame, decoded.
    async fn recv(&mut self) -> WsResponse {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a frame within 10 s")
                .unwrap()
                .unwrap();
            if let WsMsg::Binary(b) = m {
                let plain = if self.gzip { ws::gunzip(&b, 1 << 20).unwrap() } else { b.to_vec() };
                return WsResponse::decode(self.encoding, &plain).unwrap();
            }
        }
    }

    /// Sends a request and waits for its reply (pushes that arrive first are skipped).
    async fn call(&mut self, id: i32, data: Vec<u8>) -> WsResponse {
        let incr = self.send_req(id, data).await;
        loop {
            let r = self.recv().await;
            if r.msg_incr == incr {
                return r;
            }
        }
    }

    async fn send_text(&mut self, to: &str, text: &str) -> WsResponse {
        let m = MsgData {
            send_id: self.user.clone(),
            recv_id: to.into(),
            client_msg_id: format!("{}-{}-{}", self.user, text, self.incr),
            session_type: session::SINGLE_CHAT,
            msg_from: 100,
            content_type: content::TEXT,
            content: serde_json_text(text),
            sender_platform_id: 1,
            ..Default::default()
        };
        self.call(req::SEND_MSG, m.encode_to_vec()).await
    }

    async fn next_push(&mut self) -> Vec<MsgData> {
        loop {
            let r = self.recv().await;
            if r.req_identifier == req::PUSH_MSG {
                let p = PushMessages::decode(r.data.as_ref()).unwrap();
                return p.msgs.into_values().flat_map(|m| m.msgs).collect();
            }
        }
    }
}

fn serde_json_text(text: &str) -> Vec<u8> {
    format!("{{\"content\":\"{text}\"}}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_exchange_messages_in_both_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    register(&s, &["alice", "bob"]).await;
    let mut alice = Client::connect(&s, "alice", 1, Encoding::Gob, true).await;
    let mut bob = Client::connect(&s, "bob", 5, Encoding::Json, false).await;

    let ack = alice.send_text("bob", "hello bob").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let ack = sdkws::UserSendMsgResp::decode(ack.data.as_ref()).unwrap();
    assert!(!ack.server_msg_id.is_empty());

    let got = bob.next_push().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content, serde_json_text("hello bob"));
    assert_eq!(got[0].seq, 1);
    assert_eq!(got[0].send_id, "alice");

    let ack = bob.send_text("alice", "hi alice").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let got = alice.next_push().await;
    assert_eq!(got[0].content, serde_json_text("hi alice"));
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
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_connection_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    register(&s, &["carol", "dave"]).await;
    let mut carol = Client::connect(&s, "carol", 1, Encoding::Gob, true).await;

    // Garbage bytes (not gzip).
    carol.socket.send(WsMsg::Binary(Bytes::from_static(b"\x00garbage"))).await.unwrap();
    let r = carol.recv().await;
    assert_eq!((r.req_identifier, r.err_code), (req::WS_DATA_ERROR, 3001));

    // Unknown request code.
    let r = carol.call(4242, Vec::new()).await;
    assert_eq!(r.err_code, 1001, "{}", r.err_msg);

    // Spoofed sendID inside the envelope.
    carol.user = "dave".into();
    let r = carol.call(req::GET_NEWEST_SEQ, Vec::new()).await;
    assert_eq!(r.err_code, 3001, "{}", r.err_msg);
    carol.user = "carol".into();

    // Still serving.
    let ack = carol.send_text("dave", "still here").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);

    // A token of another user is refused at connect.
    let dave_token = token(&s, "dave", 1).await;
    let url = format!("ws://{}/?sendID=carol&token={dave_token}&platformID=1&operationID=op", s.ws_addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err(), "a token for dave must not open carol's connection");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_accepted_messages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = start(dir.path()).await;
        register(&s, &["erin", "frank"]).await;
        let mut erin = Client::connect(&s, "erin", 1, Encoding::Gob, false).await;
        for i in 0..50 {
            let ack = erin.send_text("frank", &format!("m{i}")).await;
            assert_eq!(ack.err_code, 0);
        }
        s.stop().await.unwrap();
    }
    let s = start(dir.path()).await;
    let mut frank = Client::connect(&s, "frank", 1, Encoding::Gob, true).await;
    let r = frank.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "frank".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(max.max_seqs.get("si_erin_frank"), Some(&50), "every accepted message survived the restart");
    s.stop().await.unwrap();
}
