//! `--ceiling`: a relay server (`openim standalone --bench-relay`) started for one run, on free
//! loopback ports and a data directory of its own, and stopped after it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub struct RelayServer {
    pub api: String,
    pub ws: String,
    child: tokio::process::Child,
    dir: PathBuf,
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?.local_addr()?.port())
}

impl RelayServer {
    /// Starts `openim` (by default the binary beside this one) in relay mode and waits until its
    /// REST port answers.
    pub async fn start(openim: Option<&Path>) -> anyhow::Result<Self> {
        let binary = match openim {
            Some(p) => p.to_owned(),
            None => std::env::current_exe().context("find this program")?.with_file_name("openim"),
        };
        if !binary.is_file() {
            bail!("--ceiling starts {}, which does not exist: build it or name it with --openim", binary.display());
        }
        let dir = std::env::temp_dir().join(format!("openim-bench-relay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let (ws_port, api_port, admin_port) = (free_port()?, free_port()?, free_port()?);
        let log = std::fs::File::create(dir.join("relay.log"))
            .with_context(|| format!("create {}/relay.log", dir.display()))?;
        let child = tokio::process::Command::new(&binary)
            .args(["standalone", "--bench-relay"])
            .env("OPENIM_STORAGE__DATA_DIR", dir.join("data"))
            .env("OPENIM_MSGGATEWAY__LISTEN", format!("127.0.0.1:{ws_port}"))
            .env("OPENIM_API__LISTEN", format!("127.0.0.1:{api_port}"))
            .env("OPENIM_API__ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            // The machine's ceiling, not the per-user send limit's (50 a second by default: a
            // thousand clients would meet it at 50,000 msg/s).
            .env("OPENIM_MSGGATEWAY__SEND_RATE_PER_SEC", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let server =
            Self { api: format!("http://127.0.0.1:{api_port}"), ws: format!("ws://127.0.0.1:{ws_port}"), child, dir };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if http.get(format!("{}/healthz", self.api)).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        bail!(
            "the relay server did not answer on {} within 30 s; the end of its log:\n{}",
            self.api,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// Stops the server and removes its data.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
