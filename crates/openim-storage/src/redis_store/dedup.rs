//! Dedup marks: `done:{key}` set with NX and a TTL; the first writer wins.

use async_trait::async_trait;

use super::RedisStore;
use crate::*;

#[async_trait]
impl DedupStore for RedisStore {
    async fn first_time(&self, keys: &[String], ttl: std::time::Duration) -> StoreResult<Vec<bool>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for key in keys {
            let mark = self.key(format_args!("done:{key}"));
            pipe.cmd("SET").arg(mark).arg(1).arg("NX").arg("EX").arg(ttl.as_secs().max(1));
        }
        let set: Vec<Option<String>> = pipe.query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(set.into_iter().map(|s| s.is_some()).collect())
    }

    async fn forget(&self, keys: &[String]) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let marks: Vec<String> = keys.iter().map(|k| self.key(format_args!("done:{k}"))).collect();
        let _: i64 = redis::cmd("DEL").arg(marks).query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(())
    }

    async fn marked(&self, key: &str) -> StoreResult<bool> {
        let mark = self.key(format_args!("done:{key}"));
        let mut conn = self.conn().await?;
        let n: i64 = redis::cmd("EXISTS").arg(mark).query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(n > 0)
    }
}
