//! What the transfer tests feed it.

use bytes::Bytes;
use openim_proto::pb::sdkws::MsgData;
use openim_storage::BusMessage;
use prost::Message as _;

/// A text from `a` to `b` as `openim-rpc-msg` publishes it.
pub fn record(client_msg_id: &str) -> BusMessage {
    let msg = MsgData {
        send_id: "a".into(),
        recv_id: "b".into(),
        client_msg_id: client_msg_id.into(),
        session_type: 1,
        content_type: 101,
        content: b"{}".to_vec(),
        send_time: 1,
        ..Default::default()
    };
    BusMessage { key: "si_a_b".into(), payload: Bytes::from(msg.encode_to_vec()) }
}
