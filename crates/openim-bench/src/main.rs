//! `openim-bench`: opens N WebSocket clients against a running server (the standalone one, or a
//! distributed deployment), pairs them (client i writes to client i+1), and has every client send
//! single-chat text messages as fast as the server acknowledges them, with a bounded number in
//! flight. Each message carries its send instant; the receiver's push handler records
//! send-to-receive latency. Prints messages per second (delivered) and latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use futures::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use openim_proto::constants::{content, req, session};
use openim_proto::pb::sdkws::MsgData;
use openim_proto::ws::{Encoding, WsRequest, WsResponse, gunzip, gzip};
use prost::Message as _;
use serde_json::json;
use std::sync::Mutex;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMsg;

mod ceiling;
mod churn;

/// The gateway client `i` connects to: round-robin over `--ws`, so with two gateways every
/// message crosses from one to the other.
fn gateway(ws: &[String], i: usize) -> &str {
    ws[i % ws.len()].trim_end_matches('/')
}

#[derive(Parser, Clone)]
#[command(about = "Single-chat throughput and latency benchmark for an OpenIM-compatible server")]
struct Args {
    /// REST base URL.
    #[arg(long, default_value = "http://127.0.0.1:10002")]
    api: String,
    /// WebSocket URL; several (comma-separated) spread the clients over several gateways.
    #[arg(long, default_value = "ws://127.0.0.1:10001", value_delimiter = ',')]
    ws: Vec<String>,
    /// Connected clients.
    #[arg(long, short = 'n', default_value_t = 1000)]
    clients: usize,
    /// How long to send, in seconds (after all clients are connected).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds at the start that count for neither throughput nor latency (first conversations
    /// created, caches filled).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Unacknowledged messages each client may have in flight (closed loop only: an open loop
    /// sends on schedule whatever the acknowledgements do).
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Total messages per second to offer, spread evenly over the clients (open loop: sends keep
    /// their schedule, and latency counts from the scheduled time, so a server that falls behind
    /// shows as latency, not as a slower sender); 0 sends as fast as acknowledgements allow
    /// (closed loop, for maximum throughput).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Gzip frames (`compression=gzip`), as the Go and Python SDKs do.
    #[arg(long)]
    gzip: bool,
    /// Use the JS SDK's JSON envelope instead of gob.
    #[arg(long)]
    json: bool,
    /// Put every client in one group and send group messages instead of single-chat ones
    /// (each message is delivered to every other member).
    #[arg(long)]
    group: bool,
    /// Only connect and hold the connections (no messages), reporting the server's memory per
    /// connection; needs `--server-pid`.
    #[arg(long)]
    idle: bool,
    /// The server's process ID, to read its resident memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// First run the same scenario against a relay server (`openim standalone --bench-relay`,
    /// started here on free loopback ports and stopped after): the same gateway, clients and
    /// envelope with no pipeline behind them (no send RPC, bus, seq, store or push). Its figures
    /// are this machine's ceiling; the server's are then reported as fractions of it.
    #[arg(long)]
    ceiling: bool,
    /// The `openim` binary `--ceiling` starts (default: the one beside this program).
    #[arg(long)]
    openim: Option<std::path::PathBuf>,
    /// Administrator secret (a production deployment refuses the published default).
    #[arg(long, env = "OPENIM_SHARE__SECRET", default_value = "openIM123")]
    secret: String,
    /// A smoke test of a deployment: fail (exit 1) unless messages were acknowledged without
    /// errors and every one was delivered.
    #[arg(long)]
    check: bool,
    /// Time member changes (join, quit, a member's info) in a group of `--members` instead of
    /// sending messages (see `churn.rs`).
    #[arg(long)]
    churn: bool,
    /// Members of the `--churn` group.
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// Changes of each kind `--churn` times, per group.
    #[arg(long, default_value_t = 200)]
    ops: usize,
}

struct Stats {
    sent: AtomicU64,
    /// Open loop: sends that left more than [`BEHIND`] after their scheduled time (the load
    /// generator itself could not keep up).
    behind: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    /// Refused sends by error code, and the first message of each code.
    refusals: Mutex<std::collections::BTreeMap<i32, (u64, String)>>,
    received: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    if args.churn {
        let admin = admin_token(&http, &args.api, &args.secret).await?;
        return churn::run(&args, &http, &admin).await;
    }
    if args.idle {
        return idle(&args, &http).await;
    }
    let ceiling = if args.ceiling {
        let relay = ceiling::RelayServer::start(args.openim.as_deref()).await?;
        eprintln!("bench: the ceiling first: the same run against a relay server ({})", relay.ws);
        let report = scenario(&args, &http, &relay.api, std::slice::from_ref(&relay.ws), "relay").await;
        relay.stop().await;
        let report = report.context("the run against the relay server")?;
        println!("ceiling (relay: gateway only, no pipeline):");
        report.print();
        Some(report)
    } else {
        None
    };
    let report = scenario(&args, &http, &args.api, &args.ws, "server").await?;
    if ceiling.is_some() {
        println!("server:");
    }
    report.print();
    if let Some(c) = &ceiling {
        println!(
            "of the ceiling: throughput {:.0}% ({:.0} of {:.0} deliveries/s); p50 {:.1} ms against {:.1} ms, p99 {:.1} ms against {:.1} ms",
            100.0 * report.throughput / c.throughput.max(1.0),
            report.throughput,
            c.throughput,
            report.p50_ms,
            c.p50_ms,
            report.p99_ms,
            c.p99_ms
        );
    }
    if args.check {
        let Report { acked, errors, delivered, expected, .. } = report;
        if acked == 0 || errors > 0 || delivered < expected {
            bail!("check failed: {acked} acknowledged, {errors} refused, {delivered} of {expected} delivered");
        }
        println!("check passed: {acked} acknowledged, all {delivered} delivered");
    }
    Ok(())
}

async fn admin_token(http: &reqwest::Client, api: &str, secret: &str) -> anyhow::Result<String> {
    let admin = post(http, api, "", "/auth/get_admin_token", json!({"secret": secret, "userID": "imAdmin"})).await?;
    Ok(admin["token"].as_str().context("admin token")?.to_owned())
}

/// Registers `users` and answers their tokens.
async fn register(http: &reqwest::Client, api: &str, admin: &str, users: &[String]) -> anyhow::Result<Vec<String>> {
    eprintln!("bench: registering {} users", users.len());
    for chunk in users.chunks(500) {
        let list: Vec<_> = chunk.iter().map(|u| json!({"userID": u, "nickname": u})).collect();
        post(http, api, admin, "/user/user_register", json!({ "users": list })).await?;
    }
    let mut tokens = Vec::with_capacity(users.len());
    for u in users {
        let t = post(http, api, admin, "/auth/get_user_token", json!({"userID": u, "platformID": 1})).await?;
        tokens.push(t["token"].as_str().context("user token")?.to_owned());
    }
    Ok(tokens)
}

/// Connects a client for each user, round-robin over the gateways `ws`.
async fn connect(args: &Args, ws: &[String], users: &[String], tokens: &[String]) -> anyhow::Result<Vec<Socket>> {
    eprintln!("bench: connecting {} clients", users.len());
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(users.len());
    for (i, u) in users.iter().enumerate() {
        let token = &tokens[i];
        let mut url = format!("{}/?sendID={u}&token={token}&platformID=1&operationID=bench", gateway(ws, i));
        if args.json {
            url.push_str("&sdkType=js");
        }
        if args.gzip {
            url.push_str("&compression=gzip");
        }
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), false)
            .await
            .with_context(|| format!("connect client {i}"))?;
        sockets.push(socket);
        if (i + 1) % 250 == 0 {
            eprintln!("bench: {} connected", i + 1);
        }
    }
    eprintln!("bench: {} clients connected in {:.1?}", sockets.len(), started.elapsed());
    Ok(sockets)
}

/// The clients' WebSocket settings. tungstenite zeroes its whole read buffer (128 KiB by
/// default) before each read: at a group's 60,000 frames a second that alone took a core of the
/// load generator. Frames larger than the buffer take several reads.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// `--idle`: the server's memory per held connection.
async fn idle(args: &Args, http: &reqwest::Client) -> anyhow::Result<()> {
    let Some(pid) = args.server_pid else { bail!("--idle needs --server-pid") };
    let admin = admin_token(http, &args.api, &args.secret).await?;
    let run = format!("b{}", std::process::id());
    let users: Vec<String> = (0..args.clients).map(|i| format!("{run}-{i}")).collect();
    let tokens = register(http, &args.api, &admin, &users).await?;
    let before = rss_kib(pid)?;
    let sockets = connect(args, &args.ws, &users, &tokens).await?;
    // Let the server settle (connection tasks parked, buffers at rest).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / sockets.len() as f64;
    println!(
        "idle: clients={} server_rss_before={before}KiB after={after}KiB per_connection={:.0}B ({:.1} KiB)",
        sockets.len(),
        per_conn,
        per_conn / 1024.0
    );
    Ok(())
}

/// What one run measured.
struct Report {
    header: String,
    sent: u64,
    acked: u64,
    errors: u64,
    /// Refused sends by error code, with the first message of each.
    refusals: std::collections::BTreeMap<i32, (u64, String)>,
    behind: u64,
    delivered: u64,
    /// Deliveries the acknowledged sends call for.
    expected: u64,
    /// Deliveries per second in the measured window.
    throughput: f64,
    /// Acknowledged sends per second in the measured window.
    acked_rate: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Report {
    fn print(&self) {
        println!("{}", self.header);
        println!(
            "sent={} acked={} errors={} unacked={} delivered={} sent_behind_schedule={}",
            self.sent,
            self.acked,
            self.errors,
            self.sent.saturating_sub(self.acked + self.errors),
            self.delivered,
            self.behind
        );
        for (code, (n, msg)) in &self.refusals {
            println!("refused: {n} with errCode {code} (the first said: {msg})");
        }
        println!(
            "throughput={:.0} deliveries/s end to end ({:.0} msg/s sent and acknowledged)",
            self.throughput, self.acked_rate
        );
        println!(
            "latency send->receive: p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        if self.delivered < self.expected {
            println!("late={} deliveries (not delivered within 2 s after the run)", self.expected - self.delivered);
        }
    }
}

/// One run: register and connect the clients on `api`/`ws`, send for `--duration`, measure.
async fn scenario(
    args: &Args,
    http: &reqwest::Client,
    api: &str,
    ws: &[String],
    label: &str,
) -> anyhow::Result<Report> {
    let admin = admin_token(http, api, &args.secret).await?;
    let run = format!("b{}", std::process::id());
    let users: Vec<String> = (0..args.clients).map(|i| format!("{run}-{i}")).collect();
    let tokens = register(http, api, &admin, &users).await?;
    let sockets = connect(args, ws, &users, &tokens).await?;
    let group_id = format!("{run}-group");
    if args.group {
        eprintln!("bench: creating group {group_id} with {} members", users.len());
        post(
            http,
            api,
            &admin,
            "/group/create_group",
            json!({"ownerUserID": users[0], "memberUserIDs": users[1..], "adminUserIDs": [], "groupInfo": {"groupID": group_id, "groupName": "bench", "groupType": 2}}),
        )
        .await?;
    }
    let stats = Arc::new(Stats {
        sent: AtomicU64::new(0),
        behind: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        refusals: Mutex::default(),
        received: AtomicU64::new(0),
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(args.duration);
    let encoding = if args.json { Encoding::Json } else { Encoding::Gob };
    let mut tasks = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let me = users[i].clone();
        let peer = if args.group { group_id.clone() } else { users[(i + 1) % users.len()].clone() };
        tasks.push(tokio::spawn(client(socket, me, peer, args.clone(), encoding, stats.clone(), epoch, deadline)));
    }
    let mut last = 0;
    let mut at_warmup = (0, 0);
    let mut t = tokio::time::interval(Duration::from_secs(1));
    t.tick().await;
    while Instant::now() < deadline {
        t.tick().await;
        let r = stats.received.load(Ordering::Relaxed);
        eprintln!("bench: {label} {:>3.0}s  {:>8} deliveries/s", epoch.elapsed().as_secs_f64(), r - last);
        last = r;
        if epoch.elapsed().as_secs() == args.warmup.min(args.duration.saturating_sub(1)) {
            at_warmup = (r, stats.acked.load(Ordering::Relaxed));
        }
    }
    let measured = epoch.elapsed().as_secs_f64() - args.warmup.min(args.duration.saturating_sub(1)) as f64;
    let received_in_window = stats.received.load(Ordering::Relaxed) - at_warmup.0;
    let acked_in_window = stats.acked.load(Ordering::Relaxed) - at_warmup.1;
    // Give in-flight messages a moment to arrive, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for t in &tasks {
        t.abort();
    }
    let h = stats.latency_us.lock().expect("no reader panics holding it");
    let header = format!(
        "clients={} rate={} envelope={} gzip={} in_flight={} measured={:.1}s after {}s warm-up",
        args.clients,
        if args.rate == 0 { "max".to_owned() } else { format!("{}/s", args.rate) },
        if args.json { "json" } else { "gob" },
        args.gzip,
        if args.rate == 0 { args.in_flight.to_string() } else { "unbounded (open loop)".to_owned() },
        measured,
        args.warmup
    );
    let (sent, acked, errors) =
        (stats.sent.load(Ordering::Relaxed), stats.acked.load(Ordering::Relaxed), stats.errors.load(Ordering::Relaxed));
    let fanout = if args.group { args.clients as u64 - 1 } else { 1 };
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        header,
        sent,
        acked,
        errors,
        refusals: std::mem::take(&mut *stats.refusals.lock().expect("no reader panics holding it")),
        behind: stats.behind.load(Ordering::Relaxed),
        delivered: stats.received.load(Ordering::Relaxed),
        expected: sent.saturating_sub(errors) * fanout,
        throughput: received_in_window as f64 / measured,
        acked_rate: acked_in_window as f64 / measured,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: h.max() as f64 / 1000.0,
    })
}

async fn post(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let resp: serde_json::Value = http
        .post(format!("{api}{path}"))
        .header("operationID", "bench")
        .header("token", token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?
        .json()
        .await?;
    if resp["errCode"] != 0 {
        bail!("POST {path}: {resp}");
    }
    Ok(resp.get("data").cloned().unwrap_or_default())
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[allow(clippy::too_many_arguments)]
async fn client(
    socket: Socket,
    me: String,
    peer: String,
    args: Args,
    encoding: Encoding,
    stats: Arc<Stats>,
    epoch: Instant,
    deadline: Instant,
) {
    let (mut sink, mut stream) = socket.split();
    let window = Arc::new(Semaphore::new(args.in_flight));
    let gz = args.gzip;
    let warmup = Duration::from_secs(args.warmup);
    let reader_stats = stats.clone();
    let reader_window = window.clone();
    let reader_me = me.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let WsMsg::Binary(b) = frame else { continue };
            let plain: std::borrow::Cow<'_, [u8]> =
                if gz { gunzip(&b, 1 << 22).unwrap_or_default().into() } else { (&b[..]).into() };
            let Ok(resp) = WsResponse::decode(encoding, &plain) else { continue };
            match resp.req_identifier {
                req::SEND_MSG => {
                    if resp.err_code == 0 {
                        reader_stats.acked.fetch_add(1, Ordering::Relaxed);
                    } else {
                        reader_stats.errors.fetch_add(1, Ordering::Relaxed);
                        let mut refusals = reader_stats.refusals.lock().expect("no reader panics holding it");
                        refusals.entry(resp.err_code).or_insert_with(|| (0, resp.err_msg.clone())).0 += 1;
                    }
                    reader_window.add_permits(1);
                }
                req::PUSH_MSG => {
                    let Ok(push) = PushRead::decode(resp.data.as_ref()) else { continue };
                    let now = epoch.elapsed().as_micros() as u64;
                    let warmup_us = warmup.as_micros() as u64;
                    let mut h = reader_stats.latency_us.lock().expect("no reader panics holding it");
                    // The sender's own connection gets its messages back (as OpenIM does); only
                    // deliveries to other users count, and only the benchmark's own messages
                    // (not the group's tips, "X joined").
                    let theirs = |m: &&MsgRead| m.send_id != reader_me && m.content_type == content::TEXT;
                    for m in push.msgs.values().flat_map(|p| &p.msgs).filter(theirs) {
                        if let Ok(sent_at) = m.ex.parse::<u64>()
                            && sent_at >= warmup_us
                        {
                            let _ = h.record(now.saturating_sub(sent_at).max(1));
                        }
                        reader_stats.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
    });
    let body = serde_json::to_vec(&json!({"content": "benchmark message"})).unwrap_or_default();
    let mut n = 0u64;
    // Open loop: each client sends at rate/clients per second, phases spread so the clients
    // do not fire in lockstep.
    let mut ticker = (args.rate > 0).then(|| {
        let period = Duration::from_secs_f64(args.clients as f64 / args.rate as f64);
        let offset = period.mul_f64(rand_fraction(&me));
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    while Instant::now() < deadline {
        // The time the message counts from: its slot in the schedule (open loop), else now.
        let sent_at = match ticker.as_mut() {
            Some(t) => {
                let slot = t.tick().await.into_std();
                // A client's next slot can come up to a period after the last check (2 s for a
                // 1,000-member group at 500 msg/s): past the end, it is not sent.
                if slot >= deadline {
                    break;
                }
                if slot.elapsed() > BEHIND {
                    stats.behind.fetch_add(1, Ordering::Relaxed);
                }
                slot
            }
            None => {
                let Ok(permit) = window.acquire().await else { break };
                permit.forget();
                Instant::now()
            }
        };
        n += 1;
        let msg = MsgData {
            send_id: me.clone(),
            recv_id: if args.group { String::new() } else { peer.clone() },
            group_id: if args.group { peer.clone() } else { String::new() },
            client_msg_id: format!("{me}-{n}"),
            session_type: if args.group { session::READ_GROUP_CHAT } else { session::SINGLE_CHAT },
            msg_from: 100,
            content_type: content::TEXT,
            content: body.clone(),
            sender_platform_id: 1,
            ex: sent_at.saturating_duration_since(epoch).as_micros().to_string(),
            ..Default::default()
        };
        let frame = WsRequest {
            req_identifier: req::SEND_MSG,
            send_id: me.clone(),
            operation_id: String::new(),
            msg_incr: format!("{me}_{n}"),
            data: msg.encode_to_vec().into(),
            ..Default::default()
        }
        .encode(encoding);
        let frame = if gz { gzip(&frame) } else { frame };
        if sink.send(WsMsg::Binary(frame.into())).await.is_err() {
            break;
        }
        stats.sent.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), reader).await;
}

/// What the load generator reads of a push frame (`sdkws.PushMessages`; prost skips the other
/// fields without decoding them). A 1,000-member group delivers half a million messages a
/// second: decoding every field of each would take CPU from the server beside it.
#[derive(Clone, PartialEq, prost::Message)]
struct PushRead {
    #[prost(map = "string, message", tag = "1")]
    msgs: std::collections::HashMap<String, PullRead>,
}

/// `sdkws.PullMsgs`, its messages only.
#[derive(Clone, PartialEq, prost::Message)]
struct PullRead {
    #[prost(message, repeated, tag = "1")]
    msgs: Vec<MsgRead>,
}

/// The fields of `sdkws.MsgData` the latency count needs (same tags).
#[derive(Clone, PartialEq, prost::Message)]
struct MsgRead {
    #[prost(string, tag = "1")]
    send_id: String,
    #[prost(int32, tag = "11")]
    content_type: i32,
    #[prost(string, tag = "23")]
    ex: String,
}

/// How late after its slot an open-loop send may leave before it counts as behind schedule.
const BEHIND: Duration = Duration::from_millis(10);

/// A number in [0, 1) derived from a name, to spread the clients' send phases.
fn rand_fraction(name: &str) -> f64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}
