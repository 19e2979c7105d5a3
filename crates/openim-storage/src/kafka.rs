//! The Kafka bus (rdkafka over librdkafka). Records are keyed by conversation, so each
//! conversation stays in one partition and in order; consumers join groups, take batches, and
//! commit offsets only when the caller says the batch is done (at-least-once: a consumer that
//! dies before committing gets the batch again after the rebalance or restart).
//!
//! The logical topics the services use (`topic::*`, named as OpenIM's) map to configured names;
//! [`KafkaBus::prepare`] creates missing topics, since brokers may not auto-create them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use tokio::sync::OnceCell;

use crate::config::KafkaConfig;
use crate::*;

/// The header that carries a record's key when its Kafka key is the coarser order key
/// ([`BusMessage::order_key`]).
const KEY_HEADER: &str = "openim-key";

/// librdkafka reports the same errors (a refused connection per broker thread, "all brokers
/// down") on every reconnect attempt, many times a second during an outage: this context logs
/// each distinct message once, then again only after 30 s.
#[derive(Default)]
pub struct QuietContext {
    recent: parking_lot::Mutex<HashMap<String, std::time::Instant>>,
}

impl QuietContext {
    fn warn_once(&self, text: String) {
        let mut recent = self.recent.lock();
        let now = std::time::Instant::now();
        if recent.get(&text).is_some_and(|at| now.duration_since(*at) < Duration::from_secs(30)) {
            tracing::debug!(target: "librdkafka", "{text}");
            return;
        }
        tracing::warn!(target: "librdkafka", "{text}");
        if recent.len() >= 64 {
            recent.retain(|_, at| now.duration_since(*at) < Duration::from_secs(30));
        }
        recent.insert(text, now);
    }
}

impl ClientContext for QuietContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => {
                // Connection failures repeat per broker thread; the broker address is in the text.
                let text = message.split(" (after").next().unwrap_or(message);
                self.warn_once(format!("{fac}: {text}"));
            }
            L::Notice | L::Info => tracing::info!(target: "librdkafka", "{fac}: {message}"),
            L::Debug => tracing::debug!(target: "librdkafka", "{fac}: {message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let reason = reason.split(" (after").next().unwrap_or(reason);
        self.warn_once(format!("{error}: {reason}"));
    }
}

/// Partition assignments are logged: after a rebalance, which partitions this consumer reads
/// tells an operator why a topic is (or is not) being consumed.
impl ConsumerContext for QuietContext {
    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &rdkafka::TopicPartitionList| {
            let mut parts: Vec<String> =
                list.elements().iter().map(|e| format!("{}[{}]", e.topic(), e.partition())).collect();
            parts.sort();
            parts.join(", ")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(target: "librdkafka", "Partitions assigned: {}.", partitions(list))
            }
            Rebalance::Revoke(list) => {
                tracing::info!(target: "librdkafka", "Partitions revoked: {}.", partitions(list))
            }
            Rebalance::Error(e) => self.warn_once(format!("rebalance: {e}")),
        }
    }
}

pub struct KafkaBus {
    cfg: KafkaConfig,
    producer: FutureProducer<QuietContext>,
    prepared: OnceCell<()>,
    /// Topics known to exist (created at prepare or on first use).
    known: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl KafkaBus {
    /// A bus whose connections open on first use; nothing is contacted yet.
    pub fn new(cfg: &KafkaConfig) -> StoreResult<Self> {
        let idempotent = cfg.idempotence && (cfg.producer_acks == "all" || cfg.producer_acks == "-1");
        let mut producer = client_config(cfg);
        producer
            .set("acks", &cfg.producer_acks)
            // Retries never reorder or duplicate records within a partition (a conversation).
            .set("enable.idempotence", idempotent.to_string())
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("message.timeout.ms", (cfg.publish_timeout_secs * 1000).to_string());
        if !cfg.idempotence {
            // Without idempotence a retried request could overtake a later one.
            producer.set("max.in.flight.requests.per.connection", "1");
        }
        let producer =
            producer.create_with_context(QuietContext::default()).map_err(|e| fault(cfg, "create producer", e))?;
        Ok(Self { cfg: cfg.clone(), producer, prepared: OnceCell::new(), known: Default::default() })
    }

    /// The configured name of a logical topic.
    fn topic<'a>(&'a self, logical: &'a str) -> &'a str {
        self.cfg.topics.get(logical).map_or(logical, String::as_str)
    }

    /// Creates the topics that do not exist yet (the configured name of every logical topic).
    /// Done once per process; an existing topic is left as it is.
    pub async fn prepare(&self) -> StoreResult<()> {
        self.prepared
            .get_or_try_init(|| async {
                let names: Vec<String> = topic::ALL.iter().map(|t| self.topic(t).to_owned()).collect();
                self.create_topics(&names).await
            })
            .await
            .map(|_| ())
    }

    /// Makes sure `name` exists (topics outside the configured set, e.g. in tests).
    async fn ensure_topic(&self, name: &str) -> StoreResult<()> {
        self.prepare().await?;
        if self.known.lock().contains(name) {
            return Ok(());
        }
        self.create_topics(&[name.to_owned()]).await
    }

    async fn create_topics(&self, names: &[String]) -> StoreResult<()> {
        let admin: AdminClient<QuietContext> = client_config(&self.cfg)
            .create_with_context(QuietContext::default())
            .map_err(|e| fault(&self.cfg, "create admin client", e))?;
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|name| NewTopic::new(name, self.cfg.partitions, TopicReplication::Fixed(self.cfg.replication_factor)))
            .collect();
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(self.cfg.connect_timeout_secs)));
        let results = admin.create_topics(&topics, &opts).await.map_err(|e| fault(&self.cfg, "create topics", e))?;
        for result in results {
            match result {
                Ok(name) | Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    self.known.lock().insert(name);
                }
                // Not allowed to create topics (an operator manages them): fine if it exists.
                Err((
                    name,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::PolicyViolation),
                )) => {
                    if !self.topic_exists(&name).await? {
                        return Err(fault(&self.cfg, &format!("create topic `{name}` (it does not exist)"), code));
                    }
                    self.known.lock().insert(name);
                }
                Err((name, code)) => return Err(fault(&self.cfg, &format!("create topic `{name}`"), code)),
            }
        }
        Ok(())
    }

    /// Whether the brokers know `name` (a metadata request).
    async fn topic_exists(&self, name: &str) -> StoreResult<bool> {
        let producer = self.producer.clone();
        let topic = name.to_owned();
        let timeout = Duration::from_secs(self.cfg.connect_timeout_secs);
        let metadata = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(Some(&topic), timeout))
            .await
            .map_err(|e| StoreError::Backend(format!("kafka metadata task: {e}")))?
            .map_err(|e| fault(&self.cfg, "fetch metadata", e))?;
        Ok(metadata.topics().iter().any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
    }

    /// Checks that the brokers answer (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        self.prepare().await?;
        let producer = self.producer.clone();
        let timeout = Duration::from_secs(self.cfg.connect_timeout_secs);
        let metadata = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).map(|_| ()))
            .await
            .map_err(|e| StoreError::Backend(format!("kafka metadata task: {e}")))?;
        metadata.map_err(|e| fault(&self.cfg, "fetch metadata", e))
    }
}

fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cfg.address.join(","))
        .set("socket.connection.setup.timeout.ms", (cfg.connect_timeout_secs * 1000).to_string())
        .set("log_level", if cfg.debug.is_empty() { "4" } else { "7" });
    if !cfg.debug.is_empty() {
        c.set("debug", &cfg.debug);
    }
    c.set("security.protocol", cfg.security_protocol());
    if !cfg.username.is_empty() {
        c.set("sasl.mechanism", &cfg.sasl_mechanism)
            .set("sasl.username", &cfg.username)
            .set("sasl.password", &cfg.password);
    }
    if cfg.tls.enabled {
        // The broker's certificate must chain to the CA and name the host it was reached by.
        c.set("ssl.endpoint.identification.algorithm", "https")
            .set("enable.ssl.certificate.verification", "true")
            // The images have no system CA store: without `ca_file`, librdkafka looks in the
            // usual places of the host it runs on.
            .set("ssl.ca.location", if cfg.tls.ca_file.is_empty() { "probe" } else { &cfg.tls.ca_file });
        if !cfg.tls.cert_file.is_empty() {
            c.set("ssl.certificate.location", &cfg.tls.cert_file).set("ssl.key.location", &cfg.tls.key_file);
        }
    }
    c
}

fn fault(cfg: &KafkaConfig, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("kafka {}: {what}: {e}", cfg.address.join(",")))
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: &str, records: Vec<BusMessage>) -> StoreResult<()> {
        let name = self.topic(topic);
        self.ensure_topic(name).await?;
        // Queue them all, then wait for every acknowledgement: one batch on the wire.
        let mut acks = Vec::with_capacity(records.len());
        for r in &records {
            // Kafka keeps the records of one partition in order, and picks it by the record's
            // key: that is the order key, so a chat and its notifications share a partition.
            // The key itself rides in a header.
            let order_key = r.order_key();
            let mut record = FutureRecord::to(name).key(order_key.as_bytes()).payload(r.payload.as_ref());
            if order_key != r.key {
                record = record.headers(OwnedHeaders::new().insert(Header { key: KEY_HEADER, value: Some(&r.key) }));
            }
            acks.push(self.producer.send(record, Duration::from_secs(self.cfg.publish_timeout_secs)));
        }
        for ack in futures::future::join_all(acks).await {
            ack.map_err(|(e, _)| fault(&self.cfg, &format!("publish to `{name}`"), e))?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> StoreResult<Box<dyn Subscription>> {
        let name = self.topic(topic).to_owned();
        self.ensure_topic(&name).await?;
        let consumer: StreamConsumer<QuietContext> = client_config(&self.cfg)
            .set("group.id", format!("{}{group}", self.cfg.group_prefix))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.cfg.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", (self.cfg.session_timeout_secs * 1000).to_string())
            // Also how long a rebalance waits for members that do not rejoin (a consumer that
            // died without leaving): a new consumer gets no partitions until then.
            .set("max.poll.interval.ms", (self.cfg.max_poll_interval_secs * 1000).to_string())
            .create_with_context(QuietContext::default())
            .map_err(|e| fault(&self.cfg, "create consumer", e))?;
        consumer.subscribe(&[&name]).map_err(|e| fault(&self.cfg, &format!("subscribe to `{name}`"), e))?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            taken: HashMap::new(),
            topic: name,
            cfg: self.cfg.clone(),
        }))
    }
}

struct KafkaSubscription {
    consumer: Arc<StreamConsumer<QuietContext>>,
    /// Per partition, the offset of the last record handed out and not yet committed.
    taken: HashMap<i32, i64>,
    topic: String,
    cfg: KafkaConfig,
}

impl KafkaSubscription {
    fn take(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) -> BusMessage {
        self.taken.insert(m.partition(), m.offset());
        let header = m.headers().and_then(|h| h.iter().find(|h| h.key == KEY_HEADER).and_then(|h| h.value));
        BusMessage {
            key: String::from_utf8_lossy(header.or(m.key()).unwrap_or_default()).into_owned(),
            payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        }
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> StoreResult<Option<Vec<BusMessage>>> {
        let consumer = self.consumer.clone();
        let first = consumer.recv().await.map_err(|e| fault(&self.cfg, &format!("consume `{}`", self.topic), e))?;
        let mut batch = Vec::with_capacity(max.min(1024));
        batch.push(self.take(&first));
        drop(first);
        // Whatever else has already arrived, without waiting. An error here ends the batch but
        // does not drop it: the records taken are handed out (and their offsets committed only
        // with them); the error, if it persists, comes back on the next call.
        while batch.len() < max {
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => batch.push(self.take(&m)),
                Some(Err(e)) => {
                    tracing::debug!(topic = %self.topic, error = %e, "Consumer error after {} records.", batch.len());
                    break;
                }
                None => break,
            }
        }
        Ok(Some(batch))
    }

    async fn commit(&mut self) -> StoreResult<()> {
        if self.taken.is_empty() {
            return Ok(());
        }
        // Stored, then committed, through librdkafka's offset store: it refuses offsets of
        // partitions this consumer no longer owns (revoked in a rebalance), so a late commit
        // can never move the new owner's position.
        for (&partition, &offset) in &self.taken {
            if let Err(e) = self.consumer.store_offset(&self.topic, partition, offset) {
                tracing::debug!(topic = %self.topic, partition, error = %e, "Not committing a partition no longer assigned.");
            }
        }
        self.taken.clear();
        let consumer = self.consumer.clone();
        // A synchronous commit blocks its thread until the broker answers.
        let done = tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync))
            .await
            .map_err(|e| StoreError::Backend(format!("kafka commit task: {e}")))?;
        match done {
            Ok(()) => Ok(()),
            // Nothing stored (every partition was revoked): nothing to commit.
            Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(fault(&self.cfg, &format!("commit `{}`", self.topic), e)),
        }
    }
}

#[async_trait::async_trait]
impl crate::Backend for KafkaBus {
    async fn prepare(&self) -> StoreResult<()> {
        KafkaBus::prepare(self).await
    }

    async fn ping(&self) -> StoreResult<()> {
        KafkaBus::ping(self).await
    }
}
