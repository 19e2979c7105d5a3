//! Settings of the production backends, one file each in `config/` (`mysql.yml`, `mongodb.yml`,
//! `redis.yml`, `kafka.yml`). Addresses default to the compose/Kubernetes service names.

use serde::{Deserialize, Serialize};

/// TLS to a backend: `tls:` in `redis.yml` and `mongodb.yml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Connect over TLS, verifying the server's certificate and name.
    pub enabled: bool,
    /// PEM file of the CA certificates the server's must chain to; empty: the public web roots.
    pub ca_file: String,
    /// PEM client certificate, for servers that require one (mutual TLS); with `key_file`.
    pub cert_file: String,
    /// PEM private key of `cert_file`.
    pub key_file: String,
}

impl TlsConfig {
    /// The value at fault, named by key under `tls.`, if any.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            return Err(("tls.key_file".into(), "cert_file and key_file go together: set both or neither".into()));
        }
        let files_set = !self.ca_file.is_empty() || !self.cert_file.is_empty();
        if files_set && !self.enabled {
            return Err(("tls.enabled".into(), "is false while tls files are set: set it to true".into()));
        }
        Ok(())
    }

    /// Reads one of the files, naming it on failure.
    pub fn read(&self, key: &str, path: &str) -> Result<Vec<u8>, crate::StoreError> {
        std::fs::read(path).map_err(|e| crate::StoreError::Backend(format!("tls.{key} {path}: {e}")))
    }
}

/// MySQL's `--ssl-mode`: whether the connection uses TLS and what it verifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, unverified; plain otherwise (MySQL's default).
    #[default]
    Preferred,
    /// TLS or no connection, unverified.
    Required,
    /// TLS with the server's certificate verified against `ssl_ca`.
    VerifyCa,
    /// As `verify_ca`, and the certificate must name the host connected to.
    VerifyIdentity,
}

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
    /// TLS: `disabled`, `preferred`, `required`, `verify_ca` or `verify_identity`.
    pub ssl_mode: SslMode,
    /// PEM file of the CA that signed the server's certificate (for `verify_ca` and
    /// `verify_identity`).
    pub ssl_ca: String,
    /// PEM client certificate and key, for servers that require one.
    pub ssl_cert: String,
    pub ssl_key: String,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            address: vec!["mysql:3306".into()],
            username: "openim".into(),
            password: String::new(),
            database: "openim_v3".into(),
            max_open_conn: 64,
            max_idle_conn: 4,
            max_lifetime_secs: 1800,
            connect_timeout_secs: 5,
            slow_threshold_ms: 500,
            ssl_mode: SslMode::Preferred,
            ssl_ca: String::new(),
            ssl_cert: String::new(),
            ssl_key: String::new(),
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
        if matches!(self.ssl_mode, SslMode::VerifyCa | SslMode::VerifyIdentity) && self.ssl_ca.is_empty() {
            return Err(("ssl_ca".into(), "must name the CA's PEM file when ssl_mode verifies the server".into()));
        }
        if self.ssl_cert.is_empty() != self.ssl_key.is_empty() {
            return Err(("ssl_key".into(), "ssl_cert and ssl_key go together: set both or neither".into()));
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
    /// TLS (`rediss://`).
    pub tls: TlsConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            address: vec!["redis:6379".into()],
            username: String::new(),
            password: String::new(),
            db: 0,
            key_prefix: String::new(),
            connect_timeout_secs: 5,
            response_timeout_ms: 3000,
            seq_block: 1000,
            msg_cache_ttl_secs: 86_400,
            gateway_ttl_secs: 30,
            tls: TlsConfig::default(),
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
        if self.gateway_ttl_secs < 10 {
            // Gateways heartbeat every 3 s; a shorter TTL would drop live ones.
            return Err(("gateway_ttl_secs".into(), format!("{} is below 10", self.gateway_ttl_secs)));
        }
        self.tls.check()
    }
}

/// `kafka.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port`.
    pub address: Vec<String>,
    /// SASL credentials; empty for none.
    pub username: String,
    pub password: String,
    /// The SASL mechanism with `username`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
    /// TLS to the brokers: `SSL`, or `SASL_SSL` with `username`.
    pub tls: TlsConfig,
    /// `all`, `1` or `0`: how many replicas acknowledge a record before it counts as published.
    pub producer_acks: String,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: String,
    /// How long the producer waits to fill a batch.
    pub linger_ms: u64,
    /// A record not acknowledged within this fails its publish.
    pub publish_timeout_secs: u64,
    /// The idempotent producer (with `producer_acks: all`): retries after a broker failure
    /// neither duplicate nor reorder records. Off only for a broker that cannot recover
    /// idempotent producers; then one request per connection is in flight (order is kept) and a
    /// retry may duplicate a record, which msgtransfer stores once (by clientMsgID).
    pub idempotence: bool,
    /// Partitions of the topics created at start (existing topics keep theirs).
    pub partitions: i32,
    pub replication_factor: i32,
    /// The longest a broker holds a fetch open waiting for data: the floor of end-to-end
    /// latency on a quiet topic.
    pub fetch_wait_max_ms: u64,
    /// A consumer silent for this long leaves its group and its partitions move.
    pub session_timeout_secs: u64,
    /// A consumer that takes no batch for this long (stuck handling one) is taken out of its
    /// group; a rebalance also waits this long at most for a member that died silently.
    pub max_poll_interval_secs: u64,
    pub connect_timeout_secs: u64,
    /// Topic names, by OpenIM's logical name (`toRedis`, `toMongo`, `toPush`, `toOfflinePush`).
    pub topics: std::collections::BTreeMap<String, String>,
    /// Prepended to consumer group IDs.
    pub group_prefix: String,
    /// librdkafka debug contexts to log (`cgrp,topic,fetch`, `all`); empty: none.
    pub debug: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            address: vec!["kafka:9092".into()],
            username: String::new(),
            password: String::new(),
            sasl_mechanism: "PLAIN".into(),
            tls: TlsConfig::default(),
            producer_acks: "all".into(),
            compression: "none".into(),
            linger_ms: 5,
            publish_timeout_secs: 10,
            idempotence: true,
            partitions: 8,
            replication_factor: 1,
            fetch_wait_max_ms: 10,
            session_timeout_secs: 10,
            max_poll_interval_secs: 300,
            connect_timeout_secs: 5,
            topics: crate::topic::ALL.iter().map(|t| (t.to_string(), t.to_string())).collect(),
            group_prefix: String::new(),
            debug: String::new(),
        }
    }
}

impl KafkaConfig {
    /// The value at fault, named by key, if any.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.address.is_empty() {
            return Err(("address".into(), "must list at least one host:port".into()));
        }
        if !["all", "-1", "0", "1"].contains(&self.producer_acks.as_str()) {
            return Err(("producer_acks".into(), format!("`{}` is not one of all, 1, 0", self.producer_acks)));
        }
        if !["none", "gzip", "snappy", "lz4"].contains(&self.compression.as_str()) {
            return Err((
                "compression".into(),
                format!("`{}` is not one of none, gzip, snappy, lz4", self.compression),
            ));
        }
        if self.max_poll_interval_secs < self.session_timeout_secs {
            return Err((
                "max_poll_interval_secs".into(),
                format!(
                    "{} is below session_timeout_secs ({})",
                    self.max_poll_interval_secs, self.session_timeout_secs
                ),
            ));
        }
        if self.partitions < 1 || self.replication_factor < 1 {
            return Err(("partitions".into(), "partitions and replication_factor must be at least 1".into()));
        }
        if let Some(unknown) = self.topics.keys().find(|k| !crate::topic::ALL.contains(&k.as_str())) {
            return Err((format!("topics.{unknown}"), format!("not one of {}", crate::topic::ALL.join(", "))));
        }
        if !SASL_MECHANISMS.contains(&self.sasl_mechanism.as_str()) {
            return Err((
                "sasl_mechanism".into(),
                format!("`{}` is not one of {}", self.sasl_mechanism, SASL_MECHANISMS.join(", ")),
            ));
        }
        self.tls.check()
    }

    /// librdkafka's `security.protocol` for these settings.
    pub fn security_protocol(&self) -> &'static str {
        match (self.tls.enabled, self.username.is_empty()) {
            (false, true) => "PLAINTEXT",
            (false, false) => "SASL_PLAINTEXT",
            (true, true) => "SSL",
            (true, false) => "SASL_SSL",
        }
    }
}

/// The SASL mechanisms `kafka.sasl_mechanism` takes.
pub const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// `mongodb.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MongoConfig {
    /// A full `mongodb://` URI; when set, `address` is ignored (credentials still apply).
    pub uri: String,
    /// `host:port` of the members (a replica set lists several).
    pub address: Vec<String>,
    pub database: String,
    pub username: String,
    pub password: String,
    pub auth_source: String,
    pub max_pool_size: u32,
    /// How long an operation waits for a reachable server before failing.
    pub connect_timeout_secs: u64,
    /// TLS; `cert_file` holds the client certificate and its key together (MongoDB's
    /// `tlsCertificateKeyFile`), so `key_file` stays empty.
    pub tls: TlsConfig,
}

impl Default for MongoConfig {
    fn default() -> Self {
        Self {
            uri: String::new(),
            address: vec!["mongo:27017".into()],
            database: "openim_v3".into(),
            username: String::new(),
            password: String::new(),
            auth_source: "admin".into(),
            max_pool_size: 100,
            connect_timeout_secs: 5,
            tls: TlsConfig::default(),
        }
    }
}

impl MongoConfig {
    /// The connection URI (`uri`, or one built from `address`).
    pub fn uri(&self) -> String {
        if self.uri.is_empty() { format!("mongodb://{}/", self.address.join(",")) } else { self.uri.clone() }
    }

    /// The URI without a password, for messages.
    pub fn redacted_uri(&self) -> String {
        let uri = self.uri();
        match (uri.find("://"), uri.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &uri[..scheme + 3], &uri[at..]),
            _ => uri,
        }
    }

    /// The value at fault, named by key, if any.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.uri.is_empty() && self.address.is_empty() {
            return Err(("address".into(), "must list at least one host:port (or set `uri`)".into()));
        }
        let uri = &self.uri;
        if !(uri.is_empty() || uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err(("uri".into(), "must start with mongodb:// or mongodb+srv://".into()));
        }
        if self.database.is_empty() {
            return Err(("database".into(), "must not be empty".into()));
        }
        if !self.tls.key_file.is_empty() {
            return Err((
                "tls.key_file".into(),
                "MongoDB reads the key from cert_file (certificate and key in one PEM file): leave key_file empty"
                    .into(),
            ));
        }
        let files_set = !self.tls.ca_file.is_empty() || !self.tls.cert_file.is_empty();
        if files_set && !self.tls.enabled {
            return Err(("tls.enabled".into(), "is false while tls files are set: set it to true".into()));
        }
        Ok(())
    }
}
