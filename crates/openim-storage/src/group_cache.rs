//! A cache of group membership in front of a [`GroupStore`]: who is in a group (the ID list push
//! fans out to), how many, and each member's row (what every group send checks: is the sender
//! in, muted, an admin). Kept in a [`KvCache`] shared by every process (Redis in production,
//! process memory when embedded), so a change made anywhere is seen everywhere.
//!
//! Each write through this store drops exactly the entries it changed: the group's ID list and
//! count, and the rows of the members it touched. So joining, leaving or a member's change in a
//! 10,000-member group costs the change, not the group; only the ID list is read whole again,
//! by the next fan-out that needs it. A member absent from a group is cached too (most checks
//! are of members, but a stranger's every attempt should not reach the database).
//!
//! A reader that missed and a concurrent writer can race (the reader stores what it read
//! before the write): writers drop their entries again shortly after, and every entry expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dashmap::DashMap;

use crate::*;

/// How long a cached entry lives at most.
const TTL: Duration = Duration::from_secs(300);
/// When a writer drops its entries a second time (after a racing reader's refill).
const SECOND_DROP: Duration = Duration::from_millis(500);
/// Entries the in-memory cache keeps at most; beyond it, it starts over.
const MEMORY_MAX_ENTRIES: usize = 1_000_000;

/// A key-value cache with expiry, shared by the processes that use one backend.
#[async_trait]
pub trait KvCache: Send + Sync {
    /// The values of `keys`, in order (`None`: not cached).
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>>;
    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()>;
    async fn delete(&self, keys: &[String]) -> StoreResult<()>;
}

/// The cache in process memory, for the embedded backend (one process).
#[derive(Default)]
pub struct MemoryKv {
    entries: DashMap<String, (Instant, Vec<u8>)>,
}

#[async_trait]
impl KvCache for MemoryKv {
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let now = Instant::now();
        Ok(keys.iter().map(|k| self.entries.get(k).filter(|e| e.0 > now).map(|e| e.1.clone())).collect())
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)], ttl: Duration) -> StoreResult<()> {
        if self.entries.len() + entries.len() > MEMORY_MAX_ENTRIES {
            self.entries.clear();
        }
        let until = Instant::now() + ttl;
        for (k, v) in entries {
            self.entries.insert(k.clone(), (until, v.clone()));
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> StoreResult<()> {
        for k in keys {
            self.entries.remove(k);
        }
        Ok(())
    }
}

/// [`GroupStore`] with membership cached in a [`KvCache`].
pub struct CachedGroups {
    inner: Arc<dyn GroupStore>,
    kv: Arc<dyn KvCache>,
}

fn ids_key(group: &str) -> String {
    format!("gc:ids:{group}")
}

fn count_key(group: &str) -> String {
    format!("gc:n:{group}")
}

fn member_key(group: &str, user: &str) -> String {
    format!("gc:m:{group}:{user}")
}

impl CachedGroups {
    pub fn new(inner: Arc<dyn GroupStore>, kv: Arc<dyn KvCache>) -> Self {
        Self { inner, kv }
    }

    /// Drops the given members' rows and, when who is in the group changed (`joined_or_left`),
    /// the group's ID list and count; now and once more soon.
    async fn drop_entries<'a>(&self, group: &str, users: impl IntoIterator<Item = &'a str>, joined_or_left: bool) {
        let mut keys = if joined_or_left { vec![ids_key(group), count_key(group)] } else { Vec::new() };
        keys.extend(users.into_iter().map(|u| member_key(group, u)));
        if let Err(e) = self.kv.delete(&keys).await {
            // A cache that cannot be cleared must not serve: entries expire, but until then
            // they would be wrong. Say so loudly; the write itself stands.
            tracing::error!(error = %e, group, "Could not drop cached group entries; they expire within {TTL:?}.");
        }
        let kv = self.kv.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_DROP).await;
            let _ = kv.delete(&keys).await;
        });
    }

    /// Cached values of `keys`; a cache that fails is read around, not failed.
    async fn cached(&self, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        match self.kv.get_many(keys).await {
            Ok(values) => values,
            Err(e) => {
                tracing::warn!(error = %e, "Group cache unavailable; reading the database.");
                vec![None; keys.len()]
            }
        }
    }

    async fn store(&self, entries: Vec<(String, Vec<u8>)>) {
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.kv.set_many(&entries, TTL).await {
            tracing::warn!(error = %e, "Could not fill the group cache.");
        }
    }
}

#[async_trait]
impl GroupStore for CachedGroups {
    async fn create_group(&self, group: &Group, members: &[GroupMember]) -> StoreResult<VersionHead> {
        let head = self.inner.create_group(group, members).await;
        // Absences may be cached for a reused group ID.
        self.drop_entries(&group.group_id, members.iter().map(|m| m.user_id.as_str()), true).await;
        head
    }

    async fn get_groups(&self, ids: &[String]) -> StoreResult<Vec<Group>> {
        self.inner.get_groups(ids).await
    }

    async fn update_group(&self, group_id: &str, patch: &GroupPatch) -> StoreResult<VersionHead> {
        self.inner.update_group(group_id, patch).await
    }

    async fn add_members(&self, members: &[GroupMember]) -> StoreResult<(Vec<String>, VersionHead)> {
        let done = self.inner.add_members(members).await;
        if let Some(first) = members.first() {
            self.drop_entries(&first.group_id, members.iter().map(|m| m.user_id.as_str()), true).await;
        }
        done
    }

    async fn remove_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<(Vec<String>, VersionHead)> {
        let done = self.inner.remove_members(group_id, user_ids).await;
        self.drop_entries(group_id, user_ids.iter().map(String::as_str), true).await;
        done
    }

    async fn update_members(&self, group_id: &str, patches: &[(String, MemberPatch)]) -> StoreResult<VersionHead> {
        let done = self.inner.update_members(group_id, patches).await;
        // The ID list is in join order: a role change leaves it as it is.
        self.drop_entries(group_id, patches.iter().map(|(u, _)| u.as_str()), false).await;
        done
    }

    async fn transfer_owner(&self, group_id: &str, old_owner: &str, new_owner: &str) -> StoreResult<VersionHead> {
        let done = self.inner.transfer_owner(group_id, old_owner, new_owner).await;
        self.drop_entries(group_id, [old_owner, new_owner], false).await;
        done
    }

    async fn members(&self, group_id: &str, offset: u32, limit: u32) -> StoreResult<(Vec<GroupMember>, u64)> {
        self.inner.members(group_id, offset, limit).await
    }

    async fn get_members(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupMember>> {
        let keys: Vec<String> = user_ids.iter().map(|u| member_key(group_id, u)).collect();
        let cached = self.cached(&keys).await;
        let mut found: HashMap<String, GroupMember> = HashMap::new();
        let mut missing = Vec::new();
        for (user, value) in user_ids.iter().zip(cached) {
            match value.and_then(|v| serde_json::from_slice::<Option<GroupMember>>(&v).ok()) {
                Some(Some(m)) => {
                    found.insert(user.clone(), m);
                }
                Some(None) => {}
                None => missing.push(user.clone()),
            }
        }
        if !missing.is_empty() {
            let read = self.inner.get_members(group_id, &missing).await?;
            let mut read: HashMap<String, GroupMember> = read.into_iter().map(|m| (m.user_id.clone(), m)).collect();
            let mut fill = Vec::with_capacity(missing.len());
            for user in missing {
                let m = read.remove(&user);
                fill.push((member_key(group_id, &user), serde_json::to_vec(&m).unwrap_or_default()));
                if let Some(m) = m {
                    found.insert(user, m);
                }
            }
            self.store(fill).await;
        }
        // In the order asked, each once.
        let mut seen = std::collections::HashSet::new();
        Ok(user_ids.iter().filter(|u| seen.insert(u.as_str())).filter_map(|u| found.remove(u.as_str())).collect())
    }

    async fn member_ids(&self, group_id: &str) -> StoreResult<Vec<String>> {
        let key = ids_key(group_id);
        if let Some(Some(v)) = self.cached(std::slice::from_ref(&key)).await.pop()
            && let Ok(ids) = serde_json::from_slice(&v)
        {
            return Ok(ids);
        }
        let ids = self.inner.member_ids(group_id).await?;
        self.store(vec![(key, serde_json::to_vec(&ids).unwrap_or_default())]).await;
        Ok(ids)
    }

    async fn member_counts(&self, group_ids: &[String]) -> StoreResult<HashMap<String, u64>> {
        let keys: Vec<String> = group_ids.iter().map(|g| count_key(g)).collect();
        let mut out = HashMap::with_capacity(group_ids.len());
        let mut missing = Vec::new();
        for (g, value) in group_ids.iter().zip(self.cached(&keys).await) {
            match value.and_then(|v| serde_json::from_slice::<u64>(&v).ok()) {
                Some(n) if n > 0 => {
                    out.insert(g.clone(), n);
                }
                Some(_) => {}
                None => missing.push(g.clone()),
            }
        }
        if !missing.is_empty() {
            let read = self.inner.member_counts(&missing).await?;
            let fill = missing
                .iter()
                .map(|g| (count_key(g), serde_json::to_vec(&read.get(g).copied().unwrap_or(0)).unwrap_or_default()))
                .collect();
            self.store(fill).await;
            out.extend(read);
        }
        Ok(out)
    }

    async fn managers(&self, group_id: &str) -> StoreResult<Vec<GroupMember>> {
        self.inner.managers(group_id).await
    }

    async fn joined_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.inner.joined_group_ids(user_id).await
    }

    async fn managed_group_ids(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.inner.managed_group_ids(user_id).await
    }

    async fn search_groups(&self, name: &str, offset: u32, limit: u32) -> StoreResult<(Vec<Group>, u64)> {
        self.inner.search_groups(name, offset, limit).await
    }

    async fn put_group_requests(&self, requests: &[GroupRequest]) -> StoreResult<()> {
        self.inner.put_group_requests(requests).await
    }

    async fn group_request(&self, group_id: &str, user_id: &str) -> StoreResult<Option<GroupRequest>> {
        self.inner.group_request(group_id, user_id).await
    }

    async fn answer_group_request(
        &self,
        answer: &GroupRequestAnswer,
        join: Option<&GroupMember>,
    ) -> StoreResult<Option<VersionHead>> {
        let done = self.inner.answer_group_request(answer, join).await;
        if let Some(m) = join {
            self.drop_entries(&m.group_id, [m.user_id.as_str()], true).await;
        }
        done
    }

    async fn group_requests_to(
        &self,
        group_ids: &[String],
        filter: &RequestFilter,
    ) -> StoreResult<(Vec<GroupRequest>, u64)> {
        self.inner.group_requests_to(group_ids, filter).await
    }

    async fn group_requests_from(
        &self,
        user_id: &str,
        group_ids: &[String],
        filter: &RequestFilter,
    ) -> StoreResult<(Vec<GroupRequest>, u64)> {
        self.inner.group_requests_from(user_id, group_ids, filter).await
    }

    async fn group_requests_of(&self, group_id: &str, user_ids: &[String]) -> StoreResult<Vec<GroupRequest>> {
        self.inner.group_requests_of(group_id, user_ids).await
    }

    async fn pending_group_requests(&self, group_ids: &[String], since: i64) -> StoreResult<u64> {
        self.inner.pending_group_requests(group_ids, since).await
    }

    async fn version_head(&self, kind: i32, owner_id: &str) -> StoreResult<VersionHead> {
        self.inner.version_head(kind, owner_id).await
    }

    async fn version_changes(
        &self,
        kind: i32,
        owner_id: &str,
        since: u64,
        limit: u32,
    ) -> StoreResult<(Vec<VersionEntry>, u64)> {
        self.inner.version_changes(kind, owner_id, since, limit).await
    }
}
