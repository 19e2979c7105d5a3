//! The sections of each service's own file (`openim-<service>.yml`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `openim-api.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// REST (and `/healthz`, liveness only).
    pub listen: SocketAddr,
    /// `/healthz`, `/readyz` (naming a backend that does not answer) and `/metrics`; in
    /// standalone, the whole process's. Keep it off the public network.
    pub admin_listen: SocketAddr,
    /// Seconds a client has to send a request's headers (and an idle keep-alive connection
    /// lives): slow and idle connections are dropped.
    pub header_read_secs: u64,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one IP address; 0: no cap (behind a proxy or load balancer
    /// every client has the proxy's address).
    pub max_connections_per_address: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 10002).into(),
            admin_listen: ([0, 0, 0, 0], 12002).into(),
            header_read_secs: 10,
            max_connections: 10_000,
            max_connections_per_address: 0,
        }
    }
}

impl ApiConfig {
    /// The REST listener's caps.
    pub fn limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_read_secs: self.header_read_secs,
            max_connections: self.max_connections,
            max_per_address: per_address(self.max_connections_per_address),
        }
    }
}

fn per_address(n: usize) -> usize {
    if n == 0 { usize::MAX } else { n }
}

/// `openim-msggateway.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// WebSocket for clients (and `/healthz`, liveness only).
    pub listen: SocketAddr,
    /// `/healthz`, `/readyz` and `/metrics` (not in standalone, whose admin port is the API's).
    pub admin_listen: SocketAddr,
    /// gRPC for pushes from `openim-push`.
    pub rpc_listen: SocketAddr,
    /// Largest frame a client may send, in bytes (OpenIM: 51200).
    pub max_message_bytes: usize,
    /// A connection that sends nothing (not even a ping or pong) for this long is closed.
    pub read_deadline_secs: u64,
    /// Connections this instance accepts before refusing new ones.
    pub max_connections: usize,
    /// Seconds a client has to send the upgrade request's headers.
    pub header_read_secs: u64,
    /// Connections open at once from one IP address; 0: no cap (behind a proxy or load balancer
    /// every client has the proxy's address).
    pub max_connections_per_address: usize,
    /// Bytes queued for one connection before it counts as too slow and is closed (the
    /// client resyncs by seq when it reconnects).
    pub max_outbound_bytes: usize,
    /// Messages (1003, 1004) one user may send per second over all their connections to this
    /// instance; 0: no limit. Beyond it a send is refused with 1605 and nothing is stored.
    pub send_rate_per_sec: u32,
    /// Sends a user may make at once above the rate (a burst after a quiet spell).
    pub send_burst: u32,
    /// This instance's push address as `openim-push` knows it (an entry of `share.rpc.msggateway`);
    /// it is also the instance's ID in the online registry.
    pub advertise: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 10001).into(),
            admin_listen: ([0, 0, 0, 0], 12140).into(),
            rpc_listen: ([0, 0, 0, 0], 10140).into(),
            max_message_bytes: 51200,
            read_deadline_secs: 30,
            max_connections: 100_000,
            header_read_secs: 10,
            max_connections_per_address: 0,
            max_outbound_bytes: 8 << 20,
            send_rate_per_sec: 50,
            send_burst: 200,
            advertise: "http://openim-msggateway:10140".into(),
        }
    }
}

impl GatewayConfig {
    /// The WebSocket listener's caps: sessions are capped by `max_connections` (answered with
    /// OpenIM's error); the listener leaves room above it for those answers.
    pub fn limits(&self) -> crate::serve::Limits {
        crate::serve::Limits {
            header_read_secs: self.header_read_secs,
            max_connections: self.max_connections.saturating_add(1024),
            max_per_address: per_address(self.max_connections_per_address),
        }
    }
}

/// `openim-msgtransfer.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// `/healthz`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Most messages taken from the bus and stored in one batch.
    pub batch_size: usize,
    /// Parts (by conversation) a batch is split into and stored at the same time, 1 to 64.
    pub shards: usize,
    /// How long a batch smaller than `batch_size` waits for more messages before it is stored
    /// (0 to 1,000 ms), as a Kafka producer's `linger.ms`: each batch costs the store a commit
    /// and a few statements whatever its size, so under load fewer, larger batches cost less
    /// CPU, at the price of the wait in every message's latency. 0 (the default): no wait.
    pub linger_ms: u64,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self { admin_listen: ([0, 0, 0, 0], 12020).into(), batch_size: 1000, shards: 4, linger_ms: 0 }
    }
}

/// `openim-push.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    pub admin_listen: SocketAddr,
    pub batch_size: usize,
    /// The bridge to a vendor push service: each offline push is POSTed here (JSON), after
    /// `beforeOfflinePush` (`webhooks.yml`) let it go; empty: none.
    pub offline_webhook: String,
    pub offline_webhook_timeout_ms: u64,
    /// How long a batch holding a group's message waits for more (at most 1,000 ms): the
    /// members then get several messages in one frame, and each round over a large group's
    /// connections carries more of them. 0: no wait.
    pub group_linger_ms: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            admin_listen: ([0, 0, 0, 0], 12170).into(),
            batch_size: 1000,
            offline_webhook: String::new(),
            offline_webhook_timeout_ms: 5000,
            group_linger_ms: 10,
        }
    }
}

/// `openim-rpc-<name>.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// gRPC; `0.0.0.0:0` means the service's default port.
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self { listen: ([0, 0, 0, 0], 0).into(), admin_listen: None }
    }
}

/// `openim-rpc-group.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// The most members a group may have: joining, inviting or accepting beyond it is refused
    /// (1001), naming the limit.
    pub max_members: u32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        let rpc = RpcConfig::with_port(10150);
        Self { listen: rpc.listen, admin_listen: rpc.admin_listen, max_members: 20_000 }
    }
}

impl GroupConfig {
    /// The listener settings every RPC service has.
    pub fn rpc(&self) -> RpcConfig {
        RpcConfig { listen: self.listen, admin_listen: self.admin_listen }
    }
}

/// `openim-rpc-third.yml`: object storage, FCM tokens, badges and client logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThirdConfig {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub object: ObjectConfig,
}

impl Default for ThirdConfig {
    fn default() -> Self {
        let rpc = RpcConfig::with_port(10300);
        Self { listen: rpc.listen, admin_listen: rpc.admin_listen, object: ObjectConfig::default() }
    }
}

impl ThirdConfig {
    /// The listener settings every RPC service has.
    pub fn rpc(&self) -> RpcConfig {
        RpcConfig { listen: self.listen, admin_listen: self.admin_listen }
    }
}

/// `object` in `openim-rpc-third.yml`: where pictures, voice, video and files are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectConfig {
    /// `local`: files under `local.dir` on this machine, uploaded and downloaded through the
    /// API's own port (standalone and single-host deployments).
    /// `s3`: any S3-compatible store (`s3`: AWS S3, MinIO, Aliyun OSS, Tencent COS, …).
    pub engine: String,
    pub local: LocalObjectConfig,
    pub s3: S3ObjectConfig,
    /// The largest object a client may upload, in bytes.
    pub max_size: i64,
    /// Content types a client may upload (`image/*` matches every image type); empty: any.
    pub content_types: Vec<String>,
    /// Groups (OpenIM's `cause`) whose objects only their owner and administrators may
    /// download; anyone with an object's name may download the others, as in OpenIM.
    pub private_groups: Vec<String>,
    /// How long upload and download URLs stay valid.
    pub url_expire_secs: u64,
}

impl Default for ObjectConfig {
    fn default() -> Self {
        Self {
            engine: "local".into(),
            local: LocalObjectConfig::default(),
            s3: S3ObjectConfig::default(),
            max_size: 1 << 30,
            content_types: Vec::new(),
            // `sdklog`: openim-sdk-core's own log uploads.
            private_groups: vec!["logs".into(), "sdklog".into()],
            url_expire_secs: 7 * 24 * 3600,
        }
    }
}

/// `object.s3`: an S3-compatible store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3ObjectConfig {
    /// The address the servers reach the store at (`http://minio:9000`).
    pub endpoint: String,
    /// The address clients reach it at (`https://files.example.com`); empty: `endpoint`. Upload
    /// and download URLs are signed for this address, so an internal one never leaks to clients.
    pub external_endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// `https://host/bucket/key` (MinIO and most self-hosted stores); false for
    /// `https://bucket.host/key` (AWS, OSS, COS).
    pub path_style: bool,
}

impl Default for S3ObjectConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            external_endpoint: String::new(),
            bucket: "openim".into(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            path_style: true,
        }
    }
}

/// `object.local`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalObjectConfig {
    /// The store's directory; empty: `objects` under `storage.data_dir`.
    pub dir: String,
    /// The address clients reach the API at (`https://im.example.com/api/`), for the store's
    /// URLs; empty: taken from each request (its `X-Request-Api` header, else its Host), as
    /// OpenIM builds object URLs.
    pub external_url: String,
}

/// `openim-crontask.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrontaskConfig {
    pub admin_listen: SocketAddr,
    /// Messages older than this are deleted; 0 keeps them forever.
    pub retain_msg_days: u32,
    /// Uploaded objects of `delete_object_groups` older than this are deleted (OpenIM's
    /// `fileExpireTime`, 180 there); 0 keeps them forever.
    #[serde(alias = "fileExpireTime")]
    pub file_expire_days: u32,
    /// The groups (OpenIM's `cause`: what an upload is for) that expire.
    #[serde(alias = "deleteObjectType")]
    pub delete_object_groups: Vec<String>,
    /// How often the clean-up runs.
    pub interval_secs: u64,
}

impl Default for CrontaskConfig {
    fn default() -> Self {
        Self {
            admin_listen: ([0, 0, 0, 0], 12240).into(),
            retain_msg_days: 0,
            file_expire_days: 0,
            delete_object_groups: ["msg-picture", "msg-file", "msg-voice", "msg-video", "msg-video-snapshot", "sdklog"]
                .map(String::from)
                .to_vec(),
            interval_secs: 3600,
        }
    }
}

impl RpcConfig {
    pub(crate) fn with_port(port: u16) -> Self {
        Self { listen: ([0, 0, 0, 0], port).into(), admin_listen: None }
    }
}
