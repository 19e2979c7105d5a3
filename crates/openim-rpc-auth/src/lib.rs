//! `openim-rpc-auth`: issues and checks tokens. Tokens are JWTs signed with `share.token_key`
//! (never with the administrator secret, see `openim_common::secrets`); the token store says
//! whether one is still current, so a kicked or logged-out token stops working before it expires.

mod guard;

use std::net::IpAddr;
use std::sync::Arc;

use openim_common::config::Share;
use openim_common::error::from_store;
use openim_common::rpc::{self, Clients};
use openim_common::token::TokenSigner;
use openim_common::{ErrCode, ImError, ImResult};
use openim_proto::constants::platform;
use openim_proto::pb::auth::{self, auth_server::Auth};
use openim_proto::pb::msggateway::KickUserOfflineReq;
use openim_storage::{TokenState, TokenStore, UserStore};
use tonic::{Request, Response, Status};

pub use openim_proto::pb::auth::auth_server::AuthServer;

pub struct AuthService {
    share: Share,
    signer: TokenSigner,
    tokens: Arc<dyn TokenStore>,
    users: Arc<dyn UserStore>,
    clients: tokio::sync::OnceCell<Clients>,
    admin_guard: guard::AdminGuard,
}

impl AuthService {
    /// `token_key` signs tokens (see `openim_common::secrets::token_key`).
    pub fn new(share: Share, token_key: &str, tokens: Arc<dyn TokenStore>, users: Arc<dyn UserStore>) -> Self {
        let signer = TokenSigner::new(token_key);
        Self {
            share,
            signer,
            tokens,
            users,
            clients: tokio::sync::OnceCell::new(),
            admin_guard: guard::AdminGuard::default(),
        }
    }

    /// Gives the service the clients it uses to kick connections (set once, after wiring).
    pub fn set_clients(&self, clients: Clients) {
        let _ = self.clients.set(clients);
    }

    async fn issue(&self, user_id: &str, platform_id: i32) -> ImResult<(String, i64)> {
        let ttl = self.share.token_ttl_days * 86_400;
        let (token, claims) = self.signer.issue(user_id, platform_id, ttl)?;
        self.tokens.add_token(user_id, platform_id, &token, claims.exp).await.map_err(from_store)?;
        // The multi-terminal policy: tokens of the logins this one replaces stop working.
        // Administrators are exempt: several admin clients (an app server, scripts) coexist.
        let kicks = |p: &i32| {
            platform_id != platform::ADMIN && *p != platform::ADMIN && self.share.multi_login.kicks(platform_id, *p)
        };
        for other in (1..=platform::HARMONY_OS).filter(kicks) {
            self.tokens
                .set_platform_tokens(user_id, other, TokenState::Kicked, Some(&token))
                .await
                .map_err(from_store)?;
        }
        Ok((token, ttl))
    }

    /// Verifies a token and that it is still current; returns (user, platform, expiry).
    pub async fn parse(&self, token: &str) -> ImResult<(String, i32, i64)> {
        let claims = self.signer.verify(token)?;
        match self.tokens.token_state(&claims.user_id, claims.platform_id, token).await.map_err(from_store)? {
            Some(TokenState::Normal) => Ok((claims.user_id, claims.platform_id, claims.exp)),
            Some(TokenState::Kicked) => Err(ImError::new(ErrCode::TOKEN_KICKED, "token was replaced by a newer login")),
            Some(_) => Err(ImError::new(ErrCode::TOKEN_INVALID, "token was invalidated")),
            None => Err(ImError::new(ErrCode::TOKEN_NOT_EXIST, "token is not known to the server")),
        }
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn get_admin_token(
        &self,
        req: Request<auth::GetAdminTokenReq>,
    ) -> Result<Response<auth::GetAdminTokenResp>, Status> {
        let client = rpc::client_addr(&req);
        let shown = client.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let req = req.into_inner();
        if let Err(wait) = self.admin_guard.check(client) {
            tracing::warn!(client = %shown, user_id = %req.user_id, "get_admin_token refused: too many failed attempts.");
            return Err(
                ImError::no_permission(format!("too many failed attempts from {shown}; retry in {wait} s")).into()
            );
        }
        if !openim_common::secrets::secret_matches(&req.secret, &self.share.secret) {
            self.admin_guard.failed(client);
            tracing::warn!(client = %shown, user_id = %req.user_id, "get_admin_token: wrong secret.");
            return Err(ImError::no_permission("wrong secret").into());
        }
        // The published secret is a trial convenience: it works only from this machine.
        if openim_common::secrets::is_published_default(&self.share.secret)
            && !client.is_some_and(|a: IpAddr| a.is_loopback())
        {
            tracing::warn!(client = %shown, "get_admin_token with the published share.secret from another host refused.");
            return Err(ImError::no_permission(
                "share.secret is the published default, accepted only from loopback; set your own (docs/security.md)",
            )
            .into());
        }
        self.admin_guard.succeeded(client);
        if !self.share.is_admin(&req.user_id) {
            return Err(ImError::no_permission(format!(
                "{} is not an administrator (share.admin_user_ids)",
                req.user_id
            ))
            .into());
        }
        let (token, ttl) = self.issue(&req.user_id, platform::ADMIN).await?;
        Ok(Response::new(auth::GetAdminTokenResp { token, expire_time_seconds: ttl }))
    }

    async fn get_user_token(
        &self,
        req: Request<auth::GetUserTokenReq>,
    ) -> Result<Response<auth::GetUserTokenResp>, Status> {
        let op = rpc::op_user_id(&req);
        let req = req.into_inner();
        if !self.share.is_admin(&op) {
            return Err(ImError::no_permission("only an administrator may issue user tokens").into());
        }
        if platform::name(req.platform_id).is_none() {
            return Err(ImError::args(format!("platformID {} is not a known platform", req.platform_id)).into());
        }
        if self.share.is_admin(&req.user_id) {
            return Err(ImError::no_permission("use get_admin_token for administrators").into());
        }
        let found = self.users.get_users(std::slice::from_ref(&req.user_id)).await.map_err(from_store)?;
        if found.is_empty() {
            return Err(
                ImError::new(ErrCode::USER_ID_NOT_FOUND, format!("user {} is not registered", req.user_id)).into()
            );
        }
        let (token, ttl) = self.issue(&req.user_id, req.platform_id).await?;
        Ok(Response::new(auth::GetUserTokenResp { token, expire_time_seconds: ttl }))
    }

    async fn force_logout(
        &self,
        req: Request<auth::ForceLogoutReq>,
    ) -> Result<Response<auth::ForceLogoutResp>, Status> {
        let op = rpc::op_user_id(&req);
        let operation_id = rpc::operation_id(&req);
        let req = req.into_inner();
        if !self.share.is_admin(&op) && op != req.user_id {
            return Err(ImError::no_permission("only an administrator or the user may log a user out").into());
        }
        self.tokens
            .set_platform_tokens(&req.user_id, req.platform_id, TokenState::Kicked, None)
            .await
            .map_err(from_store)?;
        if let Some(clients) = self.clients.get() {
            for (id, gw) in &clients.gateways {
                let kick =
                    KickUserOfflineReq { platform_id: req.platform_id, kick_user_id_list: vec![req.user_id.clone()] };
                if let Err(e) = gw.clone().kick_user_offline(rpc::request(kick, &op, &operation_id)).await {
                    tracing::warn!(gateway = %id, error = %e, "Could not kick a connection; its token is revoked anyway.");
                }
            }
        }
        Ok(Response::new(auth::ForceLogoutResp {}))
    }

    async fn parse_token(&self, req: Request<auth::ParseTokenReq>) -> Result<Response<auth::ParseTokenResp>, Status> {
        let (user_id, platform_id, exp) = self.parse(&req.into_inner().token).await?;
        Ok(Response::new(auth::ParseTokenResp { user_id, platform_id, expire_time_seconds: exp }))
    }
}
