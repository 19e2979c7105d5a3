//! Observability: one tracing setup, one Prometheus recorder, and the `/healthz`, `/readyz` and
//! `/metrics` endpoints every service exposes on its admin port. Public ports (REST, WebSocket)
//! answer only `/healthz`: what a backend says when it fails, and the metrics, are for operators.

use std::sync::{Arc, OnceLock};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogConfig;

/// Installs the global tracing subscriber (once; later calls are ignored, as in tests).
pub fn init_tracing(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if cfg.json {
        registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init()
    } else {
        registry.with(fmt::layer().with_writer(std::io::stderr)).try_init()
    };
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, which we never do.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// A readiness probe: returns `Err(reason)` while a backend the service needs does not answer.
pub type ReadinessCheck = Arc<dyn Fn() -> futures_lite::BoxFuture<Result<(), String>> + Send + Sync>;

mod futures_lite {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Named readiness checks of one process.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(String, ReadinessCheck)>,
}

impl Health {
    pub fn with_check(mut self, name: impl Into<String>, check: ReadinessCheck) -> Self {
        self.checks.push((name.into(), check));
        self
    }

    /// Runs every check; `Err` lists the ones that failed.
    /// Runs every check at once, each given [`CHECK_TIMEOUT`]; `Err` lists the ones that
    /// failed or did not answer in time.
    pub async fn ready(&self) -> Result<(), String> {
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| async move {
            match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("{name}: {e}")),
                Err(_) => Some(format!("{name}: no answer within {CHECK_TIMEOUT:?}")),
            }
        }))
        .await;
        let failures: Vec<String> = results.into_iter().flatten().collect();
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

/// `/healthz` alone, for a public port: whether the process is up, and nothing else.
pub fn public_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

/// `/healthz` (process alive, cheap), `/readyz` (backends answer) and `/metrics`, for the admin
/// port.
pub fn admin_router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { prometheus().render() }))
        .with_state(health)
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    match health.ready().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
    }
}
