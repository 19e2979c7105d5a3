//! Groups and their members.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use super::{CHUNK, SqliteStore, push_in};
use crate::*;

#[derive(sqlx::FromRow)]
struct GroupRow {
    group_id: String,
    group_name: String,
    notification: String,
    introduction: String,
    face_url: String,
    owner_user_id: String,
    creator_user_id: String,
    create_time: i64,
    ex: String,
    status: i32,
    group_type: i32,
    need_verification: i32,
    look_member_info: i32,
    apply_member_friend: i32,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    group_id: String,
    user_id: String,
    role_level: i32,
    join_time: i64,
    nickname: String,
    face_url: String,
    join_source: i32,
    inviter_user_id: String,
    operator_user_id: String,
    mute_end_time: i64,
    ex: String,
}

impl From<MemberRow> for GroupMember {
    fn from(r: MemberRow) -> Self {
        GroupMember {
            group_id: r.group_id,
            user_id: r.user_id,
            role_level: r.role_level,
            join_time: r.join_time,
            nickname: r.nickname,
            face_url: r.face_url,
            join_source: r.join_source,
            inviter_user_id: r.inviter_user_id,
            operator_user_id: r.operator_user_id,
            mute_end_time: r.mute_end_time,
            ex: r.ex,
        }
    }
}

async fn insert_member(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    m: &GroupMember,
    or_ignore: bool,
) -> Result<u64, sqlx::Error> {
    let verb = if or_ignore { "INSERT OR IGNORE" } else { "INSERT" };
    let done = sqlx::query(&format!(
        "{verb} INTO group_members (group_id, user_id, role_level, join_time, nickname, face_url, join_source, \
         inviter_user_id, operator_user_id, mute_end_time, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
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
    .await?;
    Ok(done.rows_affected())
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, g: &Group, members: &[GroupMember]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO groups (group_id, group_name, notification, introduction, face_url, owner_user_id, creator_user_id, \
             create_time, ex, status, group_type, need_verification, look_member_info, apply_member_friend) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .map_err(|e| match StoreError::from(e) {
            StoreError::Duplicate(_) => StoreError::Duplicate(format!("group {}", g.group_id)),
            other => other,
        })?;
        for m in members {
            insert_member(&mut tx, m, true).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_groups(&self, ids: &[String]) -> StoreResult<Vec<Group>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT * FROM groups WHERE group_id");
            push_in(&mut qb, chunk);
            let rows: Vec<GroupRow> = qb.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().map(|r| Group {
                group_id: r.group_id,
                group_name: r.group_name,
                notification: r.notification,
                introduction: r.introduction,
                face_url: r.face_url,
                owner_user_id: r.owner_user_id,
                creator_user_id: r.creator_user_id,
                create_time: r.create_time,
                ex: r.ex,
                status: r.status,
                group_type: r.group_type,
                need_verification: r.need_verification,
                look_member_info: r.look_member_info,
                apply_member_friend: r.apply_member_friend,
            }));
        }
        Ok(out)
    }

    async fn add_members(&self, members: &[GroupMember]) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut added = 0;
        for m in members {
            added += insert_member(&mut tx, m, true).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn members(&self, group_id: &str, offset: u32, limit: u32) -> StoreResult<(Vec<GroupMember>, u64)> {
        let rows: Vec<MemberRow> = sqlx::query_as(
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
        Ok((rows.into_iter().map(GroupMember::from).collect(), total as u64))
    }

    async fn get_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupMember>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(CHUNK) {
            let mut qb = QueryBuilder::new("SELECT * FROM group_members WHERE group_id = ");
            qb.push_bind(group_id);
            qb.push(" AND user_id");
            push_in(&mut qb, chunk);
            let rows: Vec<MemberRow> = qb.build_query_as().fetch_all(&self.pool).await?;
            out.extend(rows.into_iter().map(GroupMember::from));
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
