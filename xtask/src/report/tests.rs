//! Against a stand-in for GitHub's REST API (a local HTTP server answering the three calls the
//! reporter makes): the real API cannot be reached from here, and a test must not open issues.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;

/// (method, path, authorization, body) of each request.
type Seen = Arc<Mutex<Vec<(String, String, String, serde_json::Value)>>>;

/// A server whose open `release-failure` issues are `open`; it serves `requests` requests.
fn fake_github(open: &'static str, requests: usize) -> (String, Seen, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut auth) = (0usize, String::new());
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(": ").unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap(),
                    "authorization" => auth = value.to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned());
            let answer = match (method.as_str(), path.as_str()) {
                ("GET", p) if p.starts_with("/repos/o/r/issues?state=open&labels=release-failure") => open.to_owned(),
                ("POST", "/repos/o/r/issues") => r#"{"number": 12}"#.to_owned(),
                ("POST", "/repos/o/r/issues/7/comments") => r#"{"id": 1}"#.to_owned(),
                _ => String::new(),
            };
            let status = if answer.is_empty() { "404 Not Found" } else { "200 OK" };
            let json = if body.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&body).unwrap() };
            log.lock().unwrap().push((method, path, auth, json));
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (url, seen, server)
}

#[test]
fn a_first_failure_opens_an_issue() {
    let (api, seen, server) = fake_github("[]", 2);
    let r = report(&api, "o/r", "t0ken", "publish on main", "https://github.com/o/r/actions/runs/1").unwrap();
    server.join().unwrap();
    assert_eq!(r, Reported::Created(12));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(_, _, auth, _)| auth == "Bearer t0ken"));
    let (method, path, _, body) = &seen[1];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/repos/o/r/issues"));
    assert_eq!(body["labels"], json!([LABEL]));
    assert_eq!(body["title"], "Release failure: publish on main");
    assert!(
        body["body"].as_str().unwrap().starts_with("publish on main failed: https://github.com/o/r/actions/runs/1")
    );
}

#[test]
fn later_failures_comment_on_the_open_issue() {
    let (api, seen, server) = fake_github(r#"[{"number": 7, "title": "Release failure: publish on main"}]"#, 2);
    let r = report(&api, "o/r", "t0ken", "publish on v1.2.3", "https://github.com/o/r/actions/runs/2").unwrap();
    server.join().unwrap();
    assert_eq!(r, Reported::Commented(7));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].1, "/repos/o/r/issues/7/comments");
    assert_eq!(seen[1].3["body"], "publish on v1.2.3 failed: https://github.com/o/r/actions/runs/2");
}

#[test]
fn an_api_error_names_the_call_and_not_the_token() {
    let (api, _, server) = fake_github("", 1);
    let err = format!("{:#}", report(&api, "o/r", "s3cret", "x", "y").unwrap_err());
    server.join().unwrap();
    assert!(err.contains("GET") && err.contains("404"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}
