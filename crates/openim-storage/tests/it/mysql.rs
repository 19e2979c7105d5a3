//! The storage contract against a real MariaDB/MySQL server.

use std::sync::Arc;

use openim_storage::contract;
use openim_storage::mysql::MySqlStore;

use crate::backends;

async fn store() -> Arc<MySqlStore> {
    let cfg = backends::mysql();
    match MySqlStore::connect(&cfg).await {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("MariaDB/MySQL at {:?} is needed for this test (set OPENIM_TEST_MYSQL): {e}", cfg.address),
    }
}

#[tokio::test]
async fn mysql_users() {
    contract::users(&*store().await).await;
}

#[tokio::test]
async fn mysql_friends() {
    contract::friends(&*store().await).await;
}

#[tokio::test]
async fn mysql_friend_requests() {
    let s = store().await;
    contract::friend_requests(&*s, &*s).await;
}

#[tokio::test]
async fn mysql_blacks() {
    contract::blacks(&*store().await).await;
}

#[tokio::test]
async fn mysql_groups() {
    contract::groups(&*store().await).await;
}

/// The membership cache as production runs it: MariaDB behind Redis.
#[tokio::test]
async fn cached_groups_over_mysql_and_redis() {
    use openim_storage::group_cache::CachedGroups;
    let s = store().await;
    let redis = Arc::new(openim_storage::redis_store::RedisStore::new(&backends::redis(&backends::unique())).unwrap());
    let cached = CachedGroups::new(s.clone(), redis);
    contract::groups(&cached).await;
    contract::group_requests(&cached).await;
    contract::group_cache(&cached, &*s).await;
}

#[tokio::test]
async fn mysql_group_requests() {
    contract::group_requests(&*store().await).await;
}

#[tokio::test]
async fn mysql_conversations() {
    contract::conversations(&*store().await).await;
}

#[tokio::test]
async fn mysql_messages() {
    contract::messages(&*store().await).await;
}

#[tokio::test]
async fn mysql_resends_found_by_client_msg_id() {
    contract::resends_found_by_client_msg_id(&*store().await).await;
}

#[tokio::test]
async fn mysql_message_marks() {
    contract::message_marks(&*store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_seqs() {
    contract::seqs(store().await).await;
}

#[tokio::test]
async fn mysql_tokens() {
    contract::tokens(&*store().await).await;
}

#[tokio::test]
async fn mysql_migrations_are_idempotent() {
    let cfg = backends::mysql();
    let a = MySqlStore::connect(&cfg).await.unwrap();
    // A second process starting against the migrated database changes nothing and works.
    let b = MySqlStore::connect(&cfg).await.unwrap();
    a.ping().await.unwrap();
    b.ping().await.unwrap();
}

#[tokio::test]
async fn mysql_down_is_a_clear_error_not_a_hang() {
    let mut cfg = backends::mysql();
    cfg.address = vec!["127.0.0.1:1".into()];
    cfg.connect_timeout_secs = 1;
    let store = MySqlStore::connect_lazy(&cfg).expect("a lazy store needs no server");
    let err = store.ping().await.expect_err("nothing listens on port 1");
    assert!(err.to_string().contains("127.0.0.1:1"), "the error names the server: {err}");
}

#[tokio::test]
async fn mysql_user_commands() {
    contract::user_commands(&*store().await).await;
}

#[tokio::test]
async fn mysql_objects() {
    contract::objects(&*store().await).await;
}

#[tokio::test]
async fn mysql_third() {
    contract::third(&*store().await).await;
}

#[tokio::test]
async fn mysql_subscriptions() {
    contract::subscriptions(&*store().await).await;
}

#[tokio::test]
async fn mysql_message_scan() {
    contract::message_scan(&*store().await).await;
}
