//! Runs the storage contract against the embedded adapters.

use std::sync::Arc;

use openim_storage::{Stores, contract, memory, sqlite::SqliteStore};

mod backends;
mod kafka;
mod mongo;
mod mysql;
mod redis;
mod tls;

async fn sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    (dir, store)
}

#[tokio::test]
async fn sqlite_users() {
    let (_d, s) = sqlite().await;
    contract::users(&*s).await;
}

#[tokio::test]
async fn sqlite_friends() {
    let (_d, s) = sqlite().await;
    contract::friends(&*s).await;
}

#[tokio::test]
async fn sqlite_friend_requests() {
    let (_d, s) = sqlite().await;
    contract::friend_requests(&*s, &*s).await;
}

#[tokio::test]
async fn sqlite_blacks() {
    let (_d, s) = sqlite().await;
    contract::blacks(&*s).await;
}

#[tokio::test]
async fn cached_blacks() {
    let (_d, s) = sqlite().await;
    contract::blacks(&openim_storage::cached::CachedBlacks::new(s)).await;
}

#[tokio::test]
async fn sqlite_groups() {
    let (_d, s) = sqlite().await;
    contract::groups(&*s).await;
}

#[tokio::test]
async fn cached_groups_over_sqlite() {
    use openim_storage::group_cache::{CachedGroups, MemoryKv};
    let (_d, s) = sqlite().await;
    let cached = CachedGroups::new(s.clone(), Arc::new(MemoryKv::default()));
    contract::groups(&cached).await;
    contract::group_requests(&cached).await;
    contract::group_cache(&cached, &*s).await;
}

#[tokio::test]
async fn sqlite_group_requests() {
    let (_d, s) = sqlite().await;
    contract::group_requests(&*s).await;
}

#[tokio::test]
async fn sqlite_conversations() {
    let (_d, s) = sqlite().await;
    contract::conversations(&*s).await;
}

#[tokio::test]
async fn sqlite_messages() {
    let (_d, s) = sqlite().await;
    contract::messages(&*s).await;
}

#[tokio::test]
async fn sqlite_message_marks() {
    let (_d, s) = sqlite().await;
    contract::message_marks(&*s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_seqs() {
    let (_d, s) = sqlite().await;
    contract::seqs(s).await;
}

#[tokio::test]
async fn sqlite_tokens() {
    let (_d, s) = sqlite().await;
    contract::tokens(&*s).await;
}

#[tokio::test]
async fn memory_online() {
    contract::online(&memory::MemoryOnline::default()).await;
}

#[tokio::test]
async fn memory_dedup() {
    contract::dedup(&memory::MemoryDedup::default()).await;
}

#[tokio::test]
async fn memory_dedup_keeps_the_newest_keys_within_its_capacity() {
    use openim_storage::DedupStore as _;
    let dedup = memory::MemoryDedup::default();
    let ttl = std::time::Duration::from_secs(600);
    let cap = memory::MemoryDedup::CAPACITY;
    let keys: Vec<String> = (0..cap + 10).map(|i| format!("k{i}")).collect();
    assert!(dedup.first_time(&keys, ttl).await.unwrap().iter().all(|new| *new));
    let again = dedup.first_time(&[keys[cap + 9].clone(), keys[0].clone()], ttl).await.unwrap();
    assert_eq!(again, vec![false, true], "the newest key is remembered, the oldest was let go");
}

#[tokio::test]
async fn memory_bus() {
    contract::bus(&memory::MemoryBus::default()).await;
}

#[tokio::test]
async fn sqlite_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let conv = "si_a_b".to_owned();
    {
        let stores = Stores::embedded(dir.path()).await.unwrap();
        assert_eq!(stores.seqs.allocate_seqs(&conv, 2).await.unwrap(), 1);
    }
    let stores = Stores::embedded(dir.path()).await.unwrap();
    assert_eq!(stores.seqs.allocate_seqs(&conv, 1).await.unwrap(), 3, "seqs continue after a reopen");
}

#[tokio::test]
async fn sqlite_online() {
    let (_d, s) = sqlite().await;
    contract::online(&*s).await;
}

#[tokio::test]
async fn sqlite_bus() {
    let (_d, s) = sqlite().await;
    contract::bus(&*s).await;
}

#[tokio::test]
async fn sqlite_bus_resumes_after_the_committed_offset() {
    use bytes::Bytes;
    use openim_storage::{Bus as _, BusMessage};
    let dir = tempfile::tempdir().unwrap();
    let rec = |v: &str| BusMessage { key: "k".into(), payload: Bytes::from(v.to_owned()) };
    {
        let s = SqliteStore::open(dir.path()).await.unwrap();
        s.publish("t", vec![rec("a"), rec("b"), rec("c")]).await.unwrap();
        let mut sub = s.subscribe("t", "g").await.unwrap();
        let first = sub.next_batch(2).await.unwrap().unwrap();
        assert_eq!(first.len(), 2);
        sub.commit().await.unwrap();
        // Read but not committed: must come again after a restart.
        let _ = sub.next_batch(10).await.unwrap().unwrap();
    }
    let s = SqliteStore::open(dir.path()).await.unwrap();
    let mut sub = s.subscribe("t", "g").await.unwrap();
    let again = sub.next_batch(10).await.unwrap().unwrap();
    assert_eq!(again, vec![rec("c")], "consumption resumes right after the committed offset");
}

#[tokio::test]
async fn sqlite_user_commands() {
    let (_d, s) = sqlite().await;
    contract::user_commands(&*s).await;
}

#[tokio::test]
async fn sqlite_objects() {
    let (_d, s) = sqlite().await;
    contract::objects(&*s).await;
}

#[tokio::test]
async fn sqlite_third() {
    let (_d, s) = sqlite().await;
    contract::third(&*s).await;
}

#[tokio::test]
async fn sqlite_subscriptions() {
    let (_d, s) = sqlite().await;
    contract::subscriptions(&*s).await;
}

/// The writer never checkpoints (its automatic checkpoint is off, so that it never waits for a
/// checkpoint's fsyncs); the store's own checkpointer must still start the WAL over while a
/// writer commits without a pause, or the WAL would grow without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_starts_over_under_a_writer_that_never_pauses() {
    use openim_proto::pb::sdkws::MsgData;
    use openim_storage::{MessageStore as _, StoredMsg};
    let (dir, s) = sqlite().await;
    let wal = dir.path().join("openim.db-wal");
    // The WAL header's checkpoint sequence number: one more at every restart of the WAL.
    let restarts =
        || std::fs::read(&wal).ok().filter(|h| h.len() >= 16).map(|h| u32::from_be_bytes([h[12], h[13], h[14], h[15]]));
    let first = restarts().expect("a WAL header after the migrations");
    let mut largest = 0;
    let mut seq = std::collections::HashMap::<usize, i64>::new();
    // Batches of 50 messages over 500 conversations with scattered clientMsgIDs, back to back,
    // for several of the checkpointer's rounds (500 ms each).
    let started = std::time::Instant::now();
    let mut n = 0u64;
    while restarts().unwrap_or(first) < first + 3 && started.elapsed() < std::time::Duration::from_secs(20) {
        let msgs: Vec<StoredMsg> = (0..50)
            .map(|_| {
                n += 1;
                let conv = (n.wrapping_mul(7919) % 500) as usize;
                let s = seq.entry(conv).or_default();
                *s += 1;
                StoredMsg {
                    conversation_id: format!("si_user{conv:05}_peer{conv:05}"),
                    msg: MsgData {
                        seq: *s,
                        client_msg_id: format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                        send_time: 1_700_000_000_000 + n as i64,
                        content: vec![b'x'; 300],
                        ..Default::default()
                    },
                }
            })
            .collect();
        assert_eq!(s.insert_messages(&msgs).await.unwrap(), 50);
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    let last = restarts().expect("a WAL header");
    assert!(
        last >= first + 3,
        "the WAL started over {} times in {:?} of writes ({n} messages)",
        last - first,
        started.elapsed()
    );
    assert!(largest < 160 << 20, "the WAL reached {} MB", largest >> 20);
}

#[tokio::test]
async fn sqlite_message_scan() {
    let (_d, s) = sqlite().await;
    contract::message_scan(&*s).await;
}
