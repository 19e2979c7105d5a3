//! The consumer loop every bus-driven service runs (msgtransfer, push, offline push).

use std::future::Future;
use std::time::Duration;

use openim_storage::{Bus, BusMessage, Subscription};
use tokio_util::sync::CancellationToken;

/// How long a draining consumer waits for more before it stops.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Consumes `topic` as `group` until `shutdown`: each batch goes to `handle`, then is committed
/// (at-least-once: a batch handled but not committed comes again after a crash). A bus that is
/// unreachable — at start or later — is logged and retried with backoff, never fatal. After
/// `shutdown`, what is already queued is drained.
pub async fn consume<F, Fut>(
    bus: &dyn Bus,
    topic: &str,
    group: &str,
    batch_size: usize,
    shutdown: CancellationToken,
    mut handle: F,
) where
    F: FnMut(Vec<BusMessage>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Backoff::default();
    let mut sub: Box<dyn Subscription> = loop {
        match bus.subscribe(topic, group).await {
            Ok(sub) => break sub,
            Err(e) => {
                tracing::warn!(topic, group, error = %e, "Cannot subscribe yet; retrying in {:?}.", backoff.delay);
                if backoff.wait(&shutdown).await.is_err() {
                    return;
                }
            }
        }
    };
    tracing::info!(topic, group, "Consuming.");
    // The client reconnects by itself; consumption errors only pace the loop, so keep it short.
    let mut backoff = Backoff::capped(Duration::from_secs(1));
    loop {
        let batch = tokio::select! {
            b = sub.next_batch(batch_size) => b,
            () = shutdown.cancelled() => break,
        };
        match batch {
            Ok(Some(batch)) => {
                backoff = Backoff::capped(Duration::from_secs(1));
                handle(batch).await;
                commit(&mut *sub, topic).await;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(topic, group, error = %e, "Consuming failed; retrying in {:?}.", backoff.delay);
                if backoff.wait(&shutdown).await.is_err() {
                    break;
                }
            }
        }
    }
    while let Ok(Ok(Some(batch))) = tokio::time::timeout(DRAIN_IDLE, sub.next_batch(batch_size)).await {
        handle(batch).await;
        commit(&mut *sub, topic).await;
    }
}

/// A failed commit is not fatal: the batch comes again and the handlers are idempotent.
async fn commit(sub: &mut dyn Subscription, topic: &str) {
    if let Err(e) = sub.commit().await {
        tracing::warn!(topic, error = %e, "Commit failed; the batch may be delivered again.");
    }
}

/// Exponential backoff from 100 ms up to a cap (5 s by default).
struct Backoff {
    delay: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::capped(Duration::from_secs(5))
    }
}

impl Backoff {
    fn capped(max: Duration) -> Self {
        Self { delay: Duration::from_millis(100), max }
    }

    /// Sleeps the current delay and doubles it; `Err` if `shutdown` came first.
    async fn wait(&mut self, shutdown: &CancellationToken) -> Result<(), ()> {
        tokio::select! {
            () = tokio::time::sleep(self.delay) => {
                self.delay = (self.delay * 2).min(self.max);
                Ok(())
            }
            () = shutdown.cancelled() => Err(()),
        }
    }
}
