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
    assert_eq!(
        names,
        [
            "ReqIdentifier",
            "Token",
            "SendID",
            "OperationID",
            "MsgIncr",
            "Data"
        ]
    );
    assert_eq!(values.get("ReqIdentifier"), Some(&GobValue::Int(1003)));
    assert_eq!(
        values.get("Token"),
        None,
        "zero values are omitted on the wire"
    );
    assert_eq!(
        values.get("Data"),
        Some(&GobValue::Bytes(b"\x0a\x02hi".to_vec()))
    );
}

#[test]
fn integers_use_gob_encoding() {
    let check = |v: i64, expected: &[u8]| {
        let mut w = Writer::default();
        w.int(v);
        assert_eq!(w.buf, expected, "int {v}");
        let mut r = Reader {
            buf: &w.buf,
            pos: 0,
        };
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
    assert_eq!(
        decode_struct(&[0x03, 0xff, 0x80, 0x00]),
        Err(GobError::UndefinedType(64))
    );
}
