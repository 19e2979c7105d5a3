//! The storage seams of the server: one small trait per concern, each with an embedded adapter
//! here (SQLite for durable data, memory for the bus and online state) and production adapters
//! (MySQL, MongoDB, Redis, Kafka) that pass the same [`contract`] tests.
//!
//! Services hold an [`Stores`] bundle of trait objects and never know which adapter is behind it.

pub mod cached;
pub mod config;
pub mod contract;
pub mod group_cache;
pub mod kafka;
pub mod memory;
pub mod model;
pub mod mongo;
pub mod mysql;
pub mod redis_store;
mod sql;
pub mod sqlite;
mod traits;

use std::sync::Arc;

use async_trait::async_trait;

pub use model::*;
pub use traits::*;

/// A storage failure. `Duplicate` and `NotFound` are for callers to branch on; everything else
/// is a backend fault to log and report as an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("backend: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Duplicate(db.message().to_owned());
        }
        StoreError::Backend(e.to_string())
    }
}

/// A server behind some of the stores: what readiness checks and what is set up once it answers.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Creates what the stores need on the server (schema, indexes, topics); idempotent.
    async fn prepare(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Checks that the server answers (and is prepared).
    async fn ping(&self) -> StoreResult<()>;
}

/// A readiness check of one backend (for `/readyz` and the gRPC health service).
#[derive(Clone)]
pub struct Probe {
    /// `sql`, `messages` (when not in `sql`), `redis` or `kafka`: what the backend is for.
    pub name: &'static str,
    backend: Arc<dyn Backend>,
}

impl Probe {
    pub fn new(name: &'static str, backend: Arc<dyn Backend>) -> Self {
        Self { name, backend }
    }

    pub async fn check(&self) -> StoreResult<()> {
        self.backend.ping().await
    }
}

/// Every store a process may need, as trait objects.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub friends: Arc<dyn FriendStore>,
    pub friend_requests: Arc<dyn FriendRequestStore>,
    pub blacks: Arc<dyn BlackStore>,
    pub user_commands: Arc<dyn UserCommandStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    pub objects: Arc<dyn ObjectRecordStore>,
    pub third: Arc<dyn ThirdStore>,
    pub groups: Arc<dyn GroupStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub messages: Arc<dyn MessageStore>,
    pub seqs: Arc<dyn SeqStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub online: Arc<dyn OnlineStore>,
    pub bus: Arc<dyn Bus>,
    pub dedup: Arc<dyn DedupStore>,
    /// One per backend behind these stores.
    pub probes: Vec<Probe>,
}

/// The production backends' settings.
pub struct ProductionConfig<'a> {
    pub mysql: &'a config::MysqlConfig,
    pub redis: &'a config::RedisConfig,
    pub kafka: &'a config::KafkaConfig,
    /// Messages in MongoDB; `None` keeps them in MySQL.
    pub mongo: Option<&'a config::MongoConfig>,
}

/// Prepares `backend` in the background, retrying until it succeeds (a server down at start).
fn prepare_in_background(what: &'static str, backend: Arc<dyn Backend>) {
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(200);
        while let Err(e) = backend.prepare().await {
            tracing::warn!(error = %e, "{what} is not ready; retrying in {delay:?}.");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
    });
}

impl Stores {
    /// Everything in the SQLite database in `data_dir`, bus and online registry included, so
    /// that services running as separate processes on one host share them.
    pub async fn shared_sqlite(data_dir: &std::path::Path) -> StoreResult<Self> {
        let db = Arc::new(sqlite::SqliteStore::open(data_dir).await?);
        Ok(Self::sqlite(db.clone(), db.clone(), db))
    }

    /// The embedded backends: one SQLite database in `data_dir`, memory bus and online registry.
    /// One process owns the database, so blacklists are cached in front of it.
    pub async fn embedded(data_dir: &std::path::Path) -> StoreResult<Self> {
        let db = Arc::new(sqlite::SqliteStore::open(data_dir).await?);
        let mut stores =
            Self::sqlite(db.clone(), Arc::new(memory::MemoryOnline::default()), Arc::new(memory::MemoryBus::default()));
        stores.blacks = Arc::new(cached::CachedBlacks::new(db.clone()));
        stores.groups = Arc::new(group_cache::CachedGroups::new(db, Arc::new(group_cache::MemoryKv::default())));
        Ok(stores)
    }

    /// Durable data in `db`; online registry and bus as given.
    fn sqlite(db: Arc<sqlite::SqliteStore>, online: Arc<dyn OnlineStore>, bus: Arc<dyn Bus>) -> Self {
        Self {
            probes: vec![Probe::new("sql", db.clone())],
            users: db.clone(),
            friends: db.clone(),
            friend_requests: db.clone(),
            blacks: db.clone(),
            user_commands: db.clone(),
            subscriptions: db.clone(),
            objects: db.clone(),
            third: db.clone(),
            groups: db.clone(),
            conversations: db.clone(),
            messages: db.clone(),
            seqs: db.clone(),
            tokens: db,
            online,
            bus,
            dedup: Arc::new(memory::MemoryDedup::default()),
        }
    }

    /// MySQL for relational data and seq blocks; messages in MongoDB (or MySQL); Redis in front
    /// for seqs, tokens, online state, recent messages and push dedup; Kafka as the bus.
    /// Nothing is contacted here: connections open on first use, and schemas and indexes are
    /// brought up to date by background tasks that retry until the servers answer (readiness
    /// reports them meanwhile).
    pub async fn production(cfg: &ProductionConfig<'_>) -> StoreResult<Self> {
        let mysql = Arc::new(mysql::MySqlStore::connect_lazy(cfg.mysql)?);
        let redis = Arc::new(redis_store::RedisStore::new(cfg.redis)?);
        let kafka = Arc::new(kafka::KafkaBus::new(cfg.kafka)?);
        prepare_in_background("MySQL", mysql.clone());
        let mut probes = vec![
            Probe::new("sql", mysql.clone()),
            Probe::new("redis", redis.clone()),
            Probe::new("kafka", kafka.clone()),
        ];
        let durable_messages: Arc<dyn MessageStore> = match cfg.mongo {
            Some(mongo_cfg) => {
                let mongo = Arc::new(mongo::MongoMessages::connect_lazy(mongo_cfg).await?);
                prepare_in_background("MongoDB", mongo.clone());
                probes.push(Probe::new("messages", mongo.clone()));
                mongo
            }
            None => mysql.clone(),
        };
        let messages = Arc::new(redis_store::CachedMessages::new(
            redis.clone(),
            durable_messages,
            std::time::Duration::from_secs(cfg.redis.msg_cache_ttl_secs),
        ));
        let seqs = Arc::new(redis_store::RedisSeqs::new(redis.clone(), mysql.clone(), cfg.redis.seq_block));
        Ok(Self {
            users: mysql.clone(),
            friends: mysql.clone(),
            friend_requests: mysql.clone(),
            blacks: mysql.clone(),
            user_commands: mysql.clone(),
            subscriptions: mysql.clone(),
            objects: mysql.clone(),
            third: mysql.clone(),
            groups: Arc::new(group_cache::CachedGroups::new(mysql.clone(), redis.clone())),
            conversations: mysql.clone(),
            messages,
            seqs,
            tokens: redis.clone(),
            online: redis.clone(),
            bus: kafka,
            dedup: redis,
            probes,
        })
    }

    /// The probes named in `names` (backends a service uses).
    pub fn probes_for(&self, names: &[&str]) -> Vec<Probe> {
        self.probes.iter().filter(|p| names.contains(&p.name)).cloned().collect()
    }
}
