//! The version logs (what the SDK's incremental sync reads): moving a log on, inside the
//! transaction of the change it records.

use sqlx::QueryBuilder;

use super::{CHUNK, Dialect};
use crate::*;

/// A new log's ID: a client holding another one syncs in full.
pub(super) fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

for_sql_stores! {
    impl Store {
        /// Starts a log at version 1 (with a new ID) unless it exists: OpenIM's first version,
        /// so that a client holding it syncs the log's first change incrementally (version 0
        /// means "never synced", answered in full, and the SDK reports no per-item events then).
        pub(super) async fn start_log(
            &self,
            tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>,
            kind: i32,
            owner: &str,
        ) -> StoreResult<()> {
            sqlx::query(&format!(
                "{} INTO version_heads (kind, owner_id, version_id, version) VALUES (?, ?, ?, 1)",
                <Store as Dialect>::INSERT_IGNORE
            ))
            .bind(kind)
            .bind(owner)
            .bind(new_version_id())
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        pub(super) async fn read_head(
            &self,
            tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>,
            kind: i32,
            owner: &str,
        ) -> StoreResult<VersionHead> {
            let (version_id, version): (String, i64) =
                sqlx::query_as("SELECT version_id, version FROM version_heads WHERE kind = ? AND owner_id = ?")
                    .bind(kind)
                    .bind(owner)
                    .fetch_one(&mut **tx)
                    .await?;
            Ok(VersionHead { version_id, version: version as u64 })
        }

        /// Moves a log one version on and records `entries` at that version in `state`;
        /// starts the log if it does not exist. Returns its new head.
        pub(super) async fn bump(
            &self,
            tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>,
            kind: i32,
            owner: &str,
            entries: &[&str],
            state: i32,
        ) -> StoreResult<VersionHead> {
            // One upsert: an existing head is locked once, for writing (an insert-or-ignore
            // first would take a shared lock and then upgrade it, which deadlocks two writers).
            sqlx::query(<Store as Dialect>::BUMP_VERSION_HEAD)
                .bind(kind)
                .bind(owner)
                .bind(new_version_id())
                .execute(&mut **tx)
                .await?;
            let VersionHead { version_id, version } = self.read_head(tx, kind, owner).await?;
            let version = version as i64;
            for chunk in entries.chunks(CHUNK / 5) {
                let mut qb = QueryBuilder::new("REPLACE INTO version_entries (kind, owner_id, entry_id, state, version) ");
                qb.push_values(chunk, |mut row, entry| {
                    row.push_bind(kind).push_bind(owner).push_bind(*entry).push_bind(state).push_bind(version);
                });
                qb.build().execute(&mut **tx).await?;
            }
            Ok(VersionHead { version_id, version: version as u64 })
        }

        /// Records a membership change: one version of the group's member log for all of
        /// `users`, and one of each user's joined-group log.
        pub(super) async fn bump_membership(
            &self,
            tx: &mut sqlx::Transaction<'_, <Store as Dialect>::Db>,
            group_id: &str,
            users: &[String],
            state: i32,
        ) -> StoreResult<VersionHead> {
            let entries: Vec<&str> = users.iter().map(String::as_str).collect();
            let head = self.bump(tx, version::GROUP_MEMBERS, group_id, &entries, state).await?;
            // Users' logs in one order, so two changes to overlapping users cannot deadlock.
            let mut users: Vec<&String> = users.iter().collect();
            users.sort();
            for u in users {
                self.bump(tx, version::JOINED_GROUPS, u, &[group_id], state).await?;
            }
            Ok(head)
        }
    }
}
