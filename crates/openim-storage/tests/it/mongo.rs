//! The message-store contract against a MongoDB-wire server named by `OPENIM_TEST_MONGO_URL`
//! (`cargo xtask ci` starts one; the GitHub workflow uses a `mongo` service container). Without the
//! variable the tests say so and do nothing.

use openim_storage::config::MongoConfig;
use openim_storage::contract;
use openim_storage::mongo::MongoMessages;

async fn store() -> Option<MongoMessages> {
    let Ok(uri) = std::env::var("OPENIM_TEST_MONGO_URL") else {
        eprintln!(
            "SKIPPED: set OPENIM_TEST_MONGO_URL (e.g. mongodb://127.0.0.1:27017/?directConnection=true) to run the MongoDB tests"
        );
        return None;
    };
    let cfg = MongoConfig { uri, database: "openim_test".into(), ..Default::default() };
    let store = MongoMessages::connect_lazy(&cfg).await.expect("a client for OPENIM_TEST_MONGO_URL");
    store.ping().await.unwrap_or_else(|e| panic!("OPENIM_TEST_MONGO_URL is set but the server does not answer: {e}"));
    Some(store)
}

#[tokio::test]
async fn mongo_messages() {
    if let Some(store) = store().await {
        contract::messages(&store).await;
    }
}

#[tokio::test]
async fn mongo_resends_found_by_client_msg_id() {
    if let Some(store) = store().await {
        contract::resends_found_by_client_msg_id(&store).await;
    }
}

#[tokio::test]
async fn mongo_message_marks() {
    if let Some(store) = store().await {
        contract::message_marks(&store).await;
    }
}

#[tokio::test]
async fn mongo_message_scan() {
    if let Some(store) = store().await {
        contract::message_scan(&store).await;
    }
}
