//! Graceful shutdown: the first SIGTERM/SIGINT cancels a token that every server and worker
//! watches (servers stop accepting, workers drain); a second signal exits at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long in-flight work may take to drain after the first signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// Cancels the returned token on the first SIGTERM or SIGINT and exits the process on the second.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown requested; draining (a second signal exits at once).");
        t.cancel();
        wait_for_signal().await;
        tracing::warn!("Second signal; exiting without draining.");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            // Without signal handlers the process is still stoppable by SIGKILL; never wake.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
