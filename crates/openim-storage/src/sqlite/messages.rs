//! Messages and seqs.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;
use sqlx::{QueryBuilder, Row as _};

use super::{CHUNK, SqliteStore, decode_msg, push_in};
use crate::*;

#[async_trait]
impl MessageStore for SqliteStore {
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<()> {
        // Multi-row statements: each statement is a round trip to SQLite's worker thread.
        let mut tx = self.writer.begin().await?;
        for chunk in msgs.chunks(CHUNK / 5) {
            let mut qb = QueryBuilder::new(
                "INSERT OR IGNORE INTO messages (conversation_id, seq, client_msg_id, send_time, data) ",
            );
            qb.push_values(chunk, |mut row, m| {
                row.push_bind(m.conversation_id.as_str())
                    .push_bind(m.msg.seq)
                    .push_bind(m.msg.client_msg_id.as_str())
                    .push_bind(m.msg.send_time)
                    .push_bind(m.msg.encode_to_vec());
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>> {
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT data FROM messages WHERE conversation_id = ");
            qb.push_bind(conversation_id);
            qb.push(" AND seq IN (");
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s);
            }
            sep.push_unseparated(") ORDER BY seq");
            for row in qb.build().fetch_all(&self.pool).await? {
                out.push(decode_msg(row.get::<&[u8], _>(0))?);
            }
        }
        Ok(out)
    }

    async fn messages_in_range(
        &self,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: u32,
    ) -> StoreResult<Vec<MsgData>> {
        let rows = sqlx::query(
            "SELECT data FROM messages WHERE conversation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(conversation_id)
        .bind(begin)
        .bind(end)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows.iter().map(|r| decode_msg(r.get::<&[u8], _>(0))).collect::<StoreResult<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    async fn latest_messages(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, MsgData>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for id in conversation_ids {
            let row = sqlx::query("SELECT data FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT 1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(row) = row {
                out.insert(id.clone(), decode_msg(row.get::<&[u8], _>(0))?);
            }
        }
        Ok(out)
    }

    async fn existing_client_msg_ids(
        &self,
        conversation_id: &str,
        ids: &[String],
    ) -> StoreResult<HashMap<String, MsgData>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT client_msg_id, data FROM messages WHERE conversation_id = ");
            qb.push_bind(conversation_id);
            qb.push(" AND client_msg_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), decode_msg(row.get::<&[u8], _>(1))?);
            }
        }
        Ok(out)
    }

    async fn existing_client_msg_ids_many(&self, keys: &[(String, String)]) -> StoreResult<HashSet<(String, String)>> {
        let mut out = HashSet::new();
        let mut conn = self.pool.acquire().await?;
        for chunk in keys.chunks(CHUNK / 2) {
            // A join on a VALUES list searches the unique index once per pair; the equivalent
            // `(a, b) IN (VALUES …)` scans the whole index.
            let mut qb = QueryBuilder::new("SELECT m.conversation_id, m.client_msg_id FROM (VALUES ");
            let mut sep = qb.separated(", ");
            for (conv, id) in chunk {
                sep.push("(").push_bind_unseparated(conv.as_str()).push_unseparated(", ");
                sep.push_bind_unseparated(id.as_str()).push_unseparated(")");
            }
            qb.push(") AS v JOIN messages m ON m.conversation_id = v.column1 AND m.client_msg_id = v.column2");
            for row in qb.build().fetch_all(&mut *conn).await? {
                out.insert((row.get::<String, _>(0), row.get::<String, _>(1)));
            }
        }
        Ok(out)
    }

    async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM messages WHERE send_time < ?").bind(send_time_ms).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SeqStore for SqliteStore {
    async fn allocate_seqs(&self, conversation_id: &str, count: i64) -> StoreResult<i64> {
        if count <= 0 {
            return Err(StoreError::Backend(format!("allocate {count} seqs: count must be positive")));
        }
        let max: i64 = sqlx::query_scalar(
            "INSERT INTO seqs (conversation_id, max_seq) VALUES (?, ?) \
             ON CONFLICT (conversation_id) DO UPDATE SET max_seq = max_seq + excluded.max_seq RETURNING max_seq",
        )
        .bind(conversation_id)
        .bind(count)
        .fetch_one(&self.writer)
        .await?;
        Ok(max - count + 1)
    }

    async fn allocate_seqs_many(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
        check_seq_counts(requests)?;
        // One multi-row upsert per chunk with the counts summed per conversation, then the
        // reserved range split among the requests in order.
        let mut totals: Vec<(&str, i64)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (conv, count) in requests {
            let i = *index.entry(conv.as_str()).or_insert_with(|| {
                totals.push((conv.as_str(), 0));
                totals.len() - 1
            });
            totals[i].1 += count;
        }
        let mut next: HashMap<String, i64> = HashMap::with_capacity(totals.len());
        let mut tx = self.writer.begin().await?;
        for chunk in totals.chunks(CHUNK / 2) {
            let mut qb = QueryBuilder::new("INSERT INTO seqs (conversation_id, max_seq) ");
            qb.push_values(chunk, |mut row, (conv, count)| {
                row.push_bind(*conv).push_bind(*count);
            });
            qb.push(" ON CONFLICT (conversation_id) DO UPDATE SET max_seq = max_seq + excluded.max_seq RETURNING conversation_id, max_seq");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let conv: String = row.get(0);
                let max: i64 = row.get(1);
                let total = totals[index[conv.as_str()]].1;
                next.insert(conv, max - total + 1);
            }
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(requests.len());
        for (conv, count) in requests {
            let first = next.get_mut(conv).ok_or_else(|| StoreError::Backend(format!("no seq returned for {conv}")))?;
            out.push(*first);
            *first += count;
        }
        Ok(out)
    }

    async fn max_seqs(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for chunk in conversation_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT conversation_id, max_seq FROM seqs WHERE conversation_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        for id in conversation_ids {
            out.entry(id.clone()).or_insert(0);
        }
        Ok(out)
    }

    async fn set_read_seq(&self, user_id: &str, conversation_id: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO read_seqs (user_id, conversation_id, seq) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
        )
        .bind(user_id)
        .bind(conversation_id)
        .bind(seq)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn read_seqs(&self, user_id: &str, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(conversation_ids.len());
        for chunk in conversation_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT conversation_id, seq FROM read_seqs WHERE user_id = ");
            qb.push_bind(user_id);
            qb.push(" AND conversation_id");
            push_in(&mut qb, chunk);
            for row in qb.build().fetch_all(&self.pool).await? {
                out.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        Ok(out)
    }
}
