//! Seqs handed out twice — what a Redis failover to a replica that lagged behind does — are
//! caught when the store refuses them, and the messages get fresh seqs instead of being lost or
//! pushed under a seq that holds another message. Real Redis (127.0.0.1:6379 or
//! `OPENIM_TEST_REDIS`), SQLite as the durable store.

use std::sync::Arc;

use openim_storage::Stores;
use openim_storage::config::RedisConfig;
use openim_storage::redis_store::{RedisSeqs, RedisStore};

mod common;

fn record(i: u32) -> openim_storage::BusMessage {
    common::record(&format!("m{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqs_handed_out_twice_are_caught_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Stores::embedded(dir.path()).await.unwrap();
    let address = std::env::var("OPENIM_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into());
    let prefix = format!(
        "openim-test:{:x}:",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let cfg = RedisConfig {
        address: vec![address.clone()],
        password: String::new(),
        key_prefix: prefix.clone(),
        ..Default::default()
    };
    stores.seqs = Arc::new(RedisSeqs::new(Arc::new(RedisStore::new(&cfg).unwrap()), stores.seqs.clone(), 100));
    let transfer = openim_msgtransfer::Transfer::new(stores.clone(), 100);
    let stop = tokio_util::sync::CancellationToken::new();

    assert!(transfer.handle((0..3).map(record).collect(), &stop).await);
    // The failover: Redis comes back with `cur` behind what it handed out.
    let client = redis::Client::open(format!("redis://{address}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 =
        redis::cmd("HSET").arg(format!("{prefix}seq:si_a_b")).arg("cur").arg(1).query_async(&mut conn).await.unwrap();
    assert!(transfer.handle((3..5).map(record).collect(), &stop).await);

    let all = stores.messages.messages_in_range("si_a_b", 1, 1_000, 1_000).await.unwrap();
    let got: Vec<(i64, &str)> = all.iter().map(|m| (m.seq, m.client_msg_id.as_str())).collect();
    assert_eq!(&got[..3], &[(1, "m0"), (2, "m1"), (3, "m2")], "stored messages keep their seqs");
    assert_eq!(got.len(), 5, "the messages given taken seqs are stored too: {got:?}");
    assert!(got[3].0 > 100 && got[4].0 == got[3].0 + 1, "under fresh seqs after the reserved block: {got:?}");
    assert_eq!((got[3].1, got[4].1), ("m3", "m4"));
}
