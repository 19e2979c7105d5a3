//! A REST client for the tests: OpenIM's headers and envelope.

use std::net::SocketAddr;

use serde_json::Value;

pub struct Rest {
    http: reqwest::Client,
    base: String,
    pub token: String,
}

impl Rest {
    /// A client holding an administrator token (the shipped trial secret).
    pub async fn admin(addr: SocketAddr) -> Self {
        Self::admin_with_secret(addr, "openIM123").await
    }

    /// A client holding an administrator token got with `secret`.
    pub async fn admin_with_secret(addr: SocketAddr, secret: &str) -> Self {
        let mut rest = Self { http: reqwest::Client::new(), base: format!("http://{addr}"), token: String::new() };
        let data = rest.ok("/auth/get_admin_token", serde_json::json!({"secret": secret, "userID": "imAdmin"})).await;
        rest.token = data["token"].as_str().unwrap().to_owned();
        rest
    }

    /// Posts a raw body and returns the whole envelope (asserting HTTP 200).
    pub async fn raw(&self, path: &str, token: &str, body: impl Into<reqwest::Body>) -> Value {
        self.raw_as_operation(path, token, "test-op", body).await
    }

    /// As [`Rest::raw`], with the given `operationID` header.
    pub async fn raw_as_operation(
        &self,
        path: &str,
        token: &str,
        operation_id: &str,
        body: impl Into<reqwest::Body>,
    ) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("operationID", operation_id)
            .header("token", token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// Posts as the administrator and returns the envelope.
    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.raw(path, &self.token, body.to_string()).await
    }

    /// Posts as the administrator, asserts `errCode` 0 and returns `data`.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let env = self.post(path, body).await;
        assert_eq!(env["errCode"], 0, "{path}: {env}");
        env.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Posts with a user's token, asserts success and returns `data`.
    pub async fn ok_as(&self, token: &str, path: &str, body: Value) -> Value {
        let env = self.raw(path, token, body.to_string()).await;
        assert_eq!(env["errCode"], 0, "{path}: {env}");
        env.get("data").cloned().unwrap_or(Value::Null)
    }
}
