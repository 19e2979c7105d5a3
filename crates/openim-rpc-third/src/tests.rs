//! The upload contract, on every store: the embedded one served over HTTP as the API serves it,
//! and a real S3 server (s3s-fs, which checks SigV4 signatures) started for each test.

use std::sync::Arc;

use md5::Digest as _;
use openim_common::config::{ObjectConfig, Share};
use openim_common::{ErrCode, ImError};
use openim_object::local::LocalBlobs;
use openim_object::{Blobs, UrlSigner};
use openim_proto::pb::third;
use openim_storage::Stores;
use openim_testkit::servers::S3Server;

use crate::ThirdService;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Local,
    S3,
}

struct Harness {
    svc: ThirdService,
    blobs: Arc<dyn Blobs>,
    base: String,
    store: Store,
    _dir: tempfile::TempDir,
    _s3: Option<S3Server>,
}

const PREFIX: &str = "http://api.example/object/";

async fn harness(store: Store, cfg: ObjectConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::embedded(dir.path()).await.unwrap();
    let (blobs, base, s3): (Arc<dyn Blobs>, String, Option<S3Server>) = match store {
        Store::Local => {
            let local =
                Arc::new(LocalBlobs::open(&dir.path().join("objects"), UrlSigner::derive(b"k", "urls")).unwrap());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}/", listener.local_addr().unwrap());
            let app: axum::Router = openim_object::local::router(local.clone());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (local, base, None)
        }
        Store::S3 => {
            let server = S3Server::start("openim");
            let settings = openim_object::s3::S3Settings {
                endpoint: server.endpoint(),
                bucket: server.bucket.clone(),
                region: "us-east-1".into(),
                access_key_id: server.access_key.clone(),
                secret_access_key: server.secret_key.clone(),
                path_style: true,
                ..Default::default()
            };
            (Arc::new(openim_object::s3::S3Blobs::new(&settings).unwrap()), "unused/".into(), Some(server))
        }
    };
    let svc = ThirdService::new(Share::default(), stores, blobs.clone(), cfg, b"secret");
    Harness { svc, blobs, base, store, _dir: dir, _s3: s3 }
}

/// Declares each test once per store: `local::<name>` and `s3::<name>`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test] async fn $name() { super::$name(super::Store::Local).await })*
        }
        mod s3 {
            $(#[tokio::test] async fn $name() { super::$name(super::Store::S3).await })*
        }
    };
}

on_every_store!(
    a_small_file_goes_up_in_one_put_and_comes_back_equal,
    a_12_mb_file_goes_up_in_three_parts_and_is_then_deduplicated,
    names_are_their_owners,
    private_objects_are_their_owners_and_administrators_only,
    bad_input_is_refused_with_nothing_written,
    image_options_serve_a_stored_thumbnail,
    expired_and_tampered_signatures_are_refused,
    a_form_upload_is_stored_named_and_read_back,
    a_form_upload_is_bounded_signed_and_its_owners,
    outdated_objects_go_and_shared_content_stays_while_named,
    abandoned_uploads_are_swept_and_recent_ones_kept,
);

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

    /// A browser's form upload: initiate, post the fields and the file, as the answer says.
    async fn post_form(
        &self,
        op: &str,
        name: &str,
        declared: i64,
        data: &[u8],
        tamper: Option<(&str, &str)>,
    ) -> (third::InitiateFormDataResp, reqwest::StatusCode) {
        let req = third::InitiateFormDataReq {
            name: name.into(),
            size: declared,
            content_type: "text/plain".into(),
            group: "msg-file".into(),
            ..Default::default()
        };
        let init = self.svc.initiate_form(op, &self.base, &req).unwrap();
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in &init.form_data {
            let v = match tamper {
                Some((field, value)) if field == k => value.to_owned(),
                _ => v.clone(),
            };
            form = form.text(k.clone(), v);
        }
        form = form.part(init.file.clone(), reqwest::multipart::Part::bytes(data.to_vec()).file_name("notes.txt"));
        let resp = reqwest::Client::new().post(&init.url).multipart(form).send().await.unwrap();
        let status = resp.status();
        if !init.success_codes.contains(&i32::from(status.as_u16())) {
            eprintln!("form upload refused: {status} {}", resp.text().await.unwrap_or_default());
        }
        (init, status)
    }

    async fn complete_form(&self, op: &str, id: &str) -> Result<String, tonic::Status> {
        let req = third::CompleteFormDataReq { id: id.into(), url_prefix: PREFIX.into() };
        Ok(self.svc.complete_form(op, &req).await?.url)
    }

    async fn download(&self, op: &str, name: &str) -> Result<Vec<u8>, tonic::Status> {
        let req = third::AccessUrlReq { name: name.into(), query: Default::default() };
        let url = self.svc.access(op, &self.base, &req).await?.url;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200);
        Ok(resp.bytes().await.unwrap().to_vec())
    }
}

async fn a_small_file_goes_up_in_one_put_and_comes_back_equal(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    let data = b"\x89PNG a small picture".to_vec();
    let url = h.upload("alice", "alice/msg_picture_1.png", &data).await.unwrap();
    assert_eq!(url, format!("{PREFIX}alice/msg_picture_1.png"));
    assert_eq!(h.download("bob", "alice/msg_picture_1.png").await.unwrap(), data, "anyone with the name may read it");
}

async fn a_12_mb_file_goes_up_in_three_parts_and_is_then_deduplicated(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
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

async fn names_are_their_owners(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
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

async fn private_objects_are_their_owners_and_administrators_only(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
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

async fn bad_input_is_refused_with_nothing_written(store: Store) {
    let cfg = ObjectConfig { max_size: 20 << 20, content_types: vec!["image/*".into()], ..ObjectConfig::default() };
    let h = harness(store, cfg).await;
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
    // The embedded store counts (413); S3 checks the signed content-length (403), and may close
    // the connection before the body is sent.
    match reqwest::Client::new().put(&signs[0].url).body(oversized).send().await {
        Ok(resp) => assert!(resp.status().is_client_error(), "a part larger than signed: {}", resp.status()),
        Err(e) => assert!(e.is_request(), "{e}"),
    }

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

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 99]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

async fn image_options_serve_a_stored_thumbnail(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    let picture = png(800, 600);
    h.upload("alice", "alice/p.png", &picture).await.unwrap();
    let query = |w: &str, hgt: &str| {
        [("type", "image"), ("width", w), ("height", hgt)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let req = third::AccessUrlReq { name: "alice/p.png".into(), query: query("640", "640") };
    let url = h.svc.access("bob", &h.base, &req).await.unwrap().url;
    assert!(url.contains("thumbnail"), "{url}");
    let resp = reqwest::get(&url).await.unwrap();
    if h.store == Store::Local {
        // s3s-fs answers every object as application/octet-stream.
        assert_eq!(resp.headers()["content-type"], "image/png");
    }
    let thumb = resp.bytes().await.unwrap();
    let img = image::load_from_memory(&thumb).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
    assert!(thumb.len() < picture.len(), "the thumbnail is smaller");
    let again = h.svc.access("bob", &h.base, &req).await.unwrap().url;
    assert_eq!(again.split("&expires").next(), url.split("&expires").next(), "made once, then served from the store");

    let larger = third::AccessUrlReq { name: "alice/p.png".into(), query: query("1000", "1000") };
    let url = h.svc.access("bob", &h.base, &larger).await.unwrap().url;
    assert_eq!(reqwest::get(&url).await.unwrap().bytes().await.unwrap().to_vec(), picture, "no larger than asked");

    h.upload("alice", "alice/t.txt", b"not a picture").await.unwrap();
    let text = third::AccessUrlReq { name: "alice/t.txt".into(), query: query("64", "64") };
    let url = h.svc.access("bob", &h.base, &text).await.unwrap().url;
    assert_eq!(reqwest::get(&url).await.unwrap().bytes().await.unwrap().as_ref(), b"not a picture");

    for (w, hgt) in [("abc", "1"), ("-1", "1"), ("99999", "1")] {
        let bad = third::AccessUrlReq { name: "alice/p.png".into(), query: query(w, hgt) };
        assert_eq!(code(h.svc.access("bob", &h.base, &bad).await.unwrap_err()).0, ErrCode::ARGS.0, "{w}");
    }
}

async fn expired_and_tampered_signatures_are_refused(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    let put = |url: String| async move { reqwest::Client::new().put(url).body("x").send().await.unwrap().status() };
    let url = h.blobs.presign_put(&h.base, "openim/temp/x", 1, std::time::Duration::from_secs(600)).unwrap().url;
    let (head, sig) = url.rsplit_once("ignature=").unwrap();
    let flipped = format!("{head}ignature={}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    assert_eq!(put(flipped).await, 403, "a changed signature");
    let other_key = url.replace("openim/temp/x", "openim/temp/y").replace("openim%2Ftemp%2Fx", "openim%2Ftemp%2Fy");
    assert_eq!(put(other_key).await, 403, "another key");
    let expired = h.blobs.presign_put(&h.base, "openim/temp/x", 1, std::time::Duration::from_secs(1)).unwrap().url;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(put(expired).await, 403, "an expired URL");
    assert!(h.blobs.stat("openim/temp/x").await.unwrap().is_none(), "nothing was written");
    assert_eq!(put(url).await, 200, "the URL as signed works");
    assert_eq!(h.blobs.stat("openim/temp/x").await.unwrap().unwrap().size, 1);
}

#[tokio::test]
async fn tokens_and_badges_are_the_callers_and_logs_are_read_by_administrators() {
    let h = harness(Store::Local, ObjectConfig::default()).await;
    let fcm = |account: &str, platform: i32, token: &str| third::FcmUpdateTokenReq {
        platform_id: platform,
        fcm_token: token.into(),
        account: account.into(),
        expire_time: 3600,
    };
    h.svc.fcm_update_token("alice", &fcm("alice", 2, "tok")).await.unwrap();
    let now = openim_common::token::now_millis();
    assert_eq!(h.svc.stores.third.fcm_token("alice", 2, now).await.unwrap().as_deref(), Some("tok"));
    assert_eq!(
        code(h.svc.fcm_update_token("mallory", &fcm("alice", 2, "evil")).await.unwrap_err()).0,
        ErrCode::NO_PERMISSION.0
    );
    assert_eq!(h.svc.stores.third.fcm_token("alice", 2, now).await.unwrap().as_deref(), Some("tok"), "unchanged");
    h.svc.fcm_update_token("imAdmin", &fcm("alice", 1, "ios")).await.expect("an administrator sets anyone's");
    for bad in [fcm("alice", 99, "t"), fcm("alice", 2, ""), fcm("alice", 2, &"x".repeat(1025))] {
        assert_eq!(code(h.svc.fcm_update_token("alice", &bad).await.unwrap_err()).0, ErrCode::ARGS.0);
    }

    let badge = |user: &str, n: i32| third::SetAppBadgeReq { user_id: user.into(), app_unread_count: n };
    h.svc.set_app_badge("alice", &badge("alice", 7)).await.unwrap();
    assert_eq!(h.svc.stores.third.app_badge("alice").await.unwrap(), Some(7));
    assert_eq!(code(h.svc.set_app_badge("mallory", &badge("alice", 0)).await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    assert_eq!(code(h.svc.set_app_badge("alice", &badge("alice", -1)).await.unwrap_err()).0, ErrCode::ARGS.0);

    let file = |name: &str| third::FileUrl { filename: name.into(), url: format!("http://api/object/alice/{name}") };
    let upload = third::UploadLogsReq {
        platform: 5,
        file_ur_ls: vec![file("a.zip"), file("b.zip")],
        app_framework: "wasm".into(),
        version: "3.8.5".into(),
        ex: String::new(),
    };
    h.svc.upload_logs("alice", &upload).await.unwrap();
    let too_many = third::UploadLogsReq { file_ur_ls: vec![file("x.zip"); 101], ..upload.clone() };
    assert_eq!(code(h.svc.upload_logs("alice", &too_many).await.unwrap_err()).0, ErrCode::ARGS.0);
    let not_a_url = third::UploadLogsReq {
        file_ur_ls: vec![third::FileUrl { filename: "x".into(), url: "file:///etc/passwd".into() }],
        ..upload
    };
    assert_eq!(code(h.svc.upload_logs("alice", &not_a_url).await.unwrap_err()).0, ErrCode::ARGS.0);

    let search =
        third::SearchLogsReq { keyword: "ali".into(), pagination: Some(Default::default()), ..Default::default() };
    assert_eq!(
        code(h.svc.search_logs("alice", &search).await.unwrap_err()).0,
        ErrCode::NO_PERMISSION.0,
        "users do not read logs"
    );
    let found = h.svc.search_logs("imAdmin", &search).await.unwrap();
    assert_eq!(found.total, 2);
    let log = &found.logs_infos[0];
    assert_eq!((log.user_id.as_str(), log.platform.as_str(), log.log_id.len()), ("alice", "Web", 10));
    assert!(!log.log_id.starts_with('0'));

    let ids: Vec<String> = found.logs_infos.iter().map(|l| l.log_id.clone()).collect();
    let delete = third::DeleteLogsReq { log_i_ds: ids.clone() };
    assert_eq!(code(h.svc.delete_logs("alice", &delete).await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    let with_unknown = third::DeleteLogsReq { log_i_ds: vec![ids[0].clone(), "1234567890".into()] };
    assert_eq!(code(h.svc.delete_logs("imAdmin", &with_unknown).await.unwrap_err()).0, ErrCode::RECORD_NOT_FOUND.0);
    h.svc.delete_logs("imAdmin", &delete).await.unwrap();
    assert_eq!(h.svc.search_logs("imAdmin", &search).await.unwrap().total, 0);
}

async fn a_form_upload_is_stored_named_and_read_back(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    let data = b"meeting notes, posted as a form".to_vec();
    let (init, status) = h.post_form("alice", "alice/notes.txt", data.len() as i64, &data, None).await;
    assert!(init.success_codes.contains(&i32::from(status.as_u16())), "the store took the form: {status}");
    assert_eq!(init.file, "file");
    assert!(init.expires > 0);
    let url = h.complete_form("alice", &init.id).await.unwrap();
    assert_eq!(url, format!("{PREFIX}alice/notes.txt"));
    assert_eq!(h.download("bob", "alice/notes.txt").await.unwrap(), data);
}

async fn a_form_upload_is_bounded_signed_and_its_owners(store: Store) {
    let h = harness(store, ObjectConfig { max_size: 1 << 20, ..Default::default() }).await;
    // More than declared: the store refuses it and nothing is there to complete.
    let (init, status) = h.post_form("alice", "alice/big.txt", 10, b"eleven bytes", None).await;
    assert!(!status.is_success(), "a body past the declared size is refused, got {status}");
    let (c, msg) = code(h.complete_form("alice", &init.id).await.unwrap_err());
    assert_eq!(c, ErrCode::ARGS.0, "{msg}");
    assert!(msg.contains("not uploaded"), "{msg}");

    // Less than declared: stored, but completing names the mismatch.
    let (init, status) = h.post_form("alice", "alice/short.txt", 10, b"five!", None).await;
    assert!(status.is_success(), "{status}");
    let (c, msg) = code(h.complete_form("alice", &init.id).await.unwrap_err());
    assert_eq!(c, 90007, "{msg}");

    // A field changed after signing: refused by the store, nothing written at that key.
    let (_, status) = h.post_form("alice", "alice/evil.txt", 4, b"evil", Some(("key", "openim/data/hash/x"))).await;
    // 403 from the embedded store and AWS, 400 InvalidPolicyDocument from s3s.
    assert!(status.is_client_error(), "a tampered form is refused, got {status}");
    assert!(h.blobs.stat("openim/data/hash/x").await.unwrap().is_none());

    // Someone else's form ID, and a forged one.
    let (init, _) = h.post_form("alice", "alice/mine.txt", 4, b"mine", None).await;
    assert_eq!(code(h.complete_form("mallory", &init.id).await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    let (body, sig) = init.id.split_once('.').unwrap();
    let forged = format!("{}A.{sig}", &body[..body.len() - 1]);
    assert_eq!(code(h.complete_form("alice", &forged).await.unwrap_err()).0, ErrCode::ARGS.0);

    // Bad requests.
    for (name, size) in [("bob/x.txt", 4), ("alice/../x", 4), ("alice/x.txt", 0), ("alice/x.txt", 2 << 20)] {
        let req = third::InitiateFormDataReq { name: name.into(), size, ..Default::default() };
        assert!(h.svc.initiate_form("alice", &h.base, &req).is_err(), "{name} {size} is refused");
    }
    let absolute =
        third::InitiateFormDataReq { name: "openim/data/hash/x".into(), size: 4, absolute: true, ..Default::default() };
    assert!(h.svc.initiate_form("imAdmin", &h.base, &absolute).is_err(), "our own keys are not an admin's to write");
}

async fn outdated_objects_go_and_shared_content_stays_while_named(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    let shared = b"the same picture twice".to_vec();
    h.upload("alice", "alice/a.png", &shared).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    h.upload("bob", "bob/b.png", &shared).await.unwrap();
    let (init, _) = h.post_form("alice", "alice/notes.txt", 5, b"notes", None).await;
    h.complete_form("alice", &init.id).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let key = |name: &'static str| {
        let stores = &h.svc.stores;
        async move { stores.objects.object(name).await.unwrap().map(|o| o.object_key) }
    };
    let shared_key = key("alice/a.png").await.unwrap();
    let form_key = key("alice/notes.txt").await.unwrap();
    let req = |groups: &[&str], limit| third::DeleteOutdatedDataReq {
        expire_time: crate::objects::now_millis(),
        object_group: groups.iter().map(|g| (*g).to_owned()).collect(),
        limit,
    };

    assert_eq!(code(h.svc.delete_outdated("alice", &req(&[], 10)).await.unwrap_err()).0, ErrCode::NO_PERMISSION.0);
    for bad in [0, 1001] {
        assert_eq!(code(h.svc.delete_outdated("imAdmin", &req(&[], bad)).await.unwrap_err()).0, ErrCode::ARGS.0);
    }

    // The oldest picture name goes; its content stays, as bob's name still points at it.
    let done = h.svc.delete_outdated("imAdmin", &req(&["msg-picture"], 1)).await.unwrap();
    assert_eq!(done.count, 1);
    assert!(key("alice/a.png").await.is_none());
    assert!(h.blobs.stat(&shared_key).await.unwrap().is_some(), "still named by bob/b.png");
    assert_eq!(h.download("bob", "bob/b.png").await.unwrap(), shared);

    // Then the last name, and the content with it; the file of another group stays.
    let done = h.svc.delete_outdated("imAdmin", &req(&["msg-picture"], 10)).await.unwrap();
    assert_eq!(done.count, 1);
    assert!(h.blobs.stat(&shared_key).await.unwrap().is_none(), "no name points at it any more");
    assert!(h.blobs.stat(&form_key).await.unwrap().is_some());

    // No group given: every group.
    assert_eq!(h.svc.delete_outdated("imAdmin", &req(&[], 10)).await.unwrap().count, 1);
    assert!(h.blobs.stat(&form_key).await.unwrap().is_none());
}

async fn abandoned_uploads_are_swept_and_recent_ones_kept(store: Store) {
    let h = harness(store, ObjectConfig::default()).await;
    // A single-part upload put but never completed.
    let data = b"left behind".to_vec();
    let init = h.svc.initiate("alice", &h.base, h.initiate_req("alice/left.png", &data)).await.unwrap();
    let upload = init.upload.unwrap();
    let url = &upload.sign.as_ref().unwrap().parts[0].url;
    assert_eq!(reqwest::Client::new().put(url).body(data.clone()).send().await.unwrap().status(), 200);
    // A multipart upload with one part of three.
    let big: Vec<u8> = (0..11u32 << 20).map(|i| (i % 13) as u8).collect();
    let started = h.svc.initiate("alice", &h.base, h.initiate_req("alice/big.mp4", &big)).await.unwrap();
    let part = &started.upload.unwrap().sign.unwrap().parts[0];
    let resp = reqwest::Client::new().put(&part.url).body(big[..5 << 20].to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    assert_eq!(h.blobs.sweep(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "recent uploads are kept");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let removed = h.blobs.sweep(std::time::Duration::ZERO).await.unwrap();
    // The embedded store keeps multipart parts itself; S3 leaves them to the bucket's lifecycle.
    let expected = if h.store == Store::Local { 1 + 2 } else { 1 };
    assert_eq!(removed, expected, "the temporary upload (and on the embedded store the upload's key and part)");

    let (parts, _) = sdk_hash(&data, 5 << 20);
    let req = third::CompleteMultipartUploadReq {
        upload_id: upload.upload_id,
        parts,
        name: "alice/left.png".into(),
        content_type: "image/png".into(),
        cause: "msg-picture".into(),
        url_prefix: PREFIX.into(),
    };
    let (c, msg) = code(h.svc.complete("alice", req).await.unwrap_err());
    assert_eq!(c, ErrCode::ARGS.0, "{msg}");
}
