//! The bus and the online registry kept in the SQLite database, for services that run as
//! separate processes on one host and share `data/openim.db` (the in-memory ones serve a single
//! process). The bus is a log per topic with one committed offset per consumer group; a consumer
//! polls for records after its offset. Each group is meant to have one consumer.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row as _};

use super::SqliteStore;
use crate::sql::{CHUNK, push_in};
use crate::*;

/// How long an idle consumer waits before looking for new records again.
const POLL: Duration = Duration::from_millis(5);

#[async_trait]
impl Bus for SqliteStore {
    async fn publish(&self, topic: &str, records: Vec<BusMessage>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for chunk in records.chunks(CHUNK / 3) {
            let mut qb = QueryBuilder::new("INSERT INTO bus_records (topic, key, payload) ");
            qb.push_values(chunk, |mut row, r| {
                row.push_bind(topic).push_bind(r.key.as_str()).push_bind(r.payload.as_ref());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> StoreResult<Box<dyn Subscription>> {
        let committed: Option<i64> =
            sqlx::query_scalar("SELECT committed FROM bus_offsets WHERE topic = ? AND consumer_group = ?")
                .bind(topic)
                .bind(group)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Box::new(SqliteSubscription {
            reader: self.pool.clone(),
            writer: self.writer.clone(),
            topic: topic.to_owned(),
            group: group.to_owned(),
            committed: committed.unwrap_or(0),
            read_up_to: committed.unwrap_or(0),
        }))
    }
}

struct SqliteSubscription {
    reader: sqlx::SqlitePool,
    writer: sqlx::SqlitePool,
    topic: String,
    group: String,
    committed: i64,
    /// The last record id handed out.
    read_up_to: i64,
}

#[async_trait]
impl Subscription for SqliteSubscription {
    async fn next_batch(&mut self, max: usize) -> StoreResult<Option<Vec<BusMessage>>> {
        loop {
            let rows =
                sqlx::query("SELECT id, key, payload FROM bus_records WHERE topic = ? AND id > ? ORDER BY id LIMIT ?")
                    .bind(&self.topic)
                    .bind(self.read_up_to)
                    .bind(max.max(1) as i64)
                    .fetch_all(&self.reader)
                    .await?;
            if let Some(last) = rows.last() {
                self.read_up_to = last.get(0);
                return Ok(Some(
                    rows.iter()
                        .map(|r| BusMessage { key: r.get(1), payload: bytes::Bytes::from(r.get::<Vec<u8>, _>(2)) })
                        .collect(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn commit(&mut self) -> StoreResult<()> {
        if self.read_up_to == self.committed {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO bus_offsets (topic, consumer_group, committed) VALUES (?, ?, ?) \
             ON CONFLICT (topic, consumer_group) DO UPDATE SET committed = excluded.committed",
        )
        .bind(&self.topic)
        .bind(&self.group)
        .bind(self.read_up_to)
        .execute(&mut *tx)
        .await?;
        // Records every group of the topic has committed are of no further use.
        sqlx::query(
            "DELETE FROM bus_records WHERE topic = ? AND id <= (SELECT MIN(committed) FROM bus_offsets WHERE topic = ?)",
        )
        .bind(&self.topic)
        .bind(&self.topic)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.committed = self.read_up_to;
        Ok(())
    }
}

#[async_trait]
impl OnlineStore for SqliteStore {
    async fn set_online(&self, user_id: &str, platform_id: i32, gateway_id: &str, online: bool) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        if online {
            sqlx::query(
                "INSERT INTO online (user_id, platform_id, gateway_id, connections) VALUES (?, ?, ?, 1) \
                 ON CONFLICT (user_id, platform_id, gateway_id) DO UPDATE SET connections = connections + 1",
            )
            .bind(user_id)
            .bind(platform_id)
            .bind(gateway_id)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query("UPDATE online SET connections = connections - 1 WHERE user_id = ? AND platform_id = ? AND gateway_id = ?")
                .bind(user_id)
                .bind(platform_id)
                .bind(gateway_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM online WHERE user_id = ? AND connections <= 0")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn online(&self, user_ids: &[String]) -> StoreResult<HashMap<String, Vec<(i32, String)>>> {
        let mut out: HashMap<String, Vec<(i32, String)>> = HashMap::new();
        for chunk in user_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT user_id, platform_id, gateway_id FROM online WHERE user_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.entry(row.get(0)).or_default().push((row.get(1), row.get(2)));
            }
        }
        Ok(out)
    }

    async fn clear_gateway(&self, gateway_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM online WHERE gateway_id = ?").bind(gateway_id).execute(&self.writer).await?;
        Ok(())
    }
}
