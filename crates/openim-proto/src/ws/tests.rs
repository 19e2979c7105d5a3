use super::*;

fn request() -> WsRequest {
    WsRequest {
        req_identifier: 1003,
        token: String::new(),
        send_id: "u1".into(),
        operation_id: "op1".into(),
        msg_incr: "u1_op1".into(),
        data: Bytes::from_static(b"\x0a\x02hi"),
    }
}

#[test]
fn request_round_trips_in_both_encodings() {
    for enc in [Encoding::Gob, Encoding::Json] {
        let bytes = request().encode(enc);
        assert_eq!(WsRequest::decode(enc, &bytes).unwrap(), request(), "{enc:?}");
    }
}

#[test]
fn response_round_trips_in_both_encodings_with_gzip() {
    let resp = WsResponse {
        req_identifier: 2001,
        msg_incr: String::new(),
        operation_id: "op".into(),
        err_code: 3001,
        err_msg: "bad".into(),
        data: Bytes::from_static(b"\x01\x02"),
    };
    for enc in [Encoding::Gob, Encoding::Json] {
        let zipped = gzip(&resp.encode(enc));
        let plain = gunzip(&zipped, 51200).unwrap();
        assert_eq!(WsResponse::decode(enc, &plain).unwrap(), resp, "{enc:?}");
    }
}

#[test]
fn json_request_accepts_numeric_msg_incr() {
    let frame = br#"{"reqIdentifier":1001,"sendID":"u","operationID":"o","msgIncr":7,"data":""}"#;
    let req = WsRequest::decode(Encoding::Json, frame).unwrap();
    assert_eq!(req.msg_incr, "7");
    assert_eq!(req.req_identifier, 1001);
}

#[test]
fn gunzip_enforces_the_limit() {
    let big = vec![b'a'; 100_000];
    let zipped = gzip(&big);
    assert!(matches!(gunzip(&zipped, 51200), Err(WireError::TooLarge(51200))));
    assert!(gunzip(b"not gzip", 51200).is_err());
}
