use super::*;

fn sample() -> Vec<(&'static str, GobValue)> {
    vec![
        ("ReqIdentifier", GobValue::Int(1003)),
        ("Token", GobValue::String(String::new())),
        ("SendID", GobValue::String("u1".into())),
        ("OperationID", GobValue::String("op1".into())),
        ("MsgIncr", GobValue::String("u1_op1".into())),
        ("Data", GobValue::Bytes(b"\x0a\x02hi".to_vec())),
    ]
}

#[test]
fn round_trip_keeps_non_zero_fields_and_order() {
    let bytes = encode_struct("GeneralWsReq", &sample());
    let (def, values) = decode_struct(&bytes).unwrap();
    assert_eq!(def.name, "GeneralWsReq");
    let names: Vec<_> = def.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["ReqIdentifier", "Token", "SendID", "OperationID", "MsgIncr", "Data"]);
    assert_eq!(values.get("ReqIdentifier"), Some(&GobValue::Int(1003)));
    assert_eq!(values.get("Token"), None, "zero values are omitted on the wire");
    assert_eq!(values.get("Data"), Some(&GobValue::Bytes(b"\x0a\x02hi".to_vec())));
}

#[test]
fn integers_use_gob_encoding() {
    let check = |v: i64, expected: &[u8]| {
        let mut w = Writer::default();
        w.int(v);
        assert_eq!(w.buf, expected, "int {v}");
        let mut r = Reader { buf: &w.buf, pos: 0 };
        assert_eq!(r.int().unwrap(), v);
    };
    // Values from the encoding/gob documentation.
    check(0, &[0x00]);
    check(-1, &[0x01]);
    check(1, &[0x02]);
    check(-64, &[0x7f]);
    check(256, &[0xfe, 0x02, 0x00]);
    check(-129, &[0xfe, 0x01, 0x01]);
    check(1003, &[0xfe, 0x07, 0xd6]);
    check(-64 - 0x7fff_ffff, &{
        let mut w = Writer::default();
        w.int(-64 - 0x7fff_ffff);
        w.buf
    });
}

#[test]
fn rejects_truncated_and_garbage_input() {
    let bytes = encode_struct("GeneralWsReq", &sample());
    for cut in [1, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode_struct(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    assert!(decode_struct(b"").is_err());
    assert!(decode_struct(b"\xff\xff\xff\xff").is_err());
    assert!(decode_struct(b"{\"reqIdentifier\":1}").is_err());
    // A value whose type was never defined.
    assert_eq!(decode_struct(&[0x03, 0xff, 0x80, 0x00]), Err(GobError::UndefinedType(64)));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Bytes produced by the Python SDK's own encoder (docs/gob-envelope.md, vector a).
const PYTHON_REQUEST: &str = "657f0301010c47656e6572616c577352657101ff80000106010d5265714964656e7469666965720104000105546f6b656e010c00010653656e644944010c00010b4f7065726174696f6e4944010c0001074d7367496e6372010c00010444617461010a0000001eff8001fe07d60202753101036f7031010675315f6f703101040a02686900";

/// Bytes produced by Go's encoding/gob for OpenIM's `Resp` (docs/gob-envelope.md, vector c′).
const GO_RESPONSE: &str = "60ff81030101045265737001ff82000106010d5265714964656e74696669657201040001074d7367496e6372010c00010b4f7065726174696f6e4944010c000107457272436f646501040001064572724d7367010c00010444617461010a00000018ff8201fe0fa202026f7001fe177201036261640102010200";

#[test]
fn decodes_the_python_sdk_request_vector() {
    let (def, values) = decode_struct(&hex(PYTHON_REQUEST)).unwrap();
    assert_eq!(def.name, "GeneralWsReq");
    assert_eq!(values.get("ReqIdentifier"), Some(&GobValue::Int(1003)));
    assert_eq!(values.get("SendID"), Some(&GobValue::String("u1".into())));
    assert_eq!(values.get("MsgIncr"), Some(&GobValue::String("u1_op1".into())));
    assert_eq!(values.get("Data"), Some(&GobValue::Bytes(b"\x0a\x02hi".to_vec())));
}

#[test]
fn encodes_responses_byte_for_byte_like_go() {
    let ours = encode_struct(
        "Resp",
        &[
            ("ReqIdentifier", GobValue::Int(2001)),
            ("MsgIncr", GobValue::String(String::new())),
            ("OperationID", GobValue::String("op".into())),
            ("ErrCode", GobValue::Int(3001)),
            ("ErrMsg", GobValue::String("bad".into())),
            ("Data", GobValue::Bytes(vec![1, 2])),
        ],
    );
    assert_eq!(ours, hex(GO_RESPONSE));
}
