//! The embedded durable store: one SQLite database (WAL mode) holding users, relations, groups,
//! conversations, seqs, tokens and messages. Migrations are embedded and applied at open.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use openim_proto::pb::sdkws::MsgData;
use prost::Message as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::*;

/// Largest number of bound values per statement we generate (SQLite allows 32766).
pub(crate) const CHUNK: usize = 500;

pub struct SqliteStore {
    /// Readers (WAL lets them run beside the writer).
    pool: SqlitePool,
    /// The one connection that writes: SQLite takes one writer at a time, and a second one
    /// would wait in SQLite's busy handler (sleeps of up to 100 ms) instead of in a queue.
    writer: SqlitePool,
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
            .pragma("journal_size_limit", "67108864");
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(opts.clone()).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrate {}: {e}", path.display())))?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
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

pub(crate) fn push_in<'a>(qb: &mut QueryBuilder<'a, Sqlite>, values: &'a [String]) {
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.as_str());
    }
    sep.push_unseparated(")");
}

pub(crate) fn decode_msg(bytes: &[u8]) -> StoreResult<MsgData> {
    MsgData::decode(bytes).map_err(|e| StoreError::Backend(format!("stored message does not decode: {e}")))
}

mod conversations;
mod groups;
mod messages;
mod shared;
mod tokens;
mod users;
