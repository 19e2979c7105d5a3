//! The upload contract against the embedded store, served over HTTP as clients use it.

use std::sync::Arc;

use md5::Digest as _;
use openim_common::config::{ObjectConfig, Share};
use openim_common::{ErrCode, ImError};
use openim_object::UrlSigner;
use openim_object::local::LocalBlobs;
use openim_proto::pb::third;
use openim_storage::Stores;

use crate::ThirdService;

struct Harness {
    svc: ThirdService,
    base: String,
    _dir: tempfile::TempDir,
}

const PREFIX: &str = "http://api.example/object/";

async fn harness(cfg: ObjectConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::embedded(dir.path()).await.unwrap();
    let blobs = Arc::new(LocalBlobs::open(&dir.path().join("objects"), UrlSigner::derive(b"k", "urls")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app: axum::Router = openim_object::local::router(blobs.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let svc = ThirdService::new(Share::default(), stores, blobs, cfg, b"secret");
    Harness { svc, base, _dir: dir }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

/// The SDK's part md5s and hash for `data` cut in `part_size` parts.
fn sdk_hash(data: &[u8], part_size: usize) -> (Vec<String>, String) {
    let parts: Vec<String> = data.chunks(part_size).map(md5_hex).collect();
    let hash = md5_hex(parts.join(",").as_bytes());
    (parts, hash)
}

fn code(status: tonic::Status) -> (i32, String) {
    let e = ImError::from(status);
    (e.code.0, format!("{} {}", e.msg, e.detail))
}

impl Harness {
    fn initiate_req(&self, name: &str, data: &[u8]) -> third::InitiateMultipartUploadReq {
        let (_, hash) = sdk_hash(data, 5 << 20);
        third::InitiateMultipartUploadReq {
            hash,
            size: data.len() as i64,
            part_size: 5 << 20,
            max_parts: 20,
            cause: "msg-picture".into(),
            name: name.into(),
            content_type: "image/png".into(),
            url_prefix: PREFIX.into(),
        }
    }

    /// The SDK's whole flow: initiate, put every part, complete. The object's URL.
    async fn upload(&self, op: &str, name: &str, data: &[u8]) -> Result<String, tonic::Status> {
        let init = self.svc.initiate(op, &self.base, self.initiate_req(name, data)).await?;
        let Some(upload) = init.upload else { return Ok(init.url) };
        let part_size = usize::try_from(upload.part_size).unwrap();
        let (parts, _) = sdk_hash(data, part_size);
        let signed = upload.sign.unwrap().parts;
        assert_eq!(signed.len(), parts.len(), "every part is signed up front (the SDK asks for up to 20)");
        for (sign, chunk) in signed.iter().zip(data.chunks(part_size)) {
            let resp = reqwest::Client::new().put(&sign.url).body(chunk.to_vec()).send().await.unwrap();
            assert_eq!(resp.status(), 200, "part {}: {}", sign.part_number, resp.text().await.unwrap());
        }
        let done = self
            .svc
            .complete(
                op,
                third::CompleteMultipartUploadReq {
                    upload_id: upload.upload_id,
                    parts,
                    name: name.into(),
                    content_type: "image/png".into(),
                    cause: "msg-picture".into(),
                    url_prefix: PREFIX.into(),
                },
            )
            .await?;
        Ok(done.url)
    }

    async fn download(&self, op: &str, name: &str) -> Result<Vec<u8>, tonic::Status> {
        let req = third::AccessUrlReq { name: name.into(), query: Default::default() };
        let url = self.svc.access(op, &self.base, &req).await?.url;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200);
        Ok(resp.bytes().await.unwrap().to_vec())
    }
}

#[tokio::test]
async fn a_small_file_goes_up_in_one_put_and_comes_back_equal() {
    let h = harness(ObjectConfig::default()).await;
    let data = b"\x89PNG a small picture".to_vec();
    let url = h.upload("alice", "alice/msg_picture_1.png", &data).await.unwrap();
    assert_eq!(url, format!("{PREFIX}alice/msg_picture_1.png"));
    assert_eq!(h.download("bob", "alice/msg_picture_1.png").await.unwrap(), data, "anyone with the name may read it");
}

#[tokio::test]
async fn a_12_mb_file_goes_up_in_three_parts_and_is_then_deduplicated() {
    let h = harness(ObjectConfig::default()).await;
    let data: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    let (parts, _) = sdk_hash(&data, 5 << 20);
    assert_eq!(parts.len(), 3);
    h.upload("alice", "alice/video.mp4", &data).await.unwrap();
    assert_eq!(h.download("alice", "alice/video.mp4").await.unwrap(), data);

    let again = h.svc.initiate("bob", &h.base, h.initiate_req("bob/same.mp4", &data)).await.unwrap();
    assert!(again.upload.is_none(), "the same content is not uploaded twice");
    assert_eq!(again.url, format!("{PREFIX}bob/same.mp4"));
    assert_eq!(h.download("bob", "bob/same.mp4").await.unwrap(), data);
}

#[tokio::test]
async fn names_are_their_owners() {
    let h = harness(ObjectConfig::default()).await;
    let (c, msg) = code(h.upload("mallory", "alice/x.png", b"x").await.unwrap_err());
    assert_eq!(c, ErrCode::NO_PERMISSION.0, "{msg}");
    assert!(msg.contains("alice") || msg.contains("mallory/"), "{msg}");
    h.upload("imAdmin", "alice/by-admin.png", b"x").await.expect("administrators may name any object");

    // Another user's upload ID.
    let init = h.svc.initiate("alice", &h.base, h.initiate_req("alice/y.png", b"yy")).await.unwrap();
    let upload = init.upload.unwrap();
    let (parts, _) = sdk_hash(b"yy", 5 << 20);
    let stolen = third::CompleteMultipartUploadReq {
        upload_id: upload.upload_id.clone(),
        parts: parts.clone(),
        name: "mallory/y.png".into(),
        url_prefix: PREFIX.into(),
        ..Default::default()
    };
    assert_eq!(code(h.svc.complete("mallory", stolen).await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    // A forged one: the body changed, the signature kept.
    let (body, sig) = upload.upload_id.split_once('.').unwrap();
    let forged = format!("{}A.{sig}", &body[..body.len() - 1]);
    let req = third::AuthSignReq { upload_id: forged, part_numbers: vec![1] };
    assert_eq!(code(h.svc.sign_parts("alice", &h.base, &req).unwrap_err()).0, ErrCode::ARGS.0);
}

#[tokio::test]
async fn private_objects_are_their_owners_and_administrators_only() {
    let h = harness(ObjectConfig::default()).await;
    let mut req = h.initiate_req("alice/app.log", b"log lines");
    req.cause = "logs".into();
    let upload = h.svc.initiate("alice", &h.base, req).await.unwrap().upload.unwrap();
    let url = &upload.sign.unwrap().parts[0].url;
    assert_eq!(reqwest::Client::new().put(url).body("log lines").send().await.unwrap().status(), 200);
    let (parts, _) = sdk_hash(b"log lines", 5 << 20);
    let done = third::CompleteMultipartUploadReq {
        upload_id: upload.upload_id,
        parts,
        name: "alice/app.log".into(),
        cause: "logs".into(),
        ..Default::default()
    };
    h.svc.complete("alice", done).await.unwrap();
    assert_eq!(h.download("alice", "alice/app.log").await.unwrap(), b"log lines");
    assert_eq!(h.download("imAdmin", "alice/app.log").await.unwrap(), b"log lines");
    assert_eq!(code(h.download("bob", "alice/app.log").await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    assert_eq!(code(h.download("", "alice/app.log").await.unwrap_err()).0, ErrCode::NO_PERMISSION.0, "no caller");
    assert_eq!(code(h.download("bob", "alice/none.png").await.unwrap_err()).0, ErrCode::RECORD_NOT_FOUND.0);
}

#[tokio::test]
async fn bad_input_is_refused_with_nothing_written() {
    let cfg = ObjectConfig { max_size: 20 << 20, content_types: vec!["image/*".into()], ..ObjectConfig::default() };
    let h = harness(cfg).await;
    let args = ErrCode::ARGS.0;
    for name in ["alice/../bob/x.png", "alice//x.png", "/alice/x.png", "alice/./x", "alice/a\u{0}b", ""] {
        let (c, msg) = code(h.upload("alice", name, b"x").await.unwrap_err());
        assert_eq!(c, args, "{name:?}: {msg}");
    }
    let big = h.initiate_req("alice/big.png", b"x");
    let too_big = third::InitiateMultipartUploadReq { size: (20 << 20) + 1, ..big };
    let (c, msg) = code(h.svc.initiate("alice", &h.base, too_big).await.unwrap_err());
    assert_eq!(c, args);
    assert!(msg.contains("larger than"), "{msg}");
    let text =
        third::InitiateMultipartUploadReq { content_type: "text/html".into(), ..h.initiate_req("alice/x.html", b"x") };
    assert_eq!(code(h.svc.initiate("alice", &h.base, text).await.unwrap_err()).0, args, "content type not allowed");

    // A part larger than the part size: the store refuses it and keeps nothing.
    let data: Vec<u8> = vec![9u8; (5 << 20) + 10];
    let upload = h.svc.initiate("alice", &h.base, h.initiate_req("alice/p.png", &data)).await.unwrap().upload.unwrap();
    let signs = upload.sign.unwrap().parts;
    assert_eq!(signs.len(), 2);
    let oversized = vec![1u8; (5 << 20) + 1];
    let resp = reqwest::Client::new().put(&signs[0].url).body(oversized).send().await.unwrap();
    assert_eq!(resp.status(), 413);

    // Completion with a part missing, and with parts that do not make the hash.
    let (parts, _) = sdk_hash(&data, 5 << 20);
    let complete = |parts: Vec<String>| third::CompleteMultipartUploadReq {
        upload_id: upload.upload_id.clone(),
        parts,
        name: "alice/p.png".into(),
        content_type: "image/png".into(),
        ..Default::default()
    };
    let (c, msg) = code(h.svc.complete("alice", complete(parts[..1].to_vec())).await.unwrap_err());
    assert_eq!(c, args);
    assert!(msg.contains("has 2 parts"), "{msg}");
    let (c, msg) = code(h.svc.complete("alice", complete(vec![parts[1].clone(), parts[0].clone()])).await.unwrap_err());
    assert_eq!(c, args);
    assert!(msg.contains("hash"), "{msg}");
    // Only the first part went up.
    let resp = reqwest::Client::new().put(&signs[0].url).body(data[..5 << 20].to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (c, msg) = code(h.svc.complete("alice", complete(parts.clone())).await.unwrap_err());
    assert_eq!(c, args);
    assert!(msg.contains("part 2 of 2 was not uploaded"), "{msg}");
    assert_eq!(code(h.download("alice", "alice/p.png").await.unwrap_err()).0, ErrCode::RECORD_NOT_FOUND.0);

    let out_of_range = third::AuthSignReq { upload_id: upload.upload_id.clone(), part_numbers: vec![3] };
    assert_eq!(code(h.svc.sign_parts("alice", &h.base, &out_of_range).unwrap_err()).0, args);
    let resigned = third::AuthSignReq { upload_id: upload.upload_id.clone(), part_numbers: vec![2] };
    let url = h.svc.sign_parts("alice", &h.base, &resigned).unwrap().parts.remove(0).url;
    let resp = reqwest::Client::new().put(&url).body(data[5 << 20..].to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    h.svc.complete("alice", complete(parts)).await.expect("the upload completes once every part is there");
    assert_eq!(h.download("alice", "alice/p.png").await.unwrap(), data);
}

#[test]
fn the_hash_is_the_sdks() {
    // openim-sdk-core: md5 of the part md5s (hex) joined by ",".
    let (parts, hash) = sdk_hash(b"abc", 5 << 20);
    assert_eq!(parts, vec!["900150983cd24fb0d6963f7d28e17f72".to_owned()]);
    assert_eq!(hash, md5_hex(b"900150983cd24fb0d6963f7d28e17f72"));
}
