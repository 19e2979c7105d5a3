//! The third service's data: named objects (`objects`, one row per name), FCM tokens, app
//! badges and client logs.

use async_trait::async_trait;

use super::{CHUNK, push_in};
use crate::*;

for_sql_stores! {
    #[async_trait]
    impl ObjectRecordStore for Store {
        async fn put_object(&self, o: &ObjectRecord) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            sqlx::query("DELETE FROM objects WHERE name = ?").bind(&o.name).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO objects (name, user_id, hash, object_key, size, content_type, object_group, create_time) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&o.name)
            .bind(&o.user_id)
            .bind(&o.hash)
            .bind(&o.object_key)
            .bind(o.size)
            .bind(&o.content_type)
            .bind(&o.object_group)
            .bind(o.create_time)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn object(&self, name: &str) -> StoreResult<Option<ObjectRecord>> {
            Ok(sqlx::query_as::<_, ObjectRecord>("SELECT * FROM objects WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn delete_object(&self, name: &str) -> StoreResult<Option<ObjectRecord>> {
            let mut tx = self.writer.begin().await?;
            let found = sqlx::query_as::<_, ObjectRecord>("SELECT * FROM objects WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_some() {
                sqlx::query("DELETE FROM objects WHERE name = ?").bind(name).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(found)
        }

        async fn key_refs(&self, key: &str) -> StoreResult<u64> {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM objects WHERE object_key = ?")
                .bind(key)
                .fetch_one(&self.pool)
                .await?;
            Ok(n.try_into().unwrap_or(0))
        }

        async fn objects_before(&self, before: i64, groups: &[String], limit: usize) -> StoreResult<Vec<ObjectRecord>> {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM objects WHERE create_time < ");
            qb.push_bind(before);
            if !groups.is_empty() {
                qb.push(" AND object_group");
                push_in(&mut qb, groups);
            }
            qb.push(" ORDER BY create_time, name LIMIT ");
            qb.push_bind(i64::try_from(limit.min(CHUNK)).unwrap_or(0));
            Ok(qb.build_query_as::<ObjectRecord>().fetch_all(&self.pool).await?)
        }
    }
}

for_sql_stores! {
    #[async_trait]
    impl ThirdStore for Store {
        async fn set_fcm_token(&self, account: &str, platform_id: i32, token: &str, expire_time: i64) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            sqlx::query("DELETE FROM fcm_tokens WHERE account = ? AND platform_id = ?")
                .bind(account)
                .bind(platform_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO fcm_tokens (account, platform_id, token, expire_time) VALUES (?, ?, ?, ?)")
                .bind(account)
                .bind(platform_id)
                .bind(token)
                .bind(expire_time)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn fcm_token(&self, account: &str, platform_id: i32, now: i64) -> StoreResult<Option<String>> {
            Ok(sqlx::query_scalar(
                "SELECT token FROM fcm_tokens WHERE account = ? AND platform_id = ? AND expire_time > ?",
            )
            .bind(account)
            .bind(platform_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn set_app_badge(&self, user: &str, unread_count: i32) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            sqlx::query("DELETE FROM app_badges WHERE user_id = ?").bind(user).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO app_badges (user_id, unread_count) VALUES (?, ?)")
                .bind(user)
                .bind(unread_count)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn app_badge(&self, user: &str) -> StoreResult<Option<i32>> {
            Ok(sqlx::query_scalar("SELECT unread_count FROM app_badges WHERE user_id = ?")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn add_logs(&self, logs: &[ClientLog]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for l in logs {
                sqlx::query(
                    "INSERT INTO client_logs (log_id, platform, user_id, create_time, url, file_name, system_type, \
                     app_framework, version, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&l.log_id)
                .bind(&l.platform)
                .bind(&l.user_id)
                .bind(l.create_time)
                .bind(&l.url)
                .bind(&l.file_name)
                .bind(&l.system_type)
                .bind(&l.app_framework)
                .bind(&l.version)
                .bind(&l.ex)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn logs(&self, ids: &[String]) -> StoreResult<Vec<ClientLog>> {
            let mut out = Vec::new();
            for chunk in ids.chunks(CHUNK) {
                let mut qb = sqlx::QueryBuilder::new("SELECT * FROM client_logs WHERE log_id");
                push_in(&mut qb, chunk);
                out.extend(qb.build_query_as::<ClientLog>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn delete_logs(&self, ids: &[String]) -> StoreResult<u64> {
            let mut deleted = 0;
            for chunk in ids.chunks(CHUNK) {
                let mut qb = sqlx::QueryBuilder::new("DELETE FROM client_logs WHERE log_id");
                push_in(&mut qb, chunk);
                deleted += qb.build().execute(&self.writer).await?.rows_affected();
            }
            Ok(deleted)
        }

        async fn search_logs(
            &self,
            keyword: &str,
            start: i64,
            end: i64,
            offset: u32,
            limit: u32,
        ) -> StoreResult<(u64, Vec<ClientLog>)> {
            // `keyword` matches anywhere in the user ID; `!` escapes LIKE's wildcards in it the same
            // way in MySQL and SQLite.
            let pattern = format!("%{}%", keyword.replace('!', "!!").replace('%', "!%").replace('_', "!_"));
            let filter = |qb: &mut sqlx::QueryBuilder<'_, _>| {
                qb.push(" WHERE create_time >= ");
                qb.push_bind(start);
                qb.push(" AND create_time <= ");
                qb.push_bind(end);
                if !keyword.is_empty() {
                    qb.push(" AND user_id LIKE ");
                    qb.push_bind(pattern.clone());
                    qb.push(" ESCAPE '!'");
                }
            };
            let mut count = sqlx::QueryBuilder::new("SELECT COUNT(*) FROM client_logs");
            filter(&mut count);
            let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
            let mut page = sqlx::QueryBuilder::new("SELECT * FROM client_logs");
            filter(&mut page);
            page.push(" ORDER BY create_time DESC, log_id LIMIT ");
            page.push_bind(i64::from(limit));
            page.push(" OFFSET ");
            page.push_bind(i64::from(offset));
            let logs = page.build_query_as::<ClientLog>().fetch_all(&self.pool).await?;
            Ok((total.try_into().unwrap_or(0), logs))
        }
    }
}
