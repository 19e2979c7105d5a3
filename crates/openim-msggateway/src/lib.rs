//! `openim-msggateway`: the WebSocket endpoint clients keep open, and the gRPC endpoint pushes
//! arrive on. The gateway holds connections and translates frames; it never touches a database —
//! requests go to the RPC services, and online state goes to the online registry.

mod conn;
mod hooks;
mod presence;
mod push;
mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use openim_common::config::{GatewayConfig, MultiLogin};
use openim_common::rpc::Clients;
use openim_proto::ws::Encoding;
use openim_storage::OnlineStore;
use tokio::sync::mpsc;

pub use openim_proto::pb::msggateway::msg_gateway_server::MsgGatewayServer;
pub use push::GatewayRpc;

/// One open client connection, as seen by pushes.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub platform_id: i32,
    pub encoding: Encoding,
    pub gzip: bool,
    pub tx: mpsc::Sender<conn::Outbound>,
    pub kill: tokio_util::sync::CancellationToken,
    pub state: Arc<ConnState>,
}

/// What a connection's handles share and the connection may change.
pub(crate) struct ConnState {
    /// The token it connected with (reported to administrators).
    pub token: Box<str>,
    /// The app said it went to the background (2004). Every connection starts in the foreground.
    pub background: std::sync::atomic::AtomicBool,
    /// Bytes queued for the writer and not yet written.
    pub queued: AtomicUsize,
    /// `msggateway.max_outbound_bytes`.
    pub max_queued: usize,
}

impl ConnHandle {
    /// Queues a frame for the client, or ends the connection when its queue is full, in frames
    /// or in bytes: a client that does not read its frames must not hold the server's memory.
    /// It resyncs by seq when it reconnects. Returns whether the frame was queued.
    pub(crate) fn offer(&self, frame: axum::extract::ws::Message) -> bool {
        let bytes = conn::weight(&frame);
        let before = self.state.queued.fetch_add(bytes, Ordering::Relaxed);
        // One frame always fits an empty queue, however large.
        let fits = before == 0 || before + bytes <= self.state.max_queued;
        if fits && self.tx.try_send(conn::Outbound::Frame(frame)).is_ok() {
            return true;
        }
        self.state.queued.fetch_sub(bytes, Ordering::Relaxed);
        if !self.kill.is_cancelled() {
            metrics::counter!("openim_gateway_slow_connections_closed_total").increment(1);
        }
        self.kill.cancel();
        false
    }

    pub(crate) fn in_background(&self) -> bool {
        self.state.background.load(Ordering::Relaxed)
    }

    /// An iOS app in the background gets no WebSocket pushes (OpenIM's rule: Apple's push
    /// service wakes it instead).
    pub(crate) fn takes_pushes(&self) -> bool {
        !(self.platform_id == openim_proto::constants::platform::IOS && self.in_background())
    }

    /// A push that reached this connection spares its user an offline push: a phone app that
    /// can show it (iOS in the foreground, Android), as OpenIM counts it.
    pub(crate) fn is_reachable_phone(&self) -> bool {
        use openim_proto::constants::platform::{ANDROID, IOS};
        self.platform_id == ANDROID || (self.platform_id == IOS && !self.in_background())
    }
}

/// How often a gateway tells the online registry it is alive (`redis.gateway_ttl_secs` must
/// be well above it).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(3);

pub struct Gateway {
    cfg: GatewayConfig,
    multi_login: MultiLogin,
    clients: Clients,
    online: Arc<dyn OnlineStore>,
    conns: DashMap<String, Vec<ConnHandle>>,
    /// Connections watching each user's online status (2005 subscriptions), by connection ID:
    /// a popular user may have many watchers, and each one leaving must not scan them all.
    watchers: DashMap<String, std::collections::HashMap<u64, ConnHandle>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    /// Sends per user (`send_rate_per_sec`, `send_burst`); `None`: no limit.
    sends: Option<governor::DefaultKeyedRateLimiter<String>>,
    /// The presence callbacks (set once at start-up; none until then).
    hooks: std::sync::OnceLock<openim_common::webhook::Webhooks>,
    /// Relay mode (benchmarks only, see `relay.rs`): sends skip the pipeline.
    relay: std::sync::OnceLock<relay::Relay>,
}

impl Gateway {
    pub fn new(
        cfg: GatewayConfig,
        multi_login: MultiLogin,
        clients: Clients,
        online: Arc<dyn OnlineStore>,
    ) -> Arc<Self> {
        let sends = std::num::NonZeroU32::new(cfg.send_rate_per_sec).map(|rate| {
            let burst = std::num::NonZeroU32::new(cfg.send_burst).unwrap_or(rate);
            governor::RateLimiter::dashmap(governor::Quota::per_second(rate).allow_burst(burst))
        });
        let gw = Arc::new(Self {
            sends,
            cfg,
            multi_login,
            clients,
            online,
            conns: DashMap::new(),
            watchers: DashMap::new(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            hooks: std::sync::OnceLock::new(),
            relay: std::sync::OnceLock::new(),
        });
        // Forgets the send budgets of users whose budget is full again (they have not sent for
        // a while), every minute, until the gateway is dropped.
        if gw.sends.is_some() {
            let weak = Arc::downgrade(&gw);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(gw) = weak.upgrade() else { return };
                    if let Some(sends) = &gw.sends {
                        sends.retain_recent();
                        sends.shrink_to_fit();
                    }
                }
            });
        }
        gw
    }

    /// Sends OpenIM's presence callbacks (`afterUserOnline`, `afterUserOffline`,
    /// `afterUserKickOff`) through `hooks`; only the first call counts.
    pub fn set_webhooks(&self, hooks: openim_common::webhook::Webhooks) {
        let _ = self.hooks.set(hooks);
    }

    /// Puts the gateway in relay mode, the benchmark's yardstick: every message sent is
    /// forwarded straight to its receivers' connections here, unchecked and not stored (see
    /// `relay.rs`). Never for real traffic.
    pub fn set_bench_relay(&self) {
        let _ = self.relay.set(relay::Relay::default());
    }

    /// Tells the webhook of a presence change, when one is set.
    pub(crate) fn presence(&self, user_id: &str, platform_id: i32, event: hooks::Presence) {
        if let Some(h) = self.hooks.get() {
            hooks::tell(h, user_id, platform_id, event);
        }
    }

    /// The WebSocket router (any path, as clients use `/` or `/msg_gateway`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(upgrade).with_state(self.clone())
    }

    /// gRPC service for pushes and kicks.
    pub fn rpc(self: &Arc<Self>) -> MsgGatewayServer<GatewayRpc> {
        openim_common::sized!(MsgGatewayServer::new(GatewayRpc::new(self.clone())))
    }

    /// The gRPC service's implementation, for callers in this process to call directly.
    pub fn local_rpc(self: &Arc<Self>) -> Arc<GatewayRpc> {
        Arc::new(GatewayRpc::new(self.clone()))
    }

    /// Forgets the online entries a previous run of this instance left behind. Call it before
    /// accepting connections, so it cannot erase entries of this run.
    pub async fn forget_previous_run(&self) {
        if let Err(e) = self.online.clear_gateway(&self.cfg.advertise).await {
            tracing::warn!(error = %e, "Could not clear a previous run's online entries.");
        }
    }

    /// Tells the online registry that this instance is alive, every few seconds until
    /// `shutdown`. A shared registry stops routing pushes to an instance that goes silent.
    pub async fn heartbeat(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Err(e) = self.online.heartbeat(&self.cfg.advertise).await {
                tracing::warn!(error = %e, "Online-registry heartbeat failed.");
            }
        }
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Closes every connection (shutdown), waits up to 5 s for them to finish (so requests
    /// already read are answered and handed on), and forgets this instance's online entries.
    pub async fn close_all(&self) {
        let all: Vec<ConnHandle> = self.conns.iter().flat_map(|e| e.value().clone()).collect();
        for c in &all {
            c.close(1001, "server shutting down");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.open.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for c in &all {
            c.kill.cancel();
        }
        if let Err(e) = self.online.clear_gateway(&self.cfg.advertise).await {
            tracing::warn!(error = %e, "Could not clear this gateway's online entries.");
        }
    }
}

async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return (axum::http::StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
    };
    conn::accept(gw, params, ws).await
}
