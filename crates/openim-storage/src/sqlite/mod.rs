//! The embedded durable store: one SQLite database (WAL mode) holding users, relations, groups,
//! conversations, seqs, tokens and messages. Migrations are embedded and applied at open.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row as _, Sqlite, SqlitePool};

use crate::sql::Dialect;
use crate::*;

pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pub(crate) pool: SqlitePool,
    /// The one connection that writes: SQLite takes one writer at a time, and a second one
    /// would wait in SQLite's busy handler (sleeps of up to 100 ms) instead of in a queue.
    pub(crate) writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/openim.db` and applies pending migrations.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("create data directory {}: {e}", data_dir.display())))?;
        let path = data_dir.join("openim.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-16000")
            // Reads come straight from the page cache instead of a read() copy per page.
            .pragma("mmap_size", "268435456")
            // Checkpoint every ~40 MB of WAL instead of every 4 MB: the index pages every insert
            // touches are copied back once per checkpoint rather than ten times (checkpoints
            // were 14% of the server's CPU at 10k msg/s). A background PASSIVE checkpointer
            // was tried and measured worse on 2 cores: it competes for the same CPU.
            .pragma("wal_autocheckpoint", "10000")
            .pragma("journal_size_limit", "67108864")
            // A statement's rows come back through a channel of this many: a batch's answer
            // (seqs RETURNING, stored pairs) in one hand-over rather than one per 50 rows.
            .row_buffer_size(1024);
        // An in-process connection cannot go stale: no ping (a round trip to its worker thread)
        // before every statement or transaction takes it from the pool.
        let writer =
            SqlitePoolOptions::new().max_connections(1).test_before_acquire(false).connect_with(opts.clone()).await?;
        crate::sql::migrations::SQLITE
            .migrator()
            .await?
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrate {}: {e}", path.display())))?;
        let pool = SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_with(opts).await?;
        Ok(Self { pool, writer })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl Dialect for SqliteStore {
    type Db = Sqlite;
    const INSERT_IGNORE: &'static str = "INSERT OR IGNORE";
    // 5 bound values a message: 5,000 of SQLite's 32,766.
    const BATCH_ROWS: usize = 1000;
    const UPSERT_READ_SEQ: &'static str = "INSERT INTO read_seqs (user_id, conversation_id, seq) VALUES (?, ?, ?) \
         ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)";

    const BUMP_VERSION_HEAD: &'static str = "INSERT INTO version_heads (kind, owner_id, version_id, version) \
         VALUES (?, ?, ?, 1) ON CONFLICT (kind, owner_id) DO UPDATE SET version = version + 1";

    const DELETE_MESSAGES_BEFORE: &'static str =
        "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages WHERE send_time < ? LIMIT ?)";

    async fn add_to_max_seqs(&self, totals: &[(&str, i64)]) -> StoreResult<HashMap<String, i64>> {
        let mut maxima = HashMap::with_capacity(totals.len());
        let mut tx = self.writer.begin().await?;
        for chunk in totals.chunks(Self::BATCH_ROWS) {
            let mut qb = QueryBuilder::new("INSERT INTO seqs (conversation_id, max_seq) ");
            qb.push_values(chunk, |mut row, (conv, count)| {
                row.push_bind(*conv).push_bind(*count);
            });
            qb.push(
                " ON CONFLICT (conversation_id) DO UPDATE SET max_seq = max_seq + excluded.max_seq \
                 RETURNING conversation_id, max_seq",
            );
            for row in qb.build().fetch_all(&mut *tx).await? {
                maxima.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        tx.commit().await?;
        Ok(maxima)
    }

    async fn stored_pairs(&self, keys: &[(String, String)]) -> StoreResult<HashSet<(String, String)>> {
        // A join on a VALUES list searches the unique index once per pair; the equivalent
        // `(a, b) IN (VALUES …)` scans the whole index.
        let mut qb = QueryBuilder::new("SELECT m.conversation_id, m.client_msg_id FROM (VALUES ");
        let mut sep = qb.separated(", ");
        for (conv, id) in keys {
            sep.push("(").push_bind_unseparated(conv.as_str()).push_unseparated(", ");
            sep.push_bind_unseparated(id.as_str()).push_unseparated(")");
        }
        qb.push(") AS v JOIN messages m ON m.conversation_id = v.column1 AND m.client_msg_id = v.column2");
        let rows = qb.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect())
    }
}

mod shared;

#[async_trait::async_trait]
impl crate::Backend for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        SqliteStore::ping(self).await
    }
}
