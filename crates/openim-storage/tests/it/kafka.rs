//! The bus contract against a real Kafka-protocol broker: Apache Kafka at
//! `OPENIM_TEST_KAFKA_ADDRESS` when set (the CI workflow's service container), else tansu,
//! started per test. The outage test always uses tansu: it stops and restarts its broker.

use std::time::Duration;

use bytes::Bytes;
use openim_storage::config::KafkaConfig;
use openim_storage::kafka::KafkaBus;
use openim_storage::{Bus as _, BusMessage, contract};
use openim_testkit::servers::Kafka;

/// A broker for one test: an external one, or a tansu of its own (stopped when dropped).
enum Broker {
    External(String),
    Tansu(Kafka),
}

impl Broker {
    fn start() -> Self {
        match std::env::var("OPENIM_TEST_KAFKA_ADDRESS") {
            Ok(address) if !address.is_empty() => Broker::External(address),
            _ => Broker::Tansu(Kafka::start()),
        }
    }

    fn address(&self) -> String {
        match self {
            Broker::External(a) => a.clone(),
            Broker::Tansu(k) => k.address(),
        }
    }
}

/// Topics and groups unique to this run, so tests sharing an external broker do not meet.
pub(crate) fn config(address: String) -> KafkaConfig {
    let run = format!("t{}-{:?}-", std::process::id(), std::time::SystemTime::now());
    let run: String = run.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let topics = openim_storage::topic::ALL.iter().map(|t| (t.to_string(), format!("{run}{t}"))).collect();
    KafkaConfig { address: vec![address], partitions: 4, group_prefix: run, topics, ..Default::default() }
}

fn rec(key: &str, v: u32) -> BusMessage {
    BusMessage { key: key.to_owned(), payload: Bytes::from(v.to_be_bytes().to_vec()) }
}

fn value(r: &BusMessage) -> u32 {
    u32::from_be_bytes(r.payload[..4].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bus() {
    let broker = Broker::start();
    contract::bus(&KafkaBus::new(&config(broker.address())).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_redelivers_what_was_not_committed() {
    let broker = Broker::start();
    let cfg = config(broker.address());
    let topic = format!("{}redeliver", cfg.group_prefix);
    let bus = KafkaBus::new(&cfg).unwrap();
    bus.publish(&topic, (0..20).map(|i| rec("k", i)).collect()).await.unwrap();
    let mut seen = Vec::new();
    {
        let mut sub = bus.subscribe(&topic, "g").await.unwrap();
        while seen.len() < 10 {
            let batch = tokio::time::timeout(Duration::from_secs(20), sub.next_batch(10 - seen.len()))
                .await
                .expect("records arrive")
                .unwrap()
                .unwrap();
            seen.extend(batch.iter().map(value));
        }
        sub.commit().await.unwrap();
        // Taken but never committed: a consumer that dies here must see them again.
        let more = sub.next_batch(5).await.unwrap().unwrap();
        assert!(!more.is_empty());
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    let mut sub = bus.subscribe(&topic, "g").await.unwrap();
    let mut rest = Vec::new();
    while rest.len() < 10 {
        let batch = tokio::time::timeout(Duration::from_secs(30), sub.next_batch(100))
            .await
            .expect("the uncommitted records come again")
            .unwrap()
            .unwrap();
        rest.extend(batch.iter().map(value));
    }
    assert_eq!(rest, (10..20).collect::<Vec<_>>(), "resumes exactly after the committed offset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_down_is_an_error_until_the_broker_comes_up() {
    let mut broker = Kafka::start();
    broker.stop();
    let mut cfg = config(broker.address());
    cfg.connect_timeout_secs = 1;
    let bus = KafkaBus::new(&cfg).expect("creating the bus contacts nothing");
    let err = tokio::time::timeout(Duration::from_secs(15), bus.ping())
        .await
        .expect("ping fails within its timeout")
        .expect_err("no broker listens");
    assert!(err.to_string().contains(&broker.address()), "the error names the broker: {err}");
    broker.restart();
    let mut ok = false;
    for _ in 0..30 {
        if bus.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(ok, "the same bus works once the broker is up");
    bus.publish("after-outage", vec![rec("k", 1)]).await.expect("publishing works after the outage");
}
