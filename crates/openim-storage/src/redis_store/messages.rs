//! The recent-message cache: stored messages are also written to `msg:{conversation}:{seq}`
//! with a TTL, and reads by seq are served from it, going to the message store (MongoDB or SQL)
//! only for what the cache does not hold.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;

use super::RedisStore;
use crate::*;

pub struct CachedMessages {
    redis: Arc<RedisStore>,
    inner: Arc<dyn MessageStore>,
    ttl: Duration,
}

impl CachedMessages {
    pub fn new(redis: Arc<RedisStore>, inner: Arc<dyn MessageStore>, ttl: Duration) -> Self {
        Self { redis, inner, ttl }
    }

    fn msg_key(&self, conv: &str, seq: i64) -> String {
        self.redis.key(format_args!("msg:{conv}:{seq}"))
    }

    /// Writes messages to the cache. A failure is logged, not returned: the cache is an
    /// optimisation and the store holds the messages.
    async fn cache(&self, msgs: &[StoredMsg]) {
        let result = async {
            let mut conn = self.redis.conn().await?;
            let mut pipe = redis::pipe();
            for m in msgs {
                pipe.cmd("SET")
                    .arg(self.msg_key(&m.conversation_id, m.msg.seq))
                    .arg(m.msg.encode_to_vec())
                    .arg("EX")
                    .arg(self.ttl.as_secs().max(1))
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await.map_err(|e| self.redis.fault(e))
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, count = msgs.len(), "message cache write failed");
        }
    }

    /// The cached messages among `seqs` (misses are absent).
    async fn cached(&self, conv: &str, seqs: &[i64]) -> HashMap<i64, MsgData> {
        let result = async {
            let mut conn = self.redis.conn().await?;
            let keys: Vec<String> = seqs.iter().map(|s| self.msg_key(conv, *s)).collect();
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.map_err(|e| self.redis.fault(e))?;
            Ok::<_, StoreError>(values)
        }
        .await;
        match result {
            Ok(values) => seqs
                .iter()
                .zip(values)
                .filter_map(|(seq, v)| Some((*seq, MsgData::decode(v?.as_slice()).ok()?)))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "message cache read failed; reading the store");
                HashMap::new()
            }
        }
    }
}

#[async_trait]
impl MessageStore for CachedMessages {
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<u64> {
        let inserted = self.inner.insert_messages(msgs).await?;
        // Only when all went in: a message that was not stored must not be served from here.
        if inserted == msgs.len() as u64 {
            self.cache(msgs).await;
        }
        Ok(inserted)
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = self.cached(conversation_id, seqs).await;
        let missing: Vec<i64> = seqs.iter().copied().filter(|s| !found.contains_key(s)).collect();
        if !missing.is_empty() {
            for m in self.inner.messages_by_seqs(conversation_id, &missing).await? {
                found.insert(m.seq, m);
            }
        }
        let mut out: Vec<MsgData> = found.into_values().collect();
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    async fn messages_in_range(
        &self,
        conversation_id: &str,
        begin: i64,
        end: i64,
        limit: u32,
    ) -> StoreResult<Vec<MsgData>> {
        // The newest `limit` seqs of the range, when all are cached; otherwise the store.
        let from = begin.max(end - i64::from(limit) + 1);
        if from > end || end - from >= 10_000 {
            return self.inner.messages_in_range(conversation_id, begin, end, limit).await;
        }
        let seqs: Vec<i64> = (from..=end).collect();
        let found = self.cached(conversation_id, &seqs).await;
        if found.len() == seqs.len() {
            let mut out: Vec<MsgData> = found.into_values().collect();
            out.sort_by_key(|m| m.seq);
            return Ok(out);
        }
        self.inner.messages_in_range(conversation_id, begin, end, limit).await
    }

    async fn latest_messages(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, MsgData>> {
        self.inner.latest_messages(conversation_ids).await
    }

    async fn existing_client_msg_ids(
        &self,
        conversation_id: &str,
        keys: &[(String, i64)],
    ) -> StoreResult<HashMap<String, MsgData>> {
        self.inner.existing_client_msg_ids(conversation_id, keys).await
    }

    async fn existing_client_msg_ids_many(
        &self,
        keys: &[(String, String, i64)],
    ) -> StoreResult<HashSet<(String, String)>> {
        self.inner.existing_client_msg_ids_many(keys).await
    }

    async fn scan_chat_messages(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<&ScanPosition>,
        limit: u32,
    ) -> StoreResult<Vec<(ScanPosition, MsgData)>> {
        self.inner.scan_chat_messages(from_ms, to_ms, after, limit).await
    }

    async fn delete_messages_before(&self, send_time_ms: i64) -> StoreResult<u64> {
        // Cached entries expire by themselves within the TTL.
        self.inner.delete_messages_before(send_time_ms).await
    }

    // Marks are not cached: readers ask the store for them (see `marks`).
    async fn revoke(&self, conversation_id: &str, seq: i64, mark: &RevokeMark) -> StoreResult<bool> {
        self.inner.revoke(conversation_id, seq, mark).await
    }

    async fn delete_for_user(&self, conversation_id: &str, seqs: &[i64], user_id: &str) -> StoreResult<()> {
        self.inner.delete_for_user(conversation_id, seqs, user_id).await
    }

    async fn delete_physically(&self, conversation_id: &str, seqs: &[i64]) -> StoreResult<u64> {
        // Uncached first: a cached copy must not outlive the message. A failure here is an
        // error, unlike cache writes, because it would bring the message back.
        if !seqs.is_empty() {
            let mut conn = self.redis.conn().await?;
            let keys: Vec<String> = seqs.iter().map(|s| self.msg_key(conversation_id, *s)).collect();
            redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.map_err(|e| self.redis.fault(e))?;
        }
        self.inner.delete_physically(conversation_id, seqs).await
    }

    async fn marks(&self, conversation_id: &str, begin: i64, end: i64) -> StoreResult<HashMap<i64, MsgMarks>> {
        self.inner.marks(conversation_id, begin, end).await
    }
}
