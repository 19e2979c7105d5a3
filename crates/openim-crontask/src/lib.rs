//! `openim-crontask`: periodic maintenance, once per `interval_secs`:
//! - deletes messages older than `retain_msg_days` (0 keeps them forever);
//! - deletes uploaded objects of `delete_object_groups` older than `file_expire_days` (0 keeps
//!   them forever), through `openim-rpc-third`'s `DeleteOutdatedData` as OpenIM's crontask does,
//!   in batches of [`OBJECT_BATCH`].

use std::time::Duration;

use openim_common::config::CrontaskConfig;
use openim_common::rpc::{self, Clients};
use openim_common::token::now_millis;
use openim_proto::pb::third::DeleteOutdatedDataReq;
use openim_storage::MessageStore;
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;
/// Objects removed per `DeleteOutdatedData` call.
pub const OBJECT_BATCH: i32 = 100;
/// Calls per run, at most (OpenIM's bound): a backlog larger than this is worked off over runs.
const MAX_BATCHES: usize = 10_000;

pub struct Crontask<'a> {
    cfg: CrontaskConfig,
    messages: &'a dyn MessageStore,
    /// rpc-third and the administrator the calls are made as.
    objects: Option<(Clients, String)>,
}

/// What one run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    pub messages: u64,
    pub objects: u64,
}

impl<'a> Crontask<'a> {
    pub fn new(cfg: CrontaskConfig, messages: &'a dyn MessageStore) -> Self {
        Self { cfg, messages, objects: None }
    }

    /// Expires objects through `clients.third`, as `admin_user_id`.
    pub fn with_objects(mut self, clients: Clients, admin_user_id: String) -> Self {
        self.objects = Some((clients, admin_user_id));
        self
    }

    fn has_work(&self) -> bool {
        self.cfg.retain_msg_days > 0 || (self.cfg.file_expire_days > 0 && self.objects.is_some())
    }

    /// One run as of `now_ms`: what it removed, or the first failure.
    pub async fn run_once(&self, now_ms: i64) -> anyhow::Result<Cleaned> {
        let mut done = Cleaned::default();
        if self.cfg.retain_msg_days > 0 {
            let cutoff = now_ms - i64::from(self.cfg.retain_msg_days) * DAY_MS;
            done.messages = self.messages.delete_messages_before(cutoff).await?;
            metrics::counter!("openim_crontask_deleted_messages_total").increment(done.messages);
            if done.messages > 0 {
                tracing::info!(
                    deleted = done.messages,
                    retain_days = self.cfg.retain_msg_days,
                    "Deleted messages past retention."
                );
            }
        }
        if let Some((clients, admin)) = &self.objects
            && self.cfg.file_expire_days > 0
        {
            let cutoff = now_ms - i64::from(self.cfg.file_expire_days) * DAY_MS;
            done.objects = self.expire_objects(clients, admin, cutoff).await?;
            metrics::counter!("openim_crontask_deleted_objects_total").increment(done.objects);
            if done.objects > 0 {
                tracing::info!(deleted = done.objects, expire_days = self.cfg.file_expire_days, "Deleted old objects.");
            }
        }
        Ok(done)
    }

    async fn expire_objects(&self, clients: &Clients, admin: &str, cutoff: i64) -> anyhow::Result<u64> {
        let mut total = 0u64;
        for batch in 0..MAX_BATCHES {
            let req = DeleteOutdatedDataReq {
                expire_time: cutoff,
                object_group: self.cfg.delete_object_groups.clone(),
                limit: OBJECT_BATCH,
            };
            let operation_id = format!("cron_s3_{}_{cutoff}_{batch}", std::process::id());
            let resp = clients
                .third
                .clone()
                .delete_outdated_data(rpc::request(req, admin, &operation_id))
                .await
                .map_err(|s| anyhow::anyhow!("DeleteOutdatedData: {}", s.message()))?;
            let count = resp.into_inner().count;
            total += u64::try_from(count).unwrap_or(0);
            if count < OBJECT_BATCH {
                break;
            }
        }
        Ok(total)
    }

    /// Runs every `interval_secs` until `shutdown` (with nothing to expire it only waits, so the
    /// process stays up and healthy like every other service).
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if !self.has_work() {
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
                tracing::error!(error = %e, "Clean-up failed; retrying at the next interval.");
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
        assert_eq!(keep_forever.run_once(now).await.unwrap(), Cleaned::default());

        let cron = Crontask::new(CrontaskConfig { retain_msg_days: 30, ..Default::default() }, &store);
        assert_eq!(cron.run_once(now).await.unwrap().messages, 2);
        let left = store.messages_in_range("si_a_b", 1, 10, 10).await.unwrap();
        assert_eq!(left.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4]);
    }

    /// Old objects of the configured groups go, in batches, through rpc-third (in process here,
    /// as in standalone); recent ones and other groups stay.
    #[tokio::test]
    async fn expires_old_objects_in_batches_through_rpc_third() {
        use std::sync::Arc;

        use openim_common::config::{ObjectConfig, Share};
        use openim_object::local::LocalBlobs;
        use openim_object::{Blobs, UrlSigner};
        use openim_storage::{ObjectRecord, Stores};

        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::embedded(dir.path()).await.unwrap();
        let blobs = Arc::new(LocalBlobs::open(&dir.path().join("objects"), UrlSigner::derive(b"k", "urls")).unwrap());
        let third = Arc::new(openim_rpc_third::ThirdService::new(
            Share::default(),
            stores.clone(),
            blobs.clone(),
            ObjectConfig::default(),
            b"secret",
        ));
        let ch = || rpc::local(openim_rpc_third::ThirdServer::from_arc(third.clone()));
        let clients = Clients::new(rpc::Channels {
            auth: ch(),
            user: ch(),
            msg: ch(),
            friend: ch(),
            group: ch(),
            conversation: ch(),
            third: ch(),
            gateways: Vec::new(),
        });
        let now = now_millis();
        let object = |name: String, age_days: i64, group: &str| ObjectRecord {
            object_key: format!("openim/data/hash/{}", name.replace('/', "_")),
            name,
            user_id: "u".into(),
            object_group: group.into(),
            create_time: now - age_days * DAY_MS,
            size: 1,
            ..Default::default()
        };
        let mut all: Vec<ObjectRecord> = (0..150).map(|i| object(format!("u/{i}.png"), 10, "msg-picture")).collect();
        all.push(object("u/recent.png".into(), 1, "msg-picture"));
        all.push(object("u/app.log".into(), 10, "logs"));
        for o in &all {
            stores.objects.put_object(o).await.unwrap();
            blobs.put(&o.object_key, bytes::Bytes::from_static(b"x"), "image/png").await.unwrap();
        }

        let cfg = CrontaskConfig { file_expire_days: 5, ..Default::default() };
        let unwired = Crontask::new(cfg.clone(), &*stores.messages);
        assert_eq!(unwired.run_once(now).await.unwrap(), Cleaned::default(), "no rpc-third, no objects expire");
        let cron = Crontask::new(cfg, &*stores.messages).with_objects(clients, "imAdmin".into());
        assert_eq!(cron.run_once(now).await.unwrap().objects, 150, "two batches of at most {OBJECT_BATCH}");
        assert!(stores.objects.object("u/0.png").await.unwrap().is_none());
        assert!(blobs.stat(&all[0].object_key).await.unwrap().is_none(), "its content went with it");
        for kept in ["u/recent.png", "u/app.log"] {
            assert!(stores.objects.object(kept).await.unwrap().is_some(), "{kept} stays");
        }
        assert_eq!(cron.run_once(now).await.unwrap().objects, 0);
    }
}
