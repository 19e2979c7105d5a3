//! The Redis adapter: seq allocation in front of a durable [`SeqStore`], tokens, the online
//! registry and a recent-message cache in front of a [`MessageStore`].
//!
//! One multiplexed connection per process (redis's `ConnectionManager`, which reconnects by
//! itself); it is opened on first use so that a process starts while Redis is down and reports
//! not-ready until it answers. Multi-key updates are Lua scripts, so each is atomic.
//!
//! Keys (all under the configured prefix):
//! - `seq:{conversation}`: hash `cur` (last seq handed out), `max` (end of the block reserved in
//!   the durable store); `seqlock:{conversation}` while a block is being reserved;
//! - `token:{user}:{platform}`: hash token → state, expiring with the longest-lived token;
//! - `online:{user}`: hash `{platform}:{gateway}` → connections; `gwusers:{gateway}`: set of
//!   users the gateway reported; `gwalive:{gateway}`: present while the gateway heartbeats;
//! - `msg:{conversation}:{seq}`: a stored message's protobuf bytes, with a TTL;
//! - `gc:ids:{group}`, `gc:n:{group}`, `gc:m:{group}:{user}`: cached group membership (JSON), with a
//!   TTL, dropped by every write that changes it ([`crate::group_cache`]).

mod dedup;
mod kv;
mod messages;
mod online;
mod seqs;
mod tokens;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::RedisConfig;
use crate::*;

pub use messages::CachedMessages;
pub use seqs::RedisSeqs;

pub struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    prefix: String,
    where_: String,
    response_timeout: Duration,
    connect_timeout: Duration,
    /// How long a gateway counts as alive after its last heartbeat.
    pub(crate) gateway_ttl: Duration,
}

impl RedisStore {
    /// A store that connects on first use.
    pub fn new(cfg: &RedisConfig) -> StoreResult<Self> {
        let address = cfg.address.first().ok_or_else(|| StoreError::Backend("redis.yml: `address` is empty".into()))?;
        let (host, port) = crate::mysql::split_host_port(address, 6379)?;
        let mut settings = redis::RedisConnectionInfo::default().set_db(cfg.db);
        if !cfg.username.is_empty() {
            settings = settings.set_username(&cfg.username);
        }
        if !cfg.password.is_empty() {
            settings = settings.set_password(&cfg.password);
        }
        let tls = &cfg.tls;
        let addr = if tls.enabled {
            redis::ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
        } else {
            redis::ConnectionAddr::Tcp(host, port)
        };
        let info = redis::IntoConnectionInfo::into_connection_info(addr)
            .map(|info| info.set_redis_settings(settings))
            .map_err(|e| StoreError::Backend(format!("redis {address}: {e}")))?;
        let client = if tls.enabled {
            // The CA given, or the public web roots; a client certificate when the server asks
            // for one (Redis does by default: `tls-auth-clients yes`).
            let certs = redis::TlsCertificates {
                root_cert: (!tls.ca_file.is_empty()).then(|| tls.read("ca_file", &tls.ca_file)).transpose()?,
                client_tls: if tls.cert_file.is_empty() {
                    None
                } else {
                    Some(redis::ClientTlsConfig {
                        client_cert: tls.read("cert_file", &tls.cert_file)?,
                        client_key: tls.read("key_file", &tls.key_file)?,
                    })
                },
            };
            redis::Client::build_with_tls(info, certs)
        } else {
            redis::Client::open(info)
        }
        .map_err(|e| StoreError::Backend(format!("redis {address}: {e}")))?;
        Ok(Self {
            client,
            conn: OnceCell::new(),
            prefix: cfg.key_prefix.clone(),
            where_: format!("{address}/{}", cfg.db),
            response_timeout: Duration::from_millis(cfg.response_timeout_ms),
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs),
            gateway_ttl: Duration::from_secs(cfg.gateway_ttl_secs),
        })
    }

    /// The shared connection, opened on first use.
    pub(crate) async fn conn(&self) -> StoreResult<ConnectionManager> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.response_timeout))
                    .set_number_of_retries(2);
                ConnectionManager::new_with_config(self.client.clone(), config).await.map_err(|e| self.fault(e))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Checks that Redis answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(())
    }

    pub(crate) fn key(&self, parts: std::fmt::Arguments<'_>) -> String {
        format!("{}{parts}", self.prefix)
    }

    pub(crate) fn fault(&self, e: redis::RedisError) -> StoreError {
        StoreError::Backend(format!("redis {}: {e}", self.where_))
    }
}

#[async_trait::async_trait]
impl crate::Backend for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        RedisStore::ping(self).await
    }
}
