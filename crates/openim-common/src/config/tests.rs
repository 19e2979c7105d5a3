use std::sync::Mutex;

use super::*;

/// Environment variables are process-wide; tests that set them take turns.
static ENV: Mutex<()> = Mutex::new(());

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn defaults_load_without_a_directory() {
    let _g = ENV.lock().unwrap();
    let cfg = Config::load(None).unwrap();
    assert_eq!(cfg.share.secret, "openIM123");
    assert_eq!(cfg.api.listen.port(), 10002);
    assert_eq!(cfg.msggateway.max_message_bytes, 51200);
    assert_eq!(cfg.rpc_msg.listen.port(), 10130);
}

#[test]
fn files_then_environment_override_defaults() {
    let _g = ENV.lock().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "openim-api.yml", "listen: 127.0.0.1:9000\n");
    write(dir.path(), "share.yml", "secret: s1\nmulti_login:\n  policy: 4\n");
    let cfg = with_env(&[("OPENIM_SHARE__SECRET", "from-env"), ("OPENIM_RPC_MSG__LISTEN", "127.0.0.1:7000")], || {
        Config::load(Some(dir.path()))
    })
    .unwrap();
    assert_eq!(cfg.api.listen.port(), 9000);
    assert_eq!(cfg.share.secret, "from-env");
    assert_eq!(cfg.share.multi_login.policy, 4);
    assert_eq!(cfg.rpc_msg.listen.port(), 7000);
}

#[test]
fn errors_name_the_file_and_key() {
    let _g = ENV.lock().unwrap();
    let check = |file: &str, text: &str, expected: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), file, text);
        let err = Config::load(Some(dir.path())).unwrap_err().to_string();
        for needle in expected {
            assert!(err.contains(needle), "{file}: {text:?}: error {err:?} lacks {needle:?}");
        }
    };
    check("openim-api.yml", "lisen: 1.2.3.4:5\n", &["openim-api.yml", "lisen"]);
    check("openim-api.yml", "listen: not-an-address\n", &["openim-api.yml", "listen"]);
    check("share.yml", "multi_login:\n  policy: 9\n", &["share.yml", "multi_login.policy", "9"]);
    check("openim-msggateway.yml", "max_message_bytes: -1\n", &["openim-msggateway.yml", "max_message_bytes"]);
    check("opnim-api.yml", "listen: 1.2.3.4:5\n", &["opnim-api.yml", "unknown file"]);
    check("openim-msgtransfer.yml", "shards: 0\n", &["openim-msgtransfer", "shards", "0"]);
    check("openim-msgtransfer.yml", "shards: 65\n", &["openim-msgtransfer", "shards", "65"]);
    check("openim-msgtransfer.yml", "linger_ms: 1001\n", &["openim-msgtransfer", "linger_ms", "1001"]);
}

#[test]
fn env_prefix_follows_the_documented_rule() {
    assert_eq!(env_prefix("openim-rpc-msg"), "OPENIM_RPC_MSG__");
    assert_eq!(env_prefix("share"), "OPENIM_SHARE__");
    assert_eq!(env_prefix("openim-msggateway"), "OPENIM_MSGGATEWAY__");
}

#[test]
fn repository_config_directory_is_valid() {
    let _g = ENV.lock().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let cfg = Config::load(Some(&dir)).unwrap();
    assert_eq!(cfg.storage.backend, Backend::Embedded);
}

/// Runs `f` with the given variables set; figment's `Jail` restores the environment afterwards.
fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    let mut out = None;
    figment::Jail::expect_with(|jail| {
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        out = Some(f());
        Ok(())
    });
    out.expect("the jail ran the closure")
}

#[test]
fn multi_login_policies_follow_openim() {
    let check = |policy: u8, new: i32, existing: i32, expected: bool| {
        let m = MultiLogin { policy, max_num_one_end: 30 };
        assert_eq!(m.kicks(new, existing), expected, "policy {policy}: {new} over {existing}");
    };
    // 0: nobody is kicked (only the per-platform cap applies).
    check(0, 1, 1, false);
    // 1: same platform only.
    check(1, 1, 1, true);
    check(1, 1, 2, false);
    // 4: same class (iOS and Android are both mobile; Windows and Linux both desktop).
    check(4, 1, 2, true);
    check(4, 3, 7, true);
    check(4, 1, 5, false);
    // 5: desktops never kick or get kicked; every other platform shares one slot.
    check(5, 3, 3, false);
    check(5, 1, 3, false);
    check(5, 1, 5, true);
    check(5, 2, 9, true);
}

/// The shipped files are for trials: a production deployment with them stops, naming the key.
#[test]
fn production_refuses_published_and_weak_secrets() {
    let _g = ENV.lock().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let load = |vars: &[(&str, &str)]| {
        let mut all = vec![("OPENIM_STORAGE__BACKEND", "production")];
        all.extend_from_slice(vars);
        with_env(&all, || Config::load(Some(&shipped)))
    };
    let strong = "8c1f2a0e5b7d4c3f9a6e1d2b0c4f7a9e";
    let other = "0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c";
    let refused = |vars: &[(&str, &str)], needles: &[&str]| {
        let err = load(vars).unwrap_err().to_string();
        for n in needles {
            assert!(err.contains(n), "{vars:?}: {err:?} lacks {n:?}");
        }
    };
    refused(&[], &["share.yml", "`secret`", "published default", "OPENIM_SHARE__SECRET"]);
    refused(&[("OPENIM_SHARE__SECRET", "short-one")], &["`secret`", "shorter than 32"]);
    refused(&[("OPENIM_SHARE__SECRET", strong)], &["`token_key`", "is empty", "OPENIM_SHARE__TOKEN_KEY"]);
    refused(&[("OPENIM_SHARE__SECRET", strong), ("OPENIM_SHARE__TOKEN_KEY", strong)], &["`token_key`", "equals"]);
    let secrets = [("OPENIM_SHARE__SECRET", strong), ("OPENIM_SHARE__TOKEN_KEY", other)];
    refused(&secrets, &["mysql.yml", "`password`", "empty for a backend on another host", "OPENIM_MYSQL__PASSWORD"]);
    let mut v = secrets.to_vec();
    v.push(("OPENIM_MYSQL__PASSWORD", "openIM123"));
    refused(&v, &["mysql.yml", "`password`", "published default `openIM123`"]);
    v.push(("OPENIM_MYSQL__PASSWORD", ""));
    v.push(("OPENIM_MYSQL__ADDRESS", "[127.0.0.1:3306]"));
    refused(&v, &["redis.yml", "`password`"]);
    v.push(("OPENIM_REDIS__PASSWORD", "a-real-redis-password"));
    let cfg = load(&v).unwrap();
    assert_eq!(cfg.share.token_key, other);
    v.push(("OPENIM_MONGODB__URI", "mongodb://openim:openIM123@mongo:27017"));
    refused(&v, &["mongodb.yml", "`uri`"]);

    // Embedded mode (a trial) accepts the shipped files.
    assert!(Config::load(Some(&shipped)).unwrap().uses_shipped_admin_secret());
}
