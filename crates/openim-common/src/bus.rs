//! The consumer loop every bus-driven service runs (msgtransfer, push, offline push).

use std::future::Future;
use std::time::Duration;

use openim_storage::{Bus, BusMessage, Subscription};
use tokio_util::sync::CancellationToken;

/// How long a draining consumer waits for more before it stops.
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Consumes `topic` as `group` until `shutdown`: each batch goes to `handle`, then is committed
/// (at-least-once: a batch handled but not committed comes again after a crash). `handle`
/// returns `false` when it gave up on the batch because of `shutdown`: the batch is then not
/// committed (it comes again after the restart) and consumption stops. A bus that is
/// unreachable — at start or later — is logged and retried with backoff, never fatal. After
/// `shutdown`, what is already queued is drained.
pub async fn consume<F, Fut>(
    bus: &dyn Bus,
    topic: &str,
    group: &str,
    batch_size: usize,
    shutdown: CancellationToken,
    handle: F,
) where
    F: FnMut(Vec<BusMessage>) -> Fut,
    Fut: Future<Output = bool>,
{
    consume_lingering(bus, topic, group, batch_size, |_| Duration::ZERO, shutdown, handle).await;
}

/// [`consume`], waiting up to `linger(batch)` after a batch's first records for more to join
/// them (until `batch_size`), as a Kafka producer's `linger.ms` does: fewer, larger batches,
/// at the price of that wait. The wait may cut a `next_batch` short, so subscriptions take
/// records only once a poll completes (all of them do).
pub async fn consume_lingering<L, F, Fut>(
    bus: &dyn Bus,
    topic: &str,
    group: &str,
    batch_size: usize,
    linger: L,
    shutdown: CancellationToken,
    mut handle: F,
) where
    L: Fn(&[BusMessage]) -> Duration,
    F: FnMut(Vec<BusMessage>) -> Fut,
    Fut: Future<Output = bool>,
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
            Ok(Some(mut batch)) => {
                backoff = Backoff::capped(Duration::from_secs(1));
                let wait = linger(&batch);
                if !wait.is_zero() && batch.len() < batch_size {
                    let until = tokio::time::Instant::now() + wait;
                    // A failure or the end of the topic shows again on the next poll.
                    while batch.len() < batch_size
                        && let Ok(Ok(Some(more))) =
                            tokio::time::timeout_at(until, sub.next_batch(batch_size - batch.len())).await
                    {
                        batch.extend(more);
                    }
                }
                if !handle(batch).await {
                    tracing::warn!(topic, group, "Stopping with a batch unfinished; it will be delivered again.");
                    return;
                }
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
        if !handle(batch).await {
            return;
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use openim_storage::sqlite::SqliteStore;

    use super::*;

    fn rec(v: &str) -> BusMessage {
        BusMessage { key: "k".into(), payload: Bytes::from(v.to_owned()) }
    }

    /// A lingering consumer hands on what arrives within the wait with the first records, and
    /// what comes later in the next batch.
    #[tokio::test]
    async fn a_lingering_batch_takes_what_arrives_within_the_wait() {
        let bus = Arc::new(openim_storage::memory::MemoryBus::default());
        bus.publish("t", vec![rec("a")]).await.unwrap();
        let later = bus.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            later.publish("t", vec![rec("b")]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await;
            later.publish("t", vec![rec("c")]).await.unwrap();
        });
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (seen, stop) = (batches.clone(), CancellationToken::new());
        let done = stop.clone();
        consume_lingering(
            &*bus,
            "t",
            "g",
            10,
            |_| Duration::from_millis(400),
            stop,
            move |batch| {
                let mut seen = seen.lock().unwrap();
                seen.push(batch.into_iter().map(|r| r.payload).collect::<Vec<_>>());
                if seen.len() == 2 {
                    done.cancel();
                }
                async { true }
            },
        )
        .await;
        assert_eq!(*batches.lock().unwrap(), [vec![Bytes::from("a"), Bytes::from("b")], vec![Bytes::from("c")]]);
    }

    #[tokio::test]
    async fn a_batch_given_up_at_shutdown_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let bus = SqliteStore::open(dir.path()).await.unwrap();
        bus.publish("t", vec![rec("a"), rec("b")]).await.unwrap();

        // The handler gives up (as msgtransfer does when stopped during a backend outage).
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        consume(&bus, "t", "g", 10, CancellationToken::new(), |_| {
            c.fetch_add(1, Ordering::Relaxed);
            async { false }
        })
        .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1, "consumption stops at the unfinished batch");

        // The next run gets the same records again, and commits them once handled.
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let stop = CancellationToken::new();
        let t = stop.clone();
        consume(&bus, "t", "g", 10, stop, move |batch| {
            s.lock().unwrap().extend(batch.into_iter().map(|r| r.payload));
            t.cancel();
            async { true }
        })
        .await;
        assert_eq!(*seen.lock().unwrap(), vec![Bytes::from("a"), Bytes::from("b")]);
    }
}
