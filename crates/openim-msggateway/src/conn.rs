//! One client connection: the upgrade with its query parameters and token check, the reader loop
//! that answers requests, and the writer task that owns the socket's sending half.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use openim_common::rpc;
use openim_common::{ErrCode, ImError};
use openim_proto::constants::{platform, req};
use openim_proto::pb::auth::ParseTokenReq;
use openim_proto::pb::msg::{GetConversationsHasReadAndMaxSeqReq, GetLastMessageReq, GetSeqMessageReq, SendMsgReq};
use openim_proto::pb::sdkws::{
    GetMaxSeqReq, MsgData, PullMessageBySeqsReq, SetAppBackgroundStatusReq, UserSendMsgResp,
};
use openim_proto::ws::{self, Encoding, WsRequest, WsResponse};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hooks::Presence;
use crate::presence::Watching;
use crate::{ConnHandle, Gateway};

/// Frames queued for one connection before it counts as too slow and is closed.
const OUTBOUND_CAPACITY: usize = 512;
/// A write that takes longer than this means the client stopped reading: the connection ends.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most frames written before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 64;

/// What a frame counts for in a connection's queue: its payload, and what a frame costs besides.
pub(crate) fn weight(frame: &Message) -> usize {
    let payload = match frame {
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Text(t) => t.len(),
        Message::Close(_) => 0,
    };
    payload + 64
}

/// What the writer task sends.
pub(crate) enum Outbound {
    Frame(Message),
    Close(u16, String),
}

/// Connection parameters as the SDKs send them.
struct ConnectParams {
    send_id: String,
    token: String,
    platform_id: i32,
    operation_id: String,
    encoding: Encoding,
    gzip: bool,
    msg_resp: bool,
    /// The app connected from the background (`isBackground=true`).
    background: bool,
}

impl ConnectParams {
    fn parse(q: &HashMap<String, String>) -> Result<Self, ImError> {
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
        let send_id = get("sendID").to_owned();
        let token = get("token").to_owned();
        if send_id.is_empty() || token.is_empty() {
            return Err(ImError::new(ErrCode::CONN_ARGS, "sendID and token are required"));
        }
        let platform_id = get("platformID").parse().map_err(|_| {
            ImError::new(ErrCode::CONN_ARGS, format!("platformID {:?} is not a number", get("platformID")))
        })?;
        Ok(Self {
            send_id,
            token,
            platform_id,
            operation_id: get("operationID").to_owned(),
            encoding: if get("sdkType") == "js" { Encoding::Json } else { Encoding::Gob },
            gzip: get("compression") == "gzip",
            msg_resp: get("isMsgResp") == "true",
            background: get("isBackground") == "true",
        })
    }
}

fn connect_reply(e: Option<&ImError>) -> String {
    let (code, msg, dlt) = match e {
        None => (0, "", ""),
        Some(e) => (e.code.0, e.msg.as_str(), e.detail.as_str()),
    };
    serde_json::json!({"errCode": code, "errMsg": msg, "errDlt": dlt}).to_string()
}

/// Checks the parameters and token, then upgrades. A refused client with `isMsgResp=true` (JS SDK)
/// gets the error as its first text frame, as it expects; others get an HTTP error.
pub(crate) async fn accept(gw: Arc<Gateway>, q: HashMap<String, String>, ws: WebSocketUpgrade) -> Response {
    let msg_resp = q.get("isMsgResp").is_some_and(|v| v == "true");
    let checked = match ConnectParams::parse(&q) {
        Ok(p) => check_token(&gw, &p).await.map(|()| p),
        Err(e) => Err(e),
    };
    let ws = ws
        .max_message_size(gw.cfg.max_message_bytes)
        .max_frame_size(gw.cfg.max_message_bytes)
        // Small frames are the norm; a big one grows the buffer for its own length.
        .read_buffer_size(1024)
        // Frames collect until the writer flushes (or this many bytes are waiting).
        .write_buffer_size(64 * 1024);
    match checked {
        Err(e) if msg_resp => ws.on_upgrade(move |mut socket| async move {
            let _ = socket.send(Message::Text(connect_reply(Some(&e)).into())).await;
            let _ = socket
                .send(Message::Close(Some(CloseFrame { code: 1008, reason: Utf8Bytes::from(e.msg.clone()) })))
                .await;
        }),
        Err(e) => {
            tracing::debug!(error = %e, "Refused a connection.");
            let status =
                if (1501..=1507).contains(&e.code.0) { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
            (status, connect_reply(Some(&e))).into_response()
        }
        Ok(_) if gw.open.load(Ordering::Relaxed) >= gw.cfg.max_connections => {
            let e = ImError::new(ErrCode::CONN_OVER_MAX_NUM_LIMIT, "this gateway is full");
            (StatusCode::SERVICE_UNAVAILABLE, connect_reply(Some(&e))).into_response()
        }
        Ok(p) => ws.on_upgrade(move |socket| serve(gw, p, socket)),
    }
}

async fn check_token(gw: &Gateway, p: &ConnectParams) -> Result<(), ImError> {
    let parsed = gw
        .clients
        .auth
        .clone()
        .parse_token(rpc::request(ParseTokenReq { token: p.token.clone() }, &p.send_id, &p.operation_id))
        .await
        .map_err(ImError::from)?
        .into_inner();
    if parsed.user_id != p.send_id || parsed.platform_id != p.platform_id {
        return Err(ImError::new(ErrCode::TOKEN_INVALID, "the token belongs to another user or platform"));
    }
    Ok(())
}

async fn serve(gw: Arc<Gateway>, mut p: ConnectParams, socket: WebSocket) {
    let id = gw.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Outbound>(OUTBOUND_CAPACITY);
    // Ends the connection from outside the queue: a full queue (slow client) cannot block it.
    let kill = CancellationToken::new();
    let handle = ConnHandle {
        id,
        platform_id: p.platform_id,
        encoding: p.encoding,
        gzip: p.gzip,
        tx: tx.clone(),
        kill: kill.clone(),
        state: Arc::new(crate::ConnState {
            token: std::mem::take(&mut p.token).into_boxed_str(),
            background: p.background.into(),
            queued: 0.into(),
            max_queued: gw.cfg.max_outbound_bytes,
        }),
    };
    let (mut sink, mut stream) = socket.split();

    if p.msg_resp && sink.send(Message::Text(connect_reply(None).into())).await.is_err() {
        return;
    }
    register(&gw, &p.send_id, handle.clone()).await;
    gw.status_changed(&p.send_id).await;
    let mut watching = Watching::default();
    gw.open.fetch_add(1, Ordering::Relaxed);
    metrics::gauge!("openim_gateway_connections").increment(1.0);

    let writer_kill = kill.clone();
    let state = handle.state.clone();
    let writer = tokio::spawn(async move {
        // Everything already queued goes out in one flush: under load one write syscall carries
        // many frames instead of one each.
        'outer: loop {
            let first = tokio::select! {
                () = writer_kill.cancelled() => break,
                out = rx.recv() => match out { Some(o) => o, None => break },
            };
            let mut next = Some(first);
            let mut queued = 0;
            while let Some(out) = next.take() {
                match out {
                    Outbound::Frame(m) => {
                        let bytes = weight(&m);
                        if !matches!(tokio::time::timeout(WRITE_TIMEOUT, sink.feed(m)).await, Ok(Ok(()))) {
                            break 'outer;
                        }
                        state.queued.fetch_sub(bytes, Ordering::Relaxed);
                    }
                    Outbound::Close(code, reason) => {
                        // After the client's close frame this send is refused, but the flush
                        // still writes the reply tungstenite queued when it read that frame.
                        let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await;
                        break 'outer;
                    }
                }
                queued += 1;
                if queued < MAX_FRAMES_PER_FLUSH {
                    next = rx.try_recv().ok();
                }
            }
            if !matches!(tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await, Ok(Ok(()))) {
                break;
            }
        }
        // A peer that stopped reading must not keep the reader (and the connection) alive.
        writer_kill.cancel();
    });

    let deadline = Duration::from_secs(gw.cfg.read_deadline_secs);
    // A browser cannot send WebSocket pings, so the server pings web clients (as OpenIM does, at
    // 9/10 of the read deadline); the browser's automatic pong keeps the connection alive.
    let ping_every = (p.platform_id == platform::WEB).then(|| deadline * 9 / 10);
    let mut last_read = tokio::time::Instant::now();
    loop {
        let wait = match ping_every {
            Some(ping) => ping.min(deadline.saturating_sub(last_read.elapsed())),
            None => deadline,
        };
        let next = tokio::select! {
            () = kill.cancelled() => break,
            next = tokio::time::timeout(wait, stream.next()) => next,
        };
        let frame = match next {
            Err(_) if last_read.elapsed() < deadline => {
                if !handle.offer(Message::Ping(Bytes::new())) {
                    break;
                }
                continue;
            }
            Err(_) => {
                handle.close(1000, "read deadline exceeded");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                // Oversized frames and protocol errors end here; say why before closing.
                let (code, reason) = if e.to_string().contains("too long") || e.to_string().contains("Space limit") {
                    (1009, format!("frame exceeds {} bytes", gw.cfg.max_message_bytes))
                } else {
                    (1002, format!("protocol error: {e}"))
                };
                handle.close(code, &reason);
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        last_read = tokio::time::Instant::now();
        let mut logout = false;
        let reply = match frame {
            // Boxed: the request's future (RPC calls included) is large, and inline it would
            // make every idle connection's task that large too.
            Message::Binary(data) => Box::pin(handle_frame(&gw, &p, &handle, &mut watching, &data)).await.map(|resp| {
                logout = resp.req_identifier == req::LOGOUT && resp.err_code == 0;
                Message::Binary(encode(p.encoding, p.gzip, &resp))
            }),
            Message::Text(text) if text.as_str().contains("\"ping\"") => {
                Some(Message::Text(r#"{"type":"pong"}"#.into()))
            }
            Message::Ping(payload) => Some(Message::Pong(payload)),
            Message::Close(_) => {
                // Answer the close handshake, so the client sees a clean close (not 1006).
                handle.close(1000, "");
                break;
            }
            Message::Text(_) | Message::Pong(_) => None,
        };
        if let Some(reply) = reply
            && !handle.offer(reply)
        {
            // The client does not read its replies: too slow to keep.
            break;
        }
        if logout {
            // As OpenIM: a logout is answered, then the connection is closed (cleanly).
            handle.close(1000, "logged out");
            break;
        }
    }
    drop(tx);
    drop(handle);
    if tokio::time::timeout(WRITE_TIMEOUT, writer).await.is_err() {
        kill.cancel();
    }
    unregister(&gw, &p.send_id, id, p.platform_id).await;
    gw.unsubscribe_all(id, watching);
    gw.status_changed(&p.send_id).await;
    gw.open.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("openim_gateway_connections").decrement(1.0);
}

/// Adds a connection, applying the multi-terminal policy to the user's other connections.
async fn register(gw: &Gateway, user_id: &str, handle: ConnHandle) {
    let platform = handle.platform_id;
    let background = handle.state.background.load(Ordering::Relaxed);
    let kicked: Vec<ConnHandle> = {
        let mut conns = gw.conns.entry(user_id.to_owned()).or_default();
        let mut kicked: Vec<ConnHandle> =
            conns.iter().filter(|c| gw.multi_login.kicks(platform, c.platform_id)).cloned().collect();
        // Every policy caps connections per platform: the oldest beyond the cap go.
        let same: Vec<&ConnHandle> =
            conns.iter().filter(|c| c.platform_id == platform && !kicked.iter().any(|k| k.id == c.id)).collect();
        let over = (same.len() + 1).saturating_sub(gw.multi_login.max_num_one_end.max(1));
        kicked.extend(same.into_iter().take(over).cloned());
        conns.retain(|c| !kicked.iter().any(|k| k.id == c.id));
        conns.push(handle);
        kicked
    };
    for k in kicked {
        k.kick("logged in elsewhere");
        gw.presence(user_id, k.platform_id, Presence::KickedOff);
    }
    if let Err(e) = gw.online.set_online(user_id, platform, &gw.cfg.advertise, true).await {
        tracing::warn!(error = %e, %user_id, "Could not record a user online.");
    }
    gw.presence(user_id, platform, Presence::Online { background });
}

async fn unregister(gw: &Gateway, user_id: &str, id: u64, platform: i32) {
    // A kicked connection was already taken out of the map; its online entry (counted once per
    // connection at register) goes here either way.
    let still_on_platform = match gw.conns.get_mut(user_id) {
        Some(mut conns) => {
            conns.retain(|c| c.id != id);
            conns.iter().any(|c| c.platform_id == platform)
        }
        None => false,
    };
    gw.conns.remove_if(user_id, |_, v| v.is_empty());
    if let Err(e) = gw.online.set_online(user_id, platform, &gw.cfg.advertise, false).await {
        tracing::warn!(error = %e, %user_id, "Could not record a user offline.");
    }
    if !still_on_platform {
        gw.presence(user_id, platform, Presence::Offline);
    }
}

impl ConnHandle {
    /// Tells the client it is kicked offline (2002) and closes the connection.
    pub(crate) fn kick(&self, reason: &str) {
        let resp = WsResponse { req_identifier: req::KICK_ONLINE, ..Default::default() };
        if self.offer(Message::Binary(encode(self.encoding, self.gzip, &resp))) {
            self.close(1000, reason);
        }
    }

    /// Closes the connection with a reason, or at once if its queue is full.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        if self.tx.try_send(Outbound::Close(code, reason.to_owned())).is_err() {
            self.kill.cancel();
        }
    }
}

pub(crate) fn encode(encoding: Encoding, gzip: bool, resp: &WsResponse) -> Bytes {
    let raw = resp.encode(encoding);
    if gzip { ws::gzip(&raw).into() } else { raw.into() }
}

fn error_response(req: &WsRequest, e: &ImError) -> WsResponse {
    WsResponse {
        req_identifier: req.req_identifier,
        msg_incr: req.msg_incr.clone(),
        operation_id: req.operation_id.clone(),
        err_code: e.code.0,
        err_msg: e.to_string(),
        data: Bytes::new(),
    }
}

/// Decodes and answers one binary frame. Bad frames get a 3001 answer and the connection stays.
async fn handle_frame(
    gw: &Gateway,
    p: &ConnectParams,
    conn: &ConnHandle,
    watching: &mut Watching,
    data: &[u8],
) -> Option<WsResponse> {
    let plain;
    let data = if p.gzip {
        match ws::gunzip(data, gw.cfg.max_message_bytes) {
            Ok(d) => {
                plain = d;
                &plain[..]
            }
            Err(e) => return Some(data_error(format!("frame is not valid gzip: {e}"))),
        }
    } else {
        data
    };
    let request = match WsRequest::decode(p.encoding, data) {
        Ok(r) => r,
        Err(e) => return Some(data_error(format!("frame does not decode: {e}"))),
    };
    if request.send_id != p.send_id {
        let e = ImError::new(
            ErrCode::WS_DATA,
            format!("sendID {} is not this connection's user {}", request.send_id, p.send_id),
        );
        return Some(error_response(&request, &e));
    }
    let started = std::time::Instant::now();
    let result = if request.req_identifier == req::SEND_MSG
        && let Some(sends) = &gw.sends
        && sends.check_key(&p.send_id).is_err()
    {
        metrics::counter!("openim_gateway_sends_refused_total").increment(1);
        Err(ImError::new(
            ErrCode::SEND_RATE_LIMIT,
            format!("sending too fast: at most {} messages per second", gw.cfg.send_rate_per_sec),
        ))
    } else if request.req_identifier == req::SUB_USER_ONLINE_STATUS {
        match decode(&request.data) {
            Ok(sub) => gw.subscribe(conn, watching, sub).await.map(Bytes::from),
            Err(e) => Err(e),
        }
    } else if request.req_identifier == req::SET_BACKGROUND_STATUS {
        // Recorded on the connection: pushes skip an iOS app in the background, and offline
        // pushes count it as away (its `userID` field is ignored, as in OpenIM).
        decode::<SetAppBackgroundStatusReq>(&request.data).map(|r| {
            conn.state.background.store(r.is_background, Ordering::Relaxed);
            Bytes::new()
        })
    } else {
        dispatch(gw, p, &request).await
    };
    metrics::histogram!("openim_gateway_request_seconds", "req" => req::label(request.req_identifier))
        .record(started.elapsed().as_secs_f64());
    Some(match result {
        Ok(data) => WsResponse {
            req_identifier: request.req_identifier,
            msg_incr: request.msg_incr.clone(),
            operation_id: request.operation_id.clone(),
            data,
            ..Default::default()
        },
        Err(e) => error_response(&request, &e),
    })
}

fn data_error(detail: String) -> WsResponse {
    let e = ImError::new(ErrCode::WS_DATA, detail);
    WsResponse { req_identifier: req::WS_DATA_ERROR, err_code: e.code.0, err_msg: e.to_string(), ..Default::default() }
}

fn decode<T: prost::Message + Default>(data: &[u8]) -> Result<T, ImError> {
    T::decode(data).map_err(|e| ImError::args(format!("payload does not decode as protobuf: {e}")))
}

async fn dispatch(gw: &Gateway, p: &ConnectParams, r: &WsRequest) -> Result<Bytes, ImError> {
    let c = &gw.clients;
    let out = match r.req_identifier {
        req::GET_NEWEST_SEQ => {
            let mut m: GetMaxSeqReq = decode(&r.data)?;
            m.user_id = p.send_id.clone();
            c.msg.clone().get_max_seq(rpc::request(m, &p.send_id, &r.operation_id)).await?.into_inner().encode_to_vec()
        }
        req::PULL_MSG_BY_SEQ_LIST => {
            let mut m: PullMessageBySeqsReq = decode(&r.data)?;
            m.user_id = p.send_id.clone();
            c.msg
                .clone()
                .pull_message_by_seqs(rpc::request(m, &p.send_id, &r.operation_id))
                .await?
                .into_inner()
                .encode_to_vec()
        }
        req::SEND_MSG => {
            let mut m: MsgData = decode(&r.data)?;
            // The platform is the connection's, whatever the client says (webhooks and offline
            // pushes name it).
            m.sender_platform_id = p.platform_id;
            if let Some(relay) = gw.relay.get() {
                return relay.forward(gw, m, &r.operation_id).await.map(Into::into);
            }
            let resp = c.send_msg(rpc::request(SendMsgReq { msg_data: Some(m) }, &p.send_id, &r.operation_id)).await?;
            UserSendMsgResp {
                server_msg_id: resp.server_msg_id,
                client_msg_id: resp.client_msg_id,
                send_time: resp.send_time,
            }
            .encode_to_vec()
        }
        req::PULL_MSG => {
            let mut m: GetSeqMessageReq = decode(&r.data)?;
            m.user_id = p.send_id.clone();
            c.msg
                .clone()
                .get_seq_message(rpc::request(m, &p.send_id, &r.operation_id))
                .await?
                .into_inner()
                .encode_to_vec()
        }
        req::GET_CONV_MAX_READ_SEQ => {
            let mut m: GetConversationsHasReadAndMaxSeqReq = decode(&r.data)?;
            m.user_id = p.send_id.clone();
            c.msg
                .clone()
                .get_conversations_has_read_and_max_seq(rpc::request(m, &p.send_id, &r.operation_id))
                .await?
                .into_inner()
                .encode_to_vec()
        }
        req::PULL_CONV_LAST_MESSAGE => {
            let mut m: GetLastMessageReq = decode(&r.data)?;
            m.user_id = p.send_id.clone();
            c.msg
                .clone()
                .get_last_message(rpc::request(m, &p.send_id, &r.operation_id))
                .await?
                .into_inner()
                .encode_to_vec()
        }
        // Acknowledged with no data. (2004 and 2005 are answered in handle_frame.)
        req::LOGOUT => Vec::new(),
        other => {
            return Err(ImError::args(format!("reqIdentifier {other} is not supported")));
        }
    };
    Ok(out.into())
}
