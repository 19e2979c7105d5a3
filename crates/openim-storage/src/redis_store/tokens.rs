//! Tokens: `token:{user}:{platform}` is a hash token → state (OpenIM's layout), expiring with
//! its longest-lived token; a kick or logout rewrites states in one script. Beside it,
//! `token:{user}:{platform}:exp` orders the tokens by expiry, so that each new login drops the
//! expired ones from the hash (a user who logs in daily would otherwise grow it for as long as
//! the key lives).

use async_trait::async_trait;
use redis::Script;

use super::RedisStore;
use crate::*;

/// Drops the tokens expired before `ARGV[4]`, sets token `ARGV[1]` (expiring at `ARGV[3]`) to
/// state 0 and makes both keys live at least `ARGV[2]` seconds.
const ADD: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
for _, token in ipairs(expired) do redis.call('HDEL', KEYS[1], token) end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4]) end
redis.call('HSET', KEYS[1], ARGV[1], 0)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local ttl = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
return #expired
";

/// Sets every token but `ARGV[2]` to state `ARGV[1]`; returns how many changed.
const SET_ALL_BUT: &str = r"
local n = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[2] and all[i + 1] ~= ARGV[1] then
    redis.call('HSET', KEYS[1], all[i], ARGV[1])
    n = n + 1
  end
end
return n
";

impl RedisStore {
    fn token_key(&self, user_id: &str, platform_id: i32) -> String {
        self.key(format_args!("token:{user_id}:{platform_id}"))
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn add_token(&self, user_id: &str, platform_id: i32, token: &str, expire_at: i64) -> StoreResult<()> {
        let now = crate::sql::unix_now();
        let ttl = (expire_at - now).max(1);
        let key = self.token_key(user_id, platform_id);
        let mut conn = self.conn().await?;
        let _: i64 = Script::new(ADD)
            .key(&key)
            .key(format!("{key}:exp"))
            .arg(token)
            .arg(ttl)
            .arg(expire_at)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }

    async fn token_state(&self, user_id: &str, platform_id: i32, token: &str) -> StoreResult<Option<TokenState>> {
        let mut conn = self.conn().await?;
        let state: Option<i64> = redis::cmd("HGET")
            .arg(self.token_key(user_id, platform_id))
            .arg(token)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(state.map(TokenState::from_i64))
    }

    async fn set_platform_tokens(
        &self,
        user_id: &str,
        platform_id: i32,
        state: TokenState,
        keep: Option<&str>,
    ) -> StoreResult<u64> {
        let mut conn = self.conn().await?;
        let n: u64 = Script::new(SET_ALL_BUT)
            .key(self.token_key(user_id, platform_id))
            .arg(state as i64)
            .arg(keep.unwrap_or(""))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(n)
    }
}
