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
    /// Copies the WAL back into the database in the background (see [`checkpoints`]).
    checkpointer: tokio::task::AbortHandle,
}

/// How often the checkpointer copies the WAL back: about as much WAL as the ~40 MB SQLite's
/// automatic checkpoint was set to at 10,000 messages/s, so that an index page that every
/// insert touches is copied back a few times a second, not once per commit.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL frames (pages) past which the checkpointer starts the WAL over: ~32 MB.
const RESTART_FRAMES: i64 = 8192;

/// Keeps the WAL short without making the writer wait.
///
/// SQLite's automatic checkpoint runs on the connection that commits: every ~40 MB of WAL
/// the writer stopped for a copy and two fsyncs (30–60 ms here, the single-chat p99). Here a
/// connection of its own does it:
/// - PASSIVE checkpoints copy what the WAL holds beside the writer, which keeps appending;
/// - the WAL only starts over when a transaction begins with all of it copied back, which a
///   writer that commits every few milliseconds never gives, so once the WAL is past
///   [`RESTART_FRAMES`] a RESTART checkpoint resets it. It holds the writer back for what was
///   committed since the PASSIVE pass before it, a few milliseconds' worth.
async fn checkpoints(conn: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = checkpoint(&conn).await {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed; trying again at the next one.");
        }
    }
}

/// One round: a PASSIVE pass and, if the WAL is long, a second one and a RESTART.
async fn checkpoint(conn: &SqlitePool) -> StoreResult<()> {
    let frames = wal_checkpoint(conn, "PASSIVE").await?;
    if frames >= RESTART_FRAMES {
        // The second pass copies what came in during the first, so that RESTART, which the
        // writer waits for, has only the last few milliseconds left.
        wal_checkpoint(conn, "PASSIVE").await?;
        wal_checkpoint(conn, "RESTART").await?;
    }
    Ok(())
}

/// Runs `PRAGMA wal_checkpoint(mode)`; returns the frames the WAL held.
async fn wal_checkpoint(conn: &SqlitePool, mode: &'static str) -> StoreResult<i64> {
    let started = std::time::Instant::now();
    let row = sqlx::query(&format!("PRAGMA wal_checkpoint({mode})")).fetch_one(conn).await?;
    metrics::histogram!("openim_sqlite_checkpoint_seconds", "mode" => mode).record(started.elapsed().as_secs_f64());
    // (busy, frames in the WAL, frames copied back); -1 frames when not in WAL mode.
    Ok(row.get::<i64, _>(1))
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
            // No checkpoint on the committing connection: the checkpointer below does them on its
            // own connection and thread, so the writer never waits for their fsyncs.
            .pragma("wal_autocheckpoint", "0")
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
        let pool =
            SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_with(opts.clone()).await?;
        // A RESTART holds new writers back while it waits for readers of the old WAL: it gives
        // up after a second and tries again at the next round rather than stall the writer.
        let checkpointer =
            SqlitePoolOptions::new().max_connections(1).connect_with(opts.busy_timeout(Duration::from_secs(1))).await?;
        let checkpointer = tokio::spawn(checkpoints(checkpointer)).abort_handle();
        Ok(Self { pool, writer, checkpointer })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.checkpointer.abort();
        self.pool.close().await;
        self.writer.close().await;
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

#[async_trait]
impl Dialect for SqliteStore {
    type Db = Sqlite;
    const INSERT_IGNORE: &'static str = "INSERT OR IGNORE";
    const UNIQUE_CLIENT_MSG_ID: bool = false;
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

    async fn stored_pairs(&self, keys: &[(String, String, i64)]) -> StoreResult<HashSet<(String, String)>> {
        // A join on a VALUES list searches the time index once per key, by send time and
        // conversation, and finds the clientMsgID in the index itself; the equivalent
        // `(a, b, c) IN (VALUES …)` scans it all.
        let mut qb = QueryBuilder::new("SELECT m.conversation_id, m.client_msg_id FROM (VALUES ");
        let mut sep = qb.separated(", ");
        for (conv, id, send_time) in keys {
            sep.push("(").push_bind_unseparated(conv.as_str()).push_unseparated(", ");
            sep.push_bind_unseparated(id.as_str()).push_unseparated(", ");
            sep.push_bind_unseparated(*send_time).push_unseparated(")");
        }
        qb.push(
            ") AS v JOIN messages m INDEXED BY messages_by_time ON m.send_time = v.column3 \
             AND m.conversation_id = v.column1 AND m.client_msg_id = v.column2",
        );
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
