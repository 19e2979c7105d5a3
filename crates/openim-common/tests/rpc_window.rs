//! A service channel keeps working when the caller reads answers late. h2 limits the small DATA
//! frames a connection holds unread (a defence against floods of tiny frames) to half the
//! connection's flow-control window, and closes the connection with `ENHANCE_YOUR_CALM` past
//! it: on a busy gateway, a few hundred answers waiting for their tasks to run failed every call
//! on the connection ("h2 protocol error", gRPC `ResourceExhausted`). The channel's window is
//! set large enough for thousands.

use bytes::Bytes;
use futures::future::join_all;
use http_body_util::{BodyExt as _, Full};
use tower::ServiceExt as _;

/// Answers held unread at once: a gateway's worth of calls waiting for their tasks.
const HELD: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_read_late_do_not_break_the_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = openim_common::rpc::remote(&format!("http://{addr}")).unwrap();

    // `grpc.health.v1.Health/Check` for the server as a whole: an empty message, answered with
    // a 7-byte DATA frame (SERVING).
    let check = || {
        http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(tonic::body::Body::new(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))))
            .unwrap()
    };
    // Every answer arrives (headers first, then the message and trailers) and is held unread.
    let answers = join_all((0..HELD).map(|_| channel.clone().oneshot(check()))).await;
    let mut held = Vec::with_capacity(HELD);
    for a in answers {
        let a = a.expect("a call on the shared connection");
        assert_eq!(a.status(), 200);
        held.push(a);
    }
    // Then read: each carries its message and a grpc-status of 0.
    for (i, a) in held.into_iter().enumerate() {
        let body = a.into_body().collect().await.unwrap_or_else(|e| panic!("answer {i} lost: {e}"));
        let status = body.trailers().and_then(|t| t.get("grpc-status")).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(status.as_deref(), Some("0"), "answer {i}");
        assert_eq!(body.to_bytes().as_ref(), &[0, 0, 0, 0, 2, 8, 1], "answer {i} says SERVING");
    }
    // And the connection still takes calls.
    let again = channel.clone().oneshot(check()).await.unwrap();
    assert_eq!(again.into_body().collect().await.unwrap().to_bytes().as_ref(), &[0, 0, 0, 0, 2, 8, 1]);
}
