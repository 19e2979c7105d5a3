//! Test helpers shared by the modules' tests: a real registry per test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::release::{self, ReleaseConfig};

pub const USER: &str = "pusher";
pub const PASSWORD: &str = "s3cret-pass";

/// A registry process on a free port, with basic auth, removed on drop.
pub struct TestRegistry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd (Debian apache2-utils; .ci/run installs it)");
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", &dir.path().join("config.yml").to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port, _dir: dir }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn config(registries: &[&TestRegistry]) -> ReleaseConfig {
    ReleaseConfig {
        source: "https://example.com/openim-rs".into(),
        licenses: "Apache-2.0".into(),
        image_prefix: "openim-".into(),
        registries: registries
            .iter()
            .enumerate()
            .map(|(i, r)| release::Registry {
                name: format!("provider{i}"),
                repository: format!("{}/openimsdk", r.host()),
                username_env: "UNUSED_USER".into(),
                password_env: "UNUSED_PASSWORD".into(),
                insecure: true,
            })
            .collect(),
    }
}

pub fn creds(_: &release::Registry) -> anyhow::Result<Option<(String, String)>> {
    Ok(Some((USER.into(), PASSWORD.into())))
}
