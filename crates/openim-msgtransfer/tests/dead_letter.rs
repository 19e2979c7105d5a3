//! One record that cannot be stored does not wedge the pipeline: it goes to the dead-letter topic
//! with the others of its batch stored and pushed; a store that takes nothing at all (an outage)
//! sends nothing there and the batch waits for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use openim_proto::pb::sdkws::MsgData;
use openim_storage::model::{MsgMarks, RevokeMark, ScanPosition};
use openim_storage::{MessageStore, StoreError, StoreResult, StoredMsg, Stores, topic};
use prost::Message as _;

mod common;
use common::record;

/// The embedded store, refusing any insert holding the poisoned clientMsgID, and everything
/// while `down`.
struct Poisoned {
    inner: Arc<dyn MessageStore>,
    poison: &'static str,
    down: AtomicBool,
}

#[async_trait::async_trait]
impl MessageStore for Poisoned {
    async fn insert_messages(&self, msgs: &[StoredMsg]) -> StoreResult<u64> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Backend("connection refused".into()));
        }
        if msgs.iter().any(|m| m.msg.client_msg_id == self.poison) {
            return Err(StoreError::Backend("value too large for column".into()));
        }
        self.inner.insert_messages(msgs).await
    }
    async fn messages_by_seqs(&self, c: &str, seqs: &[i64]) -> StoreResult<Vec<MsgData>> {
        self.inner.messages_by_seqs(c, seqs).await
    }
    async fn messages_in_range(&self, c: &str, b: i64, e: i64, l: u32) -> StoreResult<Vec<MsgData>> {
        self.inner.messages_in_range(c, b, e, l).await
    }
    async fn latest_messages(&self, c: &[String]) -> StoreResult<HashMap<String, MsgData>> {
        self.inner.latest_messages(c).await
    }
    async fn existing_client_msg_ids(&self, c: &str, keys: &[(String, i64)]) -> StoreResult<HashMap<String, MsgData>> {
        self.inner.existing_client_msg_ids(c, keys).await
    }
    async fn existing_client_msg_ids_many(
        &self,
        keys: &[(String, String, i64)],
    ) -> StoreResult<HashSet<(String, String)>> {
        self.inner.existing_client_msg_ids_many(keys).await
    }
    async fn scan_chat_messages(
        &self,
        from: i64,
        to: i64,
        after: Option<&ScanPosition>,
        limit: u32,
    ) -> StoreResult<Vec<(ScanPosition, MsgData)>> {
        self.inner.scan_chat_messages(from, to, after, limit).await
    }
    async fn delete_messages_before(&self, t: i64) -> StoreResult<u64> {
        self.inner.delete_messages_before(t).await
    }
    async fn revoke(&self, c: &str, seq: i64, mark: &RevokeMark) -> StoreResult<bool> {
        self.inner.revoke(c, seq, mark).await
    }
    async fn delete_for_user(&self, c: &str, seqs: &[i64], u: &str) -> StoreResult<()> {
        self.inner.delete_for_user(c, seqs, u).await
    }
    async fn delete_physically(&self, c: &str, seqs: &[i64]) -> StoreResult<u64> {
        self.inner.delete_physically(c, seqs).await
    }
    async fn marks(&self, c: &str, b: i64, e: i64) -> StoreResult<HashMap<i64, MsgMarks>> {
        self.inner.marks(c, b, e).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_cannot_be_stored_goes_to_the_dead_letter_topic_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Stores::embedded(dir.path()).await.unwrap();
    let poisoned = Arc::new(Poisoned { inner: stores.messages.clone(), poison: "bad", down: AtomicBool::new(false) });
    stores.messages = poisoned.clone();
    let mut dead = stores.bus.subscribe(topic::DEAD_LETTER, "test").await.unwrap();
    let mut pushed = stores.bus.subscribe(topic::TO_PUSH, "test").await.unwrap();
    let transfer = openim_msgtransfer::Transfer::new(stores.clone(), 100);
    let stop = tokio_util::sync::CancellationToken::new();

    let batch = ["m1", "bad", "m2"].map(record).to_vec();
    assert!(transfer.handle(batch, &stop).await, "the batch completes");
    let stored = stores.messages.messages_in_range("si_a_b", 1, 100, 100).await.unwrap();
    let ids: Vec<&str> = stored.iter().map(|m| m.client_msg_id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2"]);
    let letters = dead.next_batch(10).await.unwrap().unwrap();
    assert_eq!(letters.len(), 1);
    let letter = MsgData::decode(letters[0].payload.as_ref()).unwrap();
    assert_eq!((letters[0].key.as_str(), letter.client_msg_id.as_str(), letter.seq), ("si_a_b", "bad", 0));
    let to_push = pushed.next_batch(10).await.unwrap().unwrap();
    assert_eq!(to_push.len(), 2, "the stored ones are pushed");

    // The next batch flows as usual.
    assert!(transfer.handle(vec![record("m3")], &stop).await);
    assert_eq!(stores.messages.messages_in_range("si_a_b", 1, 100, 100).await.unwrap().len(), 3);

    // An outage is no bad record: nothing is dead-lettered, the batch waits and then lands.
    poisoned.down.store(true, Ordering::Relaxed);
    let handle = {
        let transfer = Arc::new(transfer);
        let stop = stop.clone();
        let t = transfer.clone();
        tokio::spawn(async move { t.handle(vec![record("m4"), record("m5")], &stop).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(!handle.is_finished(), "waits for the store");
    poisoned.down.store(false, Ordering::Relaxed);
    assert!(tokio::time::timeout(std::time::Duration::from_secs(15), handle).await.unwrap().unwrap());
    assert_eq!(stores.messages.messages_in_range("si_a_b", 1, 100, 100).await.unwrap().len(), 5);
    let none = tokio::time::timeout(std::time::Duration::from_millis(300), dead.next_batch(10)).await;
    assert!(none.is_err() || none.unwrap().unwrap().is_none_or(|b| b.is_empty()), "nothing more is dead-lettered");
}
