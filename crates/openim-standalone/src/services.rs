//! One service per process: `openim rpc-msg`, `openim msggateway`, … Each serves its gRPC or HTTP
//! endpoint on its configured address and reaches the other services at `share.rpc` addresses.
//!
//! Backends: with `storage.backend: production`, MySQL, MongoDB, Redis and Kafka (`mysql.yml`,
//! `mongodb.yml`, `redis.yml`, `kafka.yml`); a process starts while they are down and its `/readyz` and gRPC
//! health report not-ready until the backends it uses answer. With `embedded` the processes
//! share the SQLite database in `storage.data_dir` — bus and online registry included — so they
//! must run on one host.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use openim_common::config::{Backend, Config, MessageStoreKind};
use openim_common::observe::{self, Health};
use openim_common::rpc::Clients;
use openim_common::serve::Limits;
use openim_common::service_auth::{RequireCredential, ServiceKey};
use openim_storage::{ProductionConfig, Stores};
use tokio_util::sync::CancellationToken;

/// The services that can run as their own process (each an `openim` subcommand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand, clap::ValueEnum)]
pub enum Service {
    /// REST API.
    Api,
    /// WebSocket gateway for clients, gRPC for pushes.
    Msggateway,
    /// Bus consumer: seqs, storage, hand-off to push.
    Msgtransfer,
    /// Bus consumer: delivers to the gateways holding the receivers.
    Push,
    /// Tokens.
    RpcAuth,
    /// Users and online status.
    RpcUser,
    /// Friends.
    RpcFriend,
    /// Groups.
    RpcGroup,
    /// Conversations.
    RpcConversation,
    /// Sending and reading messages.
    RpcMsg,
    /// Object storage (pictures, voice, video, files).
    RpcThird,
    /// Periodic clean-up.
    Crontask,
}

async fn stores(cfg: &Config) -> anyhow::Result<Stores> {
    match cfg.storage.backend {
        Backend::Embedded => Stores::shared_sqlite(&cfg.storage.data_dir)
            .await
            .with_context(|| format!("open the shared database in {}", cfg.storage.data_dir.display())),
        Backend::Production => {
            let mongo = (cfg.storage.message_store == MessageStoreKind::Mongodb).then_some(&cfg.mongodb);
            let production = ProductionConfig { mysql: &cfg.mysql, redis: &cfg.redis, kafka: &cfg.kafka, mongo };
            Ok(Stores::production(&production).await?)
        }
    }
}

impl Service {
    /// The backends this service reads or writes (probe names, see [`Stores::probes`]).
    fn backends(self) -> &'static [&'static str] {
        match self {
            Service::Api => &[],
            Service::Msggateway => &["redis"],
            Service::Msgtransfer => &["sql", "messages", "redis", "kafka"],
            Service::Push => &["sql", "redis", "kafka"],
            Service::RpcAuth => &["sql", "redis"],
            Service::RpcUser => &["sql", "redis"],
            Service::RpcFriend | Service::RpcGroup | Service::RpcConversation => &["sql"],
            Service::RpcMsg => &["sql", "messages", "redis", "kafka"],
            Service::RpcThird => &["sql"],
            Service::Crontask => &["sql", "messages"],
        }
    }
}

/// Readiness of `service`: every backend it uses answers.
fn health(service: Service, stores: &Stores) -> Health {
    stores.probes_for(service.backends()).into_iter().fold(Health::default(), |health, probe| {
        let name = probe.name;
        health.with_check(
            name,
            Arc::new(move || {
                let probe = probe.clone();
                Box::pin(async move { probe.check().await.map_err(|e| e.to_string()) })
            }),
        )
    })
}

async fn serve_http(
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    name: &'static str,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "Serving HTTP.");
    openim_common::serve::serve(listener, router, limits, name, shutdown).await?;
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("bind {addr}"))
}

/// Serves the admin endpoints beside the service's own work: bound here, so a taken port stops
/// the process with an error naming the address instead of leaving it without health checks.
async fn spawn_admin(addr: SocketAddr, health: Health, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = bind(addr).await.context("the admin port (admin_listen)")?;
    tokio::spawn(async move {
        let router = observe::admin_router(health);
        if let Err(e) = openim_common::serve::serve(listener, router, Limits::default(), "admin", shutdown).await {
            tracing::error!(error = format!("{e:#}"), "Admin server stopped.");
        }
    });
    Ok(())
}

async fn serve_grpc<S>(
    addr: SocketAddr,
    svc: S,
    admin: Option<SocketAddr>,
    health: Health,
    key: ServiceKey,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    if let Some(admin) = admin {
        spawn_admin(admin, health.clone(), shutdown.clone()).await?;
    }
    // The standard gRPC health service, following the same readiness checks.
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let t = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let status = match health.ready().await {
                Ok(()) => tonic_health::ServingStatus::Serving,
                Err(_) => tonic_health::ServingStatus::NotServing,
            };
            reporter.set_service_status(S::NAME, status).await;
            reporter.set_service_status("", status).await;
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                () = t.cancelled() => return,
            }
        }
    });
    tracing::info!(%addr, service = S::NAME, "Serving gRPC.");
    tonic::transport::Server::builder()
        // Requests read late count against h2's small-frame budget too (see `rpc::remote`).
        .initial_connection_window_size(openim_common::rpc::CONNECTION_WINDOW)
        .initial_stream_window_size(openim_common::rpc::STREAM_WINDOW)
        .layer(RequireCredential::new(key))
        .add_service(health_service)
        .add_service(svc)
        .serve_with_shutdown(addr, async move { shutdown.cancelled().await })
        .await
        .with_context(|| format!("gRPC server on {addr}"))
}

/// The object store of `openim-rpc-third.yml`.
pub fn object_store(cfg: &Config, token_key: &str) -> anyhow::Result<openim_rpc_third::ObjectStore> {
    Ok(openim_rpc_third::open_store(&cfg.rpc_third.object, &cfg.storage.data_dir, token_key.as_bytes())?)
}

/// Runs `service` until `shutdown`.
pub async fn run(service: Service, cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    observe::prometheus();
    let stores = stores(&cfg).await?;
    // Internal calls carry a credential derived from the token key, and servers require one.
    let token_key = openim_common::secrets::token_key(&cfg.share.token_key, &cfg.storage.data_dir)?;
    let key = ServiceKey::derive(&token_key);
    let clients = Clients::remote(&cfg.share.rpc, &key)?;
    let share = cfg.share.clone();
    let health = health(service, &stores);
    match service {
        Service::Api => {
            spawn_admin(cfg.api.admin_listen, health, shutdown.clone()).await?;
            let objects = openim_api::ObjectRoutes {
                external_url: cfg.rpc_third.object.local.external_url.clone(),
                local: object_store(&cfg, &token_key)?.local,
            };
            let router = observe::public_router().merge(openim_api::router(share, clients, objects));
            serve_http(cfg.api.listen, router, cfg.api.limits(), "api", shutdown).await
        }
        Service::Msggateway => {
            let gw = openim_msggateway::Gateway::new(
                cfg.msggateway.clone(),
                share.multi_login.clone(),
                clients,
                stores.online.clone(),
            );
            gw.set_webhooks(openim_common::webhook::Webhooks::new(cfg.webhooks.clone()));
            let rpc = tokio::spawn(serve_grpc(
                cfg.msggateway.rpc_listen,
                gw.rpc(),
                None,
                health.clone(),
                key.clone(),
                shutdown.clone(),
            ));
            // With the registry down this is skipped after its error: the heartbeat keeps
            // trying, and a stale entry of a previous run only costs a failed push call.
            tokio::time::timeout(std::time::Duration::from_secs(5), gw.forget_previous_run()).await.ok();
            tokio::spawn(gw.clone().heartbeat(shutdown.clone()));
            spawn_admin(cfg.msggateway.admin_listen, health, shutdown.clone()).await?;
            let router = observe::public_router().merge(gw.router());
            let g = gw.clone();
            let t = shutdown.clone();
            tokio::spawn(async move {
                t.cancelled().await;
                g.close_all().await;
            });
            serve_http(cfg.msggateway.listen, router, cfg.msggateway.limits(), "msggateway", shutdown).await?;
            rpc.await?
        }
        Service::Msgtransfer => {
            spawn_admin(cfg.msgtransfer.admin_listen, health, shutdown.clone()).await?;
            openim_msgtransfer::Transfer::new(stores, cfg.msgtransfer.batch_size)
                .with_shards(cfg.msgtransfer.shards)
                .with_linger(std::time::Duration::from_millis(cfg.msgtransfer.linger_ms))
                .run(shutdown)
                .await
        }
        Service::Push => {
            spawn_admin(cfg.push.admin_listen, health, shutdown.clone()).await?;
            let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
            openim_push::Pusher::new(stores, clients, cfg.push.clone()).with_webhooks(hooks).run(shutdown).await
        }
        Service::Crontask => {
            spawn_admin(cfg.crontask.admin_listen, health, shutdown.clone()).await?;
            let mut cron = openim_crontask::Crontask::new(cfg.crontask.clone(), &*stores.messages);
            if let Some(admin) = share.admin_user_ids.first() {
                cron = cron.with_objects(clients, admin.clone());
            }
            cron.run(shutdown).await
        }
        Service::RpcAuth => {
            let svc = Arc::new(openim_rpc_auth::AuthService::new(
                share,
                &token_key,
                stores.tokens.clone(),
                stores.users.clone(),
            ));
            svc.set_clients(clients);
            serve_grpc(
                cfg.rpc_auth.listen,
                openim_common::sized!(openim_rpc_auth::AuthServer::from_arc(svc)),
                cfg.rpc_auth.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
        Service::RpcUser => {
            let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
            let svc = openim_rpc_user::UserService::new(share, stores.clone()).with_webhooks(hooks);
            serve_grpc(
                cfg.rpc_user.listen,
                openim_common::sized!(openim_rpc_user::UserServer::new(svc)),
                cfg.rpc_user.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
        Service::RpcFriend => {
            let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
            let svc = openim_rpc_friend::FriendService::new(share, stores).with_webhooks(hooks);
            serve_grpc(
                cfg.rpc_friend.listen,
                openim_common::sized!(openim_rpc_friend::FriendServer::new(svc)),
                cfg.rpc_friend.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
        Service::RpcGroup => {
            let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
            let svc =
                openim_rpc_group::GroupService::new(share, stores, cfg.rpc_group.max_members).with_webhooks(hooks);
            serve_grpc(
                cfg.rpc_group.listen,
                openim_common::sized!(openim_rpc_group::GroupServer::new(svc)),
                cfg.rpc_group.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
        Service::RpcConversation => {
            let svc = openim_rpc_conversation::ConversationService::new(share, stores);
            let server = openim_common::sized!(openim_rpc_conversation::ConversationServer::new(svc));
            serve_grpc(cfg.rpc_conversation.listen, server, cfg.rpc_conversation.admin_listen, health, key, shutdown)
                .await
        }
        Service::RpcThird => {
            let store = object_store(&cfg, &token_key)?;
            let object = cfg.rpc_third.object.clone();
            tokio::spawn(openim_rpc_third::housekeep(store.blobs.clone(), object.clone(), shutdown.clone()));
            let svc = openim_rpc_third::ThirdService::new(share, stores, store.blobs, object, token_key.as_bytes());
            serve_grpc(
                cfg.rpc_third.listen,
                openim_common::sized!(openim_rpc_third::ThirdServer::new(svc)),
                cfg.rpc_third.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
        Service::RpcMsg => {
            let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
            let svc = openim_rpc_msg::MsgService::new(share, stores).with_webhooks(hooks);
            serve_grpc(
                cfg.rpc_msg.listen,
                openim_common::sized!(openim_rpc_msg::MsgServer::new(svc)),
                cfg.rpc_msg.admin_listen,
                health,
                key,
                shutdown,
            )
            .await
        }
    }
}
