//! Runs the storage contract against the embedded adapters.

use std::sync::Arc;

use openim_storage::{Stores, contract, memory, sqlite::SqliteStore};

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
async fn sqlite_groups() {
    let (_d, s) = sqlite().await;
    contract::groups(&*s).await;
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
