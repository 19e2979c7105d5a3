//! The MySQL/MariaDB adapter (MySQL 8, MariaDB 10.11+): users, relations, groups, conversations,
//! seqs, tokens and, for operators without MongoDB, messages. The statements are shared with the
//! SQLite adapter (see [`crate::sql`]); this module holds the connection, the migrations and
//! what the dialect does differently.
//!
//! The pool connects lazily: a process starts while the server is down, [`MySqlStore::prepare`]
//! (create the database, apply migrations) is retried by the caller until it succeeds, and
//! `/readyz` reports not-ready until then.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
use sqlx::{ConnectOptions as _, Connection as _, MySql, MySqlPool, QueryBuilder, Row as _};
use tokio::sync::OnceCell;

use crate::config::{MysqlConfig, SslMode};
use crate::sql::Dialect;
use crate::*;

pub struct MySqlStore {
    pub(crate) pool: MySqlPool,
    /// The same pool: MySQL takes concurrent writers.
    pub(crate) writer: MySqlPool,
    options: MySqlConnectOptions,
    database: String,
    prepared: OnceCell<()>,
}

impl MySqlStore {
    /// A store whose connections open on first use; nothing is contacted yet.
    pub fn connect_lazy(cfg: &MysqlConfig) -> StoreResult<Self> {
        let address = cfg.address.first().ok_or_else(|| StoreError::Backend("mysql.yml: `address` is empty".into()))?;
        let (host, port) = split_host_port(address, 3306)?;
        let mut options = MySqlConnectOptions::new().host(&host).port(port).username(&cfg.username);
        if !cfg.password.is_empty() {
            options = options.password(&cfg.password);
        }
        options = options.ssl_mode(match cfg.ssl_mode {
            SslMode::Disabled => MySqlSslMode::Disabled,
            SslMode::Preferred => MySqlSslMode::Preferred,
            SslMode::Required => MySqlSslMode::Required,
            SslMode::VerifyCa => MySqlSslMode::VerifyCa,
            SslMode::VerifyIdentity => MySqlSslMode::VerifyIdentity,
        });
        if !cfg.ssl_ca.is_empty() {
            options = options.ssl_ca(&cfg.ssl_ca);
        }
        if !cfg.ssl_cert.is_empty() {
            options = options.ssl_client_cert(&cfg.ssl_cert).ssl_client_key(&cfg.ssl_key);
        }
        let options = options
            .charset("utf8mb4")
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(cfg.slow_threshold_ms));
        let pool = MySqlPoolOptions::new()
            .max_connections(cfg.max_open_conn)
            .min_connections(cfg.max_idle_conn.min(cfg.max_open_conn))
            .max_lifetime(Duration::from_secs(cfg.max_lifetime_secs))
            .acquire_timeout(Duration::from_secs(cfg.connect_timeout_secs))
            .connect_lazy_with(options.clone().database(&cfg.database));
        Ok(Self { writer: pool.clone(), pool, options, database: cfg.database.clone(), prepared: OnceCell::new() })
    }

    /// Connects and prepares (see [`MySqlStore::prepare`]).
    pub async fn connect(cfg: &MysqlConfig) -> StoreResult<Self> {
        let store = Self::connect_lazy(cfg)?;
        store.prepare().await?;
        Ok(store)
    }

    /// Creates the database if it does not exist and applies pending migrations (versioned and
    /// recorded in `_sqlx_migrations`, so running it again changes nothing). Processes starting
    /// together take turns under a named server lock: sqlx's own lock asks for an infinite
    /// wait with a timeout of -1, which MariaDB takes as "don't wait". Done once per process.
    pub async fn prepare(&self) -> StoreResult<()> {
        self.prepared
            .get_or_try_init(|| async {
                let mut conn = self.options.connect().await.map_err(|e| self.fault("connect", e))?;
                let result = self.migrate(&mut conn).await;
                let _ = conn.close().await;
                result
            })
            .await
            .map(|_| ())
    }

    async fn migrate(&self, conn: &mut sqlx::MySqlConnection) -> StoreResult<()> {
        let version: String =
            sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut *conn).await.map_err(|e| self.fault("version", e))?;
        // IDs compare case-sensitively and trailing spaces count, as in SQLite and OpenIM's
        // clients. The `_bin` collations would too, but sqlx takes their columns for VARBINARY
        // and refuses them as strings.
        let collation = if version.contains("MariaDB") { "utf8mb4_uca1400_nopad_as_cs" } else { "utf8mb4_0900_as_cs" };
        sqlx::query(&format!(
            "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4 COLLATE {collation}",
            self.database
        ))
        .execute(&mut *conn)
        .await
        .map_err(|e| self.fault("create database", e))?;
        sqlx::query(&format!("USE `{}`", self.database)).execute(&mut *conn).await.map_err(|e| self.fault("use", e))?;
        // A database created beforehand keeps its own collation: say so if IDs would then
        // compare case-insensitively ("alice" and "Alice" as one user).
        let actual: String = sqlx::query_scalar("SELECT @@collation_database")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.fault("collation", e))?;
        if actual.ends_with("_ci") {
            tracing::warn!(database = %self.database, collation = %actual,
                "The database compares IDs case-insensitively; create it with COLLATE {collation} to match OpenIM.");
        }
        let lock = format!("openim-migrate-{}", self.database);
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
            .bind(&lock)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| self.fault("lock for migrations", e))?;
        if got != Some(1) {
            return Err(StoreError::Backend(format!(
                "mysql {}: another process held the migration lock `{lock}` for 60 s",
                self.where_()
            )));
        }
        let mut migrator = crate::sql::migrations::MYSQL.migrator().await?;
        migrator.set_locking(false);
        let result = migrator
            .run_direct(&mut *conn)
            .await
            .map_err(|e| StoreError::Backend(format!("mysql {}: migrate: {e}", self.where_())));
        let _ = sqlx::query("SELECT RELEASE_LOCK(?)").bind(&lock).execute(&mut *conn).await;
        result
    }

    /// Checks that the server answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        self.prepare().await?;
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(|e| self.fault("ping", e))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn where_(&self) -> String {
        format!("{}:{}/{}", self.options.get_host(), self.options.get_port(), self.database)
    }

    fn fault(&self, what: &str, e: sqlx::Error) -> StoreError {
        StoreError::Backend(format!("mysql {}: {what}: {e}", self.where_()))
    }
}

/// `host:port` → (host, port), `default_port` when there is none.
pub(crate) fn split_host_port(address: &str, default_port: u16) -> StoreResult<(String, u16)> {
    match address.rsplit_once(':') {
        Some((host, port)) => {
            let port =
                port.parse().map_err(|_| StoreError::Backend(format!("address `{address}`: bad port `{port}`")))?;
            Ok((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
        }
        None => Ok((address.to_owned(), default_port)),
    }
}

/// MySQL reports a deadlock (1213) or lock wait timeout (1205) when two transactions lock the
/// same rows in different orders; the transaction is rolled back and can be run again.
fn is_retryable(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| matches!(e.number(), 1205 | 1213))
}

#[async_trait]
impl Dialect for MySqlStore {
    type Db = MySql;
    const INSERT_IGNORE: &'static str = "INSERT IGNORE";
    const UNIQUE_CLIENT_MSG_ID: bool = true;
    const BATCH_ROWS: usize = 250;
    const UPSERT_READ_SEQ: &'static str = "INSERT INTO read_seqs (user_id, conversation_id, seq) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq))";

    const BUMP_VERSION_HEAD: &'static str = "INSERT INTO version_heads (kind, owner_id, version_id, version) \
         VALUES (?, ?, ?, 1) ON DUPLICATE KEY UPDATE version = version + 1";

    const DELETE_MESSAGES_BEFORE: &'static str = "DELETE FROM messages WHERE send_time < ? LIMIT ?";

    async fn add_to_max_seqs(&self, totals: &[(&str, i64)]) -> StoreResult<HashMap<String, i64>> {
        // Rows are locked in conversation order so that concurrent batches cannot deadlock
        // each other; a deadlock on new rows' gap locks is still possible and retried.
        let mut sorted = totals.to_vec();
        sorted.sort_unstable();
        let mut attempt = 0;
        loop {
            match self.try_add_to_max_seqs(&sorted).await {
                Err(e) if attempt < 5 && is_retryable(&e) => attempt += 1,
                other => return Ok(other?),
            }
        }
    }

    async fn stored_pairs(&self, keys: &[(String, String, i64)]) -> StoreResult<HashSet<(String, String)>> {
        // A row-constructor IN list is a range lookup on the unique index — when the optimizer
        // picks it: MariaDB prefers the primary key's (conversation_id) prefix and then reads
        // every message of each conversation, which grows with the conversation. The unique
        // index matches on the clientMsgID alone, so resends are found too.
        let mut qb = QueryBuilder::new(
            "SELECT conversation_id, client_msg_id FROM messages FORCE INDEX (messages_by_client_id) \
             WHERE (conversation_id, client_msg_id) IN (",
        );
        let mut sep = qb.separated(", ");
        for (conv, id, _) in keys {
            sep.push("(").push_bind_unseparated(conv.as_str()).push_unseparated(", ");
            sep.push_bind_unseparated(id.as_str()).push_unseparated(")");
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect())
    }
}

impl MySqlStore {
    async fn try_add_to_max_seqs(&self, totals: &[(&str, i64)]) -> Result<HashMap<String, i64>, sqlx::Error> {
        let mut maxima = HashMap::with_capacity(totals.len());
        let mut tx = self.writer.begin().await?;
        for chunk in totals.chunks(crate::sql::CHUNK / 2) {
            let mut qb = QueryBuilder::new("INSERT INTO seqs (conversation_id, max_seq) ");
            qb.push_values(chunk, |mut row, (conv, count)| {
                row.push_bind(*conv).push_bind(*count);
            });
            qb.push(" ON DUPLICATE KEY UPDATE max_seq = max_seq + VALUES(max_seq)");
            qb.build().execute(&mut *tx).await?;
            let mut qb = QueryBuilder::new("SELECT conversation_id, max_seq FROM seqs WHERE conversation_id IN (");
            let mut sep = qb.separated(", ");
            for (conv, _) in chunk {
                sep.push_bind(*conv);
            }
            qb.push(") FOR UPDATE");
            for row in qb.build().fetch_all(&mut *tx).await? {
                maxima.insert(row.get::<String, _>(0), row.get::<i64, _>(1));
            }
        }
        tx.commit().await?;
        Ok(maxima)
    }
}

#[async_trait::async_trait]
impl crate::Backend for MySqlStore {
    async fn prepare(&self) -> StoreResult<()> {
        MySqlStore::prepare(self).await
    }

    async fn ping(&self) -> StoreResult<()> {
        MySqlStore::ping(self).await
    }
}
