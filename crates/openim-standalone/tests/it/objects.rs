//! `/object/*` end to end on the standalone server with the embedded store: the REST calls the
//! SDK makes, the uploads to the URLs they answer, and `GET /object/<name>`.

use serde_json::{Value, json};

use crate::stack::Stack;

fn md5_hex(data: &[u8]) -> String {
    openim_object::md5_hex(data)
}

/// Uploads `data` as `name` the way openim-sdk-core does (one part here); the object's URL.
pub async fn upload(s: &Stack, token: &str, name: &str, cause: &str, data: &[u8]) -> String {
    let part = md5_hex(data);
    let init = s
        .rest
        .ok_as(
            token,
            "/object/initiate_multipart_upload",
            json!({"hash": md5_hex(part.as_bytes()), "size": data.len(), "partSize": 5 << 20, "maxParts": 1,
                   "cause": cause, "name": name, "contentType": "text/plain"}),
        )
        .await;
    let Some(upload) = init.get("upload").filter(|u| !u.is_null()) else {
        return init["url"].as_str().unwrap().to_owned();
    };
    let url = upload["sign"]["parts"][0]["url"].as_str().unwrap();
    let put = reqwest::Client::new().put(url).body(data.to_vec()).send().await.unwrap();
    assert_eq!(put.status(), 200, "PUT {url}");
    let done = s
        .rest
        .ok_as(
            token,
            "/object/complete_multipart_upload",
            json!({"uploadID": upload["uploadID"], "parts": [part], "name": name, "cause": cause,
                   "contentType": "text/plain"}),
        )
        .await;
    done["url"].as_str().unwrap().to_owned()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_served_back_through_its_object_url() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["alice", "bob"]).await;
    let alice = s.token("alice", 2).await;
    let bob = s.token("bob", 2).await;

    let limit = s.rest.ok_as(&bob, "/object/part_limit", json!({})).await;
    assert_eq!(limit, json!({"minPartSize": 5 << 20, "maxPartSize": 5i64 << 30, "maxNumSize": 10000}));
    let size = s.rest.ok_as(&bob, "/object/part_size", json!({"size": 12 << 20})).await;
    assert_eq!(size["size"], 5 << 20);

    let url = upload(&s, &alice, "alice/hello.txt", "msg-file", b"hello, bob").await;
    let api = format!("http://{}/", s.server.api_addr);
    assert_eq!(url, format!("{api}object/alice/hello.txt"), "urlPrefix is the address the client used");

    // What a receiving app does with the URL: follow the redirect without a token.
    let resp = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{api}object-store/get?")), "{location}");
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.headers()["content-type"], "text/plain");
    assert_eq!(body.bytes().await.unwrap().as_ref(), b"hello, bob");

    // Behind a proxy: X-Request-Api names the address clients use.
    let proxied =
        s.rest.raw_as_operation("/object/access_url", &bob, "op", json!({"name": "alice/hello.txt"}).to_string()).await;
    assert_eq!(proxied["errCode"], 0, "{proxied}");
    let via = reqwest::Client::new()
        .post(format!("{api}object/access_url"))
        .header("operationID", "op")
        .header("token", &bob)
        .header("X-Request-Api", "https://im.example.com/api")
        .body(json!({"name": "alice/hello.txt"}).to_string())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let signed = via["data"]["url"].as_str().unwrap();
    assert!(signed.starts_with("https://im.example.com/api/object-store/get?"), "{signed}");

    let resp = no_redirects().get(format!("{api}object/alice/none.txt")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    // HTTP clients resolve `..` in a URL's path themselves; the name is refused as such.
    let dotted = s.rest.raw("/object/access_url", &bob, json!({"name": "alice/../alice/hello.txt"}).to_string()).await;
    assert_eq!(dotted["errCode"], 1001, "{dotted}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_object_is_served_to_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Stack::start(dir.path()).await;
    s.register(&["alice", "mal"]).await;
    let alice = s.token("alice", 2).await;
    let mal = s.token("mal", 2).await;
    upload(&s, &alice, "alice/app.log", "logs", b"secret log").await;
    let url = format!("http://{}/object/alice/app.log", s.server.api_addr);

    let anonymous = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    let as_mal = no_redirects().get(&url).header("token", &mal).send().await.unwrap();
    assert_eq!(as_mal.status(), 403);
    let forged = no_redirects().get(&url).header("token", "not-a-token").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    let owner = reqwest::Client::new().get(&url).header("token", &alice).send().await.unwrap();
    assert_eq!(owner.status(), 200);
    assert_eq!(owner.bytes().await.unwrap().as_ref(), b"secret log");
    s.stop().await;
}
