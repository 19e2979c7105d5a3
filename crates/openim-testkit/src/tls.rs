//! TLS for backend tests: a throwaway CA with server and client certificates ([`Certs`]),
//! real servers started with them (Redis, MariaDB), and a TLS front for servers that cannot
//! speak TLS themselves ([`TlsProxy`]: SecantusDB, tansu), as a managed service's TLS endpoint
//! stands in front of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

use crate::servers::{free_port, wait_for_port};

/// PEM files of a CA, a server certificate for `localhost` and `127.0.0.1` signed by it, a
/// client certificate signed by it, and a second CA that signed nothing here.
pub struct Certs {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The client certificate followed by its key (MongoDB's `tlsCertificateKeyFile`).
    pub client_cert_and_key: PathBuf,
    /// A CA the server's certificate does not chain to: a client trusting only it must refuse.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("generate a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).expect("self-sign the CA"), key)
}

fn leaf(name: &str, sans: Vec<SanType>, ca: &rcgen::Certificate, ca_key: &KeyPair) -> (String, String) {
    let key = KeyPair::generate().expect("generate a key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("certificate parameters");
    params.subject_alt_names = sans;
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, ca, ca_key).expect("sign a certificate");
    (cert.pem(), key.serialize_pem())
}

impl Certs {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("a directory for certificates");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            path
        };
        let (ca_cert, ca_key) = ca("openim test CA");
        let server_sans = vec![
            SanType::DnsName("localhost".try_into().expect("a DNS name")),
            SanType::IpAddress([127, 0, 0, 1].into()),
        ];
        let (server_cert, server_key) = leaf("localhost", server_sans, &ca_cert, &ca_key);
        let (client_cert, client_key) = leaf("openim", Vec::new(), &ca_cert, &ca_key);
        let (other, _) = ca("another CA");
        Self {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            client_cert_and_key: write("client-and-key.pem", &format!("{client_cert}{client_key}")),
            other_ca: write("other-ca.pem", &other.pem()),
            _dir: dir,
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.server_cert)
            .expect("read the server certificate")
            .collect::<Result<_, _>>()
            .expect("parse the server certificate");
        let key = PrivateKeyDer::from_pem_file(&self.server_key).expect("read the server key");
        let builder = rustls::ServerConfig::builder();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&self.ca).expect("read the CA") {
                roots.add(cert.expect("parse the CA")).expect("trust the CA");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder.with_single_cert(chain, key).expect("the server certificate and key")
    }
}

/// Terminates TLS on a free port and forwards the plain bytes to `upstream`.
pub struct TlsProxy {
    pub port: u16,
    accept: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts accepting; `require_client_cert` refuses clients without a certificate of the CA.
    pub async fn start(upstream: SocketAddr, certs: &Certs, require_client_cert: bool) -> Self {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(certs.server_config(require_client_cert)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the TLS proxy");
        let port = listener.local_addr().expect("the TLS proxy's port").port();
        let accept = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    // A client that fails the handshake is dropped; the test sees its error.
                    let Ok(mut tls) = acceptor.accept(inbound).await else { return };
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, accept }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Redis server that speaks only TLS and requires a client certificate (Redis's default).
pub struct RedisTls {
    pub port: u16,
    _server: Killed,
}

impl RedisTls {
    pub fn start(certs: &Certs) -> Self {
        let port = free_port();
        let path = |p: &Path| p.display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--tls-cert-file", &path(&certs.server_cert)])
            .args(["--tls-key-file", &path(&certs.server_key), "--tls-ca-cert-file", &path(&certs.ca)])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (Debian's redis-server is built with TLS)");
        let server = Killed(child);
        wait_for_port(port, Duration::from_secs(10)).unwrap_or_else(|| panic!("redis-server did not listen on {port}"));
        Self { port, _server: server }
    }
}

/// A MariaDB server of its own (a fresh data directory) that refuses connections without TLS
/// (`require_secure_transport`); `root` has no password.
pub struct MariaDbTls {
    pub port: u16,
    _server: Killed,
    _dir: tempfile::TempDir,
}

impl MariaDbTls {
    pub fn start(certs: &Certs) -> Self {
        let dir = tempfile::tempdir().expect("a data directory");
        let data = dir.path().join("data");
        let user = if is_root() { "root".to_owned() } else { std::env::var("USER").unwrap_or_default() };
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db", &format!("--user={user}")])
            .output()
            .expect("run mariadb-install-db");
        assert!(install.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&install.stderr));
        let port = free_port();
        let file = |p: &Path| p.display().to_string();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .args([format!("--port={port}"), "--bind-address=127.0.0.1".into(), format!("--user={user}")])
            .args(["--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .arg(format!("--ssl-ca={}", file(&certs.ca)))
            .arg(format!("--ssl-cert={}", file(&certs.server_cert)))
            .arg(format!("--ssl-key={}", file(&certs.server_key)))
            .arg("--require-secure-transport=ON")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let server = Killed(child);
        wait_for_port(port, Duration::from_secs(30)).unwrap_or_else(|| panic!("mariadbd did not listen on {port}"));
        Self { port, _server: server, _dir: dir }
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
