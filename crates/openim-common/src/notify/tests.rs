use openim_proto::constants::session;
use openim_proto::pb::sdkws::NotificationElem;

use super::*;

#[test]
fn single_notifications_go_to_the_pair_s_notification_conversation() {
    let m = message(&Note::single(1201, "bob", "alice"), &serde_json::json!({"k": "v"}));
    assert_eq!(ids::conversation_id_of(&m).as_deref(), Some("n_alice_bob"));
    assert_eq!((m.msg_from, m.session_type, m.content_type), (msg_from::SYSTEM, session::SINGLE_CHAT, 1201));
    let elem: NotificationElem = serde_json::from_slice(&m.content).unwrap();
    assert_eq!(elem.detail, r#"{"k":"v"}"#);
    assert_eq!(m.options.get("history"), Some(&true));
    assert_eq!(m.options.get("unreadCount"), Some(&false));
    assert!(!m.client_msg_id.is_empty() && m.send_time > 0);
}

#[test]
fn group_notifications_go_to_the_group_s_notification_conversation() {
    let m = message(&Note::group(1501, "owner", "g1"), &());
    assert_eq!(ids::conversation_id_of(&m).as_deref(), Some("n_g1"));
}

#[test]
fn online_only_notifications_are_not_stored() {
    let m = message(&Note::single(1300, "u", "u").online_only(), &());
    assert_eq!(m.options.get("history"), Some(&false));
    assert_eq!(m.options.get("persistent"), Some(&false));
}
