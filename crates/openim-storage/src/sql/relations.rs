//! Friend applications and blacklists.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{CHUNK, Dialect as _, push_in};
use crate::*;

for_sql_stores! {
    #[async_trait]
    impl FriendRequestStore for Store {
        async fn put_friend_request(&self, r: &FriendRequest) -> StoreResult<()> {
            // REPLACE reads the same in SQLite and MySQL: one application per ordered pair.
            sqlx::query(
                "REPLACE INTO friend_requests (from_user_id, to_user_id, handle_result, req_msg, create_time, \
                 handler_user_id, handle_msg, handle_time, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.from_user_id)
            .bind(&r.to_user_id)
            .bind(r.handle_result)
            .bind(&r.req_msg)
            .bind(r.create_time)
            .bind(&r.handler_user_id)
            .bind(&r.handle_msg)
            .bind(r.handle_time)
            .bind(&r.ex)
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        async fn handle_friend_request(&self, h: &FriendRequest, friends: &[Friend]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            let done = sqlx::query(
                "UPDATE friend_requests SET handle_result = ?, handler_user_id = ?, handle_msg = ?, handle_time = ? \
                 WHERE from_user_id = ? AND to_user_id = ? AND handle_result = 0",
            )
            .bind(h.handle_result)
            .bind(&h.handler_user_id)
            .bind(&h.handle_msg)
            .bind(h.handle_time)
            .bind(&h.from_user_id)
            .bind(&h.to_user_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "pending friend application from {} to {}",
                    h.from_user_id, h.to_user_id
                )));
            }
            if h.handle_result == handle_result::ACCEPTED {
                // Accepting settles the other side's pending application too.
                sqlx::query(
                    "UPDATE friend_requests SET handle_result = ?, handler_user_id = ?, handle_time = ? \
                     WHERE from_user_id = ? AND to_user_id = ? AND handle_result = 0",
                )
                .bind(h.handle_result)
                .bind(&h.handler_user_id)
                .bind(h.handle_time)
                .bind(&h.to_user_id)
                .bind(&h.from_user_id)
                .execute(&mut *tx)
                .await?;
            }
            for f in friends {
                sqlx::query(&format!(
                    "{} INTO friends (owner_user_id, friend_user_id, remark, create_time, add_source, \
                     operator_user_id, ex, is_pinned) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn friend_request(&self, from: &str, to: &str) -> StoreResult<Option<FriendRequest>> {
            Ok(sqlx::query_as("SELECT * FROM friend_requests WHERE from_user_id = ? AND to_user_id = ?")
                .bind(from)
                .bind(to)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn friend_requests(
            &self,
            user: &str,
            received: bool,
            handle_results: &[i32],
            offset: u32,
            limit: u32,
        ) -> StoreResult<(Vec<FriendRequest>, u64)> {
            let filter = |qb: &mut QueryBuilder<'_, _>| {
                qb.push(if received { " WHERE to_user_id = " } else { " WHERE from_user_id = " });
                qb.push_bind(user.to_owned());
                if !handle_results.is_empty() {
                    qb.push(" AND handle_result IN (");
                    let mut sep = qb.separated(", ");
                    for r in handle_results {
                        sep.push_bind(*r);
                    }
                    sep.push_unseparated(")");
                }
            };
            let mut qb = QueryBuilder::new("SELECT * FROM friend_requests");
            filter(&mut qb);
            qb.push(" ORDER BY create_time DESC, from_user_id, to_user_id LIMIT ");
            qb.push_bind(i64::from(limit));
            qb.push(" OFFSET ");
            qb.push_bind(i64::from(offset));
            let rows = qb.build_query_as().fetch_all(&self.pool).await?;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM friend_requests");
            filter(&mut count);
            let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
            Ok((rows, total as u64))
        }

        async fn unhandled_friend_requests(&self, user: &str, since: i64) -> StoreResult<u64> {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM friend_requests WHERE to_user_id = ? AND handle_result = 0 AND create_time > ?",
            )
            .bind(user)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
            Ok(n as u64)
        }
    }

    #[async_trait]
    impl BlackStore for Store {
        async fn add_blacks(&self, blacks: &[Black]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for b in blacks {
                sqlx::query(&format!(
                    "{} INTO blacks (owner_user_id, block_user_id, create_time, add_source, operator_user_id, ex) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                    Store::INSERT_IGNORE
                ))
                .bind(&b.owner_user_id)
                .bind(&b.block_user_id)
                .bind(b.create_time)
                .bind(b.add_source)
                .bind(&b.operator_user_id)
                .bind(&b.ex)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn remove_black(&self, owner: &str, block: &str) -> StoreResult<bool> {
            let done = sqlx::query("DELETE FROM blacks WHERE owner_user_id = ? AND block_user_id = ?")
                .bind(owner)
                .bind(block)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn blacks(&self, owner: &str, block_ids: Option<&[String]>) -> StoreResult<Vec<Black>> {
            let mut out = Vec::new();
            let chunks: Vec<Option<&[String]>> = match block_ids {
                None => vec![None],
                Some(ids) => ids.chunks(CHUNK).map(Some).collect(),
            };
            for chunk in chunks {
                let mut qb = QueryBuilder::new("SELECT * FROM blacks WHERE owner_user_id = ");
                qb.push_bind(owner);
                if let Some(ids) = chunk {
                    qb.push(" AND block_user_id");
                    push_in(&mut qb, ids);
                }
                qb.push(" ORDER BY create_time, block_user_id");
                out.extend(qb.build_query_as::<Black>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }
    }
}
