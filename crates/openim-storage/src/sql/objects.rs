//! Named objects: `objects`, one row per name.

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
