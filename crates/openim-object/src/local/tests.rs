use super::*;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;

/// A store served on a loopback port: (store, base URL, its directory).
async fn serve() -> (Arc<LocalBlobs>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalBlobs::open(dir.path(), UrlSigner::derive(b"test secret", "urls")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app: Router = router(store.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (store, base, dir)
}

const HOUR: Duration = Duration::from_secs(3600);

async fn put(url: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new().put(url).body(body).send().await.unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

#[tokio::test]
async fn a_presigned_put_stores_and_a_presigned_get_returns_the_bytes() {
    let (store, base, _dir) = serve().await;
    let body = b"hello picture".to_vec();
    let put_req = store.presign_put(&base, "openim/temp/a.presigned", 100, HOUR).unwrap();
    let resp = put(&put_req.url, body.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], format!("\"{}\"", crate::md5_hex(&body)).as_str());

    let info = store.stat("openim/temp/a.presigned").await.unwrap().unwrap();
    assert_eq!((info.size, info.etag.as_str()), (13, crate::md5_hex(&body).as_str()));
    let opts = AccessOptions { content_type: "image/png".into(), filename: "a b.png".into() };
    let url = store.presign_get(&base, "openim/temp/a.presigned", HOUR, &opts).unwrap();
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["content-disposition"], "inline; filename*=UTF-8''a%20b%2Epng", "pictures show inline");
    assert_eq!(got.headers()["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);

    let html = AccessOptions { content_type: "text/html".into(), filename: "x.html".into() };
    let page = reqwest::get(store.presign_get(&base, "openim/temp/a.presigned", HOUR, &html).unwrap()).await.unwrap();
    assert!(page.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"), "not shown inline");
    let ranged = reqwest::Client::new().get(&url).header("range", "bytes=6-12").send().await.unwrap();
    assert_eq!(ranged.status(), 206, "ranges are served (video seeking)");
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), b"picture");
}

#[tokio::test]
async fn tampered_expired_and_oversized_uploads_are_refused_and_nothing_is_written() {
    let (store, base, dir) = serve().await;
    let good = store.presign_put(&base, "openim/temp/b", 10, HOUR).unwrap().url;

    let other_key = good.replace("key=openim%2Ftemp%2Fb", "key=openim%2Ftemp%2Fc");
    assert_eq!(put(&other_key, b"x".to_vec()).await.status(), 403, "another key");
    let bigger = good.replace("size=10", "size=99");
    assert_eq!(put(&bigger, b"x".to_vec()).await.status(), 403, "a larger size");
    let (head, sig) = good.rsplit_once("signature=").unwrap();
    let flipped = format!("{head}signature={}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    let resp = put(&flipped, b"x".to_vec()).await;
    assert_eq!(resp.status(), 403, "a changed signature");
    assert!(resp.text().await.unwrap().contains("signature"));

    let expired = store.presign_put(&base, "openim/temp/b", 10, Duration::ZERO).unwrap().url;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = put(&expired, b"x".to_vec()).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("expired"));

    let resp = put(&good, vec![7u8; 11]).await;
    assert_eq!(resp.status(), 413, "one byte more than signed");
    assert!(store.stat("openim/temp/b").await.unwrap().is_none());
    assert!(files_under(&dir.path().join("data")).is_empty(), "nothing was written");
    assert!(files_under(&dir.path().join("tmp")).is_empty(), "no temporary file is left");

    assert_eq!(put(&good, vec![7u8; 10]).await.status(), 200, "the store still takes the right upload");
}

#[tokio::test]
async fn parts_join_in_order_and_a_missing_or_changed_part_is_named() {
    let (store, base, _dir) = serve().await;
    let key = "openim/data/hash/abc";
    let id = store.create_multipart(key).await.unwrap();
    let parts: Vec<Vec<u8>> = vec![vec![1u8; 1000], vec![2u8; 1000], vec![3u8; 10]];
    let etags: Vec<String> = parts.iter().map(|p| crate::md5_hex(p)).collect();
    for (i, p) in parts.iter().enumerate().take(2) {
        let n = u32::try_from(i + 1).unwrap();
        let req = store.presign_part(&base, key, &id, n, 1000, HOUR).unwrap();
        assert_eq!(put(&req.url, p.clone()).await.status(), 200);
    }
    let err = store.complete_multipart(key, &id, &etags).await.unwrap_err();
    assert!(err.to_string().contains("part 3 of 3 was not uploaded"), "{err}");

    let mut wrong = etags.clone();
    wrong[1] = crate::md5_hex(b"other");
    let err = store.complete_multipart(key, &id, &wrong[..2]).await.unwrap_err();
    assert!(err.to_string().contains("part 2"), "{err}");
    assert!(store.stat(key).await.unwrap().is_none(), "a refused completion writes nothing");

    let req = store.presign_part(&base, key, &id, 3, 1000, HOUR).unwrap();
    assert_eq!(put(&req.url, parts[2].clone()).await.status(), 200);
    assert!(store.complete_multipart("openim/data/hash/other", &id, &etags).await.is_err(), "only its own key");
    let info = store.complete_multipart(key, &id, &etags).await.unwrap();
    assert_eq!(info.size, 2010);
    assert!(info.etag.ends_with("-3"));
    let whole = store.get(key, 1 << 20).await.unwrap();
    assert_eq!(whole.to_vec(), parts.concat());
    assert!(store.complete_multipart(key, &id, &etags).await.is_err(), "an upload completes once");
    let late = store.presign_part(&base, key, &id, 1, 1000, HOUR).unwrap();
    assert_eq!(put(&late.url, parts[0].clone()).await.status(), 404, "no part after completion");
}

#[tokio::test]
async fn copy_delete_and_keys_outside_the_store() {
    let (store, base, _dir) = serve().await;
    store.put("openim/temp/x", Bytes::from_static(b"abc"), "text/plain").await.unwrap();
    let copied = store.copy("openim/temp/x", "openim/data/hash/y").await.unwrap();
    assert_eq!(copied.etag, crate::md5_hex(b"abc"));
    store.delete("openim/temp/x").await.unwrap();
    store.delete("openim/temp/x").await.expect("deleting twice is fine");
    assert!(store.stat("openim/temp/x").await.unwrap().is_none());
    assert_eq!(store.get("openim/data/hash/y", 10).await.unwrap().as_ref(), b"abc");
    assert!(store.get("openim/data/hash/y", 2).await.is_err(), "larger than asked for");

    for bad in ["../etc/passwd", "openim/../../x", "/abs"] {
        assert!(store.presign_put(&base, bad, 1, HOUR).is_err(), "{bad}");
        assert!(store.stat(bad).await.is_err(), "{bad}");
    }
    let get = store.presign_get(&base, "openim/none", HOUR, &AccessOptions::default()).unwrap();
    assert_eq!(reqwest::get(&get).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_form_post_is_bounded_in_fields_and_size_and_needs_its_signature() {
    let (store, base, dir) = serve().await;
    let signed = store.presign_form(&base, "a/form.txt", 5, "text/plain", HOUR).unwrap();
    assert_eq!((signed.file.as_str(), signed.success_codes.as_slice()), ("file", &[FORM_SUCCESS][..]));
    let post = |fields: Vec<(String, String)>, file: Option<&'static [u8]>| {
        let url = signed.url.clone();
        async move {
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in fields {
                form = form.text(k, v);
            }
            if let Some(body) = file {
                form = form.part("file", reqwest::multipart::Part::bytes(body));
            }
            reqwest::Client::new().post(url).multipart(form).send().await.unwrap().status()
        }
    };
    let data = |d: &tempfile::TempDir| files_under(&d.path().join("data"));

    let mut many = signed.fields.clone();
    many.extend((0..40).map(|i| (format!("x{i}"), "y".to_owned())));
    assert_eq!(post(many, Some(b"hello")).await, StatusCode::BAD_REQUEST, "too many fields");
    assert_eq!(post(signed.fields.clone(), None).await, StatusCode::BAD_REQUEST, "no file");
    let mut forged = signed.fields.clone();
    forged.iter_mut().find(|(k, _)| k == "size").unwrap().1 = "500".into();
    assert_eq!(post(forged, Some(b"hello")).await, StatusCode::FORBIDDEN, "a field changed after signing");
    assert_eq!(post(signed.fields.clone(), Some(b"hello!")).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(data(&dir).is_empty(), "nothing refused was written");

    assert_eq!(post(signed.fields.clone(), Some(b"hello")).await, StatusCode::OK);
    let url = store.presign_get(&base, "a/form.txt", HOUR, &AccessOptions::default()).unwrap();
    assert_eq!(reqwest::get(url).await.unwrap().bytes().await.unwrap().as_ref(), b"hello");
}
