//! Backends over TLS (issue 16): each adapter connects to a real TLS endpoint with the
//! operator's CA (and client certificate where the server asks for one), and refuses a server
//! whose certificate does not chain to that CA. Redis and MariaDB speak TLS themselves; the
//! MongoDB-wire server and the Kafka-protocol broker stand behind a TLS front, as a managed
//! service's endpoint does.

use openim_storage::config::{KafkaConfig, MongoConfig, MysqlConfig, RedisConfig, SslMode, TlsConfig};
use openim_storage::kafka::KafkaBus;
use openim_storage::mongo::MongoMessages;
use openim_storage::mysql::MySqlStore;
use openim_storage::redis_store::RedisStore;
use openim_storage::{TokenStore as _, contract};
use openim_testkit::servers::{Kafka, free_port};
use openim_testkit::tls::{Certs, MariaDbTls, RedisTls, TlsProxy};

use crate::backends;

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn tls(certs: &Certs, ca: &std::path::Path, client_cert: bool) -> TlsConfig {
    TlsConfig {
        enabled: true,
        ca_file: path(ca),
        cert_file: if client_cert { path(&certs.client_cert) } else { String::new() },
        key_file: if client_cert { path(&certs.client_key) } else { String::new() },
    }
}

#[tokio::test]
async fn redis_over_tls_verifies_the_server_and_presents_a_client_certificate() {
    let certs = Certs::generate();
    let server = RedisTls::start(&certs);
    let cfg = |tls: TlsConfig| RedisConfig {
        address: vec![format!("localhost:{}", server.port)],
        key_prefix: format!("openim-test:{}:", backends::unique()),
        connect_timeout_secs: 2,
        tls,
        ..Default::default()
    };
    let good = cfg(tls(&certs, &certs.ca, true));
    assert_eq!(good.check(), Ok(()));
    let store = RedisStore::new(&good).unwrap();
    store.ping().await.expect("TLS with the CA and a client certificate");
    contract::tokens(&store).await;

    for (what, bad) in [
        ("a server of another CA", cfg(tls(&certs, &certs.other_ca, true))),
        ("no client certificate", cfg(tls(&certs, &certs.ca, false))),
        ("plain TCP", cfg(TlsConfig::default())),
    ] {
        let store = RedisStore::new(&bad).unwrap();
        let e = store.ping().await.expect_err(what);
        assert!(
            e.to_string().contains(&format!("localhost:{}", server.port)),
            "{what}: the error names the server: {e}"
        );
        assert!(store.token_state("nobody", 1, "t").await.is_err(), "{what}: nothing is read");
    }
}

#[tokio::test]
async fn mysql_over_tls_verifies_the_server_s_certificate_and_name() {
    let certs = Certs::generate();
    let server = MariaDbTls::start(&certs);
    let cfg = |host: &str, ssl_mode: SslMode, ca: &std::path::Path| MysqlConfig {
        address: vec![format!("{host}:{}", server.port)],
        username: "root".into(),
        database: "openim_tls".into(),
        connect_timeout_secs: 3,
        max_open_conn: 4,
        ssl_mode,
        ssl_ca: path(ca),
        ..Default::default()
    };
    let good = cfg("localhost", SslMode::VerifyIdentity, &certs.ca);
    assert_eq!(good.check(), Ok(()));
    let store = MySqlStore::connect(&good).await.expect("verified TLS to the server");
    contract::users(&store).await;
    // The server refuses plain connections, so this can only have gone over TLS.
    let plain = MySqlStore::connect(&cfg("localhost", SslMode::Disabled, &certs.ca)).await;
    assert!(plain.is_err(), "the server requires TLS");

    let wrong_ca = MySqlStore::connect(&cfg("localhost", SslMode::VerifyCa, &certs.other_ca)).await;
    let e = wrong_ca.err().expect("a server of another CA is refused").to_string();
    assert!(e.contains(&server.port.to_string()), "the error names the server: {e}");
    // The certificate names localhost and 127.0.0.1, not this address.
    let wrong_name = MySqlStore::connect(&cfg("127.0.0.2", SslMode::VerifyIdentity, &certs.ca)).await;
    assert!(wrong_name.is_err(), "a certificate for another name is refused");

    let missing_ca = cfg("localhost", SslMode::VerifyCa, std::path::Path::new(""));
    assert_eq!(missing_ca.check().map_err(|e| e.0), Err("ssl_ca".to_owned()));
}

/// MongoDB through a TLS front: the driver's TLS options, with and without the CA.
#[tokio::test]
async fn mongo_over_tls_verifies_the_server() {
    let Ok(uri) = std::env::var("OPENIM_TEST_MONGO_URL") else {
        eprintln!("SKIPPED: set OPENIM_TEST_MONGO_URL to run the MongoDB TLS test");
        return;
    };
    let upstream = uri
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .and_then(|h| std::net::ToSocketAddrs::to_socket_addrs(h).ok()?.next())
        .unwrap_or_else(|| panic!("a host:port in OPENIM_TEST_MONGO_URL {uri}"));
    let certs = Certs::generate();
    let front = TlsProxy::start(upstream, &certs, true).await;
    let cfg = |tls: TlsConfig| MongoConfig {
        uri: format!("mongodb://localhost:{}/?directConnection=true", front.port),
        database: "openim_tls".into(),
        connect_timeout_secs: 3,
        tls,
        ..Default::default()
    };
    let with_key = |ca: &std::path::Path| TlsConfig {
        enabled: true,
        ca_file: path(ca),
        cert_file: path(&certs.client_cert_and_key),
        key_file: String::new(),
    };
    let good = cfg(with_key(&certs.ca));
    assert_eq!(good.check(), Ok(()));
    let store = MongoMessages::connect_lazy(&good).await.unwrap();
    store.ping().await.expect("TLS with the CA and a client certificate");

    for (what, bad) in
        [("a server of another CA", cfg(with_key(&certs.other_ca))), ("plain TCP", cfg(TlsConfig::default()))]
    {
        let store = MongoMessages::connect_lazy(&bad).await.unwrap();
        assert!(store.ping().await.is_err(), "{what} is refused");
    }
    let split = cfg(tls(&certs, &certs.ca, true));
    assert_eq!(split.check().map_err(|e| e.0), Err("tls.key_file".to_owned()), "MongoDB takes one file");
}

/// Kafka over `SSL`: the broker (tansu) advertises its TLS front, so every connection librdkafka
/// makes, the bootstrap one and those to the partition leaders, goes through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_over_tls_verifies_the_broker_and_presents_a_client_certificate() {
    let certs = Certs::generate();
    let broker_port = free_port();
    let front = TlsProxy::start(([127, 0, 0, 1], broker_port).into(), &certs, true).await;
    let advertised = format!("localhost:{}", front.port);
    let _broker = Kafka::start_behind(broker_port, &advertised);
    let cfg = |tls: TlsConfig| KafkaConfig { tls, connect_timeout_secs: 3, ..crate::kafka::config(advertised.clone()) };
    let good = cfg(tls(&certs, &certs.ca, true));
    assert_eq!((good.check(), good.security_protocol()), (Ok(()), "SSL"));
    let bus = KafkaBus::new(&good).unwrap();
    bus.ping().await.expect("TLS with the CA and a client certificate");
    contract::bus(&bus).await;

    for (what, bad) in [
        ("a broker of another CA", cfg(tls(&certs, &certs.other_ca, true))),
        ("no client certificate", cfg(tls(&certs, &certs.ca, false))),
        ("plain TCP", cfg(TlsConfig::default())),
    ] {
        let e = KafkaBus::new(&bad).unwrap().ping().await.expect_err(what);
        assert!(e.to_string().contains(&advertised), "{what}: the error names the broker: {e}");
    }

    // SASL on top (tansu has no SASL, so only the settings are checked here).
    let sasl = KafkaConfig { username: "im".into(), sasl_mechanism: "SCRAM-SHA-512".into(), ..good.clone() };
    assert_eq!((sasl.check(), sasl.security_protocol()), (Ok(()), "SASL_SSL"));
    let unknown = KafkaConfig { sasl_mechanism: "GSSAPI".into(), ..sasl };
    assert_eq!(unknown.check().map_err(|e| e.0), Err("sasl_mechanism".to_owned()));
}
