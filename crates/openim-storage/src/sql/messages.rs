//! Messages and seqs.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;
use sqlx::{QueryBuilder, Row as _};

use super::{CHUNK, Dialect as _, decode_msg, push_in, push_in_i64, seq_totals, split_seq_ranges};
use crate::*;

/// Messages deleted per statement by the retention clean-up.
const DELETE_SLICE: i64 = 10_000;

/// The tables of revoke and delete marks, keyed by (conversation, seq) like `messages`.
const MARK_TABLES: [&str; 2] = ["message_revokes", "message_deletes"];

for_sql_stores! {
    #[async_trait]
    impl MessageStore for Store {
        async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<u64> {
            // Multi-row statements: one round trip per chunk.
            let head = format!(
                "{} INTO messages (conversation_id, seq, client_msg_id, send_time, data) ",
                Store::INSERT_IGNORE
            );
            let mut tx = self.writer.begin().await?;
            let mut inserted = 0;
            for chunk in msgs.chunks(Store::BATCH_ROWS) {
                let mut qb = QueryBuilder::new(&head);
                qb.push_values(chunk, |mut row, m| {
                    row.push_bind(m.conversation_id.as_str())
                        .push_bind(m.msg.seq)
                        .push_bind(m.msg.client_msg_id.as_str())
                        .push_bind(m.msg.send_time)
                        .push_bind(m.msg.encode_to_vec());
                });
                inserted += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(inserted)
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
            keys: &[(String, i64)],
        ) -> StoreResult<HashMap<String, MsgData>> {
            let wanted: HashSet<(&str, i64)> = keys.iter().map(|(id, t)| (id.as_str(), *t)).collect();
            let mut out = HashMap::new();
            for chunk in keys.chunks(CHUNK) {
                let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
                let times: Vec<i64> = chunk.iter().map(|(_, t)| *t).collect();
                let mut qb = QueryBuilder::new(if Store::UNIQUE_CLIENT_MSG_ID {
                    "SELECT client_msg_id, send_time, data FROM messages WHERE conversation_id = "
                } else {
                    "SELECT client_msg_id, send_time, data FROM messages INDEXED BY messages_by_time \
                     WHERE conversation_id = "
                });
                qb.push_bind(conversation_id);
                if !Store::UNIQUE_CLIENT_MSG_ID {
                    qb.push(" AND send_time");
                    push_in_i64(&mut qb, &times);
                }
                qb.push(" AND client_msg_id");
                push_in(&mut qb, &ids);
                for row in qb.build().fetch_all(&self.pool).await? {
                    let id = row.get::<String, _>(0);
                    if Store::UNIQUE_CLIENT_MSG_ID || wanted.contains(&(id.as_str(), row.get::<i64, _>(1))) {
                        out.insert(id, decode_msg(row.get::<&[u8], _>(2))?);
                    }
                }
            }
            Ok(out)
        }

        async fn existing_client_msg_ids_many(&self, keys: &[(String, String, i64)]) -> StoreResult<HashSet<(String, String)>> {
            let mut out = HashSet::new();
            for chunk in keys.chunks(Store::BATCH_ROWS) {
                out.extend(self.stored_pairs(chunk).await?);
            }
            Ok(out)
        }

        async fn scan_chat_messages(
            &self,
            from_ms: i64,
            to_ms: i64,
            after: Option<&ScanPosition>,
            limit: u32,
        ) -> StoreResult<Vec<(ScanPosition, MsgData)>> {
            // The send-time index narrows the range; row values continue after a position.
            let mut qb = QueryBuilder::new(
                "SELECT send_time, conversation_id, seq, data FROM messages \
                 WHERE SUBSTR(conversation_id, 1, 3) IN ('si_', 'sg_') AND send_time < ",
            );
            qb.push_bind(to_ms);
            match after {
                Some(p) => {
                    qb.push(" AND send_time >= ");
                    qb.push_bind(p.send_time.max(from_ms));
                    qb.push(" AND (send_time, conversation_id, seq) > (");
                    qb.push_bind(p.send_time);
                    qb.push(", ");
                    qb.push_bind(p.conversation_id.as_str());
                    qb.push(", ");
                    qb.push_bind(p.seq);
                    qb.push(")");
                }
                None => {
                    qb.push(" AND send_time >= ");
                    qb.push_bind(from_ms);
                }
            }
            qb.push(" ORDER BY send_time, conversation_id, seq LIMIT ");
            qb.push_bind(i64::from(limit));
            let mut out = Vec::new();
            for row in qb.build().fetch_all(&self.pool).await? {
                let position = ScanPosition { send_time: row.get(0), conversation_id: row.get(1), seq: row.get(2) };
                out.push((position, decode_msg(row.get::<&[u8], _>(3))?));
            }
            Ok(out)
        }

        async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64> {
            // In slices, so that neither engine holds one huge transaction (and its locks) for
            // a whole retention run.
            let mut deleted = 0;
            loop {
                let done = sqlx::query(Store::DELETE_MESSAGES_BEFORE)
                    .bind(send_time_ms)
                    .bind(DELETE_SLICE)
                    .execute(&self.writer)
                    .await?;
                deleted += done.rows_affected();
                if done.rows_affected() < DELETE_SLICE as u64 {
                    break;
                }
            }
            if deleted > 0 {
                for table in MARK_TABLES {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM messages m \
                         WHERE m.conversation_id = {table}.conversation_id AND m.seq = {table}.seq)"
                    ))
                    .execute(&self.writer)
                    .await?;
                }
            }
            Ok(deleted)
        }

        async fn revoke(&self, conversation_id: &str, seq: i64, mark: &RevokeMark) -> StoreResult<bool> {
            let done = sqlx::query(&format!(
                "{} INTO message_revokes (conversation_id, seq, role, user_id, nickname, revoke_time) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                Store::INSERT_IGNORE
            ))
            .bind(conversation_id)
            .bind(seq)
            .bind(mark.role)
            .bind(&mark.user_id)
            .bind(&mark.nickname)
            .bind(mark.time)
            .execute(&self.writer)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn delete_for_user(&self, conversation_id: &str, seqs: &[i64], user_id: &str) -> StoreResult<()> {
            // Only seqs that hold a message get a mark, so that marks never outlive messages.
            for chunk in seqs.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(format!(
                    "{} INTO message_deletes (conversation_id, seq, user_id) SELECT conversation_id, seq, ",
                    Store::INSERT_IGNORE
                ));
                qb.push_bind(user_id);
                qb.push(" FROM messages WHERE conversation_id = ");
                qb.push_bind(conversation_id);
                qb.push(" AND seq");
                push_in_i64(&mut qb, chunk);
                qb.build().execute(&self.writer).await?;
            }
            Ok(())
        }

        async fn delete_physically(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<u64> {
            let mut tx = self.writer.begin().await?;
            let mut deleted = 0;
            for chunk in seqs.chunks(CHUNK) {
                for table in ["messages", MARK_TABLES[0], MARK_TABLES[1]] {
                    let mut qb = QueryBuilder::new(format!("DELETE FROM {table} WHERE conversation_id = "));
                    qb.push_bind(conversation_id);
                    qb.push(" AND seq");
                    push_in_i64(&mut qb, chunk);
                    let done = qb.build().execute(&mut *tx).await?;
                    if table == "messages" {
                        deleted += done.rows_affected();
                    }
                }
            }
            tx.commit().await?;
            Ok(deleted)
        }

        async fn marks(&self, conversation_id: &str, begin: i64, end: i64) -> StoreResult<HashMap<i64, MsgMarks>> {
            let mut out: HashMap<i64, MsgMarks> = HashMap::new();
            let revokes = sqlx::query(
                "SELECT seq, role, user_id, nickname, revoke_time FROM message_revokes \
                 WHERE conversation_id = ? AND seq BETWEEN ? AND ?",
            )
            .bind(conversation_id)
            .bind(begin)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
            for r in revokes {
                out.entry(r.get(0)).or_default().revoke = Some(RevokeMark {
                    role: r.get(1),
                    user_id: r.get(2),
                    nickname: r.get(3),
                    time: r.get(4),
                });
            }
            let deletes = sqlx::query(
                "SELECT seq, user_id FROM message_deletes WHERE conversation_id = ? AND seq BETWEEN ? AND ? \
                 ORDER BY seq, user_id",
            )
            .bind(conversation_id)
            .bind(begin)
            .bind(end)
            .fetch_all(&self.pool)
            .await?;
            for r in deletes {
                out.entry(r.get(0)).or_default().deleted_for.push(r.get(1));
            }
            Ok(out)
        }
    }

    #[async_trait]
    impl SeqStore for Store {
        async fn allocate_seqs(&self, conversation_id: &str, count: i64) -> StoreResult<i64> {
            Ok(self.allocate_seqs_many(&[(conversation_id.to_owned(), count)]).await?[0])
        }

        async fn allocate_seqs_many(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
            // One upsert per conversation with the counts summed, then the reserved ranges
            // split among the requests in order.
            let totals = seq_totals(requests)?;
            let maxima = self.add_to_max_seqs(&totals).await?;
            split_seq_ranges(requests, &totals, maxima)
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
            sqlx::query(Store::UPSERT_READ_SEQ)
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
}
