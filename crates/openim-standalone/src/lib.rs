//! `openim standalone`: every service in one process on the embedded backends. Services call each
//! other through the same generated gRPC clients as in a distributed deployment, over in-process
//! channels (see `openim_common::rpc::local`), and share one bus and one online registry.

pub mod healthcheck;
pub mod services;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use openim_common::config::Config;
use openim_common::observe::{self, Health};
use openim_common::rpc::{self, Channels, Clients};
use openim_common::serve::Limits;
use openim_msggateway::Gateway;
use openim_rpc_auth::{AuthServer, AuthService};
use openim_rpc_conversation::{ConversationServer, ConversationService};
use openim_rpc_friend::{FriendServer, FriendService};
use openim_rpc_group::{GroupServer, GroupService};
use openim_rpc_msg::{MsgServer, MsgService};
use openim_rpc_third::{ThirdServer, ThirdService};
use openim_rpc_user::{UserServer, UserService};
use openim_storage::Stores;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A running standalone server.
pub struct Standalone {
    /// WebSocket address (and `/healthz`).
    pub ws_addr: SocketAddr,
    /// REST address (and `/healthz`).
    pub api_addr: SocketAddr,
    /// Admin address: `/healthz`, `/readyz` and `/metrics` (`api.admin_listen`).
    pub admin_addr: SocketAddr,
    /// Clients of every RPC service, for embedding and tests.
    pub clients: Clients,
    /// Stops the servers (first).
    shutdown: CancellationToken,
    servers: JoinSet<anyhow::Result<()>>,
    /// Stops the bus consumers (after the servers, so they drain what was accepted).
    pipeline_stop: CancellationToken,
    pipeline: JoinSet<anyhow::Result<()>>,
}

impl Standalone {
    /// Opens the stores in `cfg.storage.data_dir`, starts every service and binds the listeners.
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
        Self::start_with(cfg, false).await
    }

    /// [`Standalone::start`] with the gateway in relay mode, the benchmark's yardstick: messages
    /// go straight from sender to receivers, unchecked and not stored (`openim-bench
    /// --ceiling`). Refused unless every listener is on loopback.
    pub async fn start_bench_relay(cfg: Config) -> anyhow::Result<Self> {
        for (key, addr) in [
            ("msggateway.listen", cfg.msggateway.listen),
            ("api.listen", cfg.api.listen),
            ("api.admin_listen", cfg.api.admin_listen),
        ] {
            anyhow::ensure!(
                addr.ip().is_loopback(),
                "relay mode stores and checks nothing: {key} must be a loopback address, not {addr}"
            );
        }
        tracing::warn!("Relay mode: messages are forwarded unchecked and not stored. For benchmarks only.");
        Self::start_with(cfg, true).await
    }

    async fn start_with(cfg: Config, relay: bool) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records.
        observe::prometheus();
        let stores = Stores::embedded(&cfg.storage.data_dir).await?;
        let shutdown = CancellationToken::new();

        if cfg.uses_shipped_admin_secret() {
            tracing::warn!(
                "share.secret is the published default: /auth/get_admin_token accepts it only from this machine. \
                 Set your own before exposing the server: OPENIM_SHARE__SECRET=$(openssl rand -hex 32)"
            );
        }
        let token_key = openim_common::secrets::token_key(&cfg.share.token_key, &cfg.storage.data_dir)?;
        let hooks = openim_common::webhook::Webhooks::new(cfg.webhooks.clone());
        let auth =
            Arc::new(AuthService::new(cfg.share.clone(), &token_key, stores.tokens.clone(), stores.users.clone()));
        let user = Arc::new(UserService::new(cfg.share.clone(), stores.clone()).with_webhooks(hooks.clone()));
        let msg = Arc::new(MsgService::new(cfg.share.clone(), stores.clone()).with_webhooks(hooks.clone()));
        let friend = Arc::new(FriendService::new(cfg.share.clone(), stores.clone()).with_webhooks(hooks.clone()));
        let group = Arc::new(
            GroupService::new(cfg.share.clone(), stores.clone(), cfg.rpc_group.max_members)
                .with_webhooks(hooks.clone()),
        );
        let conversation = Arc::new(ConversationService::new(cfg.share.clone(), stores.clone()));
        let object_store = services::object_store(&cfg, &token_key)?;
        let third = Arc::new(ThirdService::new(
            cfg.share.clone(),
            stores.clone(),
            object_store.blobs.clone(),
            cfg.rpc_third.object.clone(),
            token_key.as_bytes(),
        ));
        let channels = |gateways| Channels {
            auth: rpc::local(openim_common::sized!(AuthServer::from_arc(auth.clone()))),
            user: rpc::local(openim_common::sized!(UserServer::from_arc(user.clone()))),
            msg: rpc::local(openim_common::sized!(MsgServer::from_arc(msg.clone()))),
            friend: rpc::local(openim_common::sized!(FriendServer::from_arc(friend.clone()))),
            group: rpc::local(openim_common::sized!(GroupServer::from_arc(group.clone()))),
            conversation: rpc::local(openim_common::sized!(ConversationServer::from_arc(conversation.clone()))),
            third: rpc::local(openim_common::sized!(ThirdServer::from_arc(third.clone()))),
            gateways,
        };

        // The gateway needs clients, and clients need the gateway's push endpoint: build the
        // service channels first, then the gateway, then its channel.
        let mut gw_cfg = cfg.msggateway.clone();
        gw_cfg.advertise = "local".into();
        let gateway = Gateway::new(
            gw_cfg.clone(),
            cfg.share.multi_login.clone(),
            Clients::new(channels(Vec::new())).with_local_msg(msg.clone()),
            stores.online.clone(),
        );
        gateway.set_webhooks(hooks.clone());
        if relay {
            gateway.set_bench_relay();
        }
        let clients = Clients::new(channels(vec![(gw_cfg.advertise.clone(), rpc::local(gateway.rpc()))]))
            .with_local_msg(msg.clone())
            .with_local_gateway(&gw_cfg.advertise, gateway.local_rpc());
        auth.set_clients(clients.clone());

        let pipeline_stop = CancellationToken::new();
        let mut pipeline = JoinSet::new();
        let mut servers = JoinSet::new();
        let transfer = openim_msgtransfer::Transfer::new(stores.clone(), cfg.msgtransfer.batch_size)
            .with_shards(cfg.msgtransfer.shards)
            .with_linger(std::time::Duration::from_millis(cfg.msgtransfer.linger_ms));
        let pusher =
            openim_push::Pusher::new(stores.clone(), clients.clone(), cfg.push.clone()).with_webhooks(hooks.clone());
        let t = pipeline_stop.clone();
        let done = own_thread("openim-transfer", async move { transfer.run(t).await })?;
        pipeline.spawn(async move { done.await.context("the transfer thread ended without an answer")? });
        let t = pipeline_stop.clone();
        let done = own_thread("openim-push", async move { pusher.run(t).await })?;
        pipeline.spawn(async move { done.await.context("the push thread ended without an answer")? });

        let (blobs, t) = (object_store.blobs.clone(), pipeline_stop.clone());
        let object_cfg = cfg.rpc_third.object.clone();
        pipeline.spawn(async move {
            openim_rpc_third::housekeep(blobs, object_cfg, t).await;
            Ok(())
        });
        let messages = stores.messages.clone();
        let cron_cfg = cfg.crontask.clone();
        let cron_admin = cfg.share.admin_user_ids.first().cloned();
        let (cron_clients, t) = (clients.clone(), pipeline_stop.clone());
        pipeline.spawn(async move {
            let mut cron = openim_crontask::Crontask::new(cron_cfg, &*messages);
            if let Some(admin) = cron_admin {
                cron = cron.with_objects(cron_clients, admin);
            }
            cron.run(t).await
        });

        // The admin port first: whoever finds the public ports answering finds `/readyz` too.
        let admin_listener = tokio::net::TcpListener::bind(cfg.api.admin_listen)
            .await
            .with_context(|| format!("bind the admin port (api.admin_listen) {}", cfg.api.admin_listen))?;
        let admin_addr = admin_listener.local_addr()?;
        let listener = tokio::net::TcpListener::bind(gw_cfg.listen)
            .await
            .with_context(|| format!("bind the WebSocket port (msggateway.listen) {}", gw_cfg.listen))?;
        let ws_addr = listener.local_addr()?;
        let router = observe::public_router().merge(gateway.router());
        let t = shutdown.clone();
        let gw = gateway.clone();
        let ws_limits = cfg.msggateway.limits();
        servers.spawn(async move {
            // The gateway closes its connections (answering what they sent) while the listener
            // stops taking new ones.
            let close = async {
                t.cancelled().await;
                gw.close_all().await;
            };
            let (served, ()) =
                tokio::join!(openim_common::serve::serve(listener, router, ws_limits, "msggateway", t.clone()), close);
            served?;
            Ok(())
        });
        let api_listener = tokio::net::TcpListener::bind(cfg.api.listen)
            .await
            .with_context(|| format!("bind the REST port (api.listen) {}", cfg.api.listen))?;
        let api_addr = api_listener.local_addr()?;
        let objects = openim_api::ObjectRoutes {
            external_url: cfg.rpc_third.object.local.external_url.clone(),
            local: object_store.local.clone(),
        };
        let api_router =
            observe::public_router().merge(openim_api::router(cfg.share.clone(), clients.clone(), objects));
        let t = shutdown.clone();
        let api_limits = cfg.api.limits();
        servers.spawn(async move {
            openim_common::serve::serve(api_listener, api_router, api_limits, "api", t).await?;
            Ok(())
        });
        let t = shutdown.clone();
        servers.spawn(async move {
            let router = observe::admin_router(Health::default());
            openim_common::serve::serve(admin_listener, router, Limits::default(), "admin", t).await?;
            Ok(())
        });
        tracing::info!(%ws_addr, %api_addr, %admin_addr, data_dir = %cfg.storage.data_dir.display(), "Standalone server started.");
        Ok(Self { ws_addr, api_addr, admin_addr, clients, shutdown, servers, pipeline_stop, pipeline })
    }

    /// Stops in two phases: first the servers (the gateway closes its connections and waits for
    /// them, so every request already read is answered and handed on), then the bus consumers,
    /// which drain what the bus holds, so every accepted message is stored.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while let Some(r) = self.servers.join_next().await {
            r??;
        }
        self.pipeline_stop.cancel();
        while let Some(r) = self.pipeline.join_next().await {
            r??;
        }
        Ok(())
    }

    /// Runs until `signal` is cancelled, then stops.
    pub async fn run_until(self, signal: CancellationToken) -> anyhow::Result<()> {
        signal.cancelled().await;
        tracing::info!("Stopping.");
        self.stop().await
    }
}

/// Runs a pipeline stage (msgtransfer, push) on a thread and runtime of its own; answers its
/// result when it ends. A stage is a chain of short steps, each waiting on the last (SQLite, the
/// bus, the gateway): on the shared runtime every wake-up waited in line behind a thousand
/// connection tasks, and that chain, not the machine, set the throughput (7,400–8,300
/// deliveries/s against 10,300–13,300 here; see ARCHITECTURE.md).
fn own_thread<F>(name: &str, stage: F) -> anyhow::Result<tokio::sync::oneshot::Receiver<anyhow::Result<()>>>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .with_context(|| format!("start the {name} runtime"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(rt.block_on(stage));
        })
        .with_context(|| format!("start the {name} thread"))?;
    Ok(rx)
}
