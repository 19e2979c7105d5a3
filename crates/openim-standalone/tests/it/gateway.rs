//! What browsers and the official SDK need from the gateway and the API beyond the envelope:
//! server pings for web clients, clean close handshakes, logout, and CORS.

use std::time::Duration;

use futures::StreamExt as _;
use openim_proto::constants::req;
use openim_proto::ws::Encoding;
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::stack::Stack;

/// Reads raw frames until `pred` matches one; `None` if the connection ends or `wait` passes.
async fn frame_where(
    socket: &mut openim_testkit::client::Socket,
    wait: Duration,
    pred: impl Fn(&WsMsg) -> bool,
) -> Option<WsMsg> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(m))) if pred(&m) => return Some(m),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_web_clients_so_an_idle_browser_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start_with(dir.path(), |c| c.msggateway.read_deadline_secs = 2).await;
    s.register(&["web", "app", "peer"]).await;
    // A browser cannot ping; the server pings platform 5 (web) and the browser's pong keeps it.
    let mut web = s.connect("web", 5, Encoding::Gob, true).await;
    let mut app = s.connect("app", 1, Encoding::Gob, true).await;
    let ping = frame_where(&mut web.socket, Duration::from_secs(3), |m| matches!(m, WsMsg::Ping(_))).await;
    assert!(ping.is_some(), "a web client is pinged within the read deadline");
    // Idle for three read deadlines, answering only the server's pings (tungstenite does).
    let _ = frame_where(&mut web.socket, Duration::from_secs(6), |_| false).await;
    let mut peer = s.connect("peer", 1, Encoding::Gob, true).await;
    assert_eq!(peer.send_text("web", "still there?").await.err_code, 0);
    let got = web.next_push_within(Duration::from_secs(5)).await.expect("the idle web client still gets pushes");
    assert_eq!(got[0].send_id, "peer");

    // Other platforms ping themselves (the SDKs do); a silent one is dropped at the deadline.
    let closed = frame_where(&mut app.socket, Duration::from_secs(4), |m| matches!(m, WsMsg::Close(_))).await;
    assert!(closed.is_some(), "a silent non-web client is closed at the read deadline");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_and_a_logout_closes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["leaver", "quitter"]).await;

    // The client closes: the server answers the close handshake (a browser otherwise sees 1006).
    let mut c = s.connect("leaver", 5, Encoding::Gob, true).await;
    c.socket.close(None).await.unwrap();
    let answer = frame_where(&mut c.socket, Duration::from_secs(5), |m| matches!(m, WsMsg::Close(_))).await;
    assert!(answer.is_some(), "the server answers a close frame with one");

    // Logout (2003) is acknowledged, then the server closes with 1000.
    let mut q = s.connect("quitter", 5, Encoding::Gob, true).await;
    let r = q.call(req::LOGOUT, Vec::new()).await;
    assert_eq!(r.err_code, 0, "{}", r.err_msg);
    let close = frame_where(&mut q.socket, Duration::from_secs(5), |m| matches!(m, WsMsg::Close(_))).await;
    match close {
        Some(WsMsg::Close(Some(f))) => assert_eq!(f.code, CloseCode::Normal, "{f:?}"),
        other => panic!("a logout ends with a normal close frame, got {other:?}"),
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_cors_so_web_apps_on_other_origins_can_call_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/user/get_users_info", s.server.api_addr);
    let pre = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,token,operationid")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "preflight: {}", pre.status());
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h.contains_key("access-control-allow-methods") && h.contains_key("access-control-allow-headers"));

    let resp = http
        .post(&url)
        .header("Origin", "http://app.example")
        .header("operationID", "cors")
        .json(&serde_json::json!({"userIDs": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errCode"], 1507, "no token is still refused: {body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_subscriber_sees_a_user_come_online_and_go_offline() {
    use openim_proto::pb::sdkws::{SubUserOnlineStatus, SubUserOnlineStatusTips};
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["watcher", "watched"]).await;
    let mut watcher = s.connect("watcher", 5, Encoding::Gob, true).await;
    let sub = SubUserOnlineStatus { subscribe_user_id: vec!["watched".into()], unsubscribe_user_id: vec![] };
    let r = watcher.call(req::SUB_USER_ONLINE_STATUS, sub.encode_to_vec()).await;
    assert_eq!(r.err_code, 0, "{}", r.err_msg);
    let now = SubUserOnlineStatusTips::decode(r.data.as_ref()).unwrap();
    assert_eq!(now.subscribers.len(), 1, "the answer carries the subscribed user's status");
    assert!(now.subscribers[0].online_platform_i_ds.is_empty(), "offline: {now:?}");

    let status = async |c: &mut openim_testkit::Client| loop {
        let f = c.recv().await;
        if f.req_identifier == req::SUB_USER_ONLINE_STATUS {
            assert!(!f.operation_id.is_empty());
            break SubUserOnlineStatusTips::decode(f.data.as_ref()).unwrap().subscribers.remove(0);
        }
    };
    let watched = s.connect("watched", 2, Encoding::Json, false).await;
    let online = status(&mut watcher).await;
    assert_eq!((online.user_id.as_str(), online.online_platform_i_ds.clone()), ("watched", vec![2]));
    drop(watched);
    let offline = status(&mut watcher).await;
    assert!(offline.online_platform_i_ds.is_empty(), "{offline:?}");

    // Unsubscribed: no more pushes.
    let unsub = SubUserOnlineStatus { subscribe_user_id: vec![], unsubscribe_user_id: vec!["watched".into()] };
    assert_eq!(watcher.call(req::SUB_USER_ONLINE_STATUS, unsub.encode_to_vec()).await.err_code, 0);
    let _again = s.connect("watched", 2, Encoding::Json, false).await;
    assert!(watcher.recv_within(Duration::from_millis(500)).await.is_none(), "no push after unsubscribing");
    // Bounded.
    let many = SubUserOnlineStatus {
        subscribe_user_id: (0..3001).map(|i| format!("u{i}")).collect(),
        unsubscribe_user_id: vec![],
    };
    assert_eq!(watcher.call(req::SUB_USER_ONLINE_STATUS, many.encode_to_vec()).await.err_code, 1001);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_request_codes_are_answered_and_counted_as_other() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["mo"]).await;
    let mut mo = s.connect("mo", 3, Encoding::Gob, false).await;
    for code in [987_654, 987_655, -1] {
        let r = mo.call(code, Vec::new()).await;
        assert_eq!((r.req_identifier, r.err_code), (code, 1001), "{}", r.err_msg);
    }
    assert_eq!(mo.call(req::GET_NEWEST_SEQ, Vec::new()).await.err_code, 0, "the connection stays");
    let metrics = reqwest::get(format!("http://{}/metrics", s.server.admin_addr)).await.unwrap().text().await.unwrap();
    let requests: Vec<&str> = metrics.lines().filter(|l| l.starts_with("openim_gateway_request_seconds")).collect();
    assert!(requests.iter().any(|l| l.contains(r#"req="other""#)), "{requests:?}");
    assert!(requests.iter().any(|l| l.contains(r#"req="1001""#)), "{requests:?}");
    assert!(!metrics.contains("987654") && !metrics.contains("987655"), "a client's code became a label");
    s.stop().await;
}
