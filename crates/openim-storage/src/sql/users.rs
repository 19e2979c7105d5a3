//! Users and friends.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{CHUNK, Dialect as _, duplicate_as, push_in};
use crate::*;

for_sql_stores! {
    #[async_trait]
    impl UserStore for Store {
        async fn create_users(&self, users: &[User]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for u in users {
                sqlx::query(
                    "INSERT INTO users (user_id, nickname, face_url, ex, app_manger_level, global_recv_msg_opt, \
                     create_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&u.user_id)
                .bind(&u.nickname)
                .bind(&u.face_url)
                .bind(&u.ex)
                .bind(u.app_manger_level)
                .bind(u.global_recv_msg_opt)
                .bind(u.create_time)
                .execute(&mut *tx)
                .await
                .map_err(duplicate_as(|| format!("user {}", u.user_id)))?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn get_users(&self, ids: &[String]) -> StoreResult<Vec<User>> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT * FROM users WHERE user_id");
                push_in(&mut qb, chunk);
                out.extend(qb.build_query_as::<User>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn update_user(&self, p: &UserPatch) -> StoreResult<()> {
            let done = sqlx::query(
                "UPDATE users SET nickname = COALESCE(?, nickname), face_url = COALESCE(?, face_url), \
                 ex = COALESCE(?, ex), global_recv_msg_opt = COALESCE(?, global_recv_msg_opt) WHERE user_id = ?",
            )
            .bind(&p.nickname)
            .bind(&p.face_url)
            .bind(&p.ex)
            .bind(p.global_recv_msg_opt)
            .bind(&p.user_id)
            .execute(&self.writer)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user {}", p.user_id)));
            }
            Ok(())
        }

        async fn page_users(&self, offset: u32, limit: u32) -> StoreResult<(Vec<User>, u64)> {
            let rows = sqlx::query_as("SELECT * FROM users ORDER BY create_time, user_id LIMIT ? OFFSET ?")
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
            Ok((rows, total as u64))
        }
    }

    #[async_trait]
    impl FriendStore for Store {
        async fn add_friend(&self, f: &Friend) -> StoreResult<()> {
            sqlx::query(&format!(
                "{} INTO friends (owner_user_id, friend_user_id, remark, create_time, add_source, operator_user_id, ex, \
                 is_pinned) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                Store::INSERT_IGNORE
            ))
            .bind(&f.owner_user_id)
            .bind(&f.friend_user_id)
            .bind(&f.remark)
            .bind(f.create_time)
            .bind(f.add_source)
            .bind(&f.operator_user_id)
            .bind(&f.ex)
            .bind(f.is_pinned)
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        async fn remove_friend(&self, owner: &str, friend: &str) -> StoreResult<()> {
            sqlx::query("DELETE FROM friends WHERE owner_user_id = ? AND friend_user_id = ?")
                .bind(owner)
                .bind(friend)
                .execute(&self.writer)
                .await?;
            Ok(())
        }

        async fn friends(&self, owner: &str, friend_ids: Option<&[String]>) -> StoreResult<Vec<Friend>> {
            let mut qb = QueryBuilder::new("SELECT * FROM friends WHERE owner_user_id = ");
            qb.push_bind(owner);
            if let Some(ids) = friend_ids {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                qb.push(" AND friend_user_id");
                push_in(&mut qb, ids);
            }
            qb.push(" ORDER BY create_time, friend_user_id");
            Ok(qb.build_query_as().fetch_all(&self.pool).await?)
        }

        async fn owners_of(&self, friend: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT owner_user_id FROM friends WHERE friend_user_id = ? ORDER BY owner_user_id")
                .bind(friend)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn update_friends(&self, owner: &str, friend_ids: &[String], p: &FriendPatch) -> StoreResult<u64> {
            let mut found = 0;
            for chunk in friend_ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("UPDATE friends SET remark = COALESCE(");
                qb.push_bind(p.remark.as_deref());
                qb.push(", remark), is_pinned = COALESCE(");
                qb.push_bind(p.is_pinned);
                qb.push(", is_pinned), ex = COALESCE(");
                qb.push_bind(p.ex.as_deref());
                qb.push(", ex) WHERE owner_user_id = ");
                qb.push_bind(owner);
                qb.push(" AND friend_user_id");
                push_in(&mut qb, chunk);
                qb.build().execute(&self.writer).await?;
                // MySQL counts changed rows, not matched ones: count the entries instead.
                let mut count = QueryBuilder::new("SELECT COUNT(*) FROM friends WHERE owner_user_id = ");
                count.push_bind(owner);
                count.push(" AND friend_user_id");
                push_in(&mut count, chunk);
                let n: i64 = count.build_query_scalar().fetch_one(&self.writer).await?;
                found += n as u64;
            }
            Ok(found)
        }
    }
}
