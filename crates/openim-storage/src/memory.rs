//! In-memory adapters for the embedded mode: the message bus and the online registry.
//!
//! The memory bus keeps Kafka's ordering (one consumer per group sees records in publish order)
//! but not its durability: records not yet consumed live only in this process. `standalone`
//! therefore drains the bus on shutdown before it exits (see ARCHITECTURE.md).

use std::collections::HashMap;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::*;

/// Records a topic may hold for a slow consumer before publishers wait. Small on purpose: a
/// full topic slows senders down (their acknowledgements wait) instead of letting a backlog,
/// and with it latency, grow without bound.
const TOPIC_CAPACITY: usize = 2048;

struct Topic {
    /// One sender per consumer group.
    groups: HashMap<String, mpsc::Sender<BusMessage>>,
    /// Records published before any group subscribed; the first group takes them.
    backlog: Option<(mpsc::Sender<BusMessage>, mpsc::Receiver<BusMessage>)>,
}

#[derive(Default)]
pub struct MemoryBus {
    topics: Mutex<HashMap<String, Topic>>,
}

impl MemoryBus {
    /// Closes every topic: consumers get the records already published, then `None`.
    pub fn close(&self) {
        self.topics.lock().clear();
    }

    fn senders(&self, topic: &str) -> Vec<mpsc::Sender<BusMessage>> {
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.to_owned()).or_insert_with(|| Topic { groups: HashMap::new(), backlog: None });
        if t.groups.is_empty() {
            let (tx, _) = t.backlog.get_or_insert_with(|| mpsc::channel(TOPIC_CAPACITY));
            return vec![tx.clone()];
        }
        t.groups.values().cloned().collect()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, records: Vec<BusMessage>) -> StoreResult<()> {
        let senders = self.senders(topic);
        for tx in &senders {
            for r in &records {
                tx.send(r.clone()).await.map_err(|_| StoreError::Backend(format!("bus topic {topic} is closed")))?;
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> StoreResult<Box<dyn Subscription>> {
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.to_owned()).or_insert_with(|| Topic { groups: HashMap::new(), backlog: None });
        if t.groups.contains_key(group) {
            return Err(StoreError::Duplicate(format!(
                "memory bus: group {group} already consumes {topic} (one consumer per group)"
            )));
        }
        let (tx, rx) = match t.backlog.take() {
            Some(pair) if t.groups.is_empty() => pair,
            _ => mpsc::channel(TOPIC_CAPACITY),
        };
        t.groups.insert(group.to_owned(), tx);
        Ok(Box::new(MemorySubscription { rx }))
    }
}

struct MemorySubscription {
    rx: mpsc::Receiver<BusMessage>,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next_batch(&mut self, max: usize) -> StoreResult<Option<Vec<BusMessage>>> {
        let mut batch = Vec::with_capacity(max.min(1024));
        if self.rx.recv_many(&mut batch, max.max(1)).await == 0 {
            return Ok(None);
        }
        Ok(Some(batch))
    }

    async fn commit(&mut self) -> StoreResult<()> {
        Ok(())
    }
}

/// Online registry held in memory: user → (platform, gateway) connections, counted so that two
/// connections of one user on one platform at one gateway need two offline reports.
#[derive(Default)]
pub struct MemoryOnline {
    users: DashMap<String, Vec<(i32, String, u32)>>,
}

#[async_trait]
impl OnlineStore for MemoryOnline {
    async fn set_online(&self, user_id: &str, platform_id: i32, gateway_id: &str, online: bool) -> StoreResult<()> {
        let mut entry = self.users.entry(user_id.to_owned()).or_default();
        let pos = entry.iter().position(|(p, g, _)| *p == platform_id && g == gateway_id);
        match (pos, online) {
            (Some(i), true) => entry[i].2 += 1,
            (None, true) => entry.push((platform_id, gateway_id.to_owned(), 1)),
            (Some(i), false) => {
                entry[i].2 -= 1;
                if entry[i].2 == 0 {
                    entry.swap_remove(i);
                }
            }
            (None, false) => {}
        }
        let empty = entry.is_empty();
        drop(entry);
        if empty {
            self.users.remove_if(user_id, |_, v| v.is_empty());
        }
        Ok(())
    }

    async fn online(&self, user_ids: &[String]) -> StoreResult<HashMap<String, Vec<(i32, String)>>> {
        let mut out = HashMap::new();
        for id in user_ids {
            if let Some(v) = self.users.get(id) {
                out.insert(id.clone(), v.iter().map(|(p, g, _)| (*p, g.clone())).collect());
            }
        }
        Ok(out)
    }

    async fn clear_gateway(&self, gateway_id: &str) -> StoreResult<()> {
        self.users.retain(|_, v| {
            v.retain(|(_, g, _)| g != gateway_id);
            !v.is_empty()
        });
        Ok(())
    }
}

/// Dedup within one process: enough where a replay can only come from this process's own
/// memory bus (or a client's resend, seconds later). Entries older than their TTL are dropped as
/// new ones arrive, and at most [`MemoryDedup::CAPACITY`] are kept — the newest — so memory
/// stays bounded under sustained load (at 10,000 msg/s that is the last 20 s).
#[derive(Default)]
pub struct MemoryDedup {
    seen: parking_lot::Mutex<SeenKeys>,
}

impl MemoryDedup {
    pub const CAPACITY: usize = 200_000;
}

/// Keys with when they expire, and the same in arrival order (for eviction).
#[derive(Default)]
struct SeenKeys {
    at: HashMap<String, std::time::Instant>,
    order: std::collections::VecDeque<(std::time::Instant, String)>,
}

impl SeenKeys {
    fn live(&self, key: &str, now: std::time::Instant) -> bool {
        self.at.get(key).is_some_and(|expires| *expires > now)
    }
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn first_time(&self, keys: &[String], ttl: std::time::Duration) -> StoreResult<Vec<bool>> {
        let now = std::time::Instant::now();
        let mut guard = self.seen.lock();
        // Oldest first: expired ones, then as many as it takes to stay within capacity. (Keys
        // recorded with a longer TTL can hold expired ones behind them; `live` tells those
        // apart, and the capacity bounds them.)
        while let Some((expires, _)) = guard.order.front()
            && (*expires <= now || guard.order.len() + keys.len() > Self::CAPACITY)
        {
            let (expires, key) = guard.order.pop_front().expect("front exists");
            if guard.at.get(&key) == Some(&expires) {
                guard.at.remove(&key);
            }
        }
        let expires = now + ttl;
        Ok(keys
            .iter()
            .map(|k| {
                let new = !guard.live(k, now);
                if new {
                    guard.at.insert(k.clone(), expires);
                    guard.order.push_back((expires, k.clone()));
                }
                new
            })
            .collect())
    }

    async fn marked(&self, key: &str) -> StoreResult<bool> {
        Ok(self.seen.lock().live(key, std::time::Instant::now()))
    }

    async fn forget(&self, keys: &[String]) -> StoreResult<()> {
        let mut guard = self.seen.lock();
        for k in keys {
            guard.at.remove(k);
        }
        // Their entries in `order` expire by themselves; removing a key that a later call
        // records again is harmless (`at` decides).
        Ok(())
    }
}
