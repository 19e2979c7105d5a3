//! The online registry: `online:{user}` is a hash `{platform}:{gateway}` → connections. A
//! gateway refreshes `gwalive:{gateway}` with every report and a heartbeat; entries of a gateway
//! whose key has expired (it died without saying so) are ignored, so pushes never target it.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use redis::Script;

use super::RedisStore;
use crate::*;

/// Adds `ARGV[3]` (±1) connections of field `ARGV[1]` in `KEYS[1]` (the user's hash), records
/// the user under the gateway (`KEYS[2]`) and refreshes the gateway's liveness (`KEYS[3]`,
/// `ARGV[2]` seconds).
const SET: &str = r"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[3]))
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], 1, 'EX', tonumber(ARGV[2]))
return n
";

/// Removes fields ending in `ARGV[1]` from each user hash in `KEYS`.
const CLEAR: &str = r"
local suffix = ARGV[1]
for _, key in ipairs(KEYS) do
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, -#suffix) == suffix then redis.call('HDEL', key, field) end
  end
end
return #KEYS
";

impl RedisStore {
    fn online_key(&self, user_id: &str) -> String {
        self.key(format_args!("online:{user_id}"))
    }
}

#[async_trait]
impl OnlineStore for RedisStore {
    async fn set_online(&self, user_id: &str, platform_id: i32, gateway_id: &str, online: bool) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let users = self.key(format_args!("gwusers:{gateway_id}"));
        let alive = self.key(format_args!("gwalive:{gateway_id}"));
        let _: i64 = Script::new(SET)
            .key(self.online_key(user_id))
            .key(users)
            .key(alive)
            .arg(format!("{platform_id}:{gateway_id}"))
            .arg(self.gateway_ttl.as_secs().max(1))
            .arg(if online { 1 } else { -1 })
            .arg(user_id)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }

    async fn online(&self, user_ids: &[String]) -> StoreResult<HashMap<String, Vec<(i32, String)>>> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for user in user_ids {
            pipe.cmd("HKEYS").arg(self.online_key(user));
        }
        let fields: Vec<Vec<String>> = pipe.query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        let mut places: Vec<(usize, i32, String)> = Vec::new();
        for (i, user_fields) in fields.into_iter().enumerate() {
            for field in user_fields {
                if let Some((platform, gateway)) = field.split_once(':')
                    && let Ok(platform) = platform.parse()
                {
                    places.push((i, platform, gateway.to_owned()));
                }
            }
        }
        let gateways: Vec<&str> = places.iter().map(|p| p.2.as_str()).collect::<HashSet<_>>().into_iter().collect();
        let mut alive = HashSet::new();
        if !gateways.is_empty() {
            let mut pipe = redis::pipe();
            for gw in &gateways {
                let alive = self.key(format_args!("gwalive:{gw}"));
                pipe.cmd("EXISTS").arg(alive);
            }
            let exists: Vec<bool> = pipe.query_async(&mut conn).await.map_err(|e| self.fault(e))?;
            alive.extend(gateways.iter().zip(exists).filter(|(_, e)| *e).map(|(gw, _)| gw.to_string()));
        }
        let mut out: HashMap<String, Vec<(i32, String)>> = HashMap::new();
        for (i, platform, gateway) in places {
            if alive.contains(&gateway) {
                out.entry(user_ids[i].clone()).or_default().push((platform, gateway));
            }
        }
        Ok(out)
    }

    async fn clear_gateway(&self, gateway_id: &str) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let set = self.key(format_args!("gwusers:{gateway_id}"));
        let users: Vec<String> =
            redis::cmd("SMEMBERS").arg(&set).query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        let script = Script::new(CLEAR);
        for chunk in users.chunks(500) {
            let mut inv = script.prepare_invoke();
            for user in chunk {
                inv.key(self.online_key(user));
            }
            let _: i64 = inv.arg(format!(":{gateway_id}")).invoke_async(&mut conn).await.map_err(|e| self.fault(e))?;
        }
        let alive = self.key(format_args!("gwalive:{gateway_id}"));
        let _: i64 = redis::cmd("DEL").arg(&set).arg(alive).query_async(&mut conn).await.map_err(|e| self.fault(e))?;
        Ok(())
    }

    async fn heartbeat(&self, gateway_id: &str) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let alive = self.key(format_args!("gwalive:{gateway_id}"));
        let _: () = redis::cmd("SET")
            .arg(alive)
            .arg(1)
            .arg("EX")
            .arg(self.gateway_ttl.as_secs().max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(())
    }
}
