//! Friend applications, blacklists, user command lists and presence subscriptions.

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

for_sql_stores! {
    #[async_trait]
    impl UserCommandStore for Store {
        async fn put_user_command(&self, c: &UserCommand) -> StoreResult<bool> {
            let mut tx = self.writer.begin().await?;
            let inserted = sqlx::query(&format!(
                "{} INTO user_commands (user_id, command_type, uuid, value, ex, create_time) VALUES (?, ?, ?, ?, ?, ?)",
                Store::INSERT_IGNORE
            ))
            .bind(&c.user_id)
            .bind(c.command_type)
            .bind(&c.uuid)
            .bind(&c.value)
            .bind(&c.ex)
            .bind(c.create_time)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !inserted {
                sqlx::query("UPDATE user_commands SET value = ?, ex = ? WHERE user_id = ? AND command_type = ? AND uuid = ?")
                    .bind(&c.value)
                    .bind(&c.ex)
                    .bind(&c.user_id)
                    .bind(c.command_type)
                    .bind(&c.uuid)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(inserted)
        }

        async fn update_user_command(
            &self,
            user: &str,
            command_type: i32,
            uuid: &str,
            value: Option<&str>,
            ex: Option<&str>,
        ) -> StoreResult<bool> {
            let mut tx = self.writer.begin().await?;
            // Whether it exists, asked separately: MySQL counts only changed rows as affected.
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM user_commands WHERE user_id = ? AND command_type = ? AND uuid = ?")
                    .bind(user)
                    .bind(command_type)
                    .bind(uuid)
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Ok(false);
            }
            for (column, v) in [("value", value), ("ex", ex)] {
                let Some(v) = v else { continue };
                sqlx::query(&format!(
                    "UPDATE user_commands SET {column} = ? WHERE user_id = ? AND command_type = ? AND uuid = ?"
                ))
                .bind(v)
                .bind(user)
                .bind(command_type)
                .bind(uuid)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn delete_user_command(&self, user: &str, command_type: i32, uuid: &str) -> StoreResult<bool> {
            let done = sqlx::query("DELETE FROM user_commands WHERE user_id = ? AND command_type = ? AND uuid = ?")
                .bind(user)
                .bind(command_type)
                .bind(uuid)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn user_commands(&self, user: &str, command_type: Option<i32>) -> StoreResult<Vec<UserCommand>> {
            let mut qb = QueryBuilder::new("SELECT * FROM user_commands WHERE user_id = ");
            qb.push_bind(user);
            if let Some(t) = command_type {
                qb.push(" AND command_type = ");
                qb.push_bind(t);
            }
            qb.push(" ORDER BY create_time, command_type, uuid");
            Ok(qb.build_query_as::<UserCommand>().fetch_all(&self.pool).await?)
        }

        async fn count_user_commands(&self, user: &str) -> StoreResult<u64> {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_commands WHERE user_id = ?")
                .bind(user)
                .fetch_one(&self.pool)
                .await?;
            Ok(n as u64)
        }
    }

    #[async_trait]
    impl SubscriptionStore for Store {
        async fn subscribe(&self, user: &str, targets: &[String], now: i64) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for t in targets {
                sqlx::query(&format!(
                    "{} INTO user_subscriptions (user_id, target_user_id, create_time) VALUES (?, ?, ?)",
                    Store::INSERT_IGNORE
                ))
                .bind(user)
                .bind(t)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn unsubscribe(&self, user: &str, targets: &[String]) -> StoreResult<()> {
            for chunk in targets.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("DELETE FROM user_subscriptions WHERE user_id = ");
                qb.push_bind(user);
                qb.push(" AND target_user_id");
                push_in(&mut qb, chunk);
                qb.build().execute(&self.writer).await?;
            }
            Ok(())
        }

        async fn subscriptions(&self, user: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar(
                "SELECT target_user_id FROM user_subscriptions WHERE user_id = ? ORDER BY create_time, target_user_id",
            )
            .bind(user)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
