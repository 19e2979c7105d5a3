//! Seqs, tokens, the online registry, the bus and dedup marks.

use std::collections::HashSet;

use std::sync::Arc;

use super::prefix;
use bytes::Bytes;

use crate::*;

pub async fn seqs(store: Arc<dyn SeqStore>) {
    let p = prefix();
    let conv = format!("sg_{p}");
    assert_eq!(store.allocate_seqs(&conv, 1).await.unwrap(), 1, "seqs start at 1");
    assert_eq!(store.allocate_seqs(&conv, 5).await.unwrap(), 2);
    assert_eq!(store.allocate_seqs(&conv, 1).await.unwrap(), 7);
    assert!(store.allocate_seqs(&conv, 0).await.is_err(), "zero seqs is a caller bug");
    let other = format!("sg_{p}_other");
    let firsts = store.allocate_seqs_many(&[(other.clone(), 2), (conv.clone(), 0)]).await;
    assert!(firsts.is_err(), "a zero count fails the whole call");
    let firsts = store.allocate_seqs_many(&[(other.clone(), 2), (other.clone(), 3)]).await.unwrap();
    assert_eq!(firsts, vec![1, 3], "requests are served in order");
    assert_eq!(store.max_seqs(std::slice::from_ref(&other)).await.unwrap()[&other], 5);

    // Concurrent allocators get disjoint, gap-free ranges.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let conv = conv.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..20 {
                    let first = store.allocate_seqs(&conv, 3).await.unwrap();
                    got.extend(first..first + 3);
                }
                got
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in tasks {
        for s in t.await.unwrap() {
            assert!(all.insert(s), "seq {s} handed out twice");
        }
    }
    assert_eq!(all.len(), 16 * 20 * 3);
    assert_eq!(*all.iter().min().unwrap(), 8);
    assert_eq!(*all.iter().max().unwrap(), 7 + 16 * 20 * 3);

    let maxes = store.max_seqs(&[conv.clone(), format!("{p}-none")]).await.unwrap();
    assert_eq!(maxes[&conv], 7 + 16 * 20 * 3);
    assert_eq!(maxes[&format!("{p}-none")], 0);

    store.set_read_seq("u", &conv, 5).await.unwrap();
    store.set_read_seq("u", &conv, 3).await.unwrap();
    let read = store.read_seqs("u", std::slice::from_ref(&conv)).await.unwrap();
    assert_eq!(read[&conv], 5, "read seqs never go down");
}

pub async fn tokens(store: &dyn TokenStore) {
    let p = prefix();
    let user = format!("{p}u");
    let far = 4_000_000_000;
    store.add_token(&user, 1, "t1", far).await.unwrap();
    store.add_token(&user, 1, "t2", far).await.unwrap();
    store.add_token(&user, 2, "t3", far).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Normal));
    assert_eq!(store.token_state(&user, 1, "nope").await.unwrap(), None);
    assert_eq!(store.token_state(&user, 2, "t1").await.unwrap(), None, "tokens are per platform");

    let kicked = store.set_platform_tokens(&user, 1, TokenState::Kicked, Some("t2")).await.unwrap();
    assert_eq!(kicked, 1);
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Kicked));
    assert_eq!(store.token_state(&user, 1, "t2").await.unwrap(), Some(TokenState::Normal));
    assert_eq!(store.token_state(&user, 2, "t3").await.unwrap(), Some(TokenState::Normal));

    // A login drops the platform's expired tokens; live ones, kicked or not, stay.
    let past = crate::sql::unix_now() - 10;
    store.add_token(&user, 1, "old", past).await.unwrap();
    store.add_token(&user, 2, "old2", past).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "old").await.unwrap(), Some(TokenState::Normal), "not pruned yet");
    store.add_token(&user, 1, "t4", far).await.unwrap();
    assert_eq!(store.token_state(&user, 1, "old").await.unwrap(), None, "pruned by the next login");
    assert_eq!(store.token_state(&user, 1, "t1").await.unwrap(), Some(TokenState::Kicked));
    assert_eq!(store.token_state(&user, 2, "old2").await.unwrap(), Some(TokenState::Normal), "other platforms wait");
}

pub async fn online(store: &dyn OnlineStore) {
    let p = prefix();
    let (a, b) = (format!("{p}a"), format!("{p}b"));
    store.set_online(&a, 1, "gw1", true).await.unwrap();
    store.set_online(&a, 1, "gw1", true).await.unwrap();
    store.set_online(&a, 5, "gw2", true).await.unwrap();
    let got = store.online(&[a.clone(), b.clone()]).await.unwrap();
    let mut places = got[&a].clone();
    places.sort();
    assert_eq!(places, vec![(1, "gw1".to_owned()), (5, "gw2".to_owned())]);
    assert!(!got.contains_key(&b));

    store.set_online(&a, 1, "gw1", false).await.unwrap();
    assert_eq!(store.online(std::slice::from_ref(&a)).await.unwrap()[&a].len(), 2, "one of two connections left");
    store.set_online(&a, 1, "gw1", false).await.unwrap();
    assert_eq!(store.online(std::slice::from_ref(&a)).await.unwrap()[&a], vec![(5, "gw2".to_owned())]);
    store.clear_gateway("gw2").await.unwrap();
    assert!(store.online(&[a]).await.unwrap().is_empty());
}

pub async fn bus(bus: &dyn Bus) {
    let p = prefix();
    let topic = format!("{p}-topic");
    let rec = |k: &str, v: u32| BusMessage { key: k.to_owned(), payload: Bytes::from(v.to_be_bytes().to_vec()) };
    // Records published before the consumer joins are not lost.
    bus.publish(&topic, vec![rec("a", 0)]).await.unwrap();
    let mut sub = bus.subscribe(&topic, "g1").await.unwrap();
    bus.publish(&topic, (1..100).map(|i| rec(if i % 2 == 0 { "a" } else { "b" }, i)).collect()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 100 {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next_batch(30))
            .await
            .expect("records arrive")
            .unwrap()
            .expect("bus open");
        assert!(!batch.is_empty() && batch.len() <= 30, "batch of {}", batch.len());
        seen.extend(batch);
        sub.commit().await.unwrap();
    }
    for key in ["a", "b"] {
        let order: Vec<u32> = seen
            .iter()
            .filter(|r| r.key == key)
            .map(|r| u32::from_be_bytes(r.payload[..4].try_into().unwrap()))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key {key} keeps publish order: {order:?}");
    }
    assert_eq!(seen.len(), 100);

    // A chat and its notification conversation keep their records' order between them (one
    // order key), and each record comes back under its own key.
    let chats: Vec<(String, String)> = (0..16)
        .map(|i| (format!("n_{p}g{i}"), format!("sg_{p}g{i}")))
        .chain([("n_x_y".into(), "si_x_y".into())])
        .collect();
    bus.publish(&topic, chats.iter().flat_map(|(n, chat)| [rec(n, 1), rec(chat, 2)]).collect()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 * chats.len() {
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next_batch(30))
            .await
            .expect("records arrive")
            .unwrap()
            .expect("bus open");
        seen.extend(batch.into_iter().map(|r| r.key));
        sub.commit().await.unwrap();
    }
    for (n, chat) in &chats {
        let at = |key: &String| seen.iter().position(|k| k == key).unwrap_or_else(|| panic!("{key} came back"));
        assert!(at(n) < at(chat), "{n} before {chat}, as published: {seen:?}");
    }
}

pub async fn dedup(store: &dyn DedupStore) {
    let p = prefix();
    let ttl = std::time::Duration::from_secs(60);
    let keys = vec![format!("{p}a"), format!("{p}b")];
    assert_eq!(store.first_time(&keys, ttl).await.unwrap(), vec![true, true]);
    let again = vec![format!("{p}b"), format!("{p}c")];
    assert_eq!(store.first_time(&again, ttl).await.unwrap(), vec![false, true], "a key is new once");
    assert!(store.first_time(&[], ttl).await.unwrap().is_empty());
    store.forget(std::slice::from_ref(&keys[0])).await.unwrap();
    assert_eq!(store.first_time(&keys, ttl).await.unwrap(), vec![true, false], "a forgotten key is new again");
    assert!(store.marked(&keys[1]).await.unwrap());
    assert!(!store.marked(&format!("{p}none")).await.unwrap());
    assert!(!store.first_time(std::slice::from_ref(&keys[1]), ttl).await.unwrap()[0], "asking does not unmark");
}
