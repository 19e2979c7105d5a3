//! Where the production-backend tests find their servers: MariaDB and Redis at their local
//! defaults (`cargo xtask ci` starts them), overridable by environment for other machines.

use openim_storage::config::{MysqlConfig, RedisConfig};

/// `OPENIM_TEST_MYSQL` (`user[:password]@host:port`, default `root@127.0.0.1:3306`); the
/// database `openim_test` is created if missing.
pub fn mysql() -> MysqlConfig {
    let spec = std::env::var("OPENIM_TEST_MYSQL").unwrap_or_else(|_| "root@127.0.0.1:3306".into());
    let (cred, address) = spec.rsplit_once('@').unwrap_or(("root", spec.as_str()));
    let (username, password) = cred.split_once(':').unwrap_or((cred, ""));
    MysqlConfig {
        address: vec![address.to_owned()],
        username: username.to_owned(),
        password: password.to_owned(),
        database: "openim_test".into(),
        max_open_conn: 16,
        ..Default::default()
    }
}

/// `OPENIM_TEST_REDIS` (`[password@]host:port`, default `127.0.0.1:6379`), with a key prefix
/// per test run so runs never see each other's keys.
pub fn redis(prefix: &str) -> RedisConfig {
    let spec = std::env::var("OPENIM_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into());
    let (password, address) = spec.rsplit_once('@').unwrap_or(("", spec.as_str()));
    RedisConfig {
        address: vec![address.to_owned()],
        password: password.to_owned(),
        key_prefix: format!("openim-test:{prefix}:"),
        ..Default::default()
    }
}

pub fn unique() -> String {
    format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}
