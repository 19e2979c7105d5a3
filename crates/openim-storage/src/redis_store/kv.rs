//! The shared key-value cache (`gc:…` keys: group membership, see [`crate::group_cache`]):
//! MGET, SET with EX in one pipeline, DEL.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use crate::group_cache::KvCache;
use crate::*;

#[async_trait]
impl KvCache for RedisStore {
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let keys: Vec<String> = keys.iter().map(|k| self.key(format_args!("{k}"))).collect();
        redis::cmd("MGET").arg(keys).query_async(&mut conn).await.map_err(|e| self.fault(e))
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(self.key(format_args!("{k}")))
                .arg(v.as_slice())
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.fault(e))
    }

    async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let keys: Vec<String> = keys.iter().map(|k| self.key(format_args!("{k}"))).collect();
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(())
    }
}
