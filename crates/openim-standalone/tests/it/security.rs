//! Security hardening (issue 16): secrets, authorization, bounds. Each test shows a finding closed.

use openim_common::rpc;
use openim_common::token::TokenSigner;
use openim_common::{ErrCode, ImError};
use openim_proto::pb::auth::GetAdminTokenReq;
use serde_json::json;

use crate::stack::Stack;

fn admin_req(secret: &str, from: Option<&str>) -> tonic::Request<GetAdminTokenReq> {
    let mut req = rpc::request(GetAdminTokenReq { secret: secret.into(), user_id: "imAdmin".into() }, "", "sec");
    if let Some(addr) = from {
        rpc::set_client_addr(&mut req, addr.parse().unwrap());
    }
    req
}

/// The published trial secret works only from loopback; wrong guesses lock the guessing address
/// out (even with the right secret next) and leave other addresses alone.
#[tokio::test]
async fn the_admin_secret_is_loopback_only_when_published_and_guessing_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    let auth = || s.server.clients.auth.clone();

    for from in [Some("192.0.2.7"), Some("2001:db8::1"), None] {
        let e = ImError::from(auth().get_admin_token(admin_req("openIM123", from)).await.unwrap_err());
        assert_eq!(e.code, ErrCode::NO_PERMISSION, "{from:?}: {e:?}");
        assert!(e.detail.contains("loopback"), "{from:?}: {e:?}");
    }
    auth().get_admin_token(admin_req("openIM123", Some("127.0.0.1"))).await.unwrap();
    auth().get_admin_token(admin_req("openIM123", Some("::1"))).await.unwrap();

    // Guessing over REST (the client address is the TCP peer, 127.0.0.1).
    for guess in ["openIM1234", "openim123", "", "admin", "x"] {
        let env = s.rest.post("/auth/get_admin_token", json!({"secret": guess, "userID": "imAdmin"})).await;
        assert_eq!(env["errCode"], 1002, "{env}");
        assert!(env["errDlt"].as_str().unwrap().contains("wrong secret"), "{env}");
    }
    let env = s.rest.post("/auth/get_admin_token", json!({"secret": "openIM123", "userID": "imAdmin"})).await;
    assert_eq!(env["errCode"], 1002, "locked out: {env}");
    assert!(env["errDlt"].as_str().unwrap().contains("too many failed attempts from 127.0.0.1"), "{env}");
    // ::1 is another address: not locked.
    auth().get_admin_token(admin_req("openIM123", Some("::1"))).await.unwrap();
    // Tokens already issued keep working.
    s.rest.ok("/user/get_users", json!({"pagination": {"pageNumber": 1, "showNumber": 10}})).await;
    s.stop().await;
}

/// Tokens are signed with a key of their own, so a user's token is no oracle for the admin
/// secret: a token forged with the secret is refused, and the real key is the generated one.
#[tokio::test]
async fn tokens_are_not_signed_with_the_admin_secret() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["ann"]).await;
    let token = s.token("ann", 1).await;
    assert!(TokenSigner::new("openIM123").verify(&token).is_err(), "signed with share.secret");
    let key = std::fs::read_to_string(openim_common::secrets::token_key_path(dir.path())).unwrap();
    assert_eq!(TokenSigner::new(key.trim()).verify(&token).unwrap().user_id, "ann");

    let (forged, _) = TokenSigner::new("openIM123").issue("imAdmin", 10, 3600).unwrap();
    let env = s.rest.raw("/user/get_users", &forged, json!({}).to_string()).await;
    assert_eq!(env["errCode"], ErrCode::TOKEN_INVALID.0, "{env}");
    s.stop().await;
}

/// IDs are joined with `_` into conversation IDs, so an ID holding `_` could share a
/// conversation with others (`si_a_b_c` is `a`+`b_c` and `a_b`+`c`; group `alice_bob` would own
/// `n_alice_bob`, alice's and bob's notifications): registration and creation refuse them, and a
/// conversation ID with more than one reading is nobody's.
#[tokio::test]
async fn ids_that_could_alias_a_conversation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["a", "c", "alice", "bob"]).await;
    for bad in ["a_b", "b_c", "x y", ""] {
        let env = s.rest.post("/user/user_register", json!({"users": [{"userID": bad, "nickname": "x"}]})).await;
        assert_eq!(env["errCode"], 1001, "{bad:?}: {env}");
        assert!(env["errDlt"].as_str().unwrap().contains("userID"), "{env}");
    }
    let alice = s.token("alice", 1).await;
    let group = json!({"memberUserIDs": ["bob"], "ownerUserID": "alice",
                       "groupInfo": {"groupID": "alice_bob", "groupName": "g", "groupType": 2}});
    let env = s.rest.raw("/group/create_group", &alice, group.to_string()).await;
    assert_eq!(env["errCode"], 1001, "{env}");
    assert!(env["errDlt"].as_str().unwrap().contains("groupID"), "{env}");

    // `a` asks for the chat `a_b` would have with `c`, and for alice's notification conversation
    // spelt as a group's: nothing comes back.
    let a = s.token("a", 1).await;
    for conv in ["si_a_b_c", "n_alice_bob"] {
        let pull = json!({"userID": "a", "seqRanges": [{"conversationID": conv, "begin": 1, "end": 100, "num": 100}]});
        let env = s.rest.raw("/msg/pull_msg_by_seq", &a, pull.to_string()).await;
        let msgs = &env["data"]["msgs"];
        assert!(env["errCode"] != 0 || msgs.get(conv).is_none(), "{conv}: {env}");
    }
    s.stop().await;
}
