//! Configuration: built-in defaults → `config/<file>.yml` → environment → command-line overrides,
//! validated after loading so a wrong key or value stops the process with the key named.
//!
//! One file per service plus shared files. The **environment rule**: a key `a.b` of file
//! `openim-rpc-msg.yml` is overridden by `OPENIM_RPC_MSG__A__B` — the file name without the
//! `openim-` prefix and `.yml`, upper-cased, dashes as underscores, then `__` between key parts.
//! Values are parsed like YAML scalars (`10`, `true`, `[a, b]`).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use openim_storage::config::{KafkaConfig, MongoConfig, MysqlConfig, RedisConfig};

/// Everything a process may need; each service reads its own section and `share`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Config {
    pub share: Share,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub api: ApiConfig,
    pub msggateway: GatewayConfig,
    pub msgtransfer: TransferConfig,
    pub push: PushConfig,
    pub rpc_auth: RpcConfig,
    pub rpc_user: RpcConfig,
    pub rpc_friend: RpcConfig,
    pub rpc_group: GroupConfig,
    pub rpc_conversation: RpcConfig,
    pub rpc_msg: RpcConfig,
    pub rpc_third: ThirdConfig,
    pub crontask: CrontaskConfig,
    pub mysql: MysqlConfig,
    pub redis: RedisConfig,
    pub kafka: KafkaConfig,
    pub mongodb: MongoConfig,
    pub webhooks: crate::webhook::WebhooksConfig,
}

/// `share.yml`: settings every service agrees on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Share {
    /// The administrator credential: what `/auth/get_admin_token` checks (OpenIM's name).
    pub secret: String,
    /// Signs tokens. Empty in embedded mode: a random key kept in `storage.data_dir/token.key`.
    /// Required in production, where every `openim-rpc-auth` replica must share it.
    pub token_key: String,
    /// Users with administrator rights (`imAdmin` by default, as in OpenIM).
    pub admin_user_ids: Vec<String>,
    /// Lifetime of user tokens.
    pub token_ttl_days: i64,
    pub multi_login: MultiLogin,
    /// Where each RPC service listens, for processes that call it (ignored in standalone, where
    /// calls stay in-process). Kubernetes/compose service names by default.
    pub rpc: RpcAddresses,
}

impl Default for Share {
    fn default() -> Self {
        Self {
            secret: crate::secrets::SHIPPED_ADMIN_SECRET.into(),
            token_key: String::new(),
            admin_user_ids: vec!["imAdmin".into()],
            token_ttl_days: 90,
            multi_login: MultiLogin::default(),
            rpc: RpcAddresses::default(),
        }
    }
}

impl Share {
    /// Whether `user_id` is one of the administrators.
    pub fn is_admin(&self, user_id: &str) -> bool {
        self.admin_user_ids.iter().any(|a| a == user_id)
    }
}

/// OpenIM's multi-terminal login policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiLogin {
    /// OpenIM's numbering: 0 never kick (at most `max_num_one_end` per platform); 1 one session
    /// per platform, a new login kicks the older one; 4 one session per platform class (PC,
    /// mobile, pad, web, mini-web); 5 PCs are never kicked, all other platforms share one slot.
    pub policy: u8,
    /// Most connections one user may hold on one platform.
    pub max_num_one_end: usize,
}

impl MultiLogin {
    /// Whether a new login on `new_platform` pushes out an existing one on `existing_platform`.
    pub fn kicks(&self, new_platform: i32, existing_platform: i32) -> bool {
        use openim_proto::constants::platform::{Class, class};
        match self.policy {
            1 => new_platform == existing_platform,
            4 => class(new_platform) == class(existing_platform),
            5 => class(new_platform) != Class::Desktop && class(existing_platform) != Class::Desktop,
            _ => false,
        }
    }
}

impl Default for MultiLogin {
    fn default() -> Self {
        Self { policy: 1, max_num_one_end: 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcAddresses {
    pub auth: String,
    pub user: String,
    pub friend: String,
    pub group: String,
    pub conversation: String,
    pub msg: String,
    pub third: String,
    /// Every gateway instance's push endpoint (StatefulSet pod DNS names in Kubernetes).
    pub msggateway: Vec<String>,
}

impl Default for RpcAddresses {
    fn default() -> Self {
        Self {
            auth: "http://openim-rpc-auth:10200".into(),
            user: "http://openim-rpc-user:10110".into(),
            friend: "http://openim-rpc-friend:10120".into(),
            group: "http://openim-rpc-group:10150".into(),
            conversation: "http://openim-rpc-conversation:10180".into(),
            msg: "http://openim-rpc-msg:10130".into(),
            third: "http://openim-rpc-third:10300".into(),
            msggateway: vec!["http://openim-msggateway:10140".into()],
        }
    }
}

/// `log.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
    /// JSON lines instead of human-readable output.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), json: false }
    }
}

/// `storage.yml`: which backends to use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: Backend,
    /// Embedded mode: where the SQLite database and other state live.
    pub data_dir: PathBuf,
    /// Production mode: where messages are kept.
    pub message_store: MessageStoreKind,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { backend: Backend::Embedded, data_dir: PathBuf::from("data"), message_store: MessageStoreKind::Mongodb }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStoreKind {
    /// MongoDB (`mongodb.yml`), as OpenIM.
    Mongodb,
    /// The MySQL database of `mysql.yml`, for operators without MongoDB.
    Mysql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite, in-memory bus and cache: runs on a bare machine.
    Embedded,
    /// MySQL, MongoDB, Redis and Kafka.
    Production,
}

/// Sections and the file each comes from.
const FILES: &[&str] = &[
    "share",
    "log",
    "storage",
    "openim-api",
    "openim-msggateway",
    "openim-msgtransfer",
    "openim-push",
    "openim-rpc-auth",
    "openim-rpc-user",
    "openim-rpc-friend",
    "openim-rpc-group",
    "openim-rpc-conversation",
    "openim-rpc-msg",
    "openim-rpc-third",
    "openim-crontask",
    "mysql",
    "redis",
    "kafka",
    "mongodb",
    "webhooks",
];

/// A configuration error naming the file, key or value at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl Config {
    /// Loads every section from `dir` (missing files keep the defaults) and the environment.
    pub fn load(dir: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(ConfigError(format!("config directory {} does not exist", dir.display())));
            }
            check_no_unknown_files(dir)?;
        }
        let d = Config::default();
        let cfg = Config {
            share: section(dir, "share", d.share)?,
            log: section(dir, "log", d.log)?,
            storage: section(dir, "storage", d.storage)?,
            api: section(dir, "openim-api", d.api)?,
            msggateway: section(dir, "openim-msggateway", d.msggateway)?,
            msgtransfer: section(dir, "openim-msgtransfer", d.msgtransfer)?,
            push: section(dir, "openim-push", d.push)?,
            rpc_auth: section(dir, "openim-rpc-auth", RpcConfig::with_port(10200))?,
            rpc_user: section(dir, "openim-rpc-user", RpcConfig::with_port(10110))?,
            rpc_friend: section(dir, "openim-rpc-friend", RpcConfig::with_port(10120))?,
            rpc_group: section(dir, "openim-rpc-group", d.rpc_group)?,
            rpc_conversation: section(dir, "openim-rpc-conversation", RpcConfig::with_port(10180))?,
            rpc_msg: section(dir, "openim-rpc-msg", RpcConfig::with_port(10130))?,
            rpc_third: section(dir, "openim-rpc-third", d.rpc_third)?,
            crontask: section(dir, "openim-crontask", d.crontask)?,
            mysql: section(dir, "mysql", d.mysql)?,
            redis: section(dir, "redis", d.redis)?,
            kafka: section(dir, "kafka", d.kafka)?,
            mongodb: section(dir, "mongodb", d.mongodb)?,
            webhooks: section(dir, "webhooks", d.webhooks)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but make no sense, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |file: &str, key: &str, why: String| Err(ConfigError(format!("config {file}.yml: key `{key}`: {why}")));
        if self.share.secret.is_empty() {
            return bad("share", "secret", "must not be empty".into());
        }
        if ![0, 1, 4, 5].contains(&self.share.multi_login.policy) {
            return bad(
                "share",
                "multi_login.policy",
                format!("{} is not one of 0, 1, 4, 5", self.share.multi_login.policy),
            );
        }
        if self.rpc_group.max_members < 2 {
            return bad(
                "openim-rpc-group",
                "max_members",
                format!("{} must be at least 2", self.rpc_group.max_members),
            );
        }
        let hooks = &self.webhooks.url;
        if !(hooks.is_empty() || hooks.starts_with("http://") || hooks.starts_with("https://")) {
            return bad("webhooks", "url", format!("{hooks:?} is not an http(s) URL"));
        }
        let object = &self.rpc_third.object;
        match object.engine.as_str() {
            "local" => {}
            "s3" => {
                let s3 = &object.s3;
                for (key, value) in [("object.s3.endpoint", &s3.endpoint), ("object.s3.bucket", &s3.bucket)] {
                    if value.is_empty() {
                        return bad("openim-rpc-third", key, "must be set when object.engine is s3".into());
                    }
                }
                for (key, value) in
                    [("object.s3.endpoint", &s3.endpoint), ("object.s3.external_endpoint", &s3.external_endpoint)]
                {
                    if !(value.is_empty() || value.starts_with("http://") || value.starts_with("https://")) {
                        return bad("openim-rpc-third", key, format!("{value:?} is not an http(s) URL"));
                    }
                }
                if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
                    return bad(
                        "openim-rpc-third",
                        "object.s3.access_key_id",
                        "object.s3.access_key_id and object.s3.secret_access_key must be set when object.engine is s3"
                            .into(),
                    );
                }
            }
            other => {
                return bad("openim-rpc-third", "object.engine", format!("{other:?} is not one of: local, s3"));
            }
        }
        if object.max_size <= 0 {
            return bad("openim-rpc-third", "object.max_size", format!("{} must be positive", object.max_size));
        }
        if !(60..=7 * 24 * 3600).contains(&object.url_expire_secs) {
            return bad(
                "openim-rpc-third",
                "object.url_expire_secs",
                format!("{} is not between 60 and 604800 (7 days, S3's longest)", object.url_expire_secs),
            );
        }
        let external = &object.local.external_url;
        if !(external.is_empty() || external.starts_with("http://") || external.starts_with("https://")) {
            return bad("openim-rpc-third", "object.local.external_url", format!("{external:?} is not an http(s) URL"));
        }
        if self.share.multi_login.max_num_one_end == 0 {
            return bad("share", "multi_login.max_num_one_end", "must be at least 1".into());
        }
        if self.share.token_ttl_days <= 0 {
            return bad("share", "token_ttl_days", format!("{} must be positive", self.share.token_ttl_days));
        }
        if self.msggateway.max_message_bytes < 1024 {
            return bad(
                "openim-msggateway",
                "max_message_bytes",
                format!("{} is below 1024", self.msggateway.max_message_bytes),
            );
        }
        if self.api.header_read_secs == 0 {
            return bad("openim-api", "header_read_secs", "must be at least 1".into());
        }
        if self.msggateway.header_read_secs == 0 {
            return bad("openim-msggateway", "header_read_secs", "must be at least 1".into());
        }
        if self.api.max_connections == 0 {
            return bad("openim-api", "max_connections", "must be at least 1".into());
        }
        if self.msgtransfer.batch_size == 0 {
            return bad("openim-msgtransfer", "batch_size", "must be at least 1".into());
        }
        if !(1..=64).contains(&self.msgtransfer.shards) {
            return bad("openim-msgtransfer", "shards", format!("{} is not within 1 to 64", self.msgtransfer.shards));
        }
        if self.msgtransfer.linger_ms > 1000 {
            return bad(
                "openim-msgtransfer",
                "linger_ms",
                format!("{} is not within 0 to 1000", self.msgtransfer.linger_ms),
            );
        }
        if self.push.batch_size == 0 {
            return bad("openim-push", "batch_size", "must be at least 1".into());
        }
        let hook = &self.push.offline_webhook;
        if !(hook.is_empty() || hook.starts_with("http://") || hook.starts_with("https://")) {
            return bad(
                "openim-push",
                "offline_webhook",
                format!("`{}` is not an http(s) URL", self.push.offline_webhook),
            );
        }
        if let Err((key, why)) = self.mysql.check() {
            return bad("mysql", &key, why);
        }
        if let Err((key, why)) = self.redis.check() {
            return bad("redis", &key, why);
        }
        if let Err((key, why)) = self.kafka.check() {
            return bad("kafka", &key, why);
        }
        if let Err((key, why)) = self.mongodb.check() {
            return bad("mongodb", &key, why);
        }
        if self.storage.backend == Backend::Production {
            self.check_production_secrets()?;
        }
        Ok(())
    }

    /// Whether the administrator secret is still the one shipped in `config/share.yml`.
    pub fn uses_shipped_admin_secret(&self) -> bool {
        crate::secrets::is_published_default(&self.share.secret)
    }
}

/// The environment prefix of a file's keys: `openim-rpc-msg` → `OPENIM_RPC_MSG__`.
pub fn env_prefix(file: &str) -> String {
    let stem = file.strip_prefix("openim-").unwrap_or(file);
    format!("OPENIM_{}__", stem.replace('-', "_").to_uppercase())
}

fn section<T: Serialize + DeserializeOwned>(dir: Option<&Path>, file: &str, defaults: T) -> Result<T, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(defaults));
    if let Some(dir) = dir {
        let path = dir.join(format!("{file}.yml"));
        if path.is_file() {
            fig = fig.merge(Yaml::file_exact(&path));
        }
    }
    fig = fig.merge(Env::prefixed(&env_prefix(file)).split("__"));
    fig.extract().map_err(|e| {
        let errors: Vec<String> = e
            .into_iter()
            .map(|e| {
                let source = e
                    .metadata
                    .as_ref()
                    .map(|m| match &m.source {
                        Some(src) => format!("{src}"),
                        None => m.name.to_string(),
                    })
                    .unwrap_or_else(|| format!("{file}.yml"));
                let key = if e.path.is_empty() { String::new() } else { format!(" key `{}`:", e.path.join(".")) };
                format!("config {source}:{key} {}", e.kind)
            })
            .collect();
        ConfigError(errors.join("\n"))
    })
}

fn check_no_unknown_files(dir: &Path) -> Result<(), ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError(format!("read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".yml").or_else(|| name.strip_suffix(".yaml"))
            && !FILES.contains(&stem)
        {
            return Err(ConfigError(format!(
                "config {}: unknown file `{name}` (expected one of: {})",
                dir.display(),
                FILES.join(".yml, ")
            )));
        }
    }
    Ok(())
}

mod services;
pub use services::*;

mod production;

#[cfg(test)]
mod tests;
