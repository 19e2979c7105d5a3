//! In-process caches in front of durable stores, for data read on the hot path and written
//! rarely. Only valid where every write goes through the same cache: the embedded backend
//! (one process). Processes that share a database use the stores uncached.

use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;

use crate::{Black, BlackStore, StoreResult};

/// Owners whose lists are kept at most; beyond it the cache starts over (it refills on reads).
const MAX_OWNERS: usize = 100_000;

/// Blacklists, read whole per owner and kept: every single-chat message asks whether its
/// receiver blocked its sender, and almost every answer is "no".
pub struct CachedBlacks {
    inner: Arc<dyn BlackStore>,
    lists: DashMap<String, Arc<Vec<Black>>>,
}

impl CachedBlacks {
    pub fn new(inner: Arc<dyn BlackStore>) -> Self {
        Self { inner, lists: DashMap::new() }
    }

    async fn list(&self, owner: &str) -> StoreResult<Arc<Vec<Black>>> {
        if let Some(list) = self.lists.get(owner) {
            return Ok(list.clone());
        }
        let list = Arc::new(self.inner.blacks(owner, None).await?);
        if self.lists.len() >= MAX_OWNERS {
            self.lists.clear();
        }
        self.lists.insert(owner.to_owned(), list.clone());
        Ok(list)
    }
}

#[async_trait]
impl BlackStore for CachedBlacks {
    async fn add_blacks(&self, blacks: &[Black]) -> StoreResult<()> {
        let done = self.inner.add_blacks(blacks).await;
        for b in blacks {
            self.lists.remove(&b.owner_user_id);
        }
        done
    }

    async fn remove_black(&self, owner: &str, block: &str) -> StoreResult<bool> {
        let done = self.inner.remove_black(owner, block).await;
        self.lists.remove(owner);
        done
    }

    async fn blacks(&self, owner: &str, block_ids: Option<&[String]>) -> StoreResult<Vec<Black>> {
        let list = self.list(owner).await?;
        Ok(match block_ids {
            None => list.as_ref().clone(),
            // One ID (every single-chat send asks about its sender) is a scan; many get a set.
            Some([id]) => list.iter().filter(|b| &b.block_user_id == id).cloned().collect(),
            Some(ids) => {
                let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
                list.iter().filter(|b| ids.contains(b.block_user_id.as_str())).cloned().collect()
            }
        })
    }
}
