//! Groups, their members, requests to join them, and the version logs of both (what the SDK's
//! incremental sync reads). Every change to members writes its log entries in the change's own
//! transaction, so a log never disagrees with the members it describes.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::QueryBuilder;

use super::{CHUNK, Dialect, duplicate_as, push_in};
use crate::*;

for_sql_stores! {
    impl Store {
        /// Adds members in one transaction, skipping ones already in their group; returns the
        /// users added.
        async fn insert_members(
            &self,
            tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>,
            members: &[GroupMember],
        ) -> StoreResult<Vec<String>> {
            let stmt = format!(
                "{} INTO group_members (group_id, user_id, role_level, join_time, nickname, face_url, join_source, \
                 inviter_user_id, operator_user_id, mute_end_time, ex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                <Store as Dialect>::INSERT_IGNORE
            );
            let mut added = Vec::new();
            for m in members {
                let done = sqlx::query(&stmt)
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
                if done.rows_affected() > 0 {
                    added.push(m.user_id.clone());
                }
            }
            Ok(added)
        }

        /// A page of requests matching `filter` (a condition after `WHERE`) and the page's
        /// result filter, newest first, and how many match.
        async fn fetch_requests(
            &self,
            filter: impl Fn(&mut QueryBuilder<'_, <Store as Dialect>::Db>) + Send,
            page: &RequestFilter,
        ) -> StoreResult<(Vec<GroupRequest>, u64)> {
            let matching = |qb: &mut QueryBuilder<'_, <Store as Dialect>::Db>| {
                filter(qb);
                if !page.handle_results.is_empty() {
                    qb.push(" AND handle_result IN (");
                    let mut sep = qb.separated(", ");
                    for r in &page.handle_results {
                        sep.push_bind(*r);
                    }
                    sep.push_unseparated(")");
                }
            };
            let mut qb = QueryBuilder::new("SELECT * FROM group_requests WHERE ");
            matching(&mut qb);
            qb.push(" ORDER BY req_time DESC, group_id, user_id LIMIT ");
            qb.push_bind(i64::from(page.limit));
            qb.push(" OFFSET ");
            qb.push_bind(i64::from(page.offset));
            let rows = qb.build_query_as().fetch_all(&self.pool).await?;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM group_requests WHERE ");
            matching(&mut count);
            let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
            Ok((rows, total as u64))
        }
    }

    #[async_trait]
    impl GroupStore for Store {
        async fn create_group(&self, g: &Group, members: &[GroupMember]) -> StoreResult<VersionHead> {
            let mut tx = self.writer.begin().await?;
            sqlx::query(
                "INSERT INTO `groups` (group_id, group_name, notification, introduction, face_url, owner_user_id, \
                 creator_user_id, create_time, ex, status, group_type, need_verification, look_member_info, \
                 apply_member_friend, notification_update_time, notification_user_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .bind(g.notification_update_time)
            .bind(&g.notification_user_id)
            .execute(&mut *tx)
            .await
            .map_err(duplicate_as(|| format!("group {}", g.group_id)))?;
            // A group ID used before (a dismissed group's) continues its member log: the old
            // members' removals are in it already. (Deleting the old log here would take gap
            // locks on MySQL that deadlock concurrent creations.)
            let added = self.insert_members(&mut tx, members).await?;
            let head = self.bump_membership(&mut tx, &g.group_id, &added, version::INSERT).await?;
            tx.commit().await?;
            Ok(head)
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

        async fn update_group(&self, group_id: &str, p: &GroupPatch) -> StoreResult<VersionHead> {
            let mut tx = self.writer.begin().await?;
            let mut qb = QueryBuilder::new("UPDATE `groups` SET group_id = group_id");
            for (column, value) in [
                ("group_name", &p.group_name),
                ("notification", &p.notification),
                ("introduction", &p.introduction),
                ("face_url", &p.face_url),
                ("ex", &p.ex),
            ] {
                if let Some(v) = value {
                    qb.push(format!(", {column} = ")).push_bind(v.clone());
                }
            }
            if p.notification.is_some() {
                qb.push(", notification_user_id = ").push_bind(p.notification_user_id.clone());
                qb.push(", notification_update_time = ").push_bind(p.notification_update_time);
            }
            for (column, value) in [
                ("need_verification", p.need_verification),
                ("look_member_info", p.look_member_info),
                ("apply_member_friend", p.apply_member_friend),
                ("status", p.status),
            ] {
                if let Some(v) = value {
                    qb.push(format!(", {column} = ")).push_bind(v);
                }
            }
            qb.push(" WHERE group_id = ").push_bind(group_id);
            if qb.build().execute(&mut *tx).await?.rows_affected() == 0 {
                // MySQL counts only changed rows: tell "no such group" from "no change".
                let exists: Option<String> = sqlx::query_scalar("SELECT group_id FROM `groups` WHERE group_id = ?")
                    .bind(group_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("group {group_id}")));
                }
            }
            let head = self
                .bump(&mut tx, version::GROUP_MEMBERS, group_id, &[version::GROUP_INFO], version::UPDATE)
                .await?;
            tx.commit().await?;
            Ok(head)
        }

        async fn add_members(&self, members: &[GroupMember]) -> StoreResult<(Vec<String>, VersionHead)> {
            let Some(group_id) = members.first().map(|m| m.group_id.clone()) else {
                return Err(StoreError::Backend("add_members: no members".into()));
            };
            if members.iter().any(|m| m.group_id != group_id) {
                return Err(StoreError::Backend("add_members: members of more than one group".into()));
            }
            let mut tx = self.writer.begin().await?;
            let added = self.insert_members(&mut tx, members).await?;
            let head = if added.is_empty() {
                // Nothing changed: the log stays where it is.
                drop(tx);
                return Ok((added, self.version_head(version::GROUP_MEMBERS, &group_id).await?));
            } else {
                self.bump_membership(&mut tx, &group_id, &added, version::INSERT).await?
            };
            tx.commit().await?;
            Ok((added, head))
        }

        async fn remove_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<(Vec<String>, VersionHead)> {
            let mut tx = self.writer.begin().await?;
            let mut removed = Vec::new();
            for u in user_ids {
                let done = sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
                    .bind(group_id)
                    .bind(u)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() > 0 {
                    removed.push(u.clone());
                }
            }
            if removed.is_empty() {
                drop(tx);
                return Ok((removed, self.version_head(version::GROUP_MEMBERS, group_id).await?));
            }
            let head = self.bump_membership(&mut tx, group_id, &removed, version::DELETE).await?;
            tx.commit().await?;
            Ok((removed, head))
        }

        async fn update_members(&self, group_id: &str, patches: &[(String, MemberPatch)]) -> StoreResult<VersionHead> {
            let mut tx = self.writer.begin().await?;
            let mut changed: Vec<&str> = Vec::new();
            let mut sorted = false;
            for (user, p) in patches {
                let mut qb = QueryBuilder::new("UPDATE group_members SET user_id = user_id");
                for (column, value) in [("nickname", &p.nickname), ("face_url", &p.face_url), ("ex", &p.ex)] {
                    if let Some(v) = value {
                        qb.push(format!(", {column} = ")).push_bind(v.clone());
                    }
                }
                if let Some(role) = p.role_level {
                    qb.push(", role_level = ").push_bind(role);
                    sorted = true;
                }
                if let Some(t) = p.mute_end_time {
                    qb.push(", mute_end_time = ").push_bind(t);
                }
                qb.push(" WHERE group_id = ").push_bind(group_id).push(" AND user_id = ").push_bind(user.clone());
                qb.build().execute(&mut *tx).await?;
                changed.push(user);
            }
            if sorted {
                changed.push(version::SORT);
            }
            let head = self.bump(&mut tx, version::GROUP_MEMBERS, group_id, &changed, version::UPDATE).await?;
            tx.commit().await?;
            Ok(head)
        }

        async fn transfer_owner(&self, group_id: &str, old_owner: &str, new_owner: &str) -> StoreResult<VersionHead> {
            let mut tx = self.writer.begin().await?;
            let new_role: Option<i32> =
                sqlx::query_scalar("SELECT role_level FROM group_members WHERE group_id = ? AND user_id = ?")
                    .bind(group_id)
                    .bind(new_owner)
                    .fetch_optional(&mut *tx)
                    .await?;
            let new_role =
                new_role.ok_or_else(|| StoreError::NotFound(format!("member {new_owner} of group {group_id}")))?;
            for (user, role) in [(old_owner, new_role), (new_owner, role::OWNER)] {
                sqlx::query("UPDATE group_members SET role_level = ? WHERE group_id = ? AND user_id = ?")
                    .bind(role)
                    .bind(group_id)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE `groups` SET owner_user_id = ? WHERE group_id = ?")
                .bind(new_owner)
                .bind(group_id)
                .execute(&mut *tx)
                .await?;
            let entries = [version::SORT, old_owner, new_owner];
            let head = self.bump(&mut tx, version::GROUP_MEMBERS, group_id, &entries, version::UPDATE).await?;
            tx.commit().await?;
            Ok(head)
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

        async fn member_counts(&self, group_ids: &[String]) -> StoreResult<HashMap<String, u64>> {
            let mut out = HashMap::with_capacity(group_ids.len());
            for chunk in group_ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT group_id, COUNT(*) FROM group_members WHERE group_id");
                push_in(&mut qb, chunk);
                qb.push(" GROUP BY group_id");
                let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&self.pool).await?;
                out.extend(rows.into_iter().map(|(g, n)| (g, n as u64)));
            }
            Ok(out)
        }

        async fn search_groups(&self, name: &str, offset: u32, limit: u32) -> StoreResult<(Vec<Group>, u64)> {
            // `!` escapes LIKE's wildcards the same way in MySQL and SQLite.
            let pattern = format!("%{}%", name.replace('!', "!!").replace('%', "!%").replace('_', "!_"));
            let filter = "FROM `groups` WHERE status <> ? AND group_name LIKE ? ESCAPE '!'";
            let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
                .bind(group_status::DISMISSED)
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?;
            let found = sqlx::query_as(&format!("SELECT * {filter} ORDER BY create_time DESC, group_id LIMIT ? OFFSET ?"))
                .bind(group_status::DISMISSED)
                .bind(&pattern)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
            Ok((found, total as u64))
        }

        async fn managers(&self, group_id: &str) -> StoreResult<Vec<GroupMember>> {
            Ok(sqlx::query_as(
                "SELECT * FROM group_members WHERE group_id = ? AND role_level >= ? \
                 ORDER BY role_level DESC, join_time, user_id",
            )
            .bind(group_id)
            .bind(role::ADMIN)
            .fetch_all(&self.pool)
            .await?)
        }

        async fn joined_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = ? ORDER BY join_time, group_id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn managed_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
            Ok(sqlx::query_scalar(
                "SELECT group_id FROM group_members WHERE user_id = ? AND role_level >= ? ORDER BY join_time, group_id",
            )
            .bind(user_id)
            .bind(role::ADMIN)
            .fetch_all(&self.pool)
            .await?)
        }

        async fn put_group_requests(&self, requests: &[GroupRequest]) -> StoreResult<()> {
            let mut tx = self.writer.begin().await?;
            for r in requests {
                // REPLACE reads the same in SQLite and MySQL: one request per (group, user).
                sqlx::query(
                    "REPLACE INTO group_requests (group_id, user_id, handle_result, req_msg, handle_msg, req_time, \
                     handle_user_id, handle_time, join_source, inviter_user_id, ex) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&r.group_id)
                .bind(&r.user_id)
                .bind(r.handle_result)
                .bind(&r.req_msg)
                .bind(&r.handle_msg)
                .bind(r.req_time)
                .bind(&r.handle_user_id)
                .bind(r.handle_time)
                .bind(r.join_source)
                .bind(&r.inviter_user_id)
                .bind(&r.ex)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn group_request(&self, group_id: &str, user_id: &str) -> StoreResult<Option<GroupRequest>> {
            Ok(sqlx::query_as("SELECT * FROM group_requests WHERE group_id = ? AND user_id = ?")
                .bind(group_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn answer_group_request(
            &self,
            a: &GroupRequestAnswer,
            join: Option<&GroupMember>,
        ) -> StoreResult<Option<VersionHead>> {
            let mut tx = self.writer.begin().await?;
            let done = sqlx::query(
                "UPDATE group_requests SET handle_result = ?, handle_msg = ?, handle_user_id = ?, handle_time = ? \
                 WHERE group_id = ? AND user_id = ? AND handle_result = 0",
            )
            .bind(a.handle_result)
            .bind(&a.handle_msg)
            .bind(&a.handle_user_id)
            .bind(a.handle_time)
            .bind(&a.group_id)
            .bind(&a.user_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "pending request of {} to group {}",
                    a.user_id, a.group_id
                )));
            }
            let mut head = None;
            if let Some(m) = join {
                let added = self.insert_members(&mut tx, std::slice::from_ref(m)).await?;
                if !added.is_empty() {
                    head = Some(self.bump_membership(&mut tx, &m.group_id, &added, version::INSERT).await?);
                }
            }
            tx.commit().await?;
            Ok(head)
        }

        async fn group_requests_to(
            &self,
            group_ids: &[String],
            filter: &RequestFilter,
        ) -> StoreResult<(Vec<GroupRequest>, u64)> {
            if group_ids.is_empty() {
                return Ok((Vec::new(), 0));
            }
            let ids = group_ids.to_vec();
            self.fetch_requests(
                move |qb| {
                    qb.push("group_id");
                    push_in_owned(qb, &ids);
                },
                filter,
            )
            .await
        }

        async fn group_requests_from(
            &self,
            user_id: &str,
            group_ids: &[String],
            filter: &RequestFilter,
        ) -> StoreResult<(Vec<GroupRequest>, u64)> {
            let (user, ids) = (user_id.to_owned(), group_ids.to_vec());
            self.fetch_requests(
                move |qb| {
                    qb.push("user_id = ").push_bind(user.clone());
                    if !ids.is_empty() {
                        qb.push(" AND group_id");
                        push_in_owned(qb, &ids);
                    }
                },
                filter,
            )
            .await
        }

        async fn group_requests_of(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupRequest>> {
            let mut out = Vec::new();
            for chunk in user_ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT * FROM group_requests WHERE group_id = ");
                qb.push_bind(group_id);
                qb.push(" AND user_id");
                push_in(&mut qb, chunk);
                qb.push(" ORDER BY req_time DESC, user_id");
                out.extend(qb.build_query_as::<GroupRequest>().fetch_all(&self.pool).await?);
            }
            Ok(out)
        }

        async fn pending_group_requests(&self, group_ids: &[String], since: i64) -> StoreResult<u64> {
            let mut total = 0;
            for chunk in group_ids.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM group_requests WHERE handle_result = 0 AND req_time > ");
                qb.push_bind(since);
                qb.push(" AND group_id");
                push_in(&mut qb, chunk);
                let n: i64 = qb.build_query_scalar().fetch_one(&self.pool).await?;
                total += n as u64;
            }
            Ok(total)
        }

        async fn version_head(&self, kind: i32, owner_id: &str) -> StoreResult<VersionHead> {
            let found: Option<(String, i64)> =
                sqlx::query_as("SELECT version_id, version FROM version_heads WHERE kind = ? AND owner_id = ?")
                    .bind(kind)
                    .bind(owner_id)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some((version_id, version)) = found {
                return Ok(VersionHead { version_id, version: version as u64 });
            }
            // Started at version 0 so that its ID stays the same from now on.
            let mut tx = self.writer.begin().await?;
            self.start_log(&mut tx, kind, owner_id).await?;
            let head = self.read_head(&mut tx, kind, owner_id).await?;
            tx.commit().await?;
            Ok(head)
        }

        async fn version_changes(
            &self,
            kind: i32,
            owner_id: &str,
            since: u64,
            limit: u32,
        ) -> StoreResult<(Vec<VersionEntry>, u64)> {
            let since = i64::try_from(since).unwrap_or(i64::MAX);
            let rows: Vec<(String, i32, i64)> = sqlx::query_as(
                "SELECT entry_id, state, version FROM version_entries WHERE kind = ? AND owner_id = ? AND version > ? \
                 ORDER BY version, entry_id LIMIT ?",
            )
            .bind(kind)
            .bind(owner_id)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM version_entries WHERE kind = ? AND owner_id = ? AND version > ?",
            )
            .bind(kind)
            .bind(owner_id)
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
            let entries = rows
                .into_iter()
                .map(|(entry_id, state, version)| VersionEntry { entry_id, state, version: version as u64 })
                .collect();
            Ok((entries, total as u64))
        }
    }
}

/// [`push_in`] for a list the query builder cannot borrow (bound by value).
fn push_in_owned<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<'_, DB>, values: &[String])
where
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    sep.push_unseparated(")");
}
