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
