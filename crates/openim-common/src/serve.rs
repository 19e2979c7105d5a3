//! The HTTP listeners (REST, WebSocket, admin): axum routers served by hyper with the limits a
//! public port needs. A client has [`Limits::header_read_secs`] to send a request's headers (slow
//! and idle connections are dropped, not held), an address may hold at most
//! [`Limits::max_per_address`] connections and the listener [`Limits::max_connections`]; a
//! connection over a cap is closed at once. Upgraded connections (WebSockets) count for as long as
//! they live.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// Caps of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Seconds a client has to send a request's headers, from connecting or from the previous
    /// response (an idle keep-alive connection is closed after this long).
    pub header_read_secs: u64,
    /// Connections open at once on the listener.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_read_secs: 10, max_connections: 100_000, max_per_address: 1_000 }
    }
}

/// Open connections: in total and per address.
#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// A slot held by one connection, released when its IO is dropped (after an upgrade, when the
/// WebSocket ends).
struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        c.total -= 1;
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection's socket, holding its slot.
struct Counted {
    io: tokio::net::TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets the requests in flight finish.
/// Handlers can extract `ConnectInfo<SocketAddr>`. `name` labels the metrics and logs.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    name: &'static str,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let tracker = TaskTracker::new();
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, error = %e, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = {
            let mut c = counts.lock();
            let from_ip = c.by_ip.get(&peer.ip()).copied().unwrap_or(0);
            if c.total >= limits.max_connections || from_ip >= limits.max_per_address {
                let why = if c.total >= limits.max_connections { "listener" } else { "address" };
                metrics::counter!("openim_listener_refused_total", "listener" => name, "cap" => why).increment(1);
                tracing::debug!(listener = name, %peer, cap = why, "Connection over the cap closed.");
                continue;
            }
            c.total += 1;
            *c.by_ip.entry(peer.ip()).or_default() += 1;
            Slot { counts: counts.clone(), ip: peer.ip() }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Counted { io: stream, _slot: slot });
        let tower_service = match make.call_ready(peer).await {
            Ok(s) => s,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(
            tower_service.map_request(|req: http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new)),
        );
        let stop = shutdown.clone();
        tracker.spawn(async move {
            // HTTP/1.1 only (what the SDKs speak, and what a WebSocket upgrade needs): no
            // protocol sniffing that would wait on a silent client before any timer runs.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(limits.header_read_secs))
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// How a `call_ready` on a make-service is spelt with tower's `ServiceExt`.
trait CallReady<T>: tower::Service<T> {
    async fn call_ready(&mut self, target: T) -> Result<Self::Response, Self::Error>;
}

impl<S: tower::Service<T>, T> CallReady<T> for S {
    async fn call_ready(&mut self, target: T) -> Result<Self::Response, Self::Error> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await?;
        self.call(target).await
    }
}
