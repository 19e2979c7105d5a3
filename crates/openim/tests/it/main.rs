//! Every service as its own OS process (the real `openim` binary), on the embedded backends shared
//! through one SQLite database: two users exchange messages through the gateway process.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openim_proto::constants::req;
use openim_proto::pb::sdkws;
use openim_proto::ws::Encoding;
use openim_testkit::{Client, Rest, text_content};
use prost::Message as _;

mod distributed;
mod sdk;

use openim_testkit::servers::free_port;

/// Child processes, killed when dropped.
struct Cluster(Vec<(String, Child)>);

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `openim healthcheck [--live] <service>` with `env`: whether it exited 0, and what it printed.
fn healthcheck<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>, service: &str, live: bool) -> (bool, String) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openim"));
    cmd.args(["--config", config, "healthcheck", service]).envs(env);
    if live {
        cmd.arg("--live");
    }
    let out = cmd.output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => (true, said),
        Some(1) => (false, said),
        other => panic!("healthcheck {service} exited with {other:?} (0 or 1 expected): {said}"),
    }
}

fn wait_for_http(url: &str, cluster: &mut Cluster) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(url).is_ok() {
            return;
        }
        for (name, c) in &mut cluster.0 {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("{name} exited early: {status}");
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_as_separate_processes_deliver_messages() {
    let dir = tempfile::tempdir().unwrap();
    let ports: HashMap<&str, u16> = ["api", "api_admin", "ws", "ws_admin", "gw_rpc", "transfer", "push", "cron"]
        .into_iter()
        .chain(["auth", "user", "friend", "group", "conversation", "msg", "third"])
        .map(|k| (k, free_port()))
        .collect();
    let addr = |k: &str| format!("127.0.0.1:{}", ports[k]);
    let url = |k: &str| format!("http://127.0.0.1:{}", ports[k]);
    let mut env: Vec<(String, String)> = vec![
        ("OPENIM_STORAGE__DATA_DIR".into(), dir.path().display().to_string()),
        ("OPENIM_LOG__LEVEL".into(), "warn".into()),
        ("OPENIM_API__LISTEN".into(), addr("api")),
        ("OPENIM_API__ADMIN_LISTEN".into(), addr("api_admin")),
        ("OPENIM_MSGGATEWAY__LISTEN".into(), addr("ws")),
        ("OPENIM_MSGGATEWAY__ADMIN_LISTEN".into(), addr("ws_admin")),
        ("OPENIM_MSGGATEWAY__RPC_LISTEN".into(), addr("gw_rpc")),
        ("OPENIM_MSGGATEWAY__ADVERTISE".into(), url("gw_rpc")),
        ("OPENIM_SHARE__RPC__MSGGATEWAY".into(), format!("[\"{}\"]", url("gw_rpc"))),
        ("OPENIM_MSGTRANSFER__ADMIN_LISTEN".into(), addr("transfer")),
        ("OPENIM_PUSH__ADMIN_LISTEN".into(), addr("push")),
        ("OPENIM_CRONTASK__ADMIN_LISTEN".into(), addr("cron")),
    ];
    for svc in ["auth", "user", "friend", "group", "conversation", "msg", "third"] {
        env.push((format!("OPENIM_RPC_{}__LISTEN", svc.to_uppercase()), addr(svc)));
        env.push((format!("OPENIM_SHARE__RPC__{}", svc.to_uppercase()), url(svc)));
    }
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
    let spawn = |name: &str| -> Child {
        Command::new(env!("CARGO_BIN_EXE_openim"))
            .args(["--config", config, name])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"))
    };

    // The first process creates the database; the others start once it listens.
    let mut cluster = Cluster(vec![("msgtransfer".into(), spawn("msgtransfer"))]);
    wait_for_http(&addr("transfer"), &mut cluster);
    for name in [
        "rpc-auth",
        "rpc-user",
        "rpc-friend",
        "rpc-group",
        "rpc-conversation",
        "rpc-msg",
        "rpc-third",
        "push",
        "crontask",
        "msggateway",
        "api",
    ] {
        cluster.0.push((name.into(), spawn(name)));
    }
    for k in ["auth", "user", "friend", "group", "conversation", "msg", "third", "gw_rpc", "ws", "api"] {
        wait_for_http(&addr(k), &mut cluster);
    }

    // `openim healthcheck` finds each service from the same configuration: HTTP on the admin
    // ports, the gRPC health service on the RPC services' gRPC ports.
    let env_ref = || env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (name, _) in &cluster.0 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (healthy, said) = healthcheck(env_ref(), name, false);
            if healthy {
                assert!(said.starts_with("healthy: "), "{name}: {said}");
                let port = match name.as_str() {
                    "msggateway" => ports["ws_admin"],
                    "api" => ports["api_admin"],
                    "msgtransfer" => ports["transfer"],
                    "crontask" => ports["cron"],
                    other => ports[other.trim_start_matches("rpc-")],
                };
                assert!(said.contains(&format!(":{port}")), "{name} checked on its own port {port}: {said}");
                break;
            }
            assert!(Instant::now() < deadline, "{name} never healthy: {said}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let nothing = free_port().to_string();
    let elsewhere = format!("127.0.0.1:{nothing}");
    let (healthy, said) = healthcheck(env_ref().chain([("OPENIM_RPC_USER__LISTEN", &*elsewhere)]), "rpc-user", true);
    assert!(!healthy && said.contains("unhealthy") && said.contains(&nothing), "{said}");
    let wrong = Command::new(env!("CARGO_BIN_EXE_openim")).args(["healthcheck", "rpc-nothing"]).output().unwrap();
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && said.contains("not a service: \"rpc-nothing\""), "{said}");

    let rest = Rest::admin(format!("127.0.0.1:{}", ports["api"]).parse().unwrap()).await;
    rest.ok(
        "/user/user_register",
        serde_json::json!({"users": [{"userID": "pa", "nickname": "a"}, {"userID": "pb", "nickname": "b"}]}),
    )
    .await;
    let token = |u: &'static str| {
        let rest = &rest;
        async move {
            let d = rest.ok("/auth/get_user_token", serde_json::json!({"userID": u, "platformID": 1})).await;
            d["token"].as_str().unwrap().to_owned()
        }
    };
    let ws: std::net::SocketAddr = addr("ws").parse().unwrap();
    let mut a = Client::connect(ws, "pa", &token("pa").await, 1, Encoding::Gob, true).await;
    let mut b = Client::connect(ws, "pb", &token("pb").await, 1, Encoding::Json, false).await;

    let ack = a.send_text("pb", "across processes").await;
    assert_eq!(ack.err_code, 0, "{}", ack.err_msg);
    let got = b.next_push().await;
    assert_eq!((got[0].seq, got[0].content.clone()), (1, text_content("across processes")));

    let r = b.call(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "pb".into() }.encode_to_vec()).await;
    let max = sdkws::GetMaxSeqResp::decode(r.data.as_ref()).unwrap();
    assert_eq!(max.max_seqs.get("si_pa_pb"), Some(&1));

    // A picture through the API process into rpc-third's embedded store (one directory, two
    // processes) and back.
    let api_base = format!("http://127.0.0.1:{}", ports["api"]);
    let post = |path: &'static str, body: serde_json::Value, token: String| {
        let url = format!("{api_base}{path}");
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .header("operationID", "objects")
                .header("token", token)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let env: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(env["errCode"], 0, "{path}: {env}");
            env["data"].clone()
        }
    };
    let picture = b"a picture across processes".to_vec();
    let part = md5_hex(&picture);
    let init = post(
        "/object/initiate_multipart_upload",
        serde_json::json!({"hash": md5_hex(part.as_bytes()), "size": picture.len(), "name": "pa/p.png", "contentType": "image/png"}),
        token("pa").await,
    )
    .await;
    let put_url = init["upload"]["sign"]["parts"][0]["url"].as_str().unwrap();
    assert_eq!(reqwest::Client::new().put(put_url).body(picture.clone()).send().await.unwrap().status(), 200);
    let done = post(
        "/object/complete_multipart_upload",
        serde_json::json!({"uploadID": init["upload"]["uploadID"], "parts": [part], "name": "pa/p.png", "contentType": "image/png"}),
        token("pa").await,
    )
    .await;
    let got = reqwest::get(done["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), picture);

    // Reaching a port is not enough: every gRPC server, the gateway's push port too, refuses a
    // call claiming to be imAdmin without the deployment's service credential.
    let key = std::fs::read_to_string(dir.path().join("token.key")).unwrap();
    let key = openim_common::service_auth::ServiceKey::derive(key.trim());
    for k in ["auth", "user", "friend", "group", "conversation", "msg", "third", "gw_rpc"] {
        let url = url(k);
        let bare = openim_common::rpc::remote(&url).unwrap();
        let signed = openim_common::rpc::remote_signed(&url, &key).unwrap();
        // The service's own answers carry an OpenIM error code (auth refuses the empty token).
        let by_service = |s: &tonic::Status| s.metadata().get("openim-errcode").is_some();
        let refused = admin_call(k, bare).await.expect_err(k);
        assert!(refused.code() == tonic::Code::Unauthenticated && !by_service(&refused), "{k}: {refused:?}");
        let answered = admin_call(k, signed).await;
        assert!(answered.as_ref().is_ok() || answered.as_ref().is_err_and(by_service), "{k}: {answered:?}");
    }
}

/// A cheap call to the gRPC service on port `k`, as the administrator.
async fn admin_call(k: &str, ch: openim_common::rpc::RpcChannel) -> Result<(), tonic::Status> {
    use openim_common::rpc::request;
    use openim_proto::pb::*;
    fn r<T>(m: T) -> tonic::Request<T> {
        request(m, "imAdmin", "authz")
    }
    match k {
        "auth" => auth::auth_client::AuthClient::new(ch).parse_token(r(auth::ParseTokenReq::default())).await.map(drop),
        "user" => user::user_client::UserClient::new(ch)
            .get_designate_users(r(user::GetDesignateUsersReq { user_i_ds: vec!["pa".into()] }))
            .await
            .map(drop),
        "friend" => relation::friend_client::FriendClient::new(ch)
            .get_friend_i_ds(r(relation::GetFriendIDsReq { user_id: "pa".into() }))
            .await
            .map(drop),
        "group" => group::group_client::GroupClient::new(ch)
            .get_joined_group_list(r(group::GetJoinedGroupListReq { from_user_id: "pa".into(), ..Default::default() }))
            .await
            .map(drop),
        "conversation" => conversation::conversation_client::ConversationClient::new(ch)
            .get_all_conversations(r(conversation::GetAllConversationsReq { owner_user_id: "pa".into() }))
            .await
            .map(drop),
        "msg" => {
            msg::msg_client::MsgClient::new(ch).get_server_time(r(msg::GetServerTimeReq::default())).await.map(drop)
        }
        "third" => third::third_client::ThirdClient::new(ch).part_limit(r(third::PartLimitReq {})).await.map(drop),
        _ => msggateway::msg_gateway_client::MsgGatewayClient::new(ch)
            .get_users_online_status(r(msggateway::GetUsersOnlineStatusReq { user_i_ds: vec!["pa".into()] }))
            .await
            .map(drop),
    }
}

#[test]
fn standalone_stops_cleanly_on_sigterm_and_a_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
    let (api, admin, ws) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_openim"))
        .args(["--config", config, "standalone"])
        .env("OPENIM_STORAGE__DATA_DIR", dir.path())
        .env("OPENIM_API__LISTEN", format!("127.0.0.1:{api}"))
        .env("OPENIM_API__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("OPENIM_MSGGATEWAY__LISTEN", format!("127.0.0.1:{ws}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut cluster = Cluster(Vec::new());
    wait_for_http(&format!("127.0.0.1:{api}"), &mut cluster);
    let (healthy, said) =
        healthcheck([("OPENIM_API__ADMIN_LISTEN", &*format!("127.0.0.1:{admin}"))], "standalone", false);
    assert!(healthy && said.contains(&format!(":{admin}/readyz")), "{said}");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "standalone did not stop within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");

    // A wrong value stops the process at start, naming the key.
    let out = Command::new(env!("CARGO_BIN_EXE_openim"))
        .args(["--config", config, "standalone"])
        .env("OPENIM_MSGGATEWAY__MAX_MESSAGE_BYTES", "ten")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_message_bytes"), "{err}");
}

#[test]
fn a_taken_admin_port_stops_the_service_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_openim"))
        .args(["--config", config, "msgtransfer"])
        .env("OPENIM_STORAGE__DATA_DIR", dir.path())
        .env("OPENIM_MSGTRANSFER__ADMIN_LISTEN", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("msgtransfer kept running without its admin port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("admin port") && err.contains(&addr), "{err}");
    drop(taken);
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}
