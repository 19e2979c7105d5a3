use super::*;

#[test]
fn single_ids_are_symmetric() {
    assert_eq!(single_conversation_id("b", "a"), "si_a_b");
    assert_eq!(single_conversation_id("a", "b"), "si_a_b");
    assert_eq!(conversation_id(1, "u2", "u1", ""), Some("si_u1_u2".into()));
    assert_eq!(conversation_id(3, "u2", "", "g1"), Some("sg_g1".into()));
    assert_eq!(conversation_id(9, "u2", "", "g1"), None);
}

#[test]
fn parse_splits_at_the_known_member() {
    let check = |id: &str, member: &str, expected: Option<(&str, &str)>| {
        let got = match parse_conversation_id(id, member) {
            Some(ConversationTarget::Single(a, b)) => Some((a, b)),
            Some(ConversationTarget::Group(g)) => Some(("group", g)),
            None => None,
        };
        assert_eq!(got, expected, "{id} / {member}");
    };
    check("si_a_b", "a", Some(("a", "b")));
    check("si_a_b", "b", Some(("a", "b")));
    // An ID with `_` in a part has no reading at all, whoever asks.
    for member in ["a", "a_x", "x_b", "b", "x"] {
        check("si_a_x_b", member, None);
        check("n_a_x_b", member, None);
    }
    check("sg_alice_bob", "alice", None);
    check("si_a_b", "c", None);
    check("sg_g1", "anyone", Some(("group", "g1")));
    check("sg_", "a", None);
    check("xx", "a", None);
    check("n_a_b", "b", Some(("a", "b")));
    check("n_a_b", "c", None);
    check("n_g1", "a", Some(("group", "g1")));
    check("n_", "a", None);
}

#[test]
fn ids_that_could_join_into_another_conversation_id_are_refused() {
    for ok in ["alice", "u1", "3456789012", "a.b-c@d+e=f~", &"x".repeat(64)] {
        assert_eq!(check_id("userID", ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "1-64"),
        (&"x".repeat(65) as &str, "1-64"),
        ("a_b", "'_'"),
        ("a b", "' '"),
        ("a/b", "'/'"),
        ("é", "'é'"),
        ("a\0", "'\\0'"),
    ] {
        let err = check_id("userID", bad).unwrap_err();
        assert!(err.contains("userID") && err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn notifications_go_to_the_n_conversation_of_their_chat() {
    use openim_proto::pb::sdkws::MsgData;
    let mut m = MsgData { session_type: 1, send_id: "u2".into(), recv_id: "u1".into(), ..Default::default() };
    assert_eq!(conversation_id_of(&m).as_deref(), Some("si_u1_u2"), "no options: a chat message");
    m.options.insert("isNotNotification".into(), true);
    assert_eq!(conversation_id_of(&m).as_deref(), Some("si_u1_u2"));
    m.options.insert("isNotNotification".into(), false);
    assert_eq!(conversation_id_of(&m).as_deref(), Some("n_u1_u2"));
    m.session_type = 3;
    m.group_id = "g1".into();
    assert_eq!(conversation_id_of(&m).as_deref(), Some("n_g1"));
    assert!(is_notification("n_g1") && !is_notification("sg_g1"));
    assert_eq!(notification_conversation_id("si_a_b").as_deref(), Some("n_a_b"));
    assert_eq!(notification_conversation_id("n_a_b"), None);
    assert_eq!(self_notification_conversation_id("u1"), "n_u1_u1");
}

#[test]
fn new_ids_are_distinct_hex() {
    let a = new_id();
    let b = new_id();
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn id_hash_matches_openims_definition() {
    assert_eq!(id_hash(&[]), 0);
    // First 8 bytes of md5(`["a","b"]`), computed independently with Python's hashlib.
    assert_eq!(id_hash(&["a".into(), "b".into()]), 0xe53f04d1bcc1428d);
    assert_ne!(id_hash(&["a".into(), "b".into()]), id_hash(&["b".into(), "a".into()]));
}

#[test]
fn list_versions_fit_a_javascript_number() {
    let ids: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    assert!(list_version(&ids) < (1 << 53));
    assert_eq!(list_version(&ids), id_hash(&ids) & ((1 << 53) - 1));
    assert_ne!(list_version(&ids), list_version(&ids[1..]));
}

#[test]
fn first_missing_finds_the_first_absent_id_in_request_order() {
    let wanted: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    assert_eq!(first_missing(&wanted, ["d", "a", "b"]), Some(&"c".to_owned()));
    assert_eq!(first_missing(&wanted, ["c", "b", "a", "d"]), None);
    assert_eq!(first_missing(&wanted, []), Some(&"a".to_owned()));
    let refs: Vec<&String> = wanted.iter().collect();
    assert_eq!(first_missing(&refs, ["a", "b", "c"]).map(|s| s.as_str()), Some("d"));
}
