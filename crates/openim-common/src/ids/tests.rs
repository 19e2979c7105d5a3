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
    check("si_a_x_b", "a_x", Some(("a_x", "b")));
    check("si_a_x_b", "b", Some(("a_x", "b")));
    check("si_a_b", "c", None);
    check("sg_g1", "anyone", Some(("group", "g1")));
    check("sg_", "a", None);
    check("xx", "a", None);
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
