//! Groups and their members.

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{CHUNK, Dialect, duplicate_as, push_in};
use crate::*;

for_sql_stores! {
    impl Store {
        /// Adds members in one transaction, skipping ones already in their group; returns how
        /// many were added.
        async fn insert_members(&self, tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>, members: &[GroupMember]) -> StoreResult<u64> {
            let stmt = format!(
                "{} INTO group_members (group_id, user_id, role_level, join_time, nickname, face_url, join_source, \
                 inviter_user_id, operator_user_id, mute_end_time, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                Store::INSERT_IGNORE
            );
            let mut added = 0;
            for m in members {
                added += sqlx::query(&stmt)
                    .bind(&m.group_id)
                    .bind(&m.user_id)
                    .bind(m.role_level)
                    .bind(m.join_time)
                    .bind(&m.nickname)
                    .bind(&m.face_url)
                    .bind(m.join_source)
                    .bind(&m.inviter_user_id)
                    .bind(&m.operator_user_id)
                    .bind(m.mute_end_time)
                    .bind(&m.ex)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
            }
            Ok(added)
        }
    }

    #[async_trait]
    impl GroupStore for Store {
        async fn create_group(&self, g: &Group, members: &[GroupMember]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            sqlx::query(
                "INSERT INTO `groups` (group_id, group_name, notification, introduction, face_url, owner_user_id, \
                 creator_user_id, create_time, ex, status, group_type, need_verification, look_member_info, \
                 apply_member_friend) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&g.group_id)
            .bind(&g.group_name)
            .bind(&g.notification)
            .bind(&g.introduction)
            .bind(&g.face_url)
            .bind(&g.owner_user_id)
            .bind(&g.creator_user_id)
            .bind(g.create_time)
            .bind(&g.ex)
            .bind(g.status)
            .bind(g.group_type)
            .bind(g.need_verification)
            .bind(g.look_member_info)
            .bind(g.apply_member_friend)
            .execute(&mut *tx)
            .await
            .map_err(duplicate_as(|| format!("group {}", g.group_id)))?;
            self.insert_members(&mut tx, members).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn get_groups(&self, ids: &[String]) -> StoreResult<Vec<Group>> {
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT * FROM `groups` WHERE group_id");
                push_in(&mut qb, chunk);
                out.extend(qb.build_query_as::<Group>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn add_members(&self, members: &[GroupMember]) -> StoreResult<u64> {
            let mut tx = self.writer.begin().await?;
            let added = self.insert_members(&mut tx, members).await?;
            tx.commit().await?;
            Ok(added)
        }

        async fn members(&self, group_id: &str, offset: u32, limit: u32) -> StoreResult<(Vec<GroupMember>, u64)> {
            let rows = sqlx::query_as(
                "SELECT * FROM group_members WHERE group_id = ? ORDER BY join_time, user_id LIMIT ? OFFSET ?",
            )
            .bind(group_id)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.pool)
            .await?;
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ?")
                .bind(group_id)
                .fetch_one(&self.pool)
                .await?;
            Ok((rows, total as u64))
        }

        async fn get_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupMember>> {
            let mut out = Vec::new();
            for chunk in user_ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT * FROM group_members WHERE group_id = ");
                qb.push_bind(group_id);
                qb.push(" AND user_id");
                push_in(&mut qb, chunk);
                out.extend(qb.build_query_as::<GroupMember>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = ? ORDER BY join_time, user_id")
                .bind(group_id)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn joined_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY join_time, group_id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
        }
    }
}
