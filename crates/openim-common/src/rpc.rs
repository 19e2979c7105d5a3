//! How services reach each other. Every call goes through a generated tonic client over an
//! [`RpcChannel`]: a real HTTP/2 channel to another process, or — in `openim standalone` — the
//! target's tonic server itself, called in-process. Both paths run the same generated codecs and
//! the same service code; standalone only skips the socket.

use std::convert::Infallible;

use tonic::body::Body;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A transport failure. A concrete type rather than `BoxError`: the generated clients' `Into`
/// bounds on a boxed trait object trip a known higher-ranked-lifetime limitation of rustc inside
/// `async fn`s.
#[derive(Debug)]
pub struct TransportError(BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A gRPC transport, remote or in-process.
pub type RpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// The largest gRPC message a service takes or sends, set on every server and client (tonic's
/// default is 4 MiB for decoding): far above what one call carries (pushes go in calls of at
/// most 4 MiB, pulls answer at most 512 KiB of messages), so no legitimate call hits it.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A generated tonic server or client with [`MAX_MESSAGE_BYTES`] set both ways.
#[macro_export]
macro_rules! sized {
    ($e:expr) => {
        $e.max_decoding_message_size($crate::rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size($crate::rpc::MAX_MESSAGE_BYTES)
    };
}

/// A lazily connecting channel to `addr` (`http://host:port`) whose calls carry a service
/// credential made with `key` (see [`crate::service_auth`]).
pub fn remote_signed(
    addr: &str,
    key: &crate::service_auth::ServiceKey,
) -> Result<RpcChannel, crate::config::ConfigError> {
    Ok(BoxCloneSyncService::new(remote(addr)?.map_request(crate::service_auth::sign(key.clone()))))
}

/// Flow-control window of a service connection: 8 MiB, room for ~16,000 small answers unread.
pub const CONNECTION_WINDOW: u32 = 8 << 20;
/// Flow-control window of one call on it.
pub const STREAM_WINDOW: u32 = 2 << 20;

/// A lazily connecting channel to `addr` (`http://host:port`) with no credential (for the
/// health service); the first call connects and a broken connection is re-established by tonic.
pub fn remote(addr: &str) -> Result<RpcChannel, crate::config::ConfigError> {
    let endpoint = tonic::transport::Endpoint::from_shared(addr.to_owned())
        .map_err(|e| crate::config::ConfigError::new(format!("rpc address {addr:?}: {e}")))?
        .tcp_nodelay(true)
        // h2 closes a connection (ENHANCE_YOUR_CALM) holding more small DATA frames unread than
        // half its window allows; a busy caller reads answers late, so the window is sized for
        // thousands of them (tests/rpc_window.rs), not grown adaptively from 64 KiB.
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .connect_timeout(std::time::Duration::from_secs(3));
    let channel = endpoint.connect_lazy();
    Ok(BoxCloneSyncService::new(channel.map_err(|e| TransportError(e.into()))))
}

/// A channel that hands requests straight to a tonic server (e.g. `MsgServer::from_arc(svc)`).
pub fn local<S>(server: S) -> RpcChannel
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(server.map_err(|never: Infallible| -> TransportError { match never {} }))
}

/// Metadata key carrying the user on whose behalf a call is made (OpenIM's `opUserID`).
pub const OP_USER_ID: &str = "opuserid";
/// Metadata key carrying the client's `operationID`, for tracing a request across services.
pub const OPERATION_ID: &str = "operationid";

/// Wraps `msg` in a request that names the calling user and operation.
pub fn request<T>(msg: T, op_user_id: &str, operation_id: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = op_user_id.parse() {
        req.metadata_mut().insert(OP_USER_ID, v);
    }
    if let Ok(v) = operation_id.parse() {
        req.metadata_mut().insert(OPERATION_ID, v);
    }
    req
}

/// Metadata key carrying the address of the client an edge service (the REST API) serves.
pub const CLIENT_ADDR: &str = "x-openim-client-addr";

/// Names the client's address in `req` (set by the API from the TCP peer).
pub fn set_client_addr<T>(req: &mut tonic::Request<T>, addr: std::net::IpAddr) {
    if let Ok(v) = addr.to_string().parse() {
        req.metadata_mut().insert(CLIENT_ADDR, v);
    }
}

/// The client address an edge service named in `req`, if any.
pub fn client_addr<T>(req: &tonic::Request<T>) -> Option<std::net::IpAddr> {
    req.metadata().get(CLIENT_ADDR)?.to_str().ok()?.parse().ok()
}

/// Metadata key carrying the address clients reach the API at (`http://host:port/`), for URLs
/// the API itself serves (the embedded object store's).
pub const API_BASE: &str = "x-openim-api-base";

/// Names the API's address as the client sees it in `req`.
pub fn set_api_base<T>(req: &mut tonic::Request<T>, base: &str) {
    if let Ok(v) = base.parse() {
        req.metadata_mut().insert(API_BASE, v);
    }
}

/// The API address an edge service named in `req` ("" when none).
pub fn api_base<T>(req: &tonic::Request<T>) -> String {
    req.metadata().get(API_BASE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The calling user named in a request's metadata ("" when none).
pub fn op_user_id<T>(req: &tonic::Request<T>) -> String {
    req.metadata().get(OP_USER_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// The client's operation ID named in a request's metadata ("" when none).
pub fn operation_id<T>(req: &tonic::Request<T>) -> String {
    req.metadata().get(OPERATION_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// `(offset, limit)` of a 1-based page; no pagination means the first 100 (limit capped at 1000).
pub fn page(p: Option<&openim_proto::pb::sdkws::RequestPagination>) -> (u32, u32) {
    match p {
        Some(p) if p.show_number > 0 => {
            let limit = p.show_number.min(1000) as u32;
            let page = p.page_number.max(1) as u32;
            ((page - 1).saturating_mul(limit), limit)
        }
        _ => (0, 100),
    }
}

/// The caller must be `user_id` itself or an administrator.
pub fn check_self_or_admin<T>(
    req: &tonic::Request<T>,
    share: &crate::config::Share,
    user_id: &str,
) -> Result<(), crate::ImError> {
    let op = op_user_id(req);
    if op == user_id || share.is_admin(&op) {
        Ok(())
    } else {
        Err(crate::ImError::no_permission(format!("{op} may not act for {user_id}")))
    }
}

/// Typed clients of every RPC service, cheap to clone.
#[derive(Clone)]
pub struct Clients {
    pub auth: openim_proto::pb::auth::auth_client::AuthClient<RpcChannel>,
    pub user: openim_proto::pb::user::user_client::UserClient<RpcChannel>,
    pub msg: openim_proto::pb::msg::msg_client::MsgClient<RpcChannel>,
    pub friend: openim_proto::pb::relation::friend_client::FriendClient<RpcChannel>,
    pub group: openim_proto::pb::group::group_client::GroupClient<RpcChannel>,
    pub conversation: openim_proto::pb::conversation::conversation_client::ConversationClient<RpcChannel>,
    pub third: openim_proto::pb::third::third_client::ThirdClient<RpcChannel>,
    /// One client per gateway instance, keyed by the instance's ID (its push address).
    pub gateways: Vec<(String, GatewayClient)>,
    /// rpc-msg itself when it runs in this process (see [`Clients::send_msg`]).
    msg_local: Option<std::sync::Arc<dyn openim_proto::pb::msg::msg_server::Msg>>,
    /// Gateways running in this process, by instance ID (see [`Clients::batch_push_msgs`]).
    gateways_local: Vec<(String, std::sync::Arc<dyn MsgGateway>)>,
}

use openim_proto::pb::msggateway::msg_gateway_server::MsgGateway;

pub type GatewayClient = openim_proto::pb::msggateway::msg_gateway_client::MsgGatewayClient<RpcChannel>;

/// The channels to build [`Clients`] from.
pub struct Channels {
    pub auth: RpcChannel,
    pub user: RpcChannel,
    pub msg: RpcChannel,
    pub friend: RpcChannel,
    pub group: RpcChannel,
    pub conversation: RpcChannel,
    pub third: RpcChannel,
    pub gateways: Vec<(String, RpcChannel)>,
}

impl Clients {
    pub fn new(ch: Channels) -> Self {
        use openim_proto::pb::{
            auth::auth_client::AuthClient, conversation::conversation_client::ConversationClient,
            group::group_client::GroupClient, msg::msg_client::MsgClient, relation::friend_client::FriendClient,
            third::third_client::ThirdClient, user::user_client::UserClient,
        };
        Self {
            auth: crate::sized!(AuthClient::new(ch.auth)),
            user: crate::sized!(UserClient::new(ch.user)),
            msg: crate::sized!(MsgClient::new(ch.msg)),
            friend: crate::sized!(FriendClient::new(ch.friend)),
            group: crate::sized!(GroupClient::new(ch.group)),
            conversation: crate::sized!(ConversationClient::new(ch.conversation)),
            third: crate::sized!(ThirdClient::new(ch.third)),
            gateways: ch.gateways.into_iter().map(|(id, c)| (id, crate::sized!(GatewayClient::new(c)))).collect(),
            msg_local: None,
            gateways_local: Vec::new(),
        }
    }

    /// Sends messages through `msg`, rpc-msg running in this process, called directly.
    pub fn with_local_msg(mut self, msg: std::sync::Arc<dyn openim_proto::pb::msg::msg_server::Msg>) -> Self {
        self.msg_local = Some(msg);
        self
    }

    /// Pushes to the gateway with instance ID `id` through `gateway`, running in this process,
    /// called directly (see [`Clients::send_msg`]).
    pub fn with_local_gateway(mut self, id: &str, gateway: std::sync::Arc<dyn MsgGateway>) -> Self {
        self.gateways_local.push((id.to_owned(), gateway));
        self
    }

    /// A gateway's `BatchPushMsgs`, called directly when it runs in this process (as
    /// [`Clients::send_msg`] calls rpc-msg); `None` for a gateway these clients do not know.
    pub async fn batch_push_msgs(
        &self,
        id: &str,
        req: tonic::Request<openim_proto::pb::msggateway::BatchPushMsgsReq>,
    ) -> Option<Result<openim_proto::pb::msggateway::BatchPushMsgsResp, tonic::Status>> {
        if let Some((_, gateway)) = self.gateways_local.iter().find(|(g, _)| g == id) {
            return Some(gateway.batch_push_msgs(req).await.map(tonic::Response::into_inner));
        }
        let mut client = self.gateway(id)?;
        Some(client.batch_push_msgs(req).await.map(tonic::Response::into_inner))
    }

    /// rpc-msg's `SendMsg`, the one call on every message's path. In `openim standalone`
    /// ([`Clients::with_local_msg`]) the service's own method is called with the request as it
    /// is: the same checks and answers as through its channel, without encoding the message,
    /// wrapping it in an HTTP body and decoding it again (~14% of the server's CPU per message
    /// in a profile at saturation, ARCHITECTURE.md). In-process channels carry no credential
    /// and no layers, so nothing else is skipped.
    pub async fn send_msg(
        &self,
        req: tonic::Request<openim_proto::pb::msg::SendMsgReq>,
    ) -> Result<openim_proto::pb::msg::SendMsgResp, tonic::Status> {
        match &self.msg_local {
            Some(msg) => msg.send_msg(req).await.map(tonic::Response::into_inner),
            None => self.msg.clone().send_msg(req).await.map(tonic::Response::into_inner),
        }
    }

    /// The gateway with the given instance ID.
    pub fn gateway(&self, id: &str) -> Option<GatewayClient> {
        self.gateways.iter().find(|(g, _)| g == id).map(|(_, c)| c.clone())
    }

    /// Clients of the services at the configured addresses, presenting credentials made with `key`.
    pub fn remote(
        addrs: &crate::config::RpcAddresses,
        key: &crate::service_auth::ServiceKey,
    ) -> Result<Self, crate::config::ConfigError> {
        let remote = |a: &str| remote_signed(a, key);
        let gateways = addrs.msggateway.iter().map(|a| Ok((a.clone(), remote(a)?))).collect::<Result<_, _>>()?;
        Ok(Self::new(Channels {
            auth: remote(&addrs.auth)?,
            user: remote(&addrs.user)?,
            msg: remote(&addrs.msg)?,
            friend: remote(&addrs.friend)?,
            group: remote(&addrs.group)?,
            conversation: remote(&addrs.conversation)?,
            third: remote(&addrs.third)?,
            gateways,
        }))
    }
}
