//! A standalone server on port 0 with an administrator REST client.

use openim_common::config::Config;
use openim_proto::ws::Encoding;
use openim_standalone::Standalone;
use openim_testkit::{Client, Rest};

/// A running standalone server with a REST client logged in as the administrator.
pub struct Stack {
    pub server: Standalone,
    pub rest: Rest,
}

impl Stack {
    pub async fn start(dir: &std::path::Path) -> Self {
        Self::start_with(dir, |_| {}).await
    }

    pub async fn start_with(dir: &std::path::Path, change: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = Config::default();
        change(&mut cfg);
        cfg.storage.data_dir = dir.to_path_buf();
        cfg.msggateway.listen = "127.0.0.1:0".parse().unwrap();
        cfg.api.listen = "127.0.0.1:0".parse().unwrap();
        cfg.api.admin_listen = "127.0.0.1:0".parse().unwrap();
        let server = Standalone::start(cfg).await.unwrap();
        let rest = Rest::admin(server.api_addr).await;
        Self { server, rest }
    }

    pub async fn stop(self) {
        self.server.stop().await.unwrap();
    }

    pub async fn register(&self, users: &[&str]) {
        let users: Vec<_> = users.iter().map(|u| serde_json::json!({"userID": u, "nickname": u})).collect();
        self.rest.ok("/user/user_register", serde_json::json!({ "users": users })).await;
    }

    pub async fn token(&self, user: &str, platform: i32) -> String {
        let data =
            self.rest.ok("/auth/get_user_token", serde_json::json!({"userID": user, "platformID": platform})).await;
        data["token"].as_str().unwrap().to_owned()
    }

    pub async fn connect(&self, user: &str, platform: i32, encoding: Encoding, gzip: bool) -> Client {
        let token = self.token(user, platform).await;
        Client::connect(self.server.ws_addr, user, &token, platform, encoding, gzip).await
    }
}
