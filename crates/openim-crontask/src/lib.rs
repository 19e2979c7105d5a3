//! `openim-crontask`: periodic maintenance. Today: delete messages older than
//! `retain_msg_days` (0 keeps them forever), once per `interval_secs`.

use std::time::Duration;

use openim_common::config::CrontaskConfig;
use openim_common::token::now_millis;
use openim_storage::{MessageStore, StoreResult};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

pub struct Crontask<'a> {
    cfg: CrontaskConfig,
    messages: &'a dyn MessageStore,
}

impl<'a> Crontask<'a> {
    pub fn new(cfg: CrontaskConfig, messages: &'a dyn MessageStore) -> Self {
        Self { cfg, messages }
    }

    /// Deletes messages past retention as of `now_ms`; returns how many.
    pub async fn run_once(&self, now_ms: i64) -> StoreResult<u64> {
        if self.cfg.retain_msg_days == 0 {
            return Ok(0);
        }
        let cutoff = now_ms - i64::from(self.cfg.retain_msg_days) * DAY_MS;
        let deleted = self.messages.delete_messages_before(cutoff).await?;
        metrics::counter!("openim_crontask_deleted_messages_total").increment(deleted);
        if deleted > 0 {
            tracing::info!(deleted, retain_days = self.cfg.retain_msg_days, "Deleted messages past retention.");
        }
        Ok(deleted)
    }

    /// Runs every `interval_secs` until `shutdown` (with retention off it only waits, so the
    /// process stays up and healthy like every other service).
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if self.cfg.retain_msg_days == 0 {
            shutdown.cancelled().await;
            return Ok(());
        }
        let mut tick = tokio::time::interval(Duration::from_secs(self.cfg.interval_secs.max(1)));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            if let Err(e) = self.run_once(now_millis()).await {
                tracing::error!(error = %e, "Message clean-up failed; retrying at the next interval.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openim_proto::pb::sdkws::MsgData;
    use openim_storage::StoredMsg;
    use openim_storage::sqlite::SqliteStore;

    use super::*;

    #[tokio::test]
    async fn deletes_only_messages_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let now = 100 * DAY_MS;
        let msg = |seq: i64, age_days: i64| StoredMsg {
            conversation_id: "si_a_b".into(),
            msg: MsgData {
                seq,
                client_msg_id: format!("c{seq}"),
                send_time: now - age_days * DAY_MS - 1,
                ..Default::default()
            },
        };
        store.insert_messages(&[msg(1, 40), msg(2, 31), msg(3, 29), msg(4, 0)]).await.unwrap();

        let keep_forever = Crontask::new(CrontaskConfig { retain_msg_days: 0, ..Default::default() }, &store);
        assert_eq!(keep_forever.run_once(now).await.unwrap(), 0);

        let cron = Crontask::new(CrontaskConfig { retain_msg_days: 30, ..Default::default() }, &store);
        assert_eq!(cron.run_once(now).await.unwrap(), 2);
        let left = store.messages_in_range("si_a_b", 1, 10, 10).await.unwrap();
        assert_eq!(left.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4]);
    }
}
