//! Test helpers shared by the modules' tests: a real registry per test.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
        Self::start_with("")
    }

    /// A registry that, like Aliyun ACR Personal Edition, stores image manifests only: any
    /// other config media type gets `403 DENIED: unknown manifest class for …`.
    pub fn images_only() -> Self {
        Self::start_with("policy:\n  repository:\n    classes: [image]\n")
    }

    fn start_with(extra_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd (Debian apache2-utils; `cargo xtask setup images` installs it)");
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n{extra_config}",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", &dir.path().join("config.yml").to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package; `cargo xtask setup images` installs it)");
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
    config_for(&registries.iter().map(|r| r.host()).collect::<Vec<_>>())
}

/// A release configuration with a registry `provider<i>` per host, taking everything, retrying
/// quickly.
pub fn config_for(hosts: &[String]) -> ReleaseConfig {
    ReleaseConfig {
        source: "https://example.com/openim-rs".into(),
        licenses: "Apache-2.0".into(),
        image_prefix: "openim-".into(),
        registries: hosts
            .iter()
            .enumerate()
            .map(|(i, host)| release::Registry {
                name: format!("provider{i}"),
                repository: format!("{host}/openimsdk"),
                username_env: "UNUSED_USER".into(),
                password_env: "UNUSED_PASSWORD".into(),
                insecure: true,
                takes: crate::push::Takes::ALL.to_vec(),
                note: None,
                retry: crate::registry::Retry { tries: 4, base_ms: 20, max_wait_s: 5 },
            })
            .collect(),
    }
}

pub fn creds(_: &release::Registry) -> anyhow::Result<Option<(String, String)>> {
    Ok(Some((USER.into(), PASSWORD.into())))
}

/// One request as the fault proxy saw it.
pub struct Seen<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// What the proxy answers instead of the registry.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, with a `Retry-After` header if given, and this body.
    Status { code: u16, retry_after: Option<String>, body: String },
    /// The connection closed without an answer.
    Drop,
}

pub type Decide = Box<dyn FnMut(&Seen<'_>) -> Option<Fault> + Send>;

/// An HTTP proxy in front of a registry that answers some requests with faults (what `decide`
/// says) and forwards the rest, one request per connection.
pub struct FaultProxy {
    pub port: u16,
    pub decide: Arc<Mutex<Decide>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: u16, decide: Decide) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let decide = Arc::new(Mutex::new(decide));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, st) = (decide.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let d = d.clone();
                std::thread::spawn(move || {
                    let _ = proxy_one(conn, upstream, &d);
                });
            }
        });
        Self { port, decide, stop }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// From now on, `decide` decides.
    pub fn set(&self, decide: Decide) {
        *self.decide.lock().unwrap() = decide;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn proxy_one(mut conn: TcpStream, upstream: u16, decide: &Mutex<Decide>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut parts = head.first().map(|l| l.split(' ')).into_iter().flatten();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let fault = (decide.lock().unwrap())(&Seen { method: &method, path: &path });
    match fault {
        Some(Fault::Drop) => return Ok(()),
        Some(Fault::Status { code, retry_after, body }) => {
            let mut answer =
                format!("HTTP/1.1 {code} Fault\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            if let Some(r) = retry_after {
                answer.push_str(&format!("Retry-After: {r}\r\n"));
            }
            answer.push_str("Content-Type: application/json\r\n\r\n");
            answer.push_str(&body);
            return conn.write_all(answer.as_bytes());
        }
        None => {}
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    for line in &head {
        up.write_all(line.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    conn.write_all(&answer)
}
