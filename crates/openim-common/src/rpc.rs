//! How services reach each other. Every call goes through a generated tonic client over an
//! [`RpcChannel`]: a real HTTP/2 channel to another process, or — in `openim standalone` — the
//! target's tonic server itself, called in-process. Both paths run the same generated codecs and
//! the same service code; standalone only skips the socket.

use std::convert::Infallible;

use tonic::body::Body;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A gRPC transport, remote or in-process.
pub type RpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// A lazily connecting channel to `addr` (`http://host:port`); the first call connects and a
/// broken connection is re-established by tonic.
pub fn remote(addr: &str) -> Result<RpcChannel, crate::config::ConfigError> {
    let endpoint = tonic::transport::Endpoint::from_shared(addr.to_owned())
        .map_err(|e| crate::config::ConfigError::new(format!("rpc address {addr:?}: {e}")))?
        .tcp_nodelay(true)
        .http2_adaptive_window(true)
        .connect_timeout(std::time::Duration::from_secs(3));
    let channel = endpoint.connect_lazy();
    Ok(BoxCloneSyncService::new(channel.map_err(BoxError::from)))
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
    BoxCloneSyncService::new(server.map_err(|never: Infallible| -> BoxError { match never {} }))
}
