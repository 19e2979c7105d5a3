//! Backend servers that tests start for themselves: a Kafka-protocol broker (tansu) per test,
//! so a test can stop and restart it, and an S3 server (s3s-fs). Each is killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker (Apache-Kafka-compatible, SQLite storage) on a free port.
pub struct Kafka {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    /// The `host:port` it tells clients to connect to; its own address unless set.
    advertised: Option<String>,
}

/// The tansu binary: `$OPENIM_TANSU`, else `tansu` on PATH, else where `cargo xtask setup kafka` installs it.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("OPENIM_TANSU") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("tansu")).find(|p| p.is_file()))
    {
        return p;
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/tools/tansu/bin/tansu")
}

impl Kafka {
    /// Starts a broker; panics with the reason if it cannot.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let port = free_port();
        let mut kafka = Self { child: None, dir, port, advertised: None };
        kafka.restart();
        kafka
    }

    /// Starts a broker on `port` that sends its clients to `advertised` (`host:port`), a front
    /// such as [`crate::tls::TlsProxy`] forwarding there.
    pub fn start_behind(port: u16, advertised: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let mut kafka = Self { child: None, dir, port, advertised: Some(advertised.to_owned()) };
        kafka.restart();
        kafka
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGKILL); its data stays for [`Kafka::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let bin = tansu_bin();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = self.advertised.as_ref().map_or_else(|| url.clone(), |a| format!("tcp://{a}"));
        // `OPENIM_TEST_BROKER_LOG=<dir>`: each broker's output goes to `<dir>/tansu-<port>.log`
        // (appended across restarts), for diagnosing a test; otherwise it is discarded.
        let log = || match std::env::var_os("OPENIM_TEST_BROKER_LOG") {
            Some(dir) => {
                let path = PathBuf::from(dir).join(format!("tansu-{}.log", self.port));
                let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
                Stdio::from(file.unwrap_or_else(|e| panic!("open the broker log {}: {e}", path.display())))
            }
            None => Stdio::null(),
        };
        // tansu reads `.env` from its working directory and resolves the database path
        // relative to it: run it in its own directory.
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(log())
            .stderr(log())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start the Kafka-protocol broker {} (install: cargo xtask setup kafka): {e}", bin.display())
            });
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("broker {} did not listen on {}", bin.display(), self.port));
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An S3 server (s3s-fs: S3 over a directory, checking SigV4 signatures, presigned URLs
/// included) on a free port, with one bucket.
pub struct S3Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// The s3s-fs binary: `$OPENIM_S3S_FS`, else `s3s-fs` on PATH, else where `cargo xtask setup s3` installs it.
pub fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("OPENIM_S3S_FS") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("s3s-fs")).find(|p| p.is_file()))
    {
        return p;
    }
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/tools/s3s-fs/bin/s3s-fs")
}

impl S3Server {
    /// Starts a server with the bucket `bucket`; panics with the reason if it cannot.
    pub fn start(bucket: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the S3 server");
        // s3s-fs keeps each bucket as a directory of its root.
        std::fs::create_dir(dir.path().join(bucket)).expect("create the bucket directory");
        let port = free_port();
        let (access_key, secret_key) = ("openim-test-key".to_owned(), format!("secret-{port}-{}", std::process::id()));
        let bin = s3s_fs_bin();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &access_key, "--secret-key", &secret_key])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start the S3 server {} (install: cargo xtask setup s3): {e}", bin.display()));
        let server = Self { child, _dir: dir, port, bucket: bucket.to_owned(), access_key, secret_key };
        wait_for_port(port, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("S3 server {} did not listen on {port}", bin.display()));
        server
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
/// Never the same port twice in one process: a port found free and released is not held, so
/// two calls could otherwise hand out one port to two servers of the same test.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a free port").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Option<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A TCP forwarder standing in for a backend server's address, so a test can take the backend
/// "down" (refuse and cut connections) and bring it back without touching the real server.
pub struct Proxy {
    pub port: u16,
    target: std::net::SocketAddr,
    /// Bound, never listening, for the proxy's whole life: while the proxy is down, connections
    /// to its port are refused, and the port cannot become some other socket's ephemeral port
    /// (which a port merely found free and released can, and then `up` could not bind it).
    _reserved: tokio::net::TcpSocket,
    accept: Option<tokio::task::JoinHandle<()>>,
}

/// A socket that may share its port with the proxy's other sockets (`SO_REUSEPORT`).
fn shared_port_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().expect("create a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.set_reuseport(true).expect("SO_REUSEPORT");
    socket
}

impl Proxy {
    /// A proxy for `target` on a free port, down until [`Proxy::up`].
    pub fn new(target: std::net::SocketAddr) -> Self {
        let reserved = shared_port_socket();
        reserved.bind(([127, 0, 0, 1], 0).into()).expect("bind a free port for the proxy");
        let port = reserved.local_addr().expect("the proxy's port").port();
        Self { port, target, _reserved: reserved, accept: None }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts accepting and forwarding.
    pub async fn up(&mut self) {
        self.down();
        let socket = shared_port_socket();
        socket
            .bind(([127, 0, 0, 1], self.port).into())
            .unwrap_or_else(|e| panic!("bind the proxy port {}: {e}", self.port));
        let listener = socket.listen(1024).unwrap_or_else(|e| panic!("listen on the proxy port {}: {e}", self.port));
        let target = self.target;
        self.accept = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every forwarding task.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Stops listening and cuts every forwarded connection.
    pub fn down(&mut self) {
        if let Some(task) = self.accept.take() {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}
