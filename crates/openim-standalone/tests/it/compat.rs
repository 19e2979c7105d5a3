//! Compatibility with a client not written here: the PyPI package `openim-sdk-core` (its own
//! WebSocket client, gob envelope, gzip, protobuf) logs in, sends from A, receives on B through
//! the push, and syncs by seq against our standalone server. The driver is
//! `tests/compat/python_sdk_roundtrip.py`; `cargo xtask setup python` installs the package into a virtualenv
//! (`tests/compat/setup_python_sdk.sh`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::stack::Stack;

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("OPENIM_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/openim-venv"));
    venv.join("bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_exchanges_and_syncs_messages() {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} is missing: run `bash tests/compat/setup_python_sdk.sh` (or `cargo xtask setup python`), or set OPENIM_PY_VENV",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/compat/python_sdk_roundtrip.py");
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--api", &format!("http://{}", s.server.api_addr)])
        .args(["--ws", &format!("ws://{}/msg_gateway", s.server.ws_addr)])
        .args(["--admin-secret", "openIM123", "--overall-timeout", "120"])
        // The SDK's own default interval. With the driver's 1 s pings, the SDK can lose a pong
        // that arrives before it records having sent the ping (a client-side race a loopback
        // server answers fast enough to hit); ping/pong is checked by our own tests instead.
        .args(["--heartbeat-interval", "24", "--no-heartbeat-check"])
        // `openim-cli` works too but spends ~33 s per command in the client: too slow for CI.
        .arg("--no-cli")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("the SDK run finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python SDK run failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("PASS python_sdk_roundtrip"), "{stdout}");
    s.stop().await;
}
