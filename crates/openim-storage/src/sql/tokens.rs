//! Tokens.

use async_trait::async_trait;

use super::unix_now;
use crate::*;

for_sql_stores! {
    #[async_trait]
    impl TokenStore for Store {
        async fn add_token(&self, user_id: &str, platform_id: i32, token: &str, expire_at: i64) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            // Expired entries of this user and platform are of no further use.
            sqlx::query("DELETE FROM tokens WHERE user_id = ? AND platform_id = ? AND expire_at < ?")
                .bind(user_id)
                .bind(platform_id)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
            sqlx::query("REPLACE INTO tokens (user_id, platform_id, token, state, expire_at) VALUES (?, ?, ?, 0, ?)")
                .bind(user_id)
                .bind(platform_id)
                .bind(token)
                .bind(expire_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn token_state(&self, user_id: &str, platform_id: i32, token: &str) -> StoreResult<Option<TokenState>> {
            let state: Option<i64> =
                sqlx::query_scalar("SELECT state FROM tokens WHERE user_id = ? AND platform_id = ? AND token = ?")
                    .bind(user_id)
                    .bind(platform_id)
                    .bind(token)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(state.map(TokenState::from_i64))
        }

        async fn set_platform_tokens(
            &self,
            user_id: &str,
            platform_id: i32,
            state: TokenState,
            keep: Option<&str>,
        ) -> StoreResult<u64> {
            let done = sqlx::query("UPDATE tokens SET state = ? WHERE user_id = ? AND platform_id = ? AND token != ?")
                .bind(state as i64)
                .bind(user_id)
                .bind(platform_id)
                .bind(keep.unwrap_or(""))
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        }
    }
}
