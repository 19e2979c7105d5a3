//! The gateway's gRPC side: deliver a pushed message to the local connections of the listed
//! users, and kick users offline.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Message;
use openim_common::ids;
use openim_proto::constants::req;
use openim_proto::pb::msggateway::{self, msg_gateway_server::MsgGateway};
use openim_proto::pb::sdkws::{MsgData, PullMsgs, PushMessages};
use openim_proto::ws::{Encoding, WsResponse};
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::Gateway;
use crate::conn::encode;

/// OpenIM's result code for a push held back from an iOS app in the background.
const IOS_BACKGROUND: i32 = 1604;

pub struct GatewayRpc {
    gw: Arc<Gateway>,
}

impl GatewayRpc {
    pub(crate) fn new(gw: Arc<Gateway>) -> Self {
        Self { gw }
    }

    /// Queues one message to the local connections of the listed users; returns the per-user
    /// results and how many connections got it.
    fn push_one(
        &self,
        req: msggateway::OnlineBatchPushOneMsgReq,
    ) -> Result<(msggateway::OnlineBatchPushOneMsgResp, u64), Status> {
        let msg = req.msg_data.ok_or_else(|| Status::invalid_argument("msgData is missing"))?;
        let resp = push_response(std::iter::once((filed_under(&req.conversation_id, &msg), msg)));
        // Each (envelope, gzip) variant is encoded once, however many connections use it.
        let mut frames: HashMap<(Encoding, bool), bytes::Bytes> = HashMap::new();
        let mut results = Vec::with_capacity(req.push_to_user_i_ds.len());
        let mut delivered = 0u64;
        for user in req.push_to_user_i_ds {
            let conns = self.gw.conns.get(&user).map(|c| c.clone()).unwrap_or_default();
            let mut platforms = Vec::new();
            for c in conns {
                if !c.takes_pushes() {
                    platforms.push(msggateway::SingleMsgToUserPlatform {
                        result_code: i64::from(IOS_BACKGROUND),
                        recv_id: user.clone(),
                        recv_plat_form_id: c.platform_id,
                    });
                    continue;
                }
                let frame =
                    frames.entry((c.encoding, c.gzip)).or_insert_with(|| encode(c.encoding, c.gzip, &resp)).clone();
                // A connection too slow to keep up is ended; it resyncs by seq on reconnect.
                let code = if c.offer(Message::Binary(frame)) {
                    delivered += 1;
                    0
                } else {
                    1603
                };
                platforms.push(msggateway::SingleMsgToUserPlatform {
                    result_code: code,
                    recv_id: user.clone(),
                    recv_plat_form_id: c.platform_id,
                });
            }
            results.push(msggateway::SingleMsgToUserResults {
                online_push: !platforms.is_empty(),
                user_id: user,
                resp: platforms,
            });
        }
        metrics::counter!("openim_gateway_pushed_total").increment(delivered);
        Ok((msggateway::OnlineBatchPushOneMsgResp { single_push_result: results }, delivered))
    }
}

#[tonic::async_trait]
impl MsgGateway for GatewayRpc {
    async fn online_batch_push_one_msg(
        &self,
        req: Request<msggateway::OnlineBatchPushOneMsgReq>,
    ) -> Result<Response<msggateway::OnlineBatchPushOneMsgResp>, Status> {
        let (resp, _) = self.push_one(req.into_inner())?;
        Ok(Response::new(resp))
    }

    async fn batch_push_msgs(
        &self,
        req: Request<msggateway::BatchPushMsgsReq>,
    ) -> Result<Response<msggateway::BatchPushMsgsResp>, Status> {
        let (delivered, reached) = push_many(&self.gw, req.into_inner());
        Ok(Response::new(msggateway::BatchPushMsgsResp { delivered: delivered as i64, reached }))
    }

    async fn kick_user_offline(
        &self,
        req: Request<msggateway::KickUserOfflineReq>,
    ) -> Result<Response<msggateway::KickUserOfflineResp>, Status> {
        let req = req.into_inner();
        for user in req.kick_user_id_list {
            let conns = self.gw.conns.get(&user).map(|c| c.clone()).unwrap_or_default();
            for c in conns.into_iter().filter(|c| c.platform_id == req.platform_id) {
                c.kick("logged out");
                self.gw.presence(&user, c.platform_id, crate::hooks::Presence::KickedOff);
            }
        }
        Ok(Response::new(msggateway::KickUserOfflineResp {}))
    }

    async fn user_status_changed(
        &self,
        req: Request<msggateway::UserStatusChangedReq>,
    ) -> Result<Response<msggateway::UserStatusChangedResp>, Status> {
        let r = req.into_inner();
        self.gw.push_status(&r.user_id, &r.platform_i_ds);
        Ok(Response::new(msggateway::UserStatusChangedResp {}))
    }

    /// The connections here of the users asked about (the API checks that the caller is an
    /// administrator and merges the gateways' answers).
    async fn get_users_online_status(
        &self,
        req: Request<msggateway::GetUsersOnlineStatusReq>,
    ) -> Result<Response<msggateway::GetUsersOnlineStatusResp>, Status> {
        let mut success_result = Vec::new();
        for user in req.into_inner().user_i_ds {
            let Some(conns) = self.gw.conns.get(&user).map(|c| c.clone()) else { continue };
            if conns.is_empty() {
                continue;
            }
            let detail_platform_status = conns
                .iter()
                .map(|c| msggateway::get_users_online_status_resp::SuccessDetail {
                    platform_id: c.platform_id,
                    conn_id: format!("{}-{}", self.gw.cfg.advertise, c.id),
                    is_background: c.in_background(),
                    token: c.state.token.to_string(),
                })
                .collect();
            success_result.push(msggateway::get_users_online_status_resp::SuccessResult {
                user_id: user,
                status: 1,
                detail_platform_status,
            });
        }
        Ok(Response::new(msggateway::GetUsersOnlineStatusResp { success_result, failed_result: Vec::new() }))
    }
}

/// Queues a batch of messages with one frame per connection: each connection gets a single
/// 2001 push holding every message of the batch meant for it (one write and one wake-up
/// instead of one per message; a 1,000-member group otherwise costs 1,000 frames a message).
/// Connections that get the same messages share one encoded frame. A receiver list the call
/// shares between pushes (`audiences`) is looked up once for all of them. Returns how many
/// connections got a frame and, when `wantReached`, which users' phones got each push.
pub(crate) fn push_many(gw: &Gateway, req: msggateway::BatchPushMsgsReq) -> (u64, Vec<msggateway::PushReached>) {
    let msggateway::BatchPushMsgsReq { pushes, want_reached, audiences, audience_of } = req;
    // The shared list push i goes to, if any (an index out of range names none: its own list).
    let audience = |i: usize| {
        let a = usize::try_from(*audience_of.get(i)?).ok()?;
        (1..=audiences.len()).contains(&a).then(|| a - 1)
    };
    let receivers =
        |i: usize| -> &[String] { audience(i).map_or(&pushes[i].push_to_user_i_ds, |a| &audiences[a].user_i_ds) };
    let msgs: Vec<Option<(String, MsgData)>> =
        pushes.iter().map(|p| p.msg_data.clone().map(|m| (filed_under(&p.conversation_id, &m), m))).collect();
    // Each receiver list with the pushes that go to it, in batch order.
    let mut lists: Vec<(&[String], Vec<usize>)> = Vec::new();
    let mut list_of_audience: Vec<Option<usize>> = vec![None; audiences.len()];
    for i in (0..pushes.len()).filter(|i| msgs[*i].is_some()) {
        match audience(i) {
            Some(a) => match list_of_audience[a] {
                Some(l) => lists[l].1.push(i),
                None => {
                    list_of_audience[a] = Some(lists.len());
                    lists.push((&audiences[a].user_i_ds, vec![i]));
                }
            },
            None => lists.push((&pushes[i].push_to_user_i_ds, vec![i])),
        }
    }
    // Connection id → (connection, (push index, its user's index in the push's list)).
    let mut per_conn: HashMap<u64, (crate::ConnHandle, Vec<(usize, usize)>)> = HashMap::new();
    for (users, indexes) in &lists {
        for (u, user) in users.iter().enumerate() {
            let Some(conns) = gw.conns.get(user) else { continue };
            // The sender's own connections too: that push is where the sending device
            // learns the seq of what it sent (OpenIM pushes to every connection).
            for c in conns.iter().filter(|c| c.takes_pushes()) {
                let entry = per_conn.entry(c.id).or_insert_with(|| (c.clone(), Vec::new()));
                entry.1.extend(indexes.iter().map(|i| (*i, u)));
            }
        }
    }
    let mut reached: Vec<Vec<usize>> = if want_reached { vec![Vec::new(); pushes.len()] } else { Vec::new() };
    let sizes: Vec<usize> = msgs.iter().map(|m| m.as_ref().map_or(0, |(_, m)| m.encoded_len())).collect();
    let is_note: Vec<bool> = msgs.iter().map(|m| m.as_ref().is_some_and(|(c, _)| ids::is_notification(c))).collect();
    let mut frames: HashMap<(Encoding, bool, Vec<usize>), bytes::Bytes> = HashMap::new();
    let mut delivered = 0u64;
    for (_, (conn, mut pairs)) in per_conn {
        // Batch order, each push once (a connection can be on several lists, or on one twice).
        if !pairs.is_sorted_by_key(|p| p.0) {
            pairs.sort_by_key(|p| p.0);
        }
        pairs.dedup_by_key(|p| p.0);
        let indexes: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        let mut sent = true;
        for run in frame_runs(indexes, &sizes, &is_note) {
            let key = (conn.encoding, conn.gzip, run);
            let frame = match frames.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let f =
                        encode(conn.encoding, conn.gzip, &push_response(key.2.iter().filter_map(|i| msgs[*i].clone())));
                    frames.insert(key, f.clone());
                    f
                }
            };
            if !conn.offer(Message::Binary(frame)) {
                sent = false;
                break;
            }
        }
        if sent {
            delivered += 1;
            // The (push, user) pairs a phone got: they decide who is spared an offline push.
            if want_reached && conn.is_reachable_phone() {
                for (i, u) in pairs {
                    reached[i].push(u);
                }
            }
        }
    }
    metrics::counter!("openim_gateway_pushed_total").increment(delivered);
    let reached = reached
        .into_iter()
        .enumerate()
        .filter(|(_, users)| !users.is_empty())
        .map(|(i, mut users)| {
            users.sort_unstable();
            users.dedup();
            let list = receivers(i);
            msggateway::PushReached { push: i as i32, user_i_ds: users.into_iter().map(|u| list[u].clone()).collect() }
        })
        .collect();
    (delivered, reached)
}

/// Most message bytes in one push frame. The official SDK's native clients refuse frames above
/// 1 MiB (openim-sdk-core's `maxMessageSize`), and the JSON envelope's base64 adds a third: a
/// batch of large messages goes to a connection in several frames, in order.
pub const MAX_FRAME_MSG_BYTES: usize = 512 * 1024;

/// A connection's messages (`indexes`, in order) in runs of at most [`MAX_FRAME_MSG_BYTES`]
/// (a single larger message is a run of its own). The SDK handles a frame's chat messages
/// before its notifications, so a chat message that comes after a notification starts a new
/// frame: a group's tip in the chat then reaches the app after the notification that makes
/// the app sync the group (were it first, the app would fetch the group's card for the new
/// chat, and its sync would then report no `OnJoinedGroupAdded`).
fn frame_runs(indexes: Vec<usize>, sizes: &[usize], is_note: &[bool]) -> Vec<Vec<usize>> {
    let runs = if indexes.iter().map(|i| sizes[*i]).sum::<usize>() <= MAX_FRAME_MSG_BYTES {
        vec![indexes]
    } else {
        openim_common::limits::runs_within(indexes, MAX_FRAME_MSG_BYTES, |i| sizes[*i])
    };
    if !runs.iter().flatten().any(|i| is_note[*i]) {
        return runs;
    }
    let mut ordered = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        let mut current: Vec<usize> = Vec::with_capacity(run.len());
        let mut noted = false;
        for i in run {
            if noted && !is_note[i] {
                ordered.push(std::mem::take(&mut current));
                noted = false;
            }
            noted |= is_note[i];
            current.push(i);
        }
        ordered.push(current);
    }
    ordered
}

/// The conversation a pushed message goes under: the one it was stored in, as the push service
/// names it, so a message cannot be shown in another conversation than the one it is in; for a
/// caller that names none (OpenIM's push), the one its fields give.
fn filed_under(stored_in: &str, m: &MsgData) -> String {
    if stored_in.is_empty() { ids::conversation_id_of(m).unwrap_or_default() } else { stored_in.to_owned() }
}

/// A 2001 push carrying `msgs` (each with its conversation), grouped by conversation in the order
/// given; notifications (`n_…` conversations) go in `notificationMsgs`, where the SDKs look for
/// them.
fn push_response(msgs: impl IntoIterator<Item = (String, MsgData)>) -> WsResponse {
    let mut by_conv: HashMap<String, PullMsgs> = HashMap::new();
    let mut notifications: HashMap<String, PullMsgs> = HashMap::new();
    for (conv, m) in msgs {
        let map = if ids::is_notification(&conv) { &mut notifications } else { &mut by_conv };
        map.entry(conv).or_default().msgs.push(m);
    }
    let payload = PushMessages { msgs: by_conv, notification_msgs: notifications }.encode_to_vec();
    // The official SDK builds the context of its follow-up calls from the push's operationID
    // and refuses an empty one.
    WsResponse {
        req_identifier: req::PUSH_MSG,
        operation_id: push_operation_id(),
        data: payload.into(),
        ..Default::default()
    }
}

/// A fresh operationID for a push frame: this process's random prefix and a counter (cheaper
/// than a random ID per frame, and as unique).
pub(crate) fn push_operation_id() -> String {
    static PREFIX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| ids::new_id()[..12].to_owned());
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!("push-{}-{}", *PREFIX, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK takes a frame's chat messages before its notifications: a chat message after a
    /// notification goes in the next frame, and nothing else is split.
    #[test]
    fn a_chat_message_after_a_notification_starts_a_frame() {
        let sizes = [10; 6];
        let chat_only = [false; 6];
        assert_eq!(frame_runs(vec![0, 1, 2], &sizes, &chat_only), [vec![0, 1, 2]]);
        let is_note = [true, false, false, true, true, false];
        assert_eq!(frame_runs((0..6).collect(), &sizes, &is_note), [vec![0], vec![1, 2, 3, 4], vec![5]]);
        let big = [MAX_FRAME_MSG_BYTES; 6];
        assert_eq!(frame_runs(vec![1, 3, 5], &big, &is_note), [vec![1], vec![3], vec![5]], "size splits stay");
    }

    /// A gateway with no services behind it (nothing here calls them).
    fn bare_gateway() -> Arc<Gateway> {
        let nowhere = || openim_common::rpc::remote("http://127.0.0.1:9").unwrap();
        let clients = openim_common::rpc::Clients::new(openim_common::rpc::Channels {
            auth: nowhere(),
            user: nowhere(),
            msg: nowhere(),
            friend: nowhere(),
            group: nowhere(),
            conversation: nowhere(),
            third: nowhere(),
            gateways: Vec::new(),
        });
        let online = Arc::new(openim_storage::memory::MemoryOnline::default());
        Gateway::new(Default::default(), Default::default(), clients, online)
    }

    /// Connects `user` on `platform_id` with a queue the test reads.
    fn fake_conn(gw: &Gateway, user: &str, platform_id: i32) -> tokio::sync::mpsc::Receiver<crate::conn::Outbound> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let id = gw.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let state =
            crate::ConnState { token: "".into(), background: false.into(), queued: 0.into(), max_queued: 1 << 20 };
        let conn = crate::ConnHandle {
            id,
            platform_id,
            encoding: Encoding::Gob,
            gzip: false,
            tx,
            kill: Default::default(),
            state: Arc::new(state),
        };
        gw.conns.entry(user.to_owned()).or_default().push(conn);
        rx
    }

    /// The client messages of each frame queued to `rx`, by clientMsgID.
    fn frames(rx: &mut tokio::sync::mpsc::Receiver<crate::conn::Outbound>) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        while let Ok(crate::conn::Outbound::Frame(Message::Binary(b))) = rx.try_recv() {
            let resp = WsResponse::decode(Encoding::Gob, &b).unwrap();
            let push = PushMessages::decode(resp.data.as_ref()).unwrap();
            let mut msgs: Vec<&MsgData> = push.msgs.values().flat_map(|p| &p.msgs).collect();
            msgs.sort_by_key(|m| m.seq);
            out.push(msgs.iter().map(|m| m.client_msg_id.clone()).collect());
        }
        out
    }

    /// Pushes that share a receiver list (a group's messages) reach each member once per
    /// batch, in batch order among the member's other pushes, and `reached` names users from
    /// the shared list.
    #[tokio::test]
    async fn shared_receiver_lists_keep_batch_order_and_reached() {
        let gw = bare_gateway();
        let mut phone = fake_conn(&gw, "a", openim_proto::constants::platform::ANDROID);
        let mut desktop = fake_conn(&gw, "b", 3);
        let msg = |id: &str, seq: i64, conv: &str| msggateway::OnlineBatchPushOneMsgReq {
            msg_data: Some(MsgData { client_msg_id: id.into(), seq, ..Default::default() }),
            push_to_user_i_ds: Vec::new(),
            conversation_id: conv.into(),
        };
        let mut single = msg("m1", 2, "si_b_x");
        single.push_to_user_i_ds = vec!["b".into()];
        let req = msggateway::BatchPushMsgsReq {
            pushes: vec![msg("m0", 1, "sg_g"), single, msg("m2", 3, "sg_g"), msg("lost", 4, "sg_h")],
            want_reached: true,
            audiences: vec![msggateway::Audience { user_i_ds: vec!["a".into(), "b".into(), "c".into(), "a".into()] }],
            // The last names an audience that is not there: it goes to its own list (nobody).
            audience_of: vec![1, 0, 1, 9],
        };
        let (delivered, reached) = push_many(&gw, req);
        assert_eq!(delivered, 2, "one frame per connection");
        assert_eq!(frames(&mut desktop), [vec!["m0", "m1", "m2"]]);
        assert_eq!(frames(&mut phone), [vec!["m0", "m2"]], "each push once, though listed twice");
        let reached: Vec<(i32, Vec<String>)> = reached.into_iter().map(|r| (r.push, r.user_i_ds)).collect();
        assert_eq!(reached, [(0, vec!["a".to_owned()]), (2, vec!["a".to_owned()])], "only the phone counts");
    }

    /// A push lands in the conversation the message was stored in, even when the message's own
    /// fields would name another (a notification option set by a client, say).
    #[test]
    fn a_push_is_filed_under_the_stored_conversation() {
        let mut m = MsgData { session_type: 1, send_id: "a".into(), recv_id: "b".into(), seq: 7, ..Default::default() };
        m.options.insert("isNotNotification".into(), false);
        assert_eq!(ids::conversation_id_of(&m).as_deref(), Some("n_a_b"));
        let resp = push_response([(filed_under("si_a_b", &m), m.clone())]);
        let pushed = PushMessages::decode(resp.data.as_ref()).unwrap();
        assert_eq!(pushed.msgs["si_a_b"].msgs[0].seq, 7);
        assert!(pushed.notification_msgs.is_empty());
        // OpenIM's push names no conversation: the message's fields decide.
        assert_eq!(filed_under("", &m), "n_a_b");
    }
}
