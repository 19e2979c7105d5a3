//! A minimal OpenIM WebSocket client speaking either envelope, for tests and examples.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use openim_proto::constants::{content, req, session};
use openim_proto::pb::sdkws::{MsgData, PullMessageBySeqsReq, PullMessageBySeqsResp, PullMsgs, PushMessages, SeqRange};
use openim_proto::ws::{self, Encoding, WsRequest, WsResponse};
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message as WsMsg;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn text_content(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "content": text })).unwrap()
}

pub struct Client {
    pub user: String,
    pub socket: Socket,
    pub encoding: Encoding,
    pub gzip: bool,
    incr: u64,
    /// Notifications of a push already read that `next_notification` has not returned yet (a
    /// push may carry several).
    notes: std::collections::VecDeque<(String, MsgData)>,
}

impl Client {
    pub async fn connect(
        addr: std::net::SocketAddr,
        user: &str,
        token: &str,
        platform: i32,
        encoding: Encoding,
        gzip: bool,
    ) -> Self {
        let mut url = format!("ws://{addr}/?sendID={user}&token={token}&platformID={platform}&operationID=op");
        if encoding == Encoding::Json {
            url.push_str("&sdkType=js&isMsgResp=true");
        }
        if gzip {
            url.push_str("&compression=gzip");
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        if encoding == Encoding::Json {
            // JS SDKs with isMsgResp=true first get OpenIM's ApiResponse saying the login worked.
            let first = socket.next().await.unwrap().unwrap();
            let WsMsg::Text(text) = first else { panic!("expected a text frame first, got {first:?}") };
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v, serde_json::json!({"errCode": 0, "errMsg": "", "errDlt": ""}), "{text}");
        }
        Self { user: user.into(), socket, encoding, gzip, incr: 0, notes: Default::default() }
    }

    pub async fn send_req(&mut self, id: i32, data: Vec<u8>) -> String {
        let user = self.user.clone();
        self.send_req_as(id, &user, data).await
    }

    /// Sends a request whose `sendID` is `send_id` (another user's, to test that it is refused).
    pub async fn send_req_as(&mut self, id: i32, send_id: &str, data: Vec<u8>) -> String {
        self.incr += 1;
        let r = WsRequest {
            req_identifier: id,
            send_id: send_id.to_owned(),
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

    /// The next binary frame within `wait`, decoded; `None` on timeout or when the server
    /// closed the connection.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<WsResponse> {
        loop {
            let m = tokio::time::timeout(wait, self.socket.next()).await.ok()??.ok()?;
            if let WsMsg::Binary(b) = m {
                let plain = if self.gzip { ws::gunzip(&b, 1 << 20).unwrap() } else { b.to_vec() };
                return Some(WsResponse::decode(self.encoding, &plain).unwrap());
            }
        }
    }

    /// Sends a WebSocket ping, as SDKs do to keep an idle connection open; `false` if the
    /// connection is gone.
    pub async fn ping(&mut self) -> bool {
        self.socket.send(WsMsg::Ping(Vec::new().into())).await.is_ok()
    }

    pub async fn recv(&mut self) -> WsResponse {
        self.recv_within(Duration::from_secs(10)).await.expect("a frame within 10 s")
    }

    /// Sends a request and waits for its reply (pushes that arrive first are skipped).
    pub async fn call(&mut self, id: i32, data: Vec<u8>) -> WsResponse {
        self.call_within(id, data, Duration::from_secs(10)).await
    }

    /// [`Client::call`], waiting up to `wait` for the reply (a server waiting for a backend to
    /// come back answers late, not never).
    pub async fn call_within(&mut self, id: i32, data: Vec<u8>, wait: Duration) -> WsResponse {
        let incr = self.send_req(id, data).await;
        self.reply_within(&incr, wait).await
    }

    /// The reply to the request sent as `incr` (pushes that arrive first are skipped).
    pub async fn recv_reply(&mut self, incr: &str) -> WsResponse {
        self.reply_within(incr, Duration::from_secs(10)).await
    }

    async fn reply_within(&mut self, incr: &str, wait: Duration) -> WsResponse {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = self.recv_within(left).await.unwrap_or_else(|| panic!("a reply to {incr} within {wait:?}"));
            if r.msg_incr == incr {
                return r;
            }
        }
    }

    pub fn text(&self, to: &str, group: bool, client_msg_id: &str, text: &str) -> MsgData {
        MsgData {
            send_id: self.user.clone(),
            recv_id: if group { String::new() } else { to.into() },
            group_id: if group { to.into() } else { String::new() },
            client_msg_id: client_msg_id.into(),
            session_type: if group { session::READ_GROUP_CHAT } else { session::SINGLE_CHAT },
            msg_from: 100,
            content_type: content::TEXT,
            content: text_content(text),
            sender_platform_id: 1,
            ..Default::default()
        }
    }

    pub async fn send_text(&mut self, to: &str, text: &str) -> WsResponse {
        let id = format!("{}-{}-{}", self.user, text, self.incr);
        let m = self.text(to, false, &id, text);
        self.call(req::SEND_MSG, m.encode_to_vec()).await
    }

    /// Pulls seqs `begin..=end` of a conversation (1002) and returns what came back for it, chat
    /// or notification; asserts the pull succeeded.
    pub async fn pull(&mut self, conv: &str, begin: i64, end: i64) -> Vec<MsgData> {
        self.pull_page(conv, begin, end).await.msgs
    }

    /// As [`Client::pull`], the whole page (`isEnd`, `endSeq`).
    pub async fn pull_page(&mut self, conv: &str, begin: i64, end: i64) -> PullMsgs {
        let pull = PullMessageBySeqsReq {
            user_id: self.user.clone(),
            seq_ranges: vec![SeqRange { conversation_id: conv.into(), begin, end, num: (end - begin + 1).max(1) }],
            order: 0,
        };
        let r = self.call(req::PULL_MSG_BY_SEQ_LIST, pull.encode_to_vec()).await;
        assert_eq!(r.err_code, 0, "{}", r.err_msg);
        let mut resp = PullMessageBySeqsResp::decode(r.data.as_ref()).expect("a PullMessageBySeqsResp");
        let found = resp.msgs.remove(conv).or_else(|| resp.notification_msgs.remove(conv));
        found.unwrap_or_default()
    }

    /// The messages of the next push.
    pub async fn next_push(&mut self) -> Vec<MsgData> {
        self.next_push_within(Duration::from_secs(10)).await.expect("a push within 10 s")
    }

    /// The chat messages of the next push that carries any from other users. The user's own
    /// messages come back to every connection it has (that is how the sending device learns
    /// their seqs); [`Client::next_own_push_within`] reads those. A group's tips in the chat
    /// ("X joined") are skipped; [`Client::next_tip_of`] reads those.
    pub async fn next_push_within(&mut self, wait: Duration) -> Option<Vec<MsgData>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push_messages_within(left).await?;
            let others: Vec<MsgData> = p
                .msgs
                .into_values()
                .flat_map(|m| m.msgs)
                .filter(|m| m.send_id != self.user && !content::GROUP_NOTIFICATIONS.contains(&m.content_type))
                .collect();
            if !others.is_empty() {
                return Some(others);
            }
        }
    }

    /// The user's own chat messages in the next push that carries any.
    pub async fn next_own_push_within(&mut self, wait: Duration) -> Option<Vec<MsgData>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push_messages_within(left).await?;
            let own: Vec<MsgData> =
                p.msgs.into_values().flat_map(|m| m.msgs).filter(|m| m.send_id == self.user).collect();
            if !own.is_empty() {
                return Some(own);
            }
        }
    }

    /// The next push as sent: chat messages and notifications, by conversation.
    pub async fn next_push_messages_within(&mut self, wait: Duration) -> Option<PushMessages> {
        loop {
            let r = self.recv_within(wait).await?;
            if r.req_identifier == req::PUSH_MSG {
                // The official SDK refuses to act on a push without an operationID.
                assert!(!r.operation_id.is_empty(), "a push without an operationID");
                return Some(PushMessages::decode(r.data.as_ref()).unwrap());
            }
        }
    }

    /// The next tip of `content_type` in a chat (a group notification's copy there), with its
    /// conversation, skipping everything else.
    pub async fn next_tip_of(&mut self, content_type: i32) -> (String, MsgData) {
        self.next_of(content_type, false).await
    }

    /// The next notification of `content_type`, from whichever conversation, skipping others.
    pub async fn next_notification_of(&mut self, content_type: i32) -> (String, MsgData) {
        self.next_of(content_type, true).await
    }

    async fn next_of(&mut self, content_type: i32, notification: bool) -> (String, MsgData) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let what = if notification { "notification" } else { "tip" };
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push_messages_within(left).await;
            let p = p.unwrap_or_else(|| panic!("{} got no {content_type} {what} within 10 s", self.user));
            for (conv, msgs) in if notification { p.notification_msgs } else { p.msgs } {
                if let Some(m) = msgs.msgs.into_iter().find(|m| m.content_type == content_type) {
                    return (conv, m);
                }
            }
        }
    }

    /// The notifications of the next push that carries any, skipping chat messages.
    pub async fn next_notification(&mut self) -> (String, MsgData) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(note) = self.notes.pop_front() {
                return note;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let p = self.next_push_messages_within(left).await.expect("a notification within 10 s");
            let mut notes: Vec<(String, MsgData)> = p
                .notification_msgs
                .into_iter()
                .flat_map(|(conv, msgs)| msgs.msgs.into_iter().map(move |m| (conv.clone(), m)))
                .collect();
            notes.sort_by_key(|(_, m)| m.send_time);
            self.notes.extend(notes);
        }
    }
}
