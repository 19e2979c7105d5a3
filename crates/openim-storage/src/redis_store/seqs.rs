//! Seq allocation: Redis hands out seqs from a block reserved in the durable store (MySQL).
//!
//! A conversation's `seq:` hash holds `cur` (last seq handed out) and `max` (end of its
//! reserved block). Allocation is one script call for a whole batch of conversations; a
//! conversation whose block is used up reserves the next one, under a short per-conversation
//! lock so blocks stay adjacent (no gaps). When the key is missing (first use, or Redis lost its
//! data) the next block starts after everything the durable store ever reserved, so a seq is
//! never handed out twice; a flush leaves a gap (the unused rest of the lost block), never a
//! repeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt as _, TryStreamExt as _};
use redis::Script;

use super::RedisStore;
use crate::*;

/// Hands out `ARGV[i]` seqs of conversation `KEYS[i]` for each i: the first seq, or -1 when the
/// block is used up, -2 when the key is missing. Nothing is handed out for a -1/-2 entry.
const ALLOC: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'cur', 'max')
  local n = tonumber(ARGV[i])
  if not v[1] then
    out[i] = -2
  elseif tonumber(v[1]) + n > tonumber(v[2]) then
    out[i] = -1
  else
    redis.call('HINCRBY', key, 'cur', n)
    out[i] = tonumber(v[1]) + 1
  end
end
return out
";

/// Adds the block `ARGV[1]..=ARGV[2]` reserved in the durable store to `KEYS[1]`.
const EXTEND: &str = r"
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
if not max or max < first - 1 then
  -- New key, or a block lost in between: start at this block (a gap, never a repeat).
  redis.call('HSET', KEYS[1], 'cur', first - 1, 'max', last)
elseif max == first - 1 then
  redis.call('HSET', KEYS[1], 'max', last)
end
return 1
";

/// Deletes `KEYS[1]` if it still holds `ARGV[1]` (releases a lock we own).
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Reservations in flight at once for one batch.
const RESERVE_CONCURRENCY: usize = 32;

/// How long a reservation lock lives if its holder dies before releasing it.
const LOCK_TTL: Duration = Duration::from_secs(3);

pub struct RedisSeqs {
    redis: Arc<RedisStore>,
    /// Where blocks are reserved and read seqs kept.
    durable: Arc<dyn SeqStore>,
    block: i64,
    alloc: Script,
    extend: Script,
    unlock: Script,
}

impl RedisSeqs {
    /// Seqs handed out by `redis` in blocks of `block` reserved in `durable`.
    pub fn new(redis: Arc<RedisStore>, durable: Arc<dyn SeqStore>, block: i64) -> Self {
        Self {
            redis,
            durable,
            block: block.max(1),
            alloc: Script::new(ALLOC),
            extend: Script::new(EXTEND),
            unlock: Script::new(UNLOCK),
        }
    }

    fn seq_key(&self, conv: &str) -> String {
        self.redis.key(format_args!("seq:{conv}"))
    }

    /// Reserves the next block of `conv` (big enough for `count`) unless another allocator did
    /// while we waited for the lock.
    async fn reserve(&self, conv: &str, count: i64) -> StoreResult<()> {
        let mut conn = self.redis.conn().await?;
        let lock = self.redis.key(format_args!("seqlock:{conv}"));
        let token = format!("{:x}", rand_token());
        let deadline = tokio::time::Instant::now() + LOCK_TTL * 2;
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL.as_millis() as u64)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.redis.fault(e))?;
            if got.is_some() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Backend(format!("seq block of {conv}: lock `{lock}` held too long")));
            }
            // Someone else is reserving; their block may suffice (checked under the lock).
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let result = async {
            let key = self.seq_key(conv);
            let v: (Option<i64>, Option<i64>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("cur")
                .arg("max")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.redis.fault(e))?;
            if let (Some(cur), Some(max)) = v
                && cur + count <= max
            {
                return Ok(()); // Reserved by the previous lock holder.
            }
            if v.0.is_none() {
                // A lost (or new) key starts at everything ever reserved, before the next block
                // is: `max_seqs` reports that value meanwhile, never a larger one it would later
                // take back.
                let durable = self.durable.max_seqs(&[conv.to_owned()]).await?;
                let start = durable.get(conv).copied().unwrap_or(0);
                let _: i64 = redis::cmd("HSETNX")
                    .arg(&key)
                    .arg("max")
                    .arg(start)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.redis.fault(e))?;
                let _: i64 = redis::cmd("HSETNX")
                    .arg(&key)
                    .arg("cur")
                    .arg(start)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.redis.fault(e))?;
            }
            let size = self.block.max(count);
            let first = self.durable.allocate_seqs(conv, size).await?;
            let _: i64 = self
                .extend
                .key(&key)
                .arg(first)
                .arg(first + size - 1)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| self.redis.fault(e))?;
            Ok(())
        }
        .await;
        let _: redis::RedisResult<i64> = self.unlock.key(&lock).arg(&token).invoke_async(&mut conn).await;
        result
    }

    async fn try_alloc(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
        let mut conn = self.redis.conn().await?;
        let mut inv = self.alloc.prepare_invoke();
        for (conv, count) in requests {
            inv.key(self.seq_key(conv)).arg(*count);
        }
        inv.invoke_async(&mut conn).await.map_err(|e| self.redis.fault(e))
    }
}

fn rand_token() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[async_trait]
impl SeqStore for RedisSeqs {
    async fn allocate_seqs(&self, conversation_id: &str, count: i64) -> StoreResult<i64> {
        Ok(self.allocate_seqs_many(&[(conversation_id.to_owned(), count)]).await?[0])
    }

    async fn allocate_seqs_many(&self, requests: &[(String, i64)]) -> StoreResult<Vec<i64>> {
        check_seq_counts(requests)?;
        let mut out = self.try_alloc(requests).await?;
        // Requests whose block ran out: reserve and retry them, in order (a conversation may
        // appear more than once, and its later requests must come after its earlier ones).
        let mut attempts = 0;
        while out.iter().any(|&first| first < 0) {
            attempts += 1;
            if attempts > 10 {
                return Err(StoreError::Backend("seq allocation: blocks kept running out".into()));
            }
            let pending: Vec<usize> = (0..requests.len()).filter(|&i| out[i] < 0).collect();
            let mut needed: HashMap<&str, i64> = HashMap::new();
            for &i in &pending {
                *needed.entry(requests[i].0.as_str()).or_default() += requests[i].1;
            }
            // Conversations reserve side by side (each under its own lock): a batch with many
            // new conversations would otherwise wait for their reservations one after another.
            let reservations: Vec<_> = needed.into_iter().map(|(conv, count)| self.reserve(conv, count)).collect();
            futures::stream::iter(reservations).buffer_unordered(RESERVE_CONCURRENCY).try_collect::<Vec<()>>().await?;
            let retry: Vec<(String, i64)> = pending.iter().map(|&i| requests[i].clone()).collect();
            let firsts = self.try_alloc(&retry).await?;
            for (&i, first) in pending.iter().zip(firsts) {
                out[i] = first;
            }
        }
        Ok(out)
    }

    async fn max_seqs(&self, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut conn = self.redis.conn().await?;
        let mut pipe = redis::pipe();
        for conv in conversation_ids {
            pipe.cmd("HGET").arg(self.seq_key(conv)).arg("cur");
        }
        let curs: Vec<Option<i64>> = pipe.query_async(&mut conn).await.map_err(|e| self.redis.fault(e))?;
        let mut out = HashMap::with_capacity(conversation_ids.len());
        let mut missing = Vec::new();
        for (conv, cur) in conversation_ids.iter().zip(curs) {
            match cur {
                Some(cur) => {
                    out.insert(conv.clone(), cur);
                }
                None => missing.push(conv.clone()),
            }
        }
        // Not in Redis: the durable maximum is where the next block starts after it, and so
        // what `cur` becomes.
        if !missing.is_empty() {
            out.extend(self.durable.max_seqs(&missing).await?);
        }
        Ok(out)
    }

    async fn resync(&self, conversation_id: &str) -> StoreResult<()> {
        let mut conn = self.redis.conn().await?;
        let key = self.seq_key(conversation_id);
        let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut conn).await.map_err(|e| self.redis.fault(e))?;
        Ok(())
    }

    async fn set_read_seq(&self, user_id: &str, conversation_id: &str, seq: i64) -> StoreResult<()> {
        self.durable.set_read_seq(user_id, conversation_id, seq).await
    }

    async fn read_seqs(&self, user_id: &str, conversation_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        self.durable.read_seqs(user_id, conversation_ids).await
    }
}
