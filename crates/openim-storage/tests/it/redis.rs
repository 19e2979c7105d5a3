//! The storage contract against a real Redis server, with MariaDB as the durable seq store.

use std::sync::Arc;

use openim_storage::mysql::MySqlStore;
use openim_storage::redis_store::{CachedMessages, RedisSeqs, RedisStore};
use openim_storage::sqlite::SqliteStore;
use openim_storage::{SeqStore, contract};

use crate::backends;

fn redis() -> Arc<RedisStore> {
    Arc::new(RedisStore::new(&backends::redis(&backends::unique())).unwrap())
}

async fn durable() -> Arc<MySqlStore> {
    Arc::new(MySqlStore::connect(&backends::mysql()).await.expect("MariaDB for the durable seq store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_seqs() {
    // A small block so the contract's 960 concurrent allocations cross many block boundaries.
    contract::seqs(Arc::new(RedisSeqs::new(redis(), durable().await, 7))).await;
}

#[tokio::test]
async fn redis_seqs_never_repeat_after_redis_loses_its_data() {
    let durable = durable().await;
    let cfg = backends::redis(&backends::unique());
    let conv = format!("si_{}", backends::unique());
    let seqs = RedisSeqs::new(Arc::new(RedisStore::new(&cfg).unwrap()), durable.clone(), 100);
    let first = seqs.allocate_seqs(&conv, 10).await.unwrap();
    assert_eq!(first, 1);
    assert_eq!(seqs.max_seqs(std::slice::from_ref(&conv)).await.unwrap()[&conv], 10);

    // Lose the key, as a flush or a failover to an empty replica would.
    let client = redis::Client::open(format!("redis://{}", cfg.address[0])).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL").arg(format!("{}seq:{conv}", cfg.key_prefix)).query_async(&mut conn).await.unwrap();

    let reported = seqs.max_seqs(std::slice::from_ref(&conv)).await.unwrap()[&conv];
    assert!(reported >= 10, "max seq never goes back: {reported}");
    let next = seqs.allocate_seqs(&conv, 1).await.unwrap();
    assert!(next > 10, "a seq handed out before the loss is never handed out again: {next}");
    assert_eq!(next, reported + 1, "max seq reported after the loss is where allocation resumes");
}

#[tokio::test]
async fn redis_tokens() {
    contract::tokens(&*redis()).await;
}

#[tokio::test]
async fn redis_online() {
    contract::online(&*redis()).await;
}

#[tokio::test]
async fn redis_online_ignores_a_gateway_that_stopped_heartbeating() {
    use openim_storage::OnlineStore as _;
    let mut cfg = backends::redis(&backends::unique());
    cfg.gateway_ttl_secs = 3;
    let store = RedisStore::new(&cfg).unwrap();
    store.set_online("u1", 1, "gw-dead", true).await.unwrap();
    store.set_online("u1", 2, "gw-live", true).await.unwrap();
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        store.heartbeat("gw-live").await.unwrap();
    }
    let got = store.online(&["u1".to_owned()]).await.unwrap();
    assert_eq!(got["u1"], vec![(2, "gw-live".to_owned())], "the silent gateway's entries are ignored");
}

#[tokio::test]
async fn redis_cached_messages() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let cached = CachedMessages::new(redis(), inner, std::time::Duration::from_secs(60));
    contract::messages(&cached).await;
}

#[tokio::test]
async fn redis_cached_message_marks() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let cached = CachedMessages::new(redis(), inner, std::time::Duration::from_secs(60));
    contract::message_marks(&cached).await;
}

#[tokio::test]
async fn redis_down_is_a_clear_error_not_a_hang() {
    let mut cfg = backends::redis("down");
    cfg.address = vec!["127.0.0.1:1".into()];
    cfg.connect_timeout_secs = 1;
    let store = RedisStore::new(&cfg).expect("a lazy store needs no server");
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), store.ping())
        .await
        .expect("fails within the timeout")
        .expect_err("nothing listens on port 1");
    assert!(err.to_string().contains("127.0.0.1:1"), "the error names the server: {err}");
}

#[tokio::test]
async fn redis_dedup() {
    contract::dedup(&*redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_seqs_for_many_new_conversations_in_one_batch() {
    let seqs = RedisSeqs::new(redis(), durable().await, 5);
    let p = backends::unique();
    // 200 new conversations, each twice (3 then 4 seqs), so every one reserves a block — some
    // of them two — within one call.
    let mut requests: Vec<(String, i64)> = (0..200).map(|i| (format!("si_{p}_{i}"), 3)).collect();
    requests.extend((0..200).map(|i| (format!("si_{p}_{i}"), 4)));
    let firsts = seqs.allocate_seqs_many(&requests).await.unwrap();
    assert!(firsts[..200].iter().all(|f| *f == 1), "every new conversation starts at 1");
    assert!(firsts[200..].iter().all(|f| *f == 4), "a second request continues after the first");
    let maxes = seqs.max_seqs(&requests[..200].iter().map(|r| r.0.clone()).collect::<Vec<_>>()).await.unwrap();
    assert!(maxes.values().all(|m| *m == 7), "{maxes:?}");
}

#[tokio::test]
async fn redis_cached_message_scan() {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let cached = CachedMessages::new(redis(), inner, std::time::Duration::from_secs(60));
    contract::message_scan(&cached).await;
}
