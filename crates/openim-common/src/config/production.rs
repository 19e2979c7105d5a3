//! The production check of secrets: published or weak values stop the process at start.

use super::{Config, ConfigError, MessageStoreKind};

/// Published passwords as they appear in a MongoDB URI (`user:password@`).
const PUBLISHED_IN_URI: &[&str] = &[":openIM123@", ":openIM@", ":123456@", ":password@", ":root@"];

impl Config {
    /// A production deployment refuses published or weak secrets: `share.secret` and
    /// `share.token_key` must be 32+ characters, not a published default and different from each
    /// other; backend passwords must not be a published default, and may be empty only for a
    /// backend on this machine.
    pub(super) fn check_production_secrets(&self) -> Result<(), ConfigError> {
        use crate::secrets::{all_loopback, is_published_default, weakness};
        let how = |env: &str| {
            format!(
                "storage.backend is production: set a random value, e.g. {env}=$(openssl rand -hex 32) \
                 (docs/security.md)"
            )
        };
        let refuse = |file: &str, key: &str, why: String, env: &str| {
            Err(ConfigError(format!("config {file}.yml: key `{key}` {why}; {}", how(env))))
        };
        if let Some(why) = weakness(&self.share.secret) {
            return refuse("share", "secret", why, "OPENIM_SHARE__SECRET");
        }
        if let Some(why) = weakness(&self.share.token_key) {
            return refuse("share", "token_key", why, "OPENIM_SHARE__TOKEN_KEY");
        }
        if self.share.token_key == self.share.secret {
            return refuse("share", "token_key", "equals `secret`".into(), "OPENIM_SHARE__TOKEN_KEY");
        }
        let backend = |file: &str, password: &str, addresses: &[String], env: &str| {
            if is_published_default(password) {
                return refuse(file, "password", format!("is the published default `{password}`"), env);
            }
            if password.is_empty() && !all_loopback(addresses) {
                return refuse(file, "password", "is empty for a backend on another host".into(), env);
            }
            Ok(())
        };
        backend("mysql", &self.mysql.password, &self.mysql.address, "OPENIM_MYSQL__PASSWORD")?;
        backend("redis", &self.redis.password, &self.redis.address, "OPENIM_REDIS__PASSWORD")?;
        if !self.mongodb.username.is_empty() && self.storage.message_store == MessageStoreKind::Mongodb {
            backend("mongodb", &self.mongodb.password, &self.mongodb.address, "OPENIM_MONGODB__PASSWORD")?;
        }
        if PUBLISHED_IN_URI.iter().any(|d| self.mongodb.uri.contains(d)) {
            return refuse("mongodb", "uri", "holds a published default password".into(), "OPENIM_MONGODB__URI");
        }
        if !self.kafka.username.is_empty() {
            backend("kafka", &self.kafka.password, &self.kafka.address, "OPENIM_KAFKA__PASSWORD")?;
        }
        Ok(())
    }
}
