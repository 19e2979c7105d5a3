//! `openim healthcheck <service>`: asks a service running on this host whether it is ready (or,
//! with `--live`, merely up), the way a container engine's health check or a probe does. The
//! images have no shell and no curl, so the binary checks itself.
//!
//! Where it asks comes from the same configuration the service reads (files and `OPENIM_*`
//! variables): HTTP `/readyz` (`/healthz`) on the admin port, or, for an RPC
//! service without an admin port, the standard gRPC health service on its gRPC port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context as _, bail};
use openim_common::config::{Config, RpcConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::services::Service;

/// How a service answers health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `GET /readyz` (`/healthz` for liveness) on this address.
    Http(SocketAddr),
    /// `grpc.health.v1.Health/Check` on this address.
    Grpc(SocketAddr),
}

/// Where `service` (`None`: the all-in-one `standalone`) answers, as seen from its own host.
pub fn probe(service: Option<Service>, cfg: &Config) -> Probe {
    let rpc = |r: &RpcConfig| r.admin_listen.map_or(Probe::Grpc(r.listen), Probe::Http);
    let probe = match service {
        None | Some(Service::Api) => Probe::Http(cfg.api.admin_listen),
        Some(Service::Msggateway) => Probe::Http(cfg.msggateway.admin_listen),
        Some(Service::Msgtransfer) => Probe::Http(cfg.msgtransfer.admin_listen),
        Some(Service::Push) => Probe::Http(cfg.push.admin_listen),
        Some(Service::Crontask) => Probe::Http(cfg.crontask.admin_listen),
        Some(Service::RpcAuth) => rpc(&cfg.rpc_auth),
        Some(Service::RpcUser) => rpc(&cfg.rpc_user),
        Some(Service::RpcFriend) => rpc(&cfg.rpc_friend),
        Some(Service::RpcGroup) => rpc(&cfg.rpc_group.rpc()),
        Some(Service::RpcConversation) => rpc(&cfg.rpc_conversation),
        Some(Service::RpcMsg) => rpc(&cfg.rpc_msg),
        Some(Service::RpcThird) => rpc(&cfg.rpc_third.rpc()),
    };
    match probe {
        Probe::Http(a) => Probe::Http(local(a)),
        Probe::Grpc(a) => Probe::Grpc(local(a)),
    }
}

/// A listen address as a client on the same host reaches it (`0.0.0.0` → `127.0.0.1`).
fn local(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Checks `probe` within `timeout`: Ok with what the service said, or why it is not healthy.
pub async fn check(probe: Probe, live: bool, timeout: Duration) -> anyhow::Result<String> {
    let what = match probe {
        Probe::Http(a) => format!("http://{a}{}", if live { "/healthz" } else { "/readyz" }),
        Probe::Grpc(a) => format!("gRPC health at {a}"),
    };
    let answer = async {
        match probe {
            Probe::Http(addr) => http(addr, if live { "/healthz" } else { "/readyz" }).await,
            Probe::Grpc(addr) => grpc(addr, live).await,
        }
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(said)) => Ok(format!("{what}: {said}")),
        Ok(Err(e)) => Err(e.context(what)),
        Err(_) => bail!("{what}: no answer within {timeout:?}"),
    }
}

/// `GET path` over HTTP/1.0 (the response then has no chunked encoding): Ok with the body on 200.
async fn http(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.context("connect")?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.context("send")?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response).await.context("read the response")?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {:?}", head.lines().next().unwrap_or_default()))?;
    let body = body.trim();
    if status != 200 {
        bail!("HTTP {status}: {body}");
    }
    Ok(body.to_owned())
}

/// The standard gRPC health check of the whole server (service `""`). Live: any answer.
async fn grpc(addr: SocketAddr, live: bool) -> anyhow::Result<String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = openim_common::rpc::remote(&format!("http://{addr}"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner()
        .status();
    if status != ServingStatus::Serving && !live {
        bail!("{}", status.as_str_name());
    }
    Ok(status.as_str_name().to_owned())
}
