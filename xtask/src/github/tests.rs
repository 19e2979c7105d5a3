//! Against a stand-in for GitHub's REST API (a local HTTP server answering the calls these
//! commands make): the real API cannot be reached from here, and a test must not open issues or
//! pull requests.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use super::*;

/// (method, path, authorization, body) of each request.
type Seen = Arc<Mutex<Vec<(String, String, String, serde_json::Value)>>>;

/// A server answering `routes` (method, path prefix → status, JSON) for `requests` requests;
/// anything else is a 404.
fn fake_github(
    routes: Vec<(&'static str, String, u16, String)>,
    requests: usize,
) -> (GitHub, Seen, std::thread::JoinHandle<()>) {
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
            let (status, answer) = routes
                .iter()
                .find(|(m, p, _, _)| *m == method && path.starts_with(p.as_str()))
                .map_or((404, r#"{"message": "Not Found"}"#.to_owned()), |(_, _, s, a)| (*s, a.clone()));
            let json = if body.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&body).unwrap() };
            log.lock().unwrap().push((method, path, auth, json));
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (GitHub::new(&url, "o/r", "t0ken").unwrap(), seen, server)
}

fn route(method: &'static str, path: &str, status: u16, json: &str) -> (&'static str, String, u16, String) {
    (method, format!("/repos/o/r/{path}"), status, json.to_owned())
}

#[test]
fn a_first_failure_opens_an_issue() {
    let routes = vec![
        route("GET", "issues?state=open&labels=release-failure", 200, "[]"),
        route("POST", "issues", 201, r#"{"number": 12}"#),
    ];
    let (gh, seen, server) = fake_github(routes, 2);
    let r = report(&gh, "publish on main", "https://github.com/o/r/actions/runs/1").unwrap();
    server.join().unwrap();
    assert_eq!(r, Reported::Created(12));
    let seen = seen.lock().unwrap();
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
    let routes = vec![
        route("GET", "issues?state=open", 200, r#"[{"number": 7, "title": "Release failure: publish on main"}]"#),
        route("POST", "issues/7/comments", 201, r#"{"id": 1}"#),
    ];
    let (gh, seen, server) = fake_github(routes, 2);
    let r = report(&gh, "publish on v1.2.3", "https://github.com/o/r/actions/runs/2").unwrap();
    server.join().unwrap();
    assert_eq!(r, Reported::Commented(7));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].1, "/repos/o/r/issues/7/comments");
    assert_eq!(seen[1].3["body"], "publish on v1.2.3 failed: https://github.com/o/r/actions/runs/2");
}

#[test]
fn an_api_error_names_the_call_and_not_the_token() {
    let (gh, _, server) = fake_github(vec![route("GET", "issues", 500, r#"{"message": "boom"}"#)], 1);
    let err = format!("{:#}", report(&gh, "x", "y").unwrap_err());
    server.join().unwrap();
    assert!(err.contains("GET") && err.contains("500") && err.contains("boom"), "{err}");
    assert!(!err.contains("t0ken"), "{err}");
}

#[test]
fn the_changelog_pull_request_replaces_the_file_on_a_branch_of_its_own() {
    let old = base64::engine::general_purpose::STANDARD.encode("# Changelog\n\nold\n");
    let routes = vec![
        route("GET", "contents/CHANGELOG.md?ref=main", 200, &format!(r#"{{"sha": "f1", "content": "{old}\n"}}"#)),
        route("GET", "git/ref/heads/main", 200, r#"{"object": {"sha": "c0ffee"}}"#),
        route("POST", "git/refs", 201, r#"{"ref": "refs/heads/docs/changelog-v1.2.3"}"#),
        route("PUT", "contents/CHANGELOG.md", 200, r#"{"commit": {"sha": "c1"}}"#),
        route("POST", "pulls", 201, r#"{"number": 42}"#),
    ];
    let (gh, seen, server) = fake_github(routes, 5);
    let n = changelog_pr(&gh, "v1.2.3", "main", "# Changelog\n\nnew\n").unwrap();
    server.join().unwrap();
    assert_eq!(n, Some(42));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[2].3, json!({ "ref": "refs/heads/docs/changelog-v1.2.3", "sha": "c0ffee" }));
    let put = &seen[3].3;
    assert_eq!((put["branch"].as_str(), put["sha"].as_str()), (Some("docs/changelog-v1.2.3"), Some("f1")));
    assert_eq!(put["message"], "docs(changelog): v1.2.3");
    let content = base64::engine::general_purpose::STANDARD.decode(put["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, b"# Changelog\n\nnew\n");
    assert_eq!((seen[4].3["head"].as_str(), seen[4].3["base"].as_str()), (Some("docs/changelog-v1.2.3"), Some("main")));
}

#[test]
fn an_up_to_date_changelog_opens_no_pull_request() {
    let same = base64::engine::general_purpose::STANDARD.encode("# Changelog\n");
    let routes = vec![route("GET", "contents/CHANGELOG.md", 200, &format!(r#"{{"sha": "f1", "content": "{same}"}}"#))];
    let (gh, seen, server) = fake_github(routes, 1);
    assert_eq!(changelog_pr(&gh, "v1.2.3", "main", "# Changelog\n").unwrap(), None);
    server.join().unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
}
