//! Settings of the production backends, one file each in `config/` (`mysql.yml`, `mongodb.yml`,
//! `redis.yml`, `kafka.yml`). Addresses default to the compose/Kubernetes service names.

use serde::{Deserialize, Serialize};

/// `mysql.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlConfig {
    /// `host:port`; the first entry is used (a MySQL client talks to one primary).
    pub address: Vec<String>,
    pub username: String,
    pub password: String,
    /// Created at start if it does not exist.
    pub database: String,
    /// Pool size.
    pub max_open_conn: u32,
    /// Connections kept open while idle.
    pub max_idle_conn: u32,
    /// A connection is replaced after this long.
    pub max_lifetime_secs: u64,
    /// How long a query waits for a connection before failing (the server is down or the pool
    /// is exhausted).
    pub connect_timeout_secs: u64,
    /// Statements slower than this are logged as warnings.
    pub slow_threshold_ms: u64,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            address: vec!["mysql:3306".into()],
            username: "root".into(),
            password: "openIM123".into(),
            database: "openim_v3".into(),
            max_open_conn: 64,
            max_idle_conn: 4,
            max_lifetime_secs: 1800,
            connect_timeout_secs: 5,
            slow_threshold_ms: 500,
        }
    }
}

impl MysqlConfig {
    /// The value at fault, named by key, if any.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.address.is_empty() {
            return Err(("address".into(), "must list at least one host:port".into()));
        }
        if self.database.is_empty() || !self.database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(("database".into(), format!("`{}` must be letters, digits and _", self.database)));
        }
        if self.max_open_conn == 0 {
            return Err(("max_open_conn".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `redis.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `host:port`; the first entry is used (one primary; Redis Cluster is not supported).
    pub address: Vec<String>,
    pub username: String,
    pub password: String,
    pub db: i64,
    /// Prepended to every key, so several deployments can share one Redis.
    pub key_prefix: String,
    pub connect_timeout_secs: u64,
    /// A command that gets no answer within this fails (and the connection is re-opened).
    pub response_timeout_ms: u64,
    /// Seqs reserved in MySQL per round trip; a Redis flush skips at most this many.
    pub seq_block: i64,
    /// Recent messages stay cached this long.
    pub msg_cache_ttl_secs: u64,
    /// A gateway that has not reported for this long is taken as gone.
    pub gateway_ttl_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            address: vec!["redis:6379".into()],
            username: String::new(),
            password: "openIM123".into(),
            db: 0,
            key_prefix: String::new(),
            connect_timeout_secs: 5,
            response_timeout_ms: 3000,
            seq_block: 1000,
            msg_cache_ttl_secs: 86_400,
            gateway_ttl_secs: 30,
        }
    }
}

impl RedisConfig {
    /// The value at fault, named by key, if any.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.address.is_empty() {
            return Err(("address".into(), "must list at least one host:port".into()));
        }
        if self.seq_block < 1 {
            return Err(("seq_block".into(), format!("{} must be at least 1", self.seq_block)));
        }
        if self.gateway_ttl_secs < 3 {
            return Err(("gateway_ttl_secs".into(), format!("{} is below 3", self.gateway_ttl_secs)));
        }
        Ok(())
    }
}
