//! Fuzz targets: each takes arbitrary bytes, feeds them to the code that parses what clients
//! send, and checks what must hold for any input (no panic, bounded output, and what decodes
//! encodes back to the same). `fuzz/` runs them under libFuzzer (`cargo +nightly fuzz run
//! <target>`); `tests/short_run.rs` replays the committed corpus and mutates it for a few
//! seconds in the default test run, on stable.

use openim_proto::constants::req;
use openim_proto::gob;
use openim_proto::pb::{conversation, group, msg, sdkws, user};
use openim_proto::ws::{self, Encoding, WsRequest};
use prost::Message as _;

/// The largest frame the gateway takes after gunzip (`max_message_bytes` is 51,200 by default).
const MAX_FRAME: usize = 1 << 20;

/// A fuzz target: takes any bytes, panics when something that must hold does not.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and `corpus/<name>/` call them.
pub const TARGETS: &[(&str, Target)] = &[("gob_struct", gob_struct), ("ws_frame", ws_frame), ("rest_body", rest_body)];

/// The gob decoder: what decodes re-encodes to something that decodes the same. Gob leaves
/// zero values out, and a stream may still carry one (an empty `Data`): a field absent and a
/// field at its zero value are the same value.
pub fn gob_struct(data: &[u8]) {
    let Ok((def, fields)) = gob::decode_struct(data) else { return };
    let ordered: Vec<(&str, gob::GobValue)> =
        def.fields.iter().filter_map(|f| Some((f.name.as_str(), fields.get(&f.name)?.clone()))).collect();
    let again = gob::encode_struct(&def.name, &ordered);
    let (_, decoded) = gob::decode_struct(&again).expect("what we encode decodes");
    let set = |m: &std::collections::HashMap<String, gob::GobValue>| {
        let zero = |v: &gob::GobValue| match v {
            gob::GobValue::Bool(b) => !b,
            gob::GobValue::Int(i) => *i == 0,
            gob::GobValue::Uint(u) => *u == 0,
            gob::GobValue::Bytes(b) => b.is_empty(),
            gob::GobValue::String(s) => s.is_empty(),
        };
        let mut v: Vec<_> = m.iter().filter(|(_, v)| !zero(v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(set(&decoded), set(&fields), "gob round trip");
}

/// A WebSocket frame as the gateway reads it. The first byte picks the envelope (bit 0: JSON,
/// else gob) and compression (bit 1: gzip); the rest is the frame. Then the payload is decoded
/// as the message its `reqIdentifier` names, as the gateway does.
pub fn ws_frame(data: &[u8]) {
    let Some((&mode, frame)) = data.split_first() else { return };
    let encoding = if mode & 1 == 1 { Encoding::Json } else { Encoding::Gob };
    let plain;
    let frame = if mode & 2 == 2 {
        match ws::gunzip(frame, MAX_FRAME) {
            Ok(p) => {
                assert!(p.len() <= MAX_FRAME, "gunzip passed its limit");
                plain = p;
                &plain[..]
            }
            Err(_) => return,
        }
    } else {
        frame
    };
    let Ok(request) = WsRequest::decode(encoding, frame) else { return };
    let again = WsRequest::decode(encoding, &request.encode(encoding)).expect("what we encode decodes");
    assert_eq!(again, request, "envelope round trip");
    let payload = &request.data[..];
    let _ = match request.req_identifier {
        req::GET_NEWEST_SEQ => sdkws::GetMaxSeqReq::decode(payload).map(drop),
        req::PULL_MSG_BY_SEQ_LIST => sdkws::PullMessageBySeqsReq::decode(payload).map(drop),
        req::SEND_MSG => sdkws::MsgData::decode(payload).map(drop),
        req::PULL_MSG => msg::GetSeqMessageReq::decode(payload).map(drop),
        req::GET_CONV_MAX_READ_SEQ => msg::GetConversationsHasReadAndMaxSeqReq::decode(payload).map(drop),
        req::PULL_CONV_LAST_MESSAGE => msg::GetLastMessageReq::decode(payload).map(drop),
        req::SET_BACKGROUND_STATUS => sdkws::SetAppBackgroundStatusReq::decode(payload).map(drop),
        req::SUB_USER_ONLINE_STATUS => sdkws::SubUserOnlineStatus::decode(payload).map(drop),
        _ => Ok(()),
    };
}

/// A REST body decoded as the request of one of the busiest routes (the first byte picks it),
/// with OpenIM's JSON conventions (null as empty, bytes as base64, 64-bit numbers).
pub fn rest_body(data: &[u8]) {
    let Some((&route, body)) = data.split_first() else { return };
    fn decode<T: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8]) {
        if let Ok(v) = serde_json::from_slice::<T>(body) {
            let json = serde_json::to_vec(&v).expect("what decodes encodes");
            serde_json::from_slice::<T>(&json).expect("what we encode decodes");
        }
    }
    match route % 8 {
        0 => decode::<sdkws::PullMessageBySeqsReq>(body),
        1 => decode::<msg::GetConversationsHasReadAndMaxSeqReq>(body),
        2 => decode::<msg::MarkMsgsAsReadReq>(body),
        3 => decode::<user::UserRegisterReq>(body),
        4 => decode::<user::GetDesignateUsersReq>(body),
        5 => decode::<conversation::SetConversationsReq>(body),
        6 => decode::<group::CreateGroupReq>(body),
        _ => decode::<sdkws::MsgData>(body),
    }
}

/// Valid inputs of each target, the seeds of the corpus (written by `cargo test -p openim-fuzz --
/// --ignored write_seeds`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let request = |id: i32, data: Vec<u8>| WsRequest {
        req_identifier: id,
        send_id: "alice".into(),
        operation_id: "op-1".into(),
        msg_incr: "alice_1".into(),
        token: "t".into(),
        data: data.into(),
    };
    let msg = sdkws::MsgData {
        send_id: "alice".into(),
        recv_id: "bob".into(),
        client_msg_id: "c1".into(),
        session_type: 1,
        msg_from: 100,
        content_type: 101,
        content: br#"{"content":"hi"}"#.to_vec(),
        ..Default::default()
    };
    let pull = sdkws::PullMessageBySeqsReq {
        user_id: "alice".into(),
        seq_ranges: vec![sdkws::SeqRange { conversation_id: "si_alice_bob".into(), begin: 1, end: 10, num: 10 }],
        order: 0,
    };
    let frames = [
        request(req::SEND_MSG, msg.encode_to_vec()),
        request(req::PULL_MSG_BY_SEQ_LIST, pull.encode_to_vec()),
        request(req::GET_NEWEST_SEQ, sdkws::GetMaxSeqReq { user_id: "alice".into() }.encode_to_vec()),
    ];
    match target {
        "gob_struct" => frames.iter().map(|r| r.encode(Encoding::Gob)).collect(),
        "ws_frame" => frames
            .iter()
            .flat_map(|r| {
                let (g, j) = (r.encode(Encoding::Gob), r.encode(Encoding::Json));
                [
                    [&[0u8][..], &g].concat(),
                    [&[1u8][..], &j].concat(),
                    [&[2u8][..], &ws::gzip(&g)].concat(),
                    [&[3u8][..], &ws::gzip(&j)].concat(),
                ]
            })
            .collect(),
        "rest_body" => vec![
            [&[0u8][..], br#"{"userID":"alice","seqRanges":[{"conversationID":"si_alice_bob","begin":1,"end":10,"num":10}],"order":0}"#].concat(),
            [&[1u8][..], br#"{"userID":"alice","conversationIDs":["si_alice_bob"]}"#].concat(),
            [&[2u8][..], br#"{"userID":"alice","conversationID":"si_alice_bob","seqs":[1,2,3]}"#].concat(),
            [&[3u8][..], br#"{"users":[{"userID":"u1","nickname":"n","faceURL":""}]}"#].concat(),
            [&[4u8][..], br#"{"userIDs":["alice",null]}"#].concat(),
            [&[5u8][..], br#"{"userIDs":["alice"],"conversation":{"conversationID":"sg_g","isPinned":true,"ex":null}}"#].concat(),
            [&[6u8][..], br#"{"ownerUserID":"a","memberUserIDs":["b"],"groupInfo":{"groupName":"g","groupType":2}}"#].concat(),
            [&[7u8][..], br#"{"sendID":"a","recvID":"b","content":"eyJjb250ZW50IjoiaGkifQ==","sendTime":"1700000000000"}"#].concat(),
        ],
        _ => Vec::new(),
    }
}
